"""A cracked joint on the unit's USB lines: its devices drop off the bus and come back."""
from __future__ import annotations

import random
from typing import Callable

from posbench.sim.worker import Worker


def drop_rate(severity: float) -> float:
    """Drops per second of a joint of ``severity`` (0 = sound)."""
    return 0.5 + 2.0 * severity if severity else 0.0


class UsbDropper(Worker):
    """Unplugs a device for ``outage_s`` at random times (a Poisson process of ``drop_rate``).

    ``unplug``/``replug`` act on the device; ``may_drop()`` says whether it is plugged at all
    (an unpowered unit has nothing to drop). The supply stays steady throughout: that is what
    tells this fault from a power fault.
    """

    thread_name = "usb-dropper"

    def __init__(self, rng: random.Random, severity: float, unplug: Callable[[], bool],
                 replug: Callable[[], None], outage_s: float = 0.3):
        self.rng, self.rate, self.outage_s = rng, drop_rate(severity), outage_s
        self.unplug, self.replug = unplug, replug
        self.drops = 0
        self._init_thread()

    def _wanted(self) -> bool:
        return bool(self.rate)  # a sound joint never drops

    def _run(self) -> None:
        while not self._stop.wait(self.rng.expovariate(self.rate)):
            if self.unplug():
                self.drops += 1
                self._stop.wait(self.outage_s)
                self.replug()

