"""A byte port whose writes sometimes lose or flip a bit: a cracked joint on the unit's UART."""
from __future__ import annotations

import random
from collections.abc import Callable


class NoisyPort:
    """Wraps a ``BytePort``; each write is corrupted with probability ``frame_error_rate``.

    Only frames longer than one byte are hit (a lone ACK/NAK/ENQ is too short a target to
    matter); one bit of one byte is flipped, so the receiver sees a bad LRC, never silence.
    ``powered`` (when given) says whether the unit has power: an unpowered UART sends nothing,
    so what the unit's code writes then (an ACK to an ENQ that arrived as the supply dropped)
    is lost and counted in ``unpowered``.
    """

    def __init__(self, inner, rng: random.Random, frame_error_rate: float,
                 powered: Callable[[], bool] | None = None):
        self.inner, self.rng, self.frame_error_rate = inner, rng, frame_error_rate
        self.powered = powered
        self.corrupted = 0
        self.unpowered = 0
        self.path = inner.path

    def write(self, data: bytes) -> None:
        if self.powered is not None and not self.powered():
            self.unpowered += 1
            return
        if len(data) > 1 and self.rng.random() < self.frame_error_rate:
            buf = bytearray(data)
            i = self.rng.randrange(1, len(buf))  # keep STX so the frame is still a frame
            buf[i] ^= 1 << self.rng.randrange(7)
            data = bytes(buf)
            self.corrupted += 1
        self.inner.write(data)

    def read(self, size: int, timeout: float) -> bytes:
        return self.inner.read(size, timeout)

    def discard_input(self) -> None:
        self.inner.discard_input()

    def close(self) -> None:
        self.inner.close()
