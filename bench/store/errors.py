"""The result store's errors: the store unavailable (a bench error), a run id unknown or ambiguous."""
from __future__ import annotations

from posbench.core.errors import BenchError, PosbenchError


class StoreUnavailable(BenchError):
    """The result store cannot be opened or written (wrong URL, server down, disk full).

    Names the store by its URL with the password hidden.
    """

    def __init__(self, url: str, doing: str, detail: str = ""):
        self.url = url
        super().__init__(f"result store {url}", doing, detail)


class UnknownRun(PosbenchError, LookupError):
    """No stored run matches the id (or prefix) given."""


class AmbiguousRun(UnknownRun):
    """A run id prefix matches more than one stored run."""
