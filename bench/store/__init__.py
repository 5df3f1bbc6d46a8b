"""The result store: runs, tests, measurements and verdicts in SQLite (default) or PostgreSQL.

``Store.open(url, reports_dir)`` opens it; ``posbench.render.history`` and
``posbench.render.stored_run`` read it back for ``posbench history``, ``runs`` and ``report``.
It persists and queries only: no rendering, no diagnosis.
"""
from posbench.store.errors import AmbiguousRun, StoreUnavailable, UnknownRun
from posbench.store.records import (
    MeasurementChange,
    RunSummary,
    StorableVerdict,
    StoredCause,
    StoredRun,
    StoredTest,
)
from posbench.store.store import Store, Writer

__all__ = ["AmbiguousRun", "MeasurementChange", "RunSummary", "Store", "StorableVerdict", "StoreUnavailable", "StoredCause",
           "StoredRun", "StoredTest", "UnknownRun", "Writer"]
