"""The checks a triage makes before the bench starts (usage and config mistakes: exit 3) and
before any device is touched (the result store), and its debug log."""
from __future__ import annotations

from pathlib import Path

from posbench.cli import common
from posbench.cli.common import UsageFailure, check_bench_profile
from posbench.core.errors import ConfigError


def preflight(bench_path: Path | None, store_url: str | None, outputs: dict[str, Path],
              virtual_profile: str | None = None) -> None:
    """Usage and config mistakes, found before the bench starts (exit 3): the bench file and its
    DUT profile against the HIL suite (``virtual_profile``: the profile a virtual bench will be
    built from), the store URL, and report targets that are not regular files or cannot be
    written. Nothing is written and no device touched before these pass."""
    from posbench.render.outputs import check_target
    try:
        if bench_path:
            from posbench.setup.config import load_bench
            check_bench_profile(load_bench(bench_path))
        elif virtual_profile:
            from posbench.sim.bench import sim_profile
            from posbench.run.profile_check import check_profile
            check_profile(sim_profile(virtual_profile))
        for option, path in outputs.items():
            check_target(path, option)
        if store_url:
            from posbench.setup.preflight import check_store_url
            try:
                check_store_url(store_url)
            except ValueError as exc:
                raise UsageFailure(f"--store {store_url!r}: {exc}; e.g. "
                                   "sqlite:///reports/posbench.sqlite or postgresql://user@host/db") from None
        else:
            check_target(common.REPORTS / "posbench.sqlite", "the default result store (--store)")
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None


def check_store(store_url: str | None) -> None:
    """Open the result store once before any device is touched: one that cannot be reached (a
    server down, a wrong password) is a bench error now, not 19 errored tests after the bench
    started. ``StoreUnavailable`` (a ``BenchError``) names it."""
    from posbench.store import Store
    Store.open(store_url, common.REPORTS, sweep=False).close()


def debug_log(path: Path):
    """Write the ``posbench`` loggers' DEBUG lines to ``path`` (only there: not into the reports'
    captured logs); returns the function that undoes it."""
    import logging
    logger = logging.getLogger("posbench")
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    def undo() -> None:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    return undo
