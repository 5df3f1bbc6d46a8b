"""What a test may ask of whoever presents cards to the unit (a hand, the virtual bench, a robot)."""
from __future__ import annotations

from typing import Protocol

from posbench.errors import BenchError


class ActuatorError(BenchError):
    """The actuator could not perform an action (the bench failed, not the unit)."""


class Skipped(ActuatorError):
    """The technician chose to skip the remaining actions of this kind."""


class Actuator(Protocol):
    """Performs one physical action at a time. ``n``/``total`` only inform a prompt."""

    name: str

    def swipe(self, card: str, n: int = 1, total: int = 1) -> None:
        """Swipe card ``card`` (a deck id) through the magstripe reader."""

    def tap(self, card: str, n: int = 1, total: int = 1) -> None:
        """Hold card ``card`` in the contactless field (until ``remove``)."""

    def insert(self, card: str, n: int = 1, total: int = 1) -> None:
        """Insert card ``card`` into the chip slot (until ``remove``)."""

    def remove(self) -> None:
        """Take any card out of the field and the slot."""

    def missed(self, kind: str) -> None:
        """The reader saw nothing after an action of ``kind``; may raise ``Skipped``."""

    def close(self) -> None:
        """Release the actuator."""
