"""What every ECR front end of the virtual unit shares: the card the bench presents to the
terminal's own readers, and ``UnitFrontEnd``, the base whose power, card slot, callbacks and
counters are its unit's."""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Callable

from posbench.core.errors import UnitError
from posbench.setup.cards import Card

from posbench.sim.devices.chip_card import ContactCard
from posbench.sim.devices.pty_port import PtyDevice
from posbench.sim.unit.model import VirtualUnit
from posbench.sim.unit.records import TECHNOLOGIES


class PresentedCard:
    """The card the bench's actuator presents to a terminal's own readers: swiped
    ("magstripe"), inserted ("chip") or tapped ("contactless"). A swipe or a tap is read once,
    by the next sale waiting for a card; an inserted card stays until ``remove()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._presented: tuple[Card, str] | None = None

    def present(self, card: Card, technology: str) -> None:
        if technology not in TECHNOLOGIES:
            raise ValueError(f"technology must be one of {', '.join(TECHNOLOGIES)}, got {technology!r}")
        with self._lock:
            self._presented = (card, technology)

    def remove(self) -> None:
        """The card leaves the slot, the field or the swipe track."""
        with self._lock:
            self._presented = None

    def take(self) -> tuple[Card, str] | None:
        """The card presented now and how, or None (a swipe or a tap is gone once taken)."""
        with self._lock:
            presented = self._presented
            if presented is not None and presented[1] != "chip":
                self._presented = None
            return presented

    def wait(self, deadline: float, alive: Callable[[], bool], poll_s: float = 0.05) -> tuple[Card, str] | None:
        """The card presented before ``deadline`` (monotonic seconds), or None when none came
        or ``alive()`` turned False (the unit lost power)."""
        while (presented := self.take()) is None:
            if time.monotonic() >= deadline or not alive():
                return None
            time.sleep(poll_s)
        return presented


class ReadsPresentedCards:
    """A front end whose unit reads, with its own readers, the cards the bench's actuator
    presents (ZVT, Concert, Caisse-AP): ``present`` and ``remove`` go to its ``card``."""

    card: PresentedCard

    def present(self, card: Card, technology: str) -> None:
        """See ``PresentedCard.present``."""
        self.card.present(card, technology)

    def remove(self) -> None:
        self.card.remove()


class _UnitAttr:
    """A front end's attribute that is its unit's own (read and written through)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: UnitFrontEnd | None, owner: type | None = None) -> Any:
        return self if obj is None else getattr(obj.unit, self.name)

    def __set__(self, obj: UnitFrontEnd, value: object) -> None:
        setattr(obj.unit, self.name, value)


class UnitFrontEnd(PtyDevice, ABC):
    """Base of an ECR front end: the unit's power, card slot, callbacks and counters appear as
    the front end's own, so the virtual bench wires any protocol the same way. A subclass sets
    ``self.unit``, calls ``_init_thread()`` and defines the three abstract methods; ``start``
    and the context manager come from ``PtyDevice``, ``stop`` also drops the host link (the
    ECR port may be a pty or a TCP listener: ``_close_transport``)."""

    unit: VirtualUnit
    thread_name = "virtual-unit"
    on_activity = _UnitAttr()
    connect_host = _UnitAttr()
    timing = _UnitAttr()
    powered = _UnitAttr()
    state = _UnitAttr()
    booted_at = _UnitAttr()
    boot_id = _UnitAttr()
    restarts = _UnitAttr()
    power_losses = _UnitAttr()
    commands_since_boot = _UnitAttr()
    faults = _UnitAttr()
    profile = _UnitAttr()
    serial = _UnitAttr()
    terminal_id = _UnitAttr()
    host_address = _UnitAttr()
    slot = _UnitAttr()

    def sev(self, cause: str) -> float:
        return self.unit.sev(cause)

    def set_powered(self, on: bool, boot_s: float | None = None) -> None:
        """See ``VirtualUnit.set_powered``."""
        self.unit.set_powered(on, boot_s)

    def insert_card(self, card: ContactCard | None) -> None:
        """A card in the chip slot (``None`` takes it out)."""
        self.unit.insert_card(card)

    def _stopped(self) -> None:
        """Serving stopped: drop the host link, close the ECR port."""
        self.unit.close()
        self._close_transport()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.unit.ready():
                self._idle()  # an unpowered or booting unit ignores its ECR port
                time.sleep(0.05)
                continue
            try:
                self._serve_next()
            except (UnitError, OSError, TimeoutError):
                self.unit.err["err_comm"] += 1  # the ECR side vanished or garbled a message

    @abstractmethod
    def _idle(self) -> None:
        """The unit is off or booting: drop what the ECR sends."""

    @abstractmethod
    def _serve_next(self) -> None:
        """Wait briefly (about 0.2 s) for one ECR command and serve it."""

    @abstractmethod
    def _close_transport(self) -> None:
        """Close the ECR port (its pty path or TCP address disappears)."""
