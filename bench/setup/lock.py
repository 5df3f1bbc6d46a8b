"""One triage at a time on a bench: an advisory lock per bench device, held for the whole run.

Two triages on one bench (two terminal windows, a CI job and a technician) would interleave
bytes on the same serial ports and blame the unit for the garble. Each device a bench
description names (ECR port or address, supply or relay port, NFC reader, USB backend, the
actuator) is locked with ``flock`` on a file under ``lock_dir()``; the holder's pid, command
and start time are written into it, so a second triage can say who has the bench. The kernel
drops the locks when the holder exits, however it exits (SIGKILL included): no stale locks.

Lock files stay behind (a new pseudo-terminal is a new name each run), so each ``acquire``
first removes the files nobody holds (``prune``). Removing a lock file races a process that has
it open and is about to lock it (it would lock a file no longer in the directory, while a third
process locks a new one under the same name): pruning therefore holds the directory's
``.prune-guard`` exclusively, and every ``acquire`` holds it shared while it opens and locks its
files, so a prune never runs while a process is taking a lock.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from posbench.drivers.serial.port import PINNED_PTYS, pty_identity
from posbench.core.errors import BenchError


class BenchInUse(BenchError):
    """Another process holds a device of this bench."""


def lock_dir() -> Path:
    """Where the lock files live (shared by every user of this host: sticky and world-writable)."""
    path = Path(os.environ.get("POSBENCH_LOCK_DIR") or Path(tempfile.gettempdir()) / "posbench-locks")
    if not path.is_dir():
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BenchError("bench", "making the lock directory",
                             f"{path}: {exc.strerror or exc} (POSBENCH_LOCK_DIR names another)") from None
        try:
            path.chmod(0o1777)
        except OSError:
            pass
    return path


def resource_key(resource: str) -> str:
    """A device as one name: local paths resolved (two names of one tty are one device). A
    pseudo-terminal also carries its creation time: /dev/pts/N is handed to a new pty as soon as
    the old one is closed, and a triage still holding the old one's lock must not hold the new."""
    if not resource.startswith("/"):
        return resource
    path = os.path.realpath(resource)
    identity = pty_identity(path)
    return f"{path}@{identity[1]}" if identity else path


def _lock_file(key: str) -> Path:
    readable = re.sub(r"[^A-Za-z0-9.]+", "_", key).strip("_")[-60:]
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return lock_dir() / f"{readable}-{digest}.lock"


PRUNE_LOCK = ".prune-guard"
"""The directory's own lock: exclusive while pruning, shared while a process takes its locks."""
TAKING_WAIT_S = 10.0
"""How long ``acquire`` waits for a prune in progress to finish (a prune takes milliseconds)."""


def prune() -> int:
    """Remove the lock files no process holds; returns how many. Skipped (0) while another
    process prunes or takes its locks. A file this user may not remove (another user's, in the
    sticky directory) is left."""
    directory = lock_dir()
    try:
        guard, _ = _open_lock(directory / PRUNE_LOCK)
    except OSError:
        return 0
    removed = 0
    try:
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # someone is pruning or taking a lock: next time
        for entry in os.scandir(directory):
            if not entry.name.endswith(".lock") or not entry.is_file(follow_symlinks=False):
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(entry.path)  # held by nobody, and nobody can be taking it now
                removed += 1
            except OSError:
                pass  # held (BlockingIOError), or not ours to remove
            finally:
                os.close(fd)
    finally:
        os.close(guard)
    return removed


def _taking() -> int:
    """Hold the directory's prune lock shared (returns its descriptor) while locks are taken."""
    path = lock_dir() / PRUNE_LOCK
    try:
        fd, _ = _open_lock(path)
    except OSError as exc:
        raise BenchError("bench", "reserving the bench", f"cannot open the lock file {path}: "
                                                         f"{exc.strerror or exc}") from None
    deadline = time.monotonic() + TAKING_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise BenchError("bench", "reserving the bench", f"{path} stayed locked for {TAKING_WAIT_S:g} s "
                                                                 "(a prune of the lock directory that does not end)") from None
            time.sleep(0.01)


_RUN_LOCK: "BenchLock | None" = None
"""The lock a triage took for its whole run (``hold_for_run``): other locks in this process
(the HIL session's) count its devices as theirs already."""


class BenchLock:
    """``acquire()`` every device or none; ``release()`` (or process exit) frees them."""

    def __init__(self, resources: dict[str, str]):
        """``resources``: device key -> what it is ("terminal", "supply", ...)."""
        self.resources = {resource_key(k): what for k, what in resources.items() if k}
        self._fds: list[int] = []
        self.held: set[str] = set()
        self._pinned: list[str] = []
        """Pseudo-terminals this lock pinned (``PINNED_PTYS``), unpinned on release."""

    def acquire(self) -> "BenchLock":
        holder = json.dumps({"pid": os.getpid(), "command": " ".join(Path(sys.argv[0]).name.split()
                                                                       + sys.argv[1:])[:300],
                             "since": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        prune()
        taking = _taking()
        try:
            for key, what in sorted(self.resources.items()):
                if _RUN_LOCK is not None and _RUN_LOCK is not self and key in _RUN_LOCK.held:
                    continue  # this run holds it already (the preflight's lock)
                path = _lock_file(key)
                try:
                    fd, writable = _open_lock(path)
                except OSError as exc:
                    raise BenchError("bench", f"locking {what} {key.split('@')[0]}",
                                     f"cannot open the lock file {path}: {exc.strerror or exc}") from None
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    raise BenchInUse("bench", "reserving the bench", _in_use(path, key.split("@")[0], what)) from None
                except OSError as exc:
                    os.close(fd)
                    raise BenchError("bench", f"locking {what} {key.split('@')[0]}", str(exc)) from None
                self._fds.append(fd)
                self.held.add(key)
                if "@" in key:  # drivers opened later refuse the path if another pty takes it
                    pty, _, created = key.partition("@")
                    identity = pty_identity(pty)
                    if identity is not None and str(identity[1]) == created:
                        PINNED_PTYS[pty] = identity
                        self._pinned.append(pty)
                if writable:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, holder.encode(), 0)
        except BaseException:
            self.release()
            raise
        finally:
            os.close(taking)  # the locks are taken: a prune may run again
        return self

    def hold_for_run(self) -> "BenchLock":
        """Keep these devices for the whole run of this process: later locks here share them."""
        global _RUN_LOCK
        _RUN_LOCK = self
        return self

    def release(self) -> None:
        global _RUN_LOCK
        if _RUN_LOCK is self:
            _RUN_LOCK = None
        self.held = set()
        for path in self._pinned:
            PINNED_PTYS.pop(path, None)
        self._pinned = []
        fds, self._fds = self._fds, []
        for fd in fds:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> "BenchLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _open_lock(path: Path) -> tuple[int, bool]:
    """The lock file's descriptor, and whether the holder's note can be written into it.

    Every user of the host shares the lock files: a new one is made writable by all (whatever
    the umask), and an existing one is opened without ``O_CREAT`` (Linux refuses ``O_CREAT`` on
    another user's file in a sticky directory, ``fs.protected_regular``). A file another user
    made read-only still locks: ``flock`` needs no write access, only the note is left out."""
    for _ in range(3):
        try:
            return os.open(path, os.O_RDWR), True
        except PermissionError:
            return os.open(path, os.O_RDONLY), False
        except FileNotFoundError:
            pass
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue  # another process made it meanwhile: open theirs
        try:
            os.fchmod(fd, 0o666)
        except OSError:
            pass
        return fd, True
    raise FileExistsError(f"{path} keeps appearing and vanishing")


def _in_use(path: Path, key: str, what: str) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    who = f"process {info['pid']}" if info.get("pid") else "another process"
    if info.get("command"):
        who += f" ({info['command']})"
    since = f" since {info['since']}" if info.get("since") else ""
    return (f"the bench is in use: its {what} {key} is held by {who}{since}; one triage at a time "
            "per bench: wait for that run to finish or stop it")


def bench_resources(config) -> dict[str, str]:
    """The devices of a bench description (``posbench.setup.config.BenchConfig``) to lock."""
    found: dict[str, str] = {}
    terminal = config.terminal
    for attr in ("port", "address"):
        if getattr(terminal, attr, None):
            found[getattr(terminal, attr)] = "ECR link"
    # a USB device named by its ids (a hub, an ACR122U) is that device on this bench's USB backend:
    # two virtual benches each serve one of their own with the same ids
    backend = config.usb.backend if config.usb is not None and config.usb.backend != "libusb1" else ""
    on_usb = (lambda name: f"{backend} {name}") if backend else (lambda name: name)
    if config.power is not None and config.power.port:
        port = config.power.port
        found[port if config.power.driver != "usb-hub" else on_usb(f"usb-hub {port}")] = f"power ({config.power.driver})"
    if config.nfc is not None:
        found[on_usb(config.nfc.path) if config.nfc.path.startswith("usb") else config.nfc.path] = "NFC reader"
    if config.usb is not None and config.usb.backend != "libusb1":
        found[config.usb.backend] = "USB backend"
    if config.actuator.address:
        found[config.actuator.address] = "actuator"
    return found
