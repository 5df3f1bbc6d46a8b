"""The virtual bench's actuator: what its control port (``posbench.sim.control``) can do to
the unit (insert, remove, swipe, tap a card from the deck; unplug a bench device), done at once
like a card robot's or by the simulated technician (``posbench.sim.technician``)."""
from __future__ import annotations

import threading
from collections.abc import Callable

from posbench.setup.cards import TEST_TAG_ID, TEST_TAG_TEXT, Card

from posbench.sim.devices.chip_card import ContactCard
from posbench.sim.devices.korad import KoradEmulator
from posbench.sim.devices.magstripe import VirtualMagstripeReader
from posbench.sim.devices.nfc_cards import CardApplication, Iso14443_4Card, Type2Tag
from posbench.sim.devices.pn532 import PN532Emulator
from posbench.sim.unit.power import UnitPower
from posbench.sim.technician import Technician
from posbench.sim.unit.front_end import ReadsPresentedCards, UnitFrontEnd
from posbench.sim.devices.usbip_server import UsbipServer


class BenchActuator:
    """Mixin of ``posbench.sim.bench.SimBench``: the actuator's actions on the bench's devices,
    which the bench starts (the attributes below)."""

    terminal: UnitFrontEnd | None
    nfc: PN532Emulator | None
    power: UnitPower | None
    reader: VirtualMagstripeReader | None
    usb: UsbipServer | None
    supply: KoradEmulator | None
    deck: dict[str, Card]

    def _present(self, card, technology: str) -> bool:
        """Hand ``card`` to the terminal's own reader (ZVT, Concert, Caisse-AP); False when the unit speaks
        the agent protocol or is unpowered (nothing reads the card)."""
        term = self.terminal
        if not isinstance(term, ReadsPresentedCards) or not term.powered:
            return False
        term.present(card, technology)
        return True

    def _card(self, request: dict):
        card_id = request.get("card")
        if card_id not in self.deck:
            raise LookupError(f"no card {card_id!r} in the deck (known: {', '.join(sorted(self.deck))})")
        return self.deck[card_id]

    technician: Technician | None = None
    """The simulated technician (``posbench sim --technician``) presenting the cards with a
    person's timing and mistakes; None: the actions are done at once, like a card robot's."""

    def _actions(self) -> dict:
        """What the virtual actuator can do to the unit (see ``posbench.sim.control``)."""
        def by_hand(kind: str, act: Callable[[dict], dict]) -> Callable[[dict], dict]:
            """``act`` done by the simulated technician, when there is one: the answer comes at
            once, the card later (``posbench.sim.technician``)."""
            def handler(request: dict) -> dict:
                if self.technician is None:
                    return act(request)
                if request.get("card") != TEST_TAG_ID:
                    self._card(request)  # an unknown card is refused now, not in the technician's hand
                self.technician.present(kind, lambda: act(request))
                return {}
            return handler

        def missed(request: dict) -> dict:
            """Was the card presented? A robot always presents it (a miss is the unit's)."""
            kind = request.get("kind")
            if kind not in ("swipe", "tap", "insert"):
                raise ValueError(f"kind must be swipe, tap or insert, got {kind!r}")
            return {"answer": self.technician.missed(kind) if self.technician else "presented"}

        def insert(request: dict) -> dict:
            card = self._card(request)
            assert self.terminal
            self.terminal.insert_card(ContactCard(card.id))
            self._present(card, "chip")
            return {}

        def remove(request: dict) -> dict:
            if self.technician:
                self.technician.withdraw()
            if self.terminal:
                self.terminal.insert_card(None)
            if isinstance(self.terminal, ReadsPresentedCards):
                self.terminal.remove()
            if self.nfc:
                self.nfc.remove()
            if self.power:
                self.power.set_activity("idle")
            return {}

        def tap(request: dict) -> dict:
            assert self.power
            self.power.set_activity("field")
            if self.nfc is None:  # no PN532 on this bench: the unit's own antenna reads the card
                if request.get("card") != TEST_TAG_ID:
                    self._present(self._card(request), "contactless")
                return {}
            if request.get("card") == TEST_TAG_ID:
                import ndef
                self.nfc.present(Type2Tag(records=[ndef.TextRecord(TEST_TAG_TEXT)]))
                return {}
            card = self._card(request)
            self._present(card, "contactless")
            from posbench.drivers.card.emv import BRAND_AIDS
            app = CardApplication(BRAND_AIDS[card.brand], card.brand.upper()[:16], 1)
            self.nfc.present(Iso14443_4Card(apps=(app,)))
            return {}

        def swipe(request: dict) -> dict:
            card = self._card(request)
            presented = self._present(card, "magstripe")  # a ZVT or Caisse-AP unit reads it with its own head
            if not isinstance(self.reader, VirtualMagstripeReader) or not self.usb \
                    or not self.usb.is_exported(self.reader):
                return {"swiped": presented}  # no swipe reader, or it is unpowered: the swipe goes nowhere
            assert self.power
            self.power.set_activity("reading")  # the head amplifier and decoder wake up
            self.reader.swipe(card)

            def idle() -> None:
                if self.power:
                    self.power.set_activity("idle")

            threading.Timer(0.2, idle).start()
            return {"swiped": True}

        def unplug(request: dict) -> dict:
            """Pull a bench device's cable (training and tests): the bench fails, not the unit."""
            device = request.get("device")
            if device != "supply":
                raise LookupError(f"cannot unplug {device!r}; known: supply")
            if self.supply is not None:
                self.supply.stop(timeout=2.0)  # its pty disappears: the supply link is gone
            return {}

        return {"insert": by_hand("insert", insert), "remove": remove, "swipe": by_hand("swipe", swipe),
                "tap": by_hand("tap", tap), "missed": missed, "unplug": unplug}
