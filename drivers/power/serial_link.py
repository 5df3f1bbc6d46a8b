"""The serial transport the serial power drivers share: ``SerialLink`` (pyserial
``serial_for_url``, reopened once when the port vanishes) and ``SerialDevice`` (a power device's
open/close life cycle on it)."""
from __future__ import annotations

import time
from collections.abc import Callable

import serial

try:
    from termios import error as _TermiosError  # tcflush on a vanished tty raises this, not OSError
except ImportError:  # not POSIX
    _TermiosError = OSError

from posbench.errors import PortLost
from posbench.drivers.serial.port import SerialBytePort

POLL_S = 0.02
"""pyserial read timeout in seconds; reads return as soon as a byte arrives."""
WRITE_TIMEOUT_S = 2.0
"""pyserial write timeout in seconds (where the transport supports one)."""
_IO_ERRORS = (serial.SerialException, OSError, _TermiosError)


class SerialLink(SerialBytePort):
    """A power device's port on ``serial.serial_for_url`` (tty, ``socket://``, ``rfc2217://``).

    Opening, closing and reopening come from ``posbench.drivers.serial.port.SerialBytePort`` (its
    messages then name the power device's port); an I/O error closes the port and reopens it for up to
    ``reopen_s`` seconds (a USB-serial adapter re-enumerating), retries the operation once, and
    raises ``PortLost`` if it does not come back. ``reopens`` counts successful reopens.
    """

    label = "port"
    poll_s = POLL_S  # short: the supply answers in ~10 ms and commands are 50 ms apart

    def __init__(self, url: str, device: str, baudrate: int = 9600, reopen_s: float = 2.0):
        super().__init__(url, baudrate, device, reopen_s)

    @property
    def is_open(self) -> bool:
        return self._serial is not None


    def _io(self, op: Callable[[serial.SerialBase], object], doing: str):
        if self._serial is None:
            self.open()
        try:
            return op(self._serial)
        except _IO_ERRORS as exc:
            self.reopen()
            try:
                return op(self._serial)
            except _IO_ERRORS as again:
                self.close()
                raise PortLost(self.device, doing, f"{exc}; after reopening: {again}") from None

    def write(self, data: bytes, doing: str) -> None:
        def op(ser: serial.SerialBase) -> None:
            ser.write(data)
            ser.flush()
        self._io(op, doing)

    def read(self, size: int, timeout: float, doing: str, quiet_s: float | None = None) -> bytes:
        """Up to ``size`` bytes within ``timeout`` seconds. With ``quiet_s``, also stop once bytes
        have arrived and the line then stays quiet for ``quiet_s`` seconds (answers without a
        terminator end by silence)."""
        def op(ser: serial.SerialBase) -> bytes:
            got = bytearray()
            deadline = time.monotonic() + max(0.0, timeout)
            last = time.monotonic()
            while len(got) < size:
                chunk = ser.read(max(1, min(size - len(got), ser.in_waiting)))
                now = time.monotonic()
                if chunk:
                    got += chunk
                    last = now
                elif got and quiet_s is not None and now - last >= quiet_s:
                    break
                if now >= deadline:
                    break
            return bytes(got)
        return self._io(op, doing)

    def discard_input(self, doing: str) -> None:
        if "://" not in self.url:
            self._io(lambda ser: ser.reset_input_buffer(), doing)
            return

        def drain(ser: serial.SerialBase) -> None:
            deadline = time.monotonic() + 0.5
            while (waiting := ser.in_waiting) and time.monotonic() < deadline:
                ser.read(waiting)
        self._io(drain, doing)


class SerialDevice:
    """Life cycle of a power device on a ``SerialLink`` (``self.link``, guarded by ``self._lock``)."""

    def open(self):
        with self._lock:
            self.link.open()
        return self

    def close(self) -> None:
        with self._lock:
            self.link.close()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
