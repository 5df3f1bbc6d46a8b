"""The virtual unit model (the PT100, or the unit a profile describes), whatever ECR protocol it speaks.

A state machine (off, booting, idle, sale, online, result), identity and stored state
(firmware, keys, configuration, counters: ``unit.state``), a transaction journal, the card
readers, the host link (ISO 8583 to the acquirer: ``unit.host``), power and restarts, and
injectable faults by cause id (severity in (0, 1]). Front ends (``unit.front_end``; e.g.
``ecr/agent.py``: posbench's agent protocol; ``ecr/zvt/``: ZVT) turn these plain results
(``unit.records``) into their own wire messages. Times are seconds, amounts minor units, memory KiB.
"""
from __future__ import annotations

import time

from posbench.sim.devices.chip_card import PSE, ContactCard
from posbench.sim.devices.magstripe import swipe_failure_probability
from posbench.sim.unit.host import UnitHostLink
from posbench.sim.unit.records import TECHNOLOGIES, CardRead, ChipDiag, LogEntry, chip_failure_rate, tap_failure_rate


class VirtualUnit(UnitHostLink):
    """The unit behind any ECR front end. ``faults`` maps cause id to severity in (0, 1]:
    its state and journal (``UnitState``), its host link (``UnitHostLink``), and here its power
    life cycle and card readers."""

    # -- power and life cycle ---------------------------------------------------------------
    def reboot(self) -> None:
        """A commanded reboot: the unit boots for its boot time (journal and keys survive)."""
        self._power_on()

    def set_powered(self, on: bool, boot_s: float | None = None) -> None:
        """Supply on or off. Off: the unit is dead (ECR silent, host link dropped, RAM lost);
        on: it boots for ``boot_s`` seconds (default its own boot time; 0 when a power model
        has already timed the boot) before answering again."""
        if on == self.powered:
            return
        if on:
            self._power_on(boot_s)
            self._recover_journal()
            self.powered = True
        else:
            self.powered = False
            self.power_losses += 1
            self.state = "off"
            self._reset_host()

    def ready(self) -> bool:
        """True when powered and booted (the first call after a boot sends a queued reversal)."""
        if not self.powered:
            return False
        if self.state == "booting":
            if time.monotonic() < self.booted_at:
                return False
            self.state = "idle"
            self._send_pending_reversal()
        return True

    def _recover_journal(self) -> None:
        """After a power loss: a sale that was cut off is journaled as failed and reversed.

        A healthy unit keeps its in-flight record in non-volatile memory: on boot it marks the
        record ``POWER_FAIL`` and queues a 0400 (field 39 = 96, approved but not completed).
        A degraded supply (``power_supply``) corrupts that state: the record is lost or written
        twice, or the reversal is forgotten.
        """
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        entry, doc = inflight
        entry.events = [*entry.events, "POWER_FAIL"]
        s = self.sev("power_supply")
        roll = self.rng.random() if s else 1.0
        if roll < 0.35 * s:
            self.log.remove(entry)                        # the journal write never made it
        elif roll < 0.7 * s:
            self.log.append(LogEntry(entry.seq + 1, entry.ts, entry.type, entry.amount, entry.pan,
                                     entry.display, entry.host_rc, list(entry.events)))  # replayed
        if doc is not None and not (s and self.rng.random() < 0.5 * s):
            self._pending_reversal = {**doc, "t": "0400", "39": "96"}

    def insert_card(self, card: ContactCard | None) -> None:
        """A card in the chip slot (``None`` takes it out)."""
        self.slot = card

    def begin_command(self) -> None:
        """Count an ECR command (the resources leak grows with them)."""
        self.commands_since_boot += 1

    def latency(self) -> float:
        """Seconds the unit takes before answering this command."""
        t = self.timing
        delay = t.command_s + self.rng.uniform(0, t.jitter_s)
        if s := self.sev("resources"):  # a leak: each command costs more than the last
            delay += min(0.4, 0.01 * s * self.commands_since_boot)
            self.free_mem_kib = max(512, self.free_mem_kib - 40)
        return delay

    def app_crashes(self) -> bool:
        """Does the payment app crash on this (status-like) command? Never when healthy."""
        s = self.sev("application")
        return bool(s) and self.rng.random() < 0.08 + 0.22 * s

    def app_restart(self) -> None:
        """The payment app restarts (the watchdog): silent for ``app_restart_s`` seconds."""
        self.err["err_app"] += 1
        self.restarts += 1
        self._power_on(self.timing.app_restart_s)

    def after_reply(self) -> None:
        """Once a reply is out: restart the app if it crashed while holding it."""
        if self.restart_after_reply:
            self.restart_after_reply = False
            self.app_restart()

    def close(self) -> None:
        self._reset_host()

    # -- card readers -----------------------------------------------------------------------
    def chip_diagnostic(self) -> ChipDiag:
        """Power the card in the slot, read its ATR, SELECT PSE."""
        if self.slot is None:
            return ChipDiag(False, reason="no_card")
        self.on_activity("reading")
        try:
            time.sleep(self.timing.card_read_s / 3)
            atr, response, reason = self.slot.atr, None, ""
            if self.rng.random() < chip_failure_rate(self.sev("chip_contacts")):
                kind = self.rng.random()
                if kind < 0.35:
                    atr, reason = b"", "no_atr"       # the card never answered the reset
                elif kind < 0.7:
                    garbled = bytearray(atr)       # a contact bounced: a bit lost in the ATR
                    i = self.rng.randrange(len(garbled))
                    garbled[i] ^= 1 << self.rng.randrange(8)
                    atr = bytes(garbled[:len(garbled) - self.rng.randrange(0, 3)])
                else:
                    response = b"\x6f\x00"         # the APDU died on the contacts
            if atr and response is None:
                select = b"\x00\xa4\x04\x00" + bytes([len(PSE)]) + PSE + b"\x00"
                response = self.slot.apdu(select)
            response = response or b""
            if response and response[-2:] != b"\x90\x00":
                self.err["err_reader"] += 1
            return ChipDiag(True, atr, response[-2:], response[:-2], reason)
        finally:
            self.on_activity("idle")

    def read_card(self, pan: str, expiry: str, technology: str) -> CardRead:
        """Read a presented card (``technology`` one of ``TECHNOLOGIES``) with the unit's own
        reader; the reader faults (msr_head, chip_contacts, nfc_antenna) fail it at their rate."""
        if technology not in TECHNOLOGIES:
            raise ValueError(f"unknown card technology {technology!r}")
        rng = self.reader_rng
        self.on_activity("field" if technology == "contactless" else "reading")
        try:
            time.sleep(self.timing.card_read_s)
            failure = ""
            if technology == "magstripe":
                s = self.sev("msr_head")
                if s and rng.random() < swipe_failure_probability(s):
                    failure = "cleaning" if rng.random() < 0.2 * s else "unreadable"
            elif technology == "chip":
                s = self.sev("chip_contacts")
                if rng.random() < chip_failure_rate(s):
                    failure = "chip_error" if rng.random() < 0.5 else "unreadable"
            elif rng.random() < tap_failure_rate(self.sev("nfc_antenna")):
                failure = "rf_error"
            if failure:
                self.err["err_reader"] += 1
            return CardRead(technology, pan, expiry, failure)
        finally:
            self.on_activity("idle")
