"""The virtual bench presents the cards: one action per request on its control port."""
from __future__ import annotations

import json
import socket
from typing import cast, get_args

from .base import ActuatorError, Presentation

MAX_LINE = 4096
"""Bytes of one request line on a virtual bench's control port (a JSON object and a newline)."""


def request(address: tuple[str, int], payload: dict, timeout: float = 5.0) -> dict:
    """Send one action to the control port at ``address`` and return the reply (one JSON line
    each way); ``OSError``/``TimeoutError`` when the bench is gone, ``ValueError`` for a reply
    that is not JSON."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(json.dumps(payload).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(MAX_LINE)
            if not chunk:
                raise ConnectionError("the virtual bench closed its control port mid-reply")
            buf += chunk
            if len(buf) > MAX_LINE * 4:
                raise ConnectionError("reply from the control port too long")
    return json.loads(buf)


class VirtualActuator:
    """Actions carried out by a running ``posbench sim`` (its ``[sim] control`` address): by its
    card robot, at once, or by its simulated technician, like a person (``technician``)."""

    name = "virtual"

    def __init__(self, address: tuple[str, int], timeout: float = 5.0):
        self.address, self.timeout = address, timeout

    def _do(self, action: str, **fields: object) -> dict:
        try:
            reply = request(self.address, {"action": action, **fields}, self.timeout)
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

    def missed(self, kind: str) -> Presentation:
        """Asks the virtual bench: its card robot always presented the card (a miss is the
        unit's); its simulated technician (``posbench sim --technician``) knows when it was late
        or presented the card the wrong way, and when the unit ended the read before its card came."""
        answer = self._do("missed", kind=kind).get("answer")
        if answer not in get_args(Presentation):
            raise ActuatorError("virtual actuator", "missed",
                                f"answered {answer!r}, not one of {', '.join(get_args(Presentation))}")
        return cast(Presentation, answer)

    def close(self) -> None:
        """Nothing is held between actions."""
