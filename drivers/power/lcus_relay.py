"""LCUS-1 USB relay board (CH340 USB-serial, 9600 8N1): ``A0 <channel> <op> <sum>`` frames.

op 0x01 closes the relay, 0x00 opens it; sum = (0xA0 + channel + op) & 0xFF. The board never
answers and has no read-back, so ``is_on()`` reports the last command sent (or ``initially_on``
before the first one): a relay that stuck or a board that missed a frame cannot be seen here.
The bench wires the unit's adapter through the normally-open contact: closed = powered.

A port that is gone (board unplugged) is a ``PortLost`` / ``PortUnavailable`` bench error.
"""
from __future__ import annotations

import threading
import time

from .serial_link import SerialDevice, SerialLink

START = 0xA0
OP_OFF = 0x00
OP_ON = 0x01
SETTLE_S = 0.05
"""Seconds after each frame: the board's MCU drops frames sent back to back, and the contact
bounces for ~10 ms."""


def checksum(channel: int, op: int) -> int:
    return (START + channel + op) & 0xFF


def frame(channel: int, on: bool) -> bytes:
    """The 4-byte frame that switches ``channel`` (1..8) on or off."""
    if not 1 <= channel <= 8:
        raise ValueError(f"LCUS channel must be 1..8, got {channel!r}")
    op = OP_ON if on else OP_OFF
    return bytes((START, channel, op, checksum(channel, op)))


class LcusRelay(SerialDevice):
    """Relay ``channel`` of an LCUS board on ``url`` (pyserial ``serial_for_url``); ``PowerSwitch``."""

    def __init__(self, url: str, channel: int = 1, *, initially_on: bool = False,
                 name: str = "lcus-relay", reopen_s: float = 2.0, settle_s: float = SETTLE_S):
        frame(channel, True)  # validates the channel
        self.url, self.channel, self.name, self.settle_s = url, channel, name, settle_s
        self.link = SerialLink(url, device=f"{name} on {url} channel {channel}", reopen_s=reopen_s)
        self._on = initially_on
        self._lock = threading.Lock()

    def _switch(self, on: bool) -> None:
        doing = f"switching relay {self.channel} " + ("on" if on else "off")
        with self._lock:
            for _ in range(2):
                reopens = self.link.reopens
                self.link.write(frame(self.channel, on), doing)
                # The board never answers: listening out the settle time is how a port that
                # vanished (read error, socket closed) is noticed now rather than at the next frame.
                self.link.collect(64, self.settle_s, doing)
                if self.link.reopens == reopens:
                    break  # else the port came back mid-frame: send it again (switching is idempotent)
            self._on = on

    def on(self) -> None:
        self._switch(True)

    def off(self) -> None:
        self._switch(False)

    def is_on(self) -> bool:
        """The last state commanded (LCUS-1 has no read-back)."""
        return self._on

    def cycle(self, off_s: float) -> None:
        """Off, ``off_s`` seconds, on; switched back on whatever ends the wait (a stop signal too)."""
        self.off()
        try:
            time.sleep(max(0.0, off_s))
        finally:
            self.on()
