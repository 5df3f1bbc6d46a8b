"""What a ``posbench discover --probe`` entry is: the line settings a serial port is asked at,
the question, what counts as an answer (``Answer``) and what does not (``NoAnswer``).

A terminal protocol's entries live in its package (``posbench.drivers.ecr.<protocol>.probe``:
``SERIAL`` and ``TCP``); ``posbench.discover.probes`` runs the table.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class NoAnswer(Exception):
    """The device on the port did not answer this question (``detail`` says what came instead)."""

    def __init__(self, detail: str = "no answer"):
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class LineSettings:
    """Serial line settings: baud rate, data bits, parity (N/E/O), stop bits; ``str`` gives
    ``9600 8N2``."""

    baudrate: int
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1

    @property
    def line(self) -> str:
        """``8N1``, ``7E1``, ``8N2``."""
        return f"{self.bytesize}{self.parity}{self.stopbits}"

    def __str__(self) -> str:
        return f"{self.baudrate} {self.line}"


@dataclass(frozen=True)
class Answer:
    """What answered, and how. ``kind``: ``terminal``, ``supply`` or ``nfc reader``;
    ``section`` the bench.toml keys of its section (``[terminal]``, ``[power]``, ``[nfc]``) for
    the place it was found at; ``unit`` what it says of the unit (``model``, ``serial``)."""

    protocol: str
    kind: str
    how: str
    settings: LineSettings | None = None
    section: dict[str, Any] = field(default_factory=dict)
    unit: dict[str, str] = field(default_factory=dict)


SerialAsk = Callable[[str, LineSettings, float], Answer]
"""ask(port, settings, timeout_s) -> Answer; ``NoAnswer`` when nothing answered as this protocol,
``PortUnavailable`` when the port cannot be opened."""
TcpAsk = Callable[[str, int, float], Answer]
"""ask(host, port, timeout_s) -> Answer; ``NoAnswer`` when nothing there answered as this protocol."""


@dataclass(frozen=True)
class SerialProbe:
    protocol: str
    kind: str
    settings: tuple[LineSettings, ...]
    asks: str
    """The question, for a person ("ID", "status enquiry 05 01")."""
    answered_by: str
    """What counts as an answer, for a person ("80 00 or 84 xx")."""
    ask: SerialAsk
    usb_hint: frozenset[tuple[int, int]] = frozenset()
    """USB-serial adapters (vendor id, product id) this device is usually on: such a port asks
    this entry first."""


@dataclass(frozen=True)
class TcpProbe:
    protocol: str
    port: int
    """The protocol's usual TCP port, tried when ``--address`` names only a host."""
    asks: str
    answered_by: str
    ask: TcpAsk
