"""The result store: runs, tests, measurements and verdicts in SQLite (default) or PostgreSQL.

``Store.open(url, reports_dir)`` opens it; ``history.render_history`` and ``report.regenerate``
read it back for ``posbench history`` and ``posbench report``.
"""
from posbench.store.errors import AmbiguousRun, StoreUnavailable, UnknownRun
from posbench.store.store import (
    MeasurementChange,
    RunSummary,
    Store,
    StoredCause,
    StoredRun,
    StoredTest,
    Writer,
)

__all__ = ["AmbiguousRun", "MeasurementChange", "RunSummary", "Store", "StoreUnavailable", "StoredCause",
           "StoredRun", "StoredTest", "UnknownRun", "Writer"]
