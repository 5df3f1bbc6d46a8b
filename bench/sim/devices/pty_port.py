"""A pseudo-terminal whose slave end a client opens like any serial port (the emulator holds the master)."""
from __future__ import annotations

import os
import select
import termios
import tty
from typing import Protocol

from posbench.sim.worker import Worker


class PtyPort:
    """``BytePort`` on a pty master. ``path`` is the slave (e.g. ``/dev/pts/7``) clients open."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)
        # The emulator keeps the slave open too, so the master never sees EIO between clients.
        self.path = os.ttyname(self._slave)
        os.set_blocking(self.master, False)

    def read(self, size: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return b""
        try:
            return os.read(self.master, size)
        except (BlockingIOError, InterruptedError):
            return b""

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self.master], [], 2.0)
            if not ready:
                raise TimeoutError("pty not writable for 2 s (no client reading)")
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:
                continue

    def discard_input(self) -> None:
        for _ in range(64):  # at most 256 KiB: a client that never stops writing cannot hold us
            try:
                if not os.read(self.master, 4096):
                    return
            except (BlockingIOError, InterruptedError, OSError):
                return

    def close(self) -> None:
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


class ServedPort(Protocol):
    """The port a ``PtyDevice`` serves: a ``PtyPort`` or a wrapper of one (``NoisyPort``)."""

    path: str

    def close(self) -> None: ...


class PtyDevice(Worker):
    """An emulator serving one ``PtyPort`` from its thread (``Worker``); ``stop`` also closes the
    pty (its path disappears: the device is unplugged). Subclasses set ``self.port``."""

    thread_name = "pty-device"
    port: ServedPort | None
    """None for a front end without a pty (a ZVT terminal on TCP)."""

    def _stopped(self) -> None:
        if self.port is not None:
            self.port.close()
