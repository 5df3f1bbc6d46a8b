"""Where a virtual bench makes its devices findable the way real ones are, for ``posbench discover``.

A real bench's serial adapters appear under /dev/serial/by-id, its USB devices on the bus or
behind a ``usbipd``, its LAN terminals at an address. A ``posbench sim`` announces its own here,
each entry named only by the sim's pid and a number, never by what the device is (discover must
probe it to know):

  DIR/serial/sim<pid>-port<n>   symlink to a pseudo-terminal (scanned like /dev/serial/by-id)
  DIR/tcp/sim<pid>-<n>          "host:port" of a TCP endpoint (probed like ``--address``)
  DIR/usbip/sim<pid>            "usbip://host:port" of a USB/IP server (enumerated like libusb)
  DIR/virtual/sim<pid>.toml     symlink to the sim's own bench description: read only for what
                                no probe can find (host, actuator, unit model; ``discover.virtual``)

DIR is ``$POSBENCH_DEVICE_DIR``, else ``$XDG_RUNTIME_DIR/posbench-devices``, else
``/tmp/posbench-devices-<uid>``. Entries of a process that is gone are ignored.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from posbench.core.procs import pid_alive

ENV = "POSBENCH_DEVICE_DIR"
_ENTRY = re.compile(r"sim(?P<pid>\d+)(?:-.*)?(?:\.toml)?")


def device_dir() -> Path:
    """The directory announcements go to and are read from (see the module's docstring)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "posbench-devices"
    return Path(tempfile.gettempdir()) / f"posbench-devices-{os.getuid()}"


@dataclass(frozen=True)
class Entry:
    """One announced thing: ``value`` is a symlink's target path or a file's text."""

    path: Path
    pid: int
    value: str


class Announcer:
    """The entries one process (``pid``, default this one) announces; ``remove()`` takes them all back."""

    def __init__(self, root: Path | None = None, pid: int | None = None):
        self.root = root or device_dir()
        self.pid = os.getpid() if pid is None else pid
        self._made: list[Path] = []

    def _new(self, kind: str, name: str) -> Path:
        folder = self.root / kind
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _sweep(folder)
        path = folder / name
        path.unlink(missing_ok=True)  # a stale entry of a reused pid
        self._made.append(path)
        return path

    def serial(self, device: str) -> Path:
        """Announce a serial port (a pty path): a symlink, like /dev/serial/by-id's."""
        n = sum(1 for p in self._made if p.parent.name == "serial")
        link = self._new("serial", f"sim{self.pid}-port{n}")
        link.symlink_to(device)
        return link

    def tcp(self, host: str, port: int) -> Path:
        n = sum(1 for p in self._made if p.parent.name == "tcp")
        path = self._new("tcp", f"sim{self.pid}-{n}")
        path.write_text(f"{host}:{port}\n", encoding="utf-8")
        return path

    def usbip(self, url: str) -> Path:
        path = self._new("usbip", f"sim{self.pid}")
        path.write_text(url + "\n", encoding="utf-8")
        return path

    def description(self, bench_file: Path) -> Path:
        link = self._new("virtual", f"sim{self.pid}.toml")
        link.symlink_to(bench_file.resolve())
        return link

    def remove(self) -> None:
        for path in self._made:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        self._made.clear()


def _sweep(folder: Path) -> None:
    """Remove the entries of processes that are gone (a sim killed before it could)."""
    for path in folder.iterdir():
        m = _ENTRY.fullmatch(path.name)
        if m and not pid_alive(int(m["pid"])):
            try:
                path.unlink()
            except OSError:
                pass


def entries(kind: str, root: Path | None = None) -> list[Entry]:
    """The live entries of one kind (``serial``, ``tcp``, ``usbip``, ``virtual``), by name;
    those of processes that are gone, and links whose target is gone, are left out."""
    folder = (root or device_dir()) / kind
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for name in names:
        m = _ENTRY.fullmatch(name)
        if not m or not pid_alive(int(m["pid"])):
            continue
        path = folder / name
        try:
            value = os.readlink(path) if path.is_symlink() else path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if path.is_symlink() and not path.exists():
            continue
        found.append(Entry(path, int(m["pid"]), value))
    return found
