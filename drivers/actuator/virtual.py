"""The virtual bench presents the cards: one action per request on its control port."""
from __future__ import annotations

from posbench.sim import control

from .base import ActuatorError


class VirtualActuator:
    """Actions carried out by a running ``posbench sim`` (its ``[sim] control`` address)."""

    name = "virtual"

    def __init__(self, address: tuple[str, int], timeout: float = 5.0):
        self.address, self.timeout = address, timeout

    def _do(self, action: str, **fields: object) -> dict:
        try:
            reply = control.request(self.address, {"action": action, **fields}, self.timeout)
        except (OSError, ValueError) as exc:
            raise ActuatorError("virtual actuator", f"{action} via {self.address[0]}:{self.address[1]}",
                                str(exc)) from None
        if not reply.get("ok"):
            raise ActuatorError("virtual actuator", action, str(reply.get("error", "refused")))
        return reply

    def swipe(self, card: str, n: int = 1, total: int = 1) -> None:
        self._do("swipe", card=card)

    def tap(self, card: str, n: int = 1, total: int = 1) -> None:
        self._do("tap", card=card)

    def insert(self, card: str, n: int = 1, total: int = 1) -> None:
        self._do("insert", card=card)

    def remove(self) -> None:
        self._do("remove")

    def missed(self, kind: str) -> None:
        """The virtual bench never forgets a card: a miss is the unit's, nothing to ask."""

    def close(self) -> None:
        """Nothing is held between actions."""
