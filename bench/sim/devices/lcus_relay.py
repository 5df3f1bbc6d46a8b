"""Virtual LCUS-1 USB relay board on a pseudo-terminal, switching the virtual unit's adapter.

Frames ``A0 <channel> <op> <sum>`` (op 0x01 close, 0x00 open, sum = (A0 + ch + op) & 0xFF).
The board's MCU hunts for 0xA0, takes four bytes, and drops the start byte of a frame whose
checksum is wrong (so a valid frame right behind garbage is still found); a partial frame is
dropped after ``IDLE_S`` of silence. It never answers. The unit's 12.0 V adapter (current
limit ``adapter_limit_a``) goes through relay ``unit_channel``'s normally-open contact.
"""
from __future__ import annotations

import time

from posbench.drivers.power.lcus_relay import OP_OFF, OP_ON, START, checksum

from posbench.sim.unit.power import NOMINAL_V, UnitPower
from posbench.sim.devices.pty_port import PtyDevice, PtyPort

IDLE_S = 0.1
"""Silence (seconds) after which a partial frame is dropped."""


class LcusParser:
    """Bytes -> valid (channel, op) frames. Never raises; counts what it drops."""

    def __init__(self, idle_s: float = IDLE_S):
        self.idle_s = idle_s
        self._buf = bytearray()
        self._last = 0.0
        self.dropped = 0
        self.bad_checksums = 0

    def feed(self, data: bytes, now: float) -> list[tuple[int, int]]:
        self._buf += data
        self._last = now
        out: list[tuple[int, int]] = []
        while self._buf:
            if self._buf[0] != START:
                del self._buf[0]
                self.dropped += 1
                continue
            if len(self._buf) < 4:
                break
            _, ch, op, total = self._buf[:4]
            if checksum(ch, op) == total:
                out.append((ch, op))
                del self._buf[:4]
            else:
                self.bad_checksums += 1
                self.dropped += 1
                del self._buf[0]
        return out

    def idle(self, now: float) -> None:
        if self._buf and now - self._last >= self.idle_s:
            self.dropped += len(self._buf)
            self._buf.clear()


class LcusRelayEmulator(PtyDevice):
    """An LCUS board with ``channels`` relays on ``port.path``; relay ``unit_channel`` powers
    ``power`` from a ``adapter_v`` adapter. ``closed``: that relay's state at start.

    ``frames`` records (t, channel, op) of every valid frame; ``ignored`` counts valid frames for
    a missing channel or an unknown op.
    """

    def __init__(self, power: UnitPower, *, channels: int = 1, unit_channel: int = 1,
                 closed: bool = True, adapter_v: float = NOMINAL_V, adapter_limit_a: float = 2.0):
        if not 1 <= unit_channel <= channels:
            raise ValueError(f"unit_channel {unit_channel} is not one of the board's {channels} relays")
        self.power, self.channels, self.unit_channel = power, channels, unit_channel
        self.adapter_v, self.adapter_limit_a = adapter_v, adapter_limit_a
        self.relays = [False] * channels
        self.relays[unit_channel - 1] = closed
        self.parser = LcusParser()
        self.port: PtyPort = PtyPort()
        self.frames: list[tuple[float, int, int]] = []
        self.ignored = 0
        self._init_thread()
        self._apply()

    @property
    def path(self) -> str:
        return self.port.path

    def is_closed(self, channel: int | None = None) -> bool:
        return self.relays[(channel or self.unit_channel) - 1]

    def _apply(self) -> None:
        on = self.relays[self.unit_channel - 1]
        self.power.set_source(self.adapter_v if on else 0.0, self.adapter_limit_a)

    thread_name = "lcus-relay-emulator"

    def handle(self, channel: int, op: int, now: float) -> None:
        self.frames.append((now, channel, op))
        if not 1 <= channel <= self.channels or op not in (OP_ON, OP_OFF):
            self.ignored += 1
            return
        self.relays[channel - 1] = op == OP_ON
        if channel == self.unit_channel:
            self._apply()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.port.read(64, 0.01)
            except OSError:
                return
            now = time.monotonic()
            if not data:
                self.parser.idle(now)
                continue
            for channel, op in self.parser.feed(data, now):
                self.handle(channel, op, now)
