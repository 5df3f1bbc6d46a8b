"""Whether a process is still the one we mean (by pid), and where this one runs (machine, boot,
pid namespace): from Linux's /proc."""
from __future__ import annotations

import os
from pathlib import Path


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may hold spaces), the state first;
    None if the process is gone (or there is no procfs)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def pid_start(pid: int) -> int | None:
    """The process's start time (clock ticks after boot: field 22 of its stat); None if gone."""
    fields = proc_stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def pid_alive(pid: int, start: int | None = None) -> bool:
    """True while ``pid`` runs and, given ``start`` (``pid_start``), is the same process (not a
    reused pid). A zombie (killed, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    fields = proc_stat(pid)
    if fields is None:
        return not Path("/proc/self/stat").exists()  # gone since kill(0); or no procfs: trust kill(0)
    if fields[0] in ("Z", "X"):
        return False
    return start is None or len(fields) <= 19 or int(fields[19]) == start


def process_identity() -> str | None:
    """``machine-id/boot-id/pid-namespace`` of this process; None where Linux does not say."""
    try:
        machine = (Path("/etc/machine-id").read_text().strip()
                   or Path("/var/lib/dbus/machine-id").read_text().strip())
    except OSError:
        machine = ""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{machine or '-'}/{boot}/{pidns}"
