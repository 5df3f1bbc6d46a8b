"""Stop signals: SIGTERM and SIGHUP end a posbench command the way Ctrl-C does."""
from __future__ import annotations

import signal

STOPPED: dict[str, str] = {}
"""Set to {"by": "SIGTERM"} (etc.) by the first stop signal of this process."""


def _stop_signal(signum: int, frame: object) -> None:
    if "by" in STOPPED:
        return  # already stopping: let the clean-up (which has deadlines) run to its end
    STOPPED["by"] = signal.Signals(signum).name
    raise KeyboardInterrupt(STOPPED["by"])


def catch_stop_signals() -> None:
    """SIGTERM (a CI job cancelled, a service stopped) and SIGHUP (the technician's terminal
    closed) stop a command as Ctrl-C does: a triage then ends its pytest session, writes the
    finished tests' reports, marks the stored run interrupted and stops its virtual bench. Only the
    first signal interrupts; later ones are ignored. Installed first thing in ``main``, so a signal
    during start-up is no different."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_signal)
