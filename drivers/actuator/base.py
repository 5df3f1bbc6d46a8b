"""What a test may ask of whoever presents cards to the unit (a hand, the virtual bench, a robot)."""
from __future__ import annotations

from typing import Literal, Protocol

from posbench.core.errors import BenchError

Presentation = Literal["retry", "presented", "refused"]
"""Whoever presented the card, asked after a read saw no card (``Actuator.missed``): "retry" = it
was not presented as it should have been (late, the wrong way, the technician asked to try
again): an operator event, and the read is done again; "presented" = the card was on the reader
as it should have been and the reader saw nothing: a failed read of the unit; "refused" = the
unit ended the read (refused the sale) before the card could be presented, though it was
presented in time: the unit's refusal, not a read of its reader and not the technician's."""


class ActuatorError(BenchError):
    """The actuator could not perform an action (the bench failed, not the unit)."""


class Skipped(ActuatorError):
    """The technician chose to skip the remaining actions of this kind."""


class TechnicianGone(ActuatorError):
    """Nobody answered the technician's question in time: the technician did not come back."""


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

    def missed(self, kind: str) -> Presentation:
        """The reader saw no card after an action of ``kind`` ("swipe", "tap", "insert"): was it
        presented? May raise ``Skipped`` (skip the rest of that kind) or ``TechnicianGone``."""

    def close(self) -> None:
        """Release the actuator."""
