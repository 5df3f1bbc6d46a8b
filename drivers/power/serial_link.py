"""The serial transport of the serial power drivers: ``SerialLink`` (the ECR link's
``SerialBytePort`` with a power device's names and a read that collects a whole answer) and
``SerialDevice`` (a power device's open/close life cycle on it)."""
from __future__ import annotations

import threading
import time
from typing import Self

from posbench.drivers.serial.port import SerialBytePort


class SerialLink(SerialBytePort):
    """A power device's port on ``serial.serial_for_url`` (tty, ``socket://``, ``rfc2217://``):
    open, close, reopen within ``reopen_s`` seconds after an I/O error (a USB-serial adapter
    re-enumerating), ``PortLost`` when it does not come back, exactly as ``SerialBytePort``.
    What it adds is ``collect``: supplies and relays answer without a frame, so an answer is what
    arrives until its size, a quiet line or the timeout."""

    label = "port"
    poll_s = 0.02
    """Seconds; short: a supply answers in ~10 ms and its commands are 50 ms apart."""

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def collect(self, size: int, timeout: float, doing: str, quiet_s: float | None = None) -> bytes:
        """Up to ``size`` bytes within ``timeout`` seconds. With ``quiet_s``, also stop once bytes
        have arrived and the line then stays quiet for ``quiet_s`` seconds."""
        got = bytearray()
        deadline = time.monotonic() + max(0.0, timeout)
        while len(got) < size:
            now = time.monotonic()
            if now >= deadline:
                break
            wait = deadline - now if not got or quiet_s is None else min(quiet_s, deadline - now)
            chunk = self.read(size - len(got), wait, doing)
            if chunk:
                got += chunk
            elif got and quiet_s is not None:
                break  # quiet for quiet_s after an answer began: it is complete
        return bytes(got)


class SerialDevice:
    """Life cycle of a power device on a ``SerialLink`` (``self.link``, guarded by ``self._lock``)."""

    link: SerialLink
    _lock: threading.Lock | threading.RLock  # set by the driver's __init__

    def open(self) -> Self:
        with self._lock:
            self.link.open()
        return self

    def close(self) -> None:
        with self._lock:
            self.link.close()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
