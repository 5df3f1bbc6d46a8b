"""A server (the virtual bench, the host simulator) run in the foreground until SIGINT/SIGTERM."""
from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from typing import TypeVar

from posbench.cli.common import EXIT_BENCH
from posbench.core.errors import BenchError

T = TypeVar("T")


def _stop_on_signal() -> threading.Event:
    """From now on SIGINT and SIGTERM set the returned event (a server's normal end) instead of
    interrupting whatever runs."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _until_signal(stop: threading.Event) -> None:
    """Block until ``stop`` is set, or (started by a triage) until that triage is gone.

    ``POSBENCH_PARENT_PID`` names the process that launched this virtual bench: if it dies
    without stopping us (SIGKILL), we are reparented and clean up instead of living on.
    """
    import os
    parent = os.environ.get("POSBENCH_PARENT_PID")
    while not stop.wait(0.5):
        if parent and os.getppid() != int(parent):
            return


def in_foreground(make: Callable[[], ContextManager[T]], started: Callable[[T], None], what: str,
                   stopped: str) -> None:
    """Run the server ``make()`` returns until SIGINT/SIGTERM, ``started(server)`` once it is up,
    then say ``stopped``. A server that cannot start (a port in use, a tool missing, a bench
    device gone) is a bench failure: its message and exit 2, never a traceback."""
    try:
        with make() as server:
            # before it says where it is: whoever read that may stop it at once (seen: a SIGTERM
            # right after the bench file was written interrupted the start-up, exit 2)
            stop = _stop_on_signal()
            started(server)
            _until_signal(stop)
    except (OSError, BenchError) as exc:
        print(f"BENCH ERROR: {what} could not start: {exc}", file=sys.stderr)
        sys.exit(EXIT_BENCH)
    print(stopped, flush=True)
