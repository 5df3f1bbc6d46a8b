"""pyserial transport for the ECR link: any ``serial_for_url`` port or URL, reopened when it returns."""
from __future__ import annotations

import os
import select
import time
from pathlib import Path
from typing import Callable

import serial

from posbench.drivers.serial import relocation
from posbench.core.errors import PortLost, PortUnavailable, UnitNotResponding

_TermiosError: type[Exception]
try:
    import termios
    _TermiosError = termios.error  # tcflush on a vanished tty raises this, not OSError
except ImportError:  # not POSIX
    _TermiosError = OSError

POLL_S = 0.05
"""pyserial read timeout in seconds; reads return as soon as a byte arrives."""
GONE_LOOK_S = 0.25
"""Seconds between looks at ``SerialBytePort.gone`` while a read waits."""
WRITE_TIMEOUT_S = 2.0
"""pyserial write timeout in seconds (where the transport supports one)."""
IO_ERRORS = (serial.SerialException, OSError, _TermiosError)
"""What a port that went away raises under pyserial."""


def reopen_within(open_port: Callable[[], object], within_s: float, device: str, doing: str,
                  poll_s: float = 0.1) -> None:
    """Call ``open_port`` until it stops raising ``PortUnavailable``; ``PortLost`` (naming
    ``device`` and what it was ``doing``) if the port is not back within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            open_port()
            return
        except PortUnavailable as exc:
            last = exc.detail
        if time.monotonic() >= deadline:
            raise PortLost(device, doing, f"it did not come back within {within_s:g} s ({last})")
        time.sleep(poll_s)


def _write_all(fd: int, data: bytes, timeout_s: float = WRITE_TIMEOUT_S) -> None:
    """Write all of ``data`` to the non-blocking descriptor of a local port, waiting at most
    ``timeout_s`` seconds for room; the errors pyserial's ``write`` raises, with its messages."""
    if not data:
        return
    try:
        written = os.write(fd, data)
    except (BlockingIOError, InterruptedError):
        written = 0
    except OSError as exc:
        raise serial.SerialException(f"write failed: {exc}") from None
    if written == len(data):  # the common case: all of it at once, no view, no loop
        return
    view = memoryview(data)[written:]
    deadline = None
    while view:
        try:
            view = view[os.write(fd, view):]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            raise serial.SerialException(f"write failed: {exc}") from None
        if not view:
            return
        if deadline is None:
            deadline = time.monotonic() + timeout_s
        if not select.select([], [fd], [], max(0.0, deadline - time.monotonic()))[1]:
            raise serial.SerialTimeoutException("Write timeout")


PTY_SLAVE_MAJORS = range(136, 144)
"""Linux device majors of pseudo-terminal slaves (/dev/pts/N)."""


def _is_pty(fd: int) -> bool:
    """A Linux pseudo-terminal slave: no transmitter, its output is the master's input at once."""
    try:
        return os.major(os.fstat(fd).st_rdev) in PTY_SLAVE_MAJORS
    except OSError:
        return False


PINNED_PTYS: dict[str, tuple[int, int]] = {}
"""Pseudo-terminals of the bench this process has locked (``posbench.setup.lock`` pins them), by path:
their identity then. A driver opened later, after the virtual bench died and the kernel gave the
number to another process's new pty, must not take that stranger's (seen in tests run in
parallel: a triage whose bench was killed locked another test's PN532 port)."""


def pty_identity(path: str) -> tuple[int, int] | None:
    """(device number, creation time in ns) of a pseudo-terminal; None for any other path or a
    missing one. /dev/pts/N names a new pty as soon as the old one is gone: this tells them apart,
    unless the new one was made within the kernel's timestamp tick (a few ms) of the old one's."""
    if not path.startswith("/dev/pts/"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_rdev, st.st_ctime_ns


def claim_pty(path: str, known: tuple[int, int] | None, device: str, doing: str) -> tuple[int, int] | None:
    """The identity a driver keeps for ``path``: ``known`` (the pty it opened first), else the one
    the bench's lock pinned, else the pty there now (None for a path that is no pty).
    ``PortUnavailable`` when another pseudo-terminal has taken the path: a pty never comes back,
    its emulator is gone."""
    expected = known or PINNED_PTYS.get(path)
    identity = pty_identity(path)
    if expected is not None and identity is not None and identity != expected:
        raise PortUnavailable(device, doing, "a different pseudo-terminal now has this path (its emulator is gone)")
    return expected or identity


def port_holders(path: str) -> list[str]:
    """Processes holding the exclusive lock (flock) on ``path``, as ``pid N (name)`` or ``this
    process``, read from /proc/locks: what a technician must close (a terminal program, another
    bench) before this port can be used."""
    try:
        st = os.stat(os.path.realpath(path))
        locks = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    ours = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    found = []
    for line in locks:  # "1: FLOCK  ADVISORY  WRITE 4242 00:1a:3 0 EOF"
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[4].startswith("->"):
            continue
        try:
            major, minor, inode = fields[5].split(":")
            where = (int(major, 16), int(minor, 16), int(inode))
        except ValueError:
            continue
        if where != ours:
            continue
        if not fields[4].isdigit():
            continue
        pid = int(fields[4])
        if pid == os.getpid():
            found.append("this process")
            continue
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            name = "?"
        found.append(f"pid {pid} ({name})")
    return found


class SerialBytePort:
    """A ``BytePort`` on ``serial.serial_for_url``: local ttys, ``socket://``, ``rfc2217://``.

    The pyserial timeout stays fixed (changing it reconfigures the port, which on rfc2217 is a
    network round trip); deadlines are kept by polling. A local port is read with one select on
    its descriptor up to the deadline and one read of what has arrived (pyserial's read loop
    and an ``in_waiting`` query per call cost more than the bytes themselves at 115200 baud).
    A write waits until the bytes have left (``tcdrain``), so that deadlines after it do not
    include the transmission; on a pseudo-terminal, where that wait is empty, it is skipped.
    """

    label = "ECR port"
    """What the port is, in error messages."""
    poll_s = POLL_S
    """pyserial read timeout: how often a waiting read looks at its deadline (seconds)."""
    stopbits: float = serial.STOPBITS_ONE
    """Stop bits; a protocol needing 2 (ZVT) sets it on the instance."""
    bytesize: int = serial.EIGHTBITS
    parity: str = serial.PARITY_NONE
    """Data bits and parity (8N by default); a terminal on 7E1 (Concert) sets them on the instance."""

    def __init__(self, url: str, baudrate: int = 9600, device: str = "terminal",
                 reopen_s: float = 3.0):
        self.url, self.baudrate, self.device, self.reopen_s = url, baudrate, device, reopen_s
        # what serial_for_url returns: a tty's serial.Serial, or its URL handler's class (which
        # has the same interface; pyserial's stubs declare them all serial.Serial)
        self._serial: serial.Serial | None = None
        self.reopens = 0
        self._pty_id: tuple[int, int] | None = None
        self._drain = True
        """``tcdrain`` after each write (not on a pseudo-terminal: nothing to wait for)."""
        self.gone: Callable[[float], str | None] | None = None
        """Set by whoever can tell that the device cannot answer any more (the unit strategy, from
        the supply: the unit lost power): called with the monotonic time of the last byte written
        or read, it returns why, or None. A read waiting longer than ``GONE_LOOK_S`` asks it every
        ``GONE_LOOK_S`` and ends with ``UnitNotResponding`` instead of waiting out its timeout."""
        self._last_io = time.monotonic()

    def _check_pty(self) -> None:
        """A pseudo-terminal never comes back: a path like /dev/pts/7 that reappears belongs to a
        new pty of another process (the kernel reuses the number). Refuse it, or a driver whose
        emulator died would talk to a stranger's. Checked against the pty this port first opened,
        or the one the bench's lock pinned before (a driver first opened after the emulator died);
        a real tty (ttyUSB0 re-enumerating) is not checked."""
        self._pty_id = claim_pty(self.url, self._pty_id, self.device, f"opening {self.label} {self.url}")

    def open(self) -> None:
        """Open the port, at the address it has now if it moved (a bench room's port is served on
        a new TCP port after its server restarted: ``posbench.drivers.serial.relocation``)."""
        self.url = relocation.current(self.url)
        self._check_pty()
        # pyserial's rfc2217 client refuses write_timeout (NotImplementedError from open()); its
        # socket already bounds a send to 5 s, so the write deadline holds there too.
        write_timeout = None if self.url.startswith("rfc2217://") else WRITE_TIMEOUT_S
        # A local port is opened exclusively (flock, as pyserial's exclusive=True does on POSIX):
        # a second program writing to the unit's port would garble frames the unit is blamed for.
        local = "://" not in self.url
        try:
            self._serial = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=self.poll_s,
                                                 write_timeout=write_timeout, exclusive=local or None,
                                                 stopbits=self.stopbits, bytesize=self.bytesize,
                                                 parity=self.parity)
        except (*IO_ERRORS, ValueError, NotImplementedError) as exc:
            # termios.error: a line setting the tty refuses (a pseudo-terminal on some kernels
            # takes no 7-bit or parity setting)
            detail = str(exc)
            if "exclusively lock" in detail:
                holders = ", ".join(port_holders(self.url)) or "a program this user cannot see"
                detail = f"another program has it open: {holders} ({detail})"
            raise PortUnavailable(self.device, f"opening {self.label} {self.url}", detail) from None
        fd = getattr(self._serial, "fd", None)
        self._drain = not (isinstance(fd, int) and _is_pty(fd))

    def close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except (serial.SerialException, OSError):
                pass
            self._serial = None

    def reopen(self, within_s: float | None = None) -> None:
        """Reopen a port that went away (USB adapter re-enumerating, unit power-cycled), at the
        address it has now if it moved (a bench room's port after its exporter restarted).

        Not a pseudo-terminal: once its master side is gone (the emulator stopped), its path can
        only come back as another process's pty, so that is ``PortLost`` at once."""
        self.close()
        if self.url.startswith("/dev/pts/"):
            raise PortLost(self.device, f"reopening {self.label} {self.url}",
                           "a pseudo-terminal does not come back: its emulator is gone")
        within = relocation.patience(self.url, self.reopen_s if within_s is None else within_s)
        reopen_within(self.open, within, self.device, f"reopening {self.label} {self.url}", poll_s=0.2)
        self.reopens += 1

    def _ser(self) -> serial.Serial:
        if self._serial is None:
            self.open()
        assert self._serial is not None
        return self._serial

    def _io(self, op, doing: str):
        try:
            return op(self._ser())
        except IO_ERRORS as exc:
            return self._retry(op, doing, exc)

    def _retry(self, op, doing: str, exc: Exception):
        """The port vanished under us (``exc``): try once to get it back, then it is a bench fault."""
        self.reopen()
        try:
            return op(self._ser())
        except IO_ERRORS as again:
            self.close()
            raise PortLost(self.device, doing, f"{exc}; after reopening: {again}") from None

    # read and write call their work directly and build ``_io``'s closure and message only when
    # the port failed: they run several times per message.
    def read(self, size: int, timeout: float, doing: str | None = None) -> bytes:
        """What has arrived (at most ``size`` bytes) as soon as anything has, or b"" after
        ``timeout`` seconds; ``doing`` names the errand in a ``PortLost``."""
        now = time.monotonic()
        deadline = now + max(0.0, timeout)
        if self.gone is not None and timeout > GONE_LOOK_S:
            return self._read_watched(size, deadline, doing)
        try:
            chunk = self._read(self._ser() if self._serial is None else self._serial, size, deadline)
        except IO_ERRORS as exc:
            chunk = self._retry(lambda ser: self._read(ser, size, deadline), doing or f"reading from {self.url}", exc)
        if chunk:
            self._last_io = time.monotonic()
        return chunk

    def _read_watched(self, size: int, deadline: float, doing: str | None) -> bytes:
        """``read`` in steps of ``GONE_LOOK_S``, asking ``gone`` between them."""
        assert self.gone is not None
        while True:
            step = min(deadline, time.monotonic() + GONE_LOOK_S)
            try:
                chunk = self._read(self._ser() if self._serial is None else self._serial, size, step)
            except IO_ERRORS as exc:
                chunk = self._retry(lambda ser: self._read(ser, size, step), doing or f"reading from {self.url}", exc)
            now = time.monotonic()
            if chunk:
                self._last_io = now
                return chunk
            if now >= deadline:
                return b""
            if (why := self.gone(self._last_io)) is not None:
                raise UnitNotResponding(self.device, doing or f"reading from {self.url}", why)

    @staticmethod
    def _read(ser: serial.Serial, size: int, deadline: float) -> bytes:
        fd = getattr(ser, "fd", None)
        while isinstance(fd, int):  # a local port: one select and one read, no pyserial loop
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return b""
            try:
                chunk = os.read(fd, size)
            except (BlockingIOError, InterruptedError):
                continue  # another reader was quicker: wait again (pyserial ignores these too)
            if not chunk:  # readable but empty: the device went away (as pyserial reports it)
                raise serial.SerialException("device reports readiness to read but returned no data")
            return chunk
        while True:
            waiting = ser.in_waiting
            chunk = ser.read(max(1, min(size, waiting)))
            if chunk or time.monotonic() >= deadline:
                return chunk

    def write(self, data: bytes, doing: str | None = None) -> None:
        self._last_io = time.monotonic()
        try:
            self._write(self._ser() if self._serial is None else self._serial, data)
        except IO_ERRORS as exc:
            self._retry(lambda ser: self._write(ser, data), doing or f"writing to {self.url}", exc)

    def _write(self, ser: serial.Serial, data: bytes) -> None:
        fd = getattr(ser, "fd", None)
        if isinstance(fd, int):  # a local port: os.write as pyserial does, without its per-call select
            _write_all(fd, data)
        else:
            ser.write(data)
        if self._drain:
            ser.flush()

    def discard_input(self, doing: str | None = None) -> None:
        """Drop unread input. Local ports purge the driver buffer; network URLs drain what has
        arrived (an rfc2217 purge is a round trip plus a 50 ms sleep, and some terminal servers
        never answer it)."""
        if "://" not in self.url:  # called before every exchange: no closure, no message unless it fails
            try:
                (self._ser() if self._serial is None else self._serial).reset_input_buffer()
            except IO_ERRORS as exc:
                self._retry(lambda ser: ser.reset_input_buffer(), doing or f"flushing {self.url}", exc)
            return
        doing = doing or f"flushing {self.url}"
        deadline = time.monotonic() + 1.0

        def drain(ser: serial.Serial) -> None:
            while (waiting := ser.in_waiting) and time.monotonic() < deadline:
                ser.read(waiting)
        self._io(drain, doing)
