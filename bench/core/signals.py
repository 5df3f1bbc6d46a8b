"""Stop signals: SIGTERM and SIGHUP end a posbench command the way Ctrl-C does."""
from __future__ import annotations

import signal
import sys
import threading
from typing import Any

STOPPED: dict[str, str] = {}
"""Set to {"by": "SIGTERM"} (etc.) by the first stop signal of this process."""

REDELIVER_AFTER_S = 0.05
"""How long after a swallowed stop it is raised again (s): long enough to leave the finalizer."""

_redeliver = threading.Event()


def _stop_signal(signum: int, frame: object) -> None:
    if "by" in STOPPED and not _redeliver.is_set():
        return  # already stopping: let the clean-up (which has deadlines) run to its end
    _redeliver.clear()
    STOPPED["by"] = signal.Signals(signum).name
    raise KeyboardInterrupt(STOPPED["by"])


def _unraisable(unraisable: Any) -> None:
    """A stop signal that lands in a weakref callback, a ``__del__`` or a GC pass raises where
    Python can only print and drop the exception: the command would then run to its end and only
    say INTERRUPTED there (seen in CI: a SIGTERM while the virtual bench started ran all 19
    tests). Such a stop is raised again, in the main thread, once the finalizer has returned."""
    exc = unraisable.exc_value
    if not (isinstance(exc, KeyboardInterrupt) and "by" in STOPPED and exc.args == (STOPPED["by"],)):
        sys.__unraisablehook__(unraisable)
        return
    signum = signal.Signals[STOPPED["by"]]
    _redeliver.set()
    # a real signal to the main thread, not _thread.interrupt_main: that only sets a flag, and a
    # main thread blocked in a sleep, a join or a socket wait would notice it at its timeout
    timer = threading.Timer(REDELIVER_AFTER_S, signal.pthread_kill, (threading.main_thread().ident, signum))
    timer.daemon = True
    timer.start()


def acknowledge() -> None:
    """The command saw the stop and is winding down (it said INTERRUPTED): a stop swallowed by a
    finalizer is not raised again. Without this, a redelivery late on a loaded machine lands
    after the command's last ``except KeyboardInterrupt`` and kills the process by SIGINT
    (exit -2) instead of its own exit status (seen in ``make test``: a SIGTERM in collection)."""
    _redeliver.clear()


def catch_stop_signals() -> None:
    """SIGTERM (a CI job cancelled, a service stopped) and SIGHUP (the technician's terminal
    closed) stop a command as Ctrl-C does: a triage then ends its pytest session, writes the
    finished tests' reports, marks the stored run interrupted and stops its virtual bench. Only the
    first signal interrupts; later ones are ignored (a first one swallowed by a finalizer is raised
    again). Installed first thing in ``main``, so a signal during start-up is no different."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_signal)
    sys.unraisablehook = _unraisable
