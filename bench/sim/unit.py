"""The virtual unit model (the PT100, or the unit a profile describes), whatever ECR protocol it speaks.

A state machine (off, booting, idle, sale, online, result), identity and stored state
(firmware, keys, configuration, counters), a transaction journal, the card readers, the host
link (ISO 8583 to the acquirer), power and restarts, and injectable faults by cause id
(severity in (0, 1]). Front ends (``terminal.py``: posbench's agent protocol; ``zvt_terminal.py``:
ZVT) turn these plain results into their own wire messages. Times are seconds, amounts minor
units, memory KiB.
"""
from __future__ import annotations

import random
import threading
import time
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from posbench.setup.cards import Card
from posbench.core.errors import ProtocolError, UnitError
from posbench.core.masking import mask_pan
from posbench.setup.profile import Profile
from posbench.drivers.host.client import HostClient

from .chip_card import PSE, ContactCard
from .magstripe import swipe_failure_probability
from .pty_port import PtyDevice

TEST_PAN = "4111111111111111"
"""Published Visa test PAN: the card the virtual cardholder presents."""
MERCHANT_ID = "POSBENCH0000001"
MAX_ECHOES = 20
"""Echo requests one network check may send."""
TECHNOLOGIES = ("magstripe", "chip", "contactless")
"""How a card is read: swiped, inserted, tapped."""
ENTRY_MODES = {"magstripe": "901", "chip": "051", "contactless": "071"}
"""ISO 8583 field 22 (POS entry mode) per card technology."""
VIRTUAL_BOOT_S = 4.0
"""Most seconds the virtual unit takes to boot, whatever its profile says a real one takes."""
UNKNOWN_MODEL_FIRMWARE = "1.0.0"
"""The release the virtual unit runs when its profile judges none (a generic profile)."""
UNIT_KEYS = ("TMK", "TPK", "TAK")
"""The keys the virtual unit holds when its profile requires none by name (a generic profile):
a payment terminal needs them all the same."""


def chip_failure_rate(severity: float) -> float:
    """Share of chip power-ups that fail with dirty contacts of ``severity`` (0 = clean)."""
    return min(0.95, 0.15 + 0.75 * severity) if severity else 0.0


def frame_error_rate(severity: float) -> float:
    """Share of the unit's ECR frames a cracked UART joint of ``severity`` corrupts."""
    return 0.08 + 0.22 * severity if severity else 0.0


def host_failure(exc: BaseException) -> str:
    """Reason for a failed host exchange: "host_timeout" (no answer in time), "host_format"
    (a broken or garbled answer) or "host_unreachable" (no connection)."""
    if isinstance(exc, TimeoutError):
        return "host_timeout"
    return "host_format" if isinstance(exc, ProtocolError) else "host_unreachable"


def tap_failure_rate(severity: float) -> float:
    """Share of taps a weak antenna of ``severity`` loses to RF errors (0 = healthy)."""
    return min(0.95, 1.0 - (1.0 - severity) ** 3) if severity else 0.0


@dataclass
class TerminalTiming:
    """Seconds the virtual unit takes for each step."""

    @classmethod
    def parse(cls, items: list[str] | tuple[str, ...], base: "TerminalTiming") -> "TerminalTiming":
        """Apply ``NAME=SECONDS`` overrides; ``ValueError`` names what is wrong."""
        values = dict(base.__dict__)
        for item in items:
            name, _, text = item.partition("=")
            if name not in values:
                raise ValueError(f"unknown timing {name!r}; known: {', '.join(values)}")
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"timing {name}: {text!r} is not a number of seconds") from None
            if not 0 <= seconds <= 600:
                raise ValueError(f"timing {name}: {seconds:g} s is outside 0..600")
            values[name] = seconds
        return cls(**values)

    @classmethod
    def for_profile(cls, profile: Profile) -> "TerminalTiming":
        """The virtual unit's times for a unit of ``profile``: it boots in the profile's
        ``boot_time_s`` capped at ``VIRTUAL_BOOT_S`` (4 s). A real payment terminal takes 20..60 s
        (a generic profile says 60 s): the virtual one stays well inside that limit, so a healthy
        unit passes the cold-boot and soak tests, without each power cycle costing a minute."""
        return cls(boot_s=min(profile.boot_time_s, VIRTUAL_BOOT_S))

    command_s: float = 0.02
    jitter_s: float = 0.01
    card_read_s: float = 0.08
    boot_s: float = 1.5
    app_restart_s: float = 0.8
    host_timeout_s: float = 2.0
    print_s: float = 0.2
    """Printing the receipt of an approved sale (the unit draws most current then)."""
    reply_s: float = 0.0
    """Between finishing a command and its answer leaving on the agent ECR link: what a slow
    link or a network bridge (ser2net on a labgrid exporter) adds on a real bench. Power lost in
    it loses the answer, not the work already done."""


@dataclass
class LogEntry:
    """One journal record; ``pan`` stays inside the unit, ``encode()`` masks it."""

    seq: int
    ts: datetime
    type: str
    amount: int
    pan: str = field(repr=False)
    display: str
    host_rc: str
    events: list[str] = field(default_factory=list)
    stan: str = ""
    """Of the sale's 0200 (empty for records from before the bench knew the unit)."""

    def encode(self) -> str:
        return ";".join([str(self.seq), self.ts.strftime("%Y-%m-%dT%H:%M:%SZ"), self.type,
                         str(self.amount), mask_pan(self.pan), self.display, self.host_rc,
                         "+".join(self.events)])


@dataclass(frozen=True)
class ChipDiag:
    """The chip diagnostic: ATR after a cold reset, SELECT PSE's FCI and status word."""

    present: bool
    atr: bytes = b""
    sw: bytes = b""
    fci: bytes = b""
    reason: str = ""
    """"" read fine, "no_card", "no_atr" (the card never answered the reset)."""


@dataclass(frozen=True)
class EchoResult:
    """``latencies_ms``: per echo, milliseconds to the answer, or None when unanswered."""

    latencies_ms: tuple[float | None, ...]
    reconnects: int
    failure: str = ""
    """Why the last unanswered echo failed: "host_timeout", "host_format", "host_unreachable"."""

    @property
    def sent(self) -> int:
        return len(self.latencies_ms)

    @property
    def answered(self) -> int:
        return sum(1 for x in self.latencies_ms if x is not None)


@dataclass(frozen=True)
class CardRead:
    """One card read by the unit's own reader. ``pan`` never leaves the unit unmasked."""

    technology: str
    """One of ``TECHNOLOGIES``."""
    pan: str = field(default="", repr=False)
    expiry: str = ""
    """YYMM."""
    failure: str = ""
    """"" read fine; "unreadable" (LRC/parity, or the chip/RF exchange broke), "cleaning"
    (the head is so dirty the unit asks for a cleaning card), "chip_error" (no ATR),
    "rf_error" (contactless level-1 transmission error)."""

    @property
    def ok(self) -> bool:
        return not self.failure

    @property
    def masked_pan(self) -> str:
        return mask_pan(self.pan)


@dataclass
class SaleResult:
    """The end of a sale. ``display`` is the code the unit shows (the host's, or its own
    ``local_failure_code``); ``reason`` says why the unit failed it itself ("" when not)."""

    display: str
    host_answered: bool
    host_rc: str
    stan: str
    tid: str
    pan: str
    """Masked."""
    auth: str = ""
    reason: str = ""
    """"no_keys", "no_config", "kernel_error", "host_timeout", "host_format",
    "host_unreachable", "app_restart", or "" (the host decided)."""
    completed: bool = True
    """False when power went before the sale finished (the unit answers nothing)."""
    seq: int = 0
    """Journal record number of the sale (0 when nothing was journaled)."""


@dataclass(frozen=True)
class ReversalResult:
    failure: str
    """"" reversed; "not_found" (no approved sale with that number), "already_reversed",
    "declined" (the host said no: ``host_rc``), or a host link failure (see ``host_failure``)."""
    amount: int = 0
    host_rc: str = ""


class VirtualUnit:
    """The unit behind any ECR front end. ``faults`` maps cause id to severity in (0, 1]."""

    def __init__(self, host_address: tuple[str, int], profile: Profile,
                 faults: dict[str, float] | None = None, seed: int = 0,
                 serial: str = "PT100-0000123", terminal_id: str = "PT100123",
                 timing: TerminalTiming | None = None):
        self.host_address, self.profile = host_address, profile
        self.faults = dict(faults or {})
        self.rng = random.Random(seed)
        self.reader_rng = random.Random(seed + 23)
        """Draws of the card readers (a separate stream keeps ``rng``'s sequence as it was)."""
        self.serial, self.terminal_id = serial, terminal_id
        self.timing = timing or TerminalTiming.for_profile(profile)
        self.slot: ContactCard | None = None
        self.powered = True
        self.on_activity: Callable[[str], None] = lambda activity: None
        """Called with "reading"/"field"/"printing"/"idle": the power model's draw follows it."""
        self.connect_host: Callable[[tuple[str, int], float], HostClient] = \
            lambda address, timeout: HostClient(address, timeout=timeout)
        """Makes the unit's host connection (the network lab puts it in the unit's namespace)."""
        self.state = "booting"
        self._host: HostClient | None = None
        self._pending_reversal: dict | None = None
        self._stan = self.rng.randrange(1, 400000)
        self.restarts = 0
        self.power_losses = 0
        self._inflight: tuple[LogEntry, dict | None] | None = None
        """The journal record of the sale under way, and its 0200 once sent."""
        self.restart_after_reply = False
        """Set when the app crashed holding an answer: it restarts once the reply is out."""
        self._build_unit()
        self._power_on()

    # -- identity and stored state ------------------------------------------------------------
    def sev(self, cause: str) -> float:
        """Severity of fault ``cause`` (0 when healthy)."""
        return self.faults.get(cause, 0.0)

    def _build_unit(self) -> None:
        p, rng = self.profile, self.rng
        # A generic profile judges no release: the unit runs one of its own (older when stale).
        self.firmware = p.firmware.expected if p.firmware else UNKNOWN_MODEL_FIRMWARE
        self.components = {name: versions[-1] for name, versions in p.components.items()}
        if self.sev("maintenance"):
            minimum = p.firmware.minimum if p.firmware else UNKNOWN_MODEL_FIRMWARE
            major, minor, *_ = (minimum + ".0.0").split(".")
            self.firmware = f"{major}.{max(0, int(minor) - 1)}.7" if int(minor) else f"{int(major) - 1}.9.0"
        if s := self.sev("firmware_driver"):
            self.components["ctls_kernel"] = "1.9.7"
            if s >= 0.6:
                self.components["msr_driver"] = "1.2.0"
        now = datetime.now(timezone.utc)
        maint_days = rng.randint(30, 200)
        self.clock_offset_s = rng.uniform(-20, 20)
        if s := self.sev("maintenance"):
            maint_days = int(430 + 300 * s)
            self.clock_offset_s = 150 + 450 * s
        self.last_maintenance = (now - timedelta(days=maint_days)).date().isoformat()
        self.keys = list(p.keys_required or UNIT_KEYS)
        self.config = {"tid": self.terminal_id, "mid": MERCHANT_ID,
                       "host": f"{self.host_address[0]}:{self.host_address[1]}", "currency": "978"}
        self.cfg_crc_stored = self.cfg_crc()
        if s := self.sev("data_loss"):
            self.config.pop("mid")  # the merchant record was deleted
            self.keys.remove("TAK")
            if s >= 0.5 and "TPK" in self.keys:
                self.keys.remove("TPK")
        self.err = {"err_comm": rng.randint(0, 4), "err_reader": rng.randint(0, 4),
                    "err_app": rng.randint(0, 3)}
        if s := self.sev("application"):
            self.err["err_app"] = int(30 + 60 * s)
        self.total_mem_kib = 65536
        self.free_mem_kib = rng.randint(18000, 26000)
        if s := self.sev("resources"):
            self.free_mem_kib = int(8192 * (0.9 - 0.6 * s))
        self.log: list[LogEntry] = []
        self._seed_history(now)

    def cfg_crc(self) -> str:
        """CRC-32 of the configuration now, 8 hex digits."""
        text = ";".join(f"{k}={v}" for k, v in sorted(self.config.items()))
        return f"{zlib.crc32(text.encode()):08X}"

    def clock(self) -> datetime:
        """The unit's own clock (UTC), off by its drift."""
        return datetime.now(timezone.utc) + timedelta(seconds=self.clock_offset_s)

    def _seed_history(self, now: datetime) -> None:
        """Two hundred past transactions; operator_error skews them towards misuse."""
        rng, s = self.rng, self.sev("operator_error")
        misuse = (lambda base, slope: base + slope * s) if s else (lambda base, slope: 0.0)
        p_pin = 0.03 + misuse(0.15, 0.25)   # wrong PIN
        p_pull = 0.02 + misuse(0.10, 0.20)  # card pulled out mid-read
        p_fix = 0.02 + misuse(0.10, 0.20)   # amount keyed wrongly, voided at once
        ts = now - timedelta(days=30)
        while len(self.log) < 200:
            ts += timedelta(minutes=rng.randint(20, 300))
            amount = rng.choice([350, 899, 1250, 2275, 4999, 15000])
            roll = rng.random()
            if roll < p_pin:
                self.append("SALE", amount, "55", "55", ["PIN_WRONG"], ts)
            elif roll < p_pin + p_pull:
                self.append("SALE", amount, "CE", "", ["CARD_PULLED"], ts)
            elif roll < p_pin + p_pull + p_fix:
                wrong = amount * 100
                self.append("SALE", wrong, "00", "00", [], ts)
                self.append("VOID", wrong, "00", "00", ["AMOUNT_CORRECTED"], ts + timedelta(seconds=40))
            else:
                self.append("SALE", amount, "00", "00", [], ts)
        if s := self.sev("data_loss"):
            for _ in range(1 + int(5 * s)):  # records deleted from the journal
                del self.log[rng.randrange(10, len(self.log) - 10)]

    def append(self, kind: str, amount: int, display: str, host_rc: str, events: list[str],
               ts: datetime | None = None, pan: str = TEST_PAN, stan: str = "") -> LogEntry:
        """Add a journal record with the next sequence number."""
        seq = (self.log[-1].seq if self.log else 0) + 1
        entry = LogEntry(seq, ts or datetime.now(timezone.utc), kind, amount, pan, display,
                         host_rc, events, stan)
        self.log.append(entry)
        return entry

    def uptime_s(self) -> float:
        """Seconds since the unit (or its app) last finished booting."""
        return max(0.0, time.monotonic() - self.booted_at)

    def log_page(self, start: int, count: int) -> list[LogEntry]:
        """Up to ``count`` (1..50) journal records from sequence number ``start`` on."""
        count = min(50, max(1, count))
        return [e for e in self.log if e.seq >= start][:count]

    # -- power and life cycle ---------------------------------------------------------------
    def _power_on(self, boot_s: float | None = None) -> None:
        self.boot_id = f"{self.rng.getrandbits(32):08x}"
        self.booted_at = time.monotonic() + (self.timing.boot_s if boot_s is None else boot_s)
        self.commands_since_boot = 0
        self.state = "booting"

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

    def watch_power(self) -> Callable[[], bool]:
        """A check that stays True while the unit keeps the power it has now."""
        losses = self.power_losses
        return lambda: self.power_losses == losses and self.powered

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

    # -- the host link ----------------------------------------------------------------------
    def _next_stan(self) -> str:
        self._stan = self._stan % 999999 + 1
        return f"{self._stan:06d}"

    def echo(self, n: int, per_echo_s: float) -> EchoResult:
        """Network check from the unit: ``n`` (1..20) 0800 echo requests (70=301) to its host,
        each given at most ``per_echo_s`` seconds (and never more than the host timeout)."""
        n = min(MAX_ECHOES, max(1, n))
        per_echo_s = min(self.timing.host_timeout_s, per_echo_s)
        latencies: list[float | None] = []
        reconnects, failure = 0, ""
        for _ in range(n):
            now = datetime.now(timezone.utc)
            doc = {"t": "0800", "7": now.strftime("%m%d%H%M%S"), "11": self._next_stan(),
                   "41": self.terminal_id, "70": "301"}
            start = time.monotonic()
            try:
                if self._host is None:
                    if latencies or reconnects:
                        reconnects += 1
                    self._host = self.connect_host(self.host_address, per_echo_s)
                self._host.exchange(doc, timeout=per_echo_s)
                latencies.append((time.monotonic() - start) * 1000)
            except (OSError, ProtocolError) as exc:
                self._reset_host()
                latencies.append(None)
                failure = host_failure(exc)
        return EchoResult(tuple(latencies), reconnects, failure)

    def sale(self, amount: int) -> SaleResult:
        """A sale with the virtual cardholder's card (``TEST_PAN``, chip): read, then authorize."""
        if not 0 < amount < 10**12:
            raise ValueError("amount out of range")
        alive = self.watch_power()
        self.state = "sale"
        self.on_activity("reading")
        time.sleep(self.timing.card_read_s)  # the cardholder inserts the card, the unit reads it
        self.on_activity("idle")
        return self.authorize(amount, TEST_PAN, "chip", alive)

    def authorize(self, amount: int, pan: str, technology: str,
                  alive: Callable[[], bool] | None = None,
                  host_timeout_s: float | None = None,
                  on_online: Callable[[], None] = lambda: None) -> SaleResult:
        """Authorize ``amount`` for a card already read: local checks, journal, 0200 to the
        host (waiting at most ``host_timeout_s``, default the unit's), receipt. ``alive``: the
        power check taken when the sale began (``watch_power``); ``on_online`` is called just
        before the unit contacts its host."""
        if not 0 < amount < 10**12:
            raise ValueError("amount out of range")
        alive = alive or self.watch_power()
        stan = self._next_stan()
        result = SaleResult("", False, "", stan, self.terminal_id, mask_pan(pan))
        if not alive():
            result.completed = False
            return result  # the card read was cut off: nothing was journaled or sent
        local = self.profile.local_failure_code
        if "TAK" not in self.keys or "mid" not in self.config:
            reason = "no_keys" if "TAK" not in self.keys else "no_config"
        elif self.sev("firmware_driver") and self.rng.random() < 0.5 * self.sev("firmware_driver"):
            reason = "kernel_error"
        else:
            reason = ""
        entry = self.append("SALE", amount, "", "", ["IN_PROGRESS"], pan=pan, stan=stan)
        self._inflight = (entry, None)
        result.seq = entry.seq
        if reason:
            result.display, result.reason = local, reason
        else:
            self.state = "online"
            on_online()
            reply, reason = self._go_online(amount, pan, technology, stan, host_timeout_s)
            if not alive():
                result.completed = False
                return result  # power went while online: the journal recovers it at boot
            if reply is not None and self.sev("application") and \
                    self.rng.random() < 0.1 + 0.3 * self.sev("application"):
                reply, reason = None, "app_restart"  # crashed holding the host's answer
                self.restart_after_reply = True
            if reply is None:
                result.display, result.reason = local, reason
            else:
                rc = reply.get(39, "")
                result.display, result.host_answered, result.host_rc = rc, True, rc
                result.auth = reply.get(38, "")
                if rc == "00":
                    entry.display, entry.host_rc = rc, rc
                    self.on_activity("printing")
                    time.sleep(self.timing.print_s)
                    self.on_activity("idle")
                    if not alive():
                        result.completed = False
                        return result  # cut off while printing the receipt
        self.state = "result"
        entry.display, entry.host_rc = result.display, result.host_rc
        entry.events = [result.reason.upper()] if result.reason else []
        self._inflight = None
        self.state = "idle"
        return result

    def _go_online(self, amount: int, pan: str, technology: str, stan: str,
                   host_timeout_s: float | None) -> tuple[dict | None, str]:
        """Send a 0200 and wait; returns (reply fields by number, reason)."""
        wait = self.timing.host_timeout_s if host_timeout_s is None else host_timeout_s
        now = datetime.now(timezone.utc)
        doc = {"t": "0200", "2": pan, "3": "000000", "4": f"{amount:012d}",
               "7": now.strftime("%m%d%H%M%S"), "11": stan, "12": now.strftime("%H%M%S"),
               "13": now.strftime("%m%d"), "22": ENTRY_MODES[technology], "25": "00",
               "41": self.terminal_id, "42": self.config["mid"], "49": self.config["currency"]}
        try:
            if self._host is None:
                self._host = self.connect_host(self.host_address, wait)
            if self._pending_reversal:
                self._host.exchange(self._pending_reversal, timeout=wait)
                self._pending_reversal = None
            if self._inflight is not None:
                self._inflight = (self._inflight[0], doc)  # from here on the host may have it
            reply = self._host.exchange(doc, timeout=wait)
        except (OSError, ProtocolError) as exc:
            self._reset_host()
            if isinstance(exc, (TimeoutError, ProtocolError)):
                self._pending_reversal = {**doc, "t": "0400"}
            return None, host_failure(exc)
        return {int(k): v for k, v in reply.items() if k.isdigit()}, ""

    def reverse(self, seq: int, on_online: Callable[[], None] = lambda: None) -> ReversalResult:
        """Reverse the approved sale journaled as ``seq``: a 0400 with its STAN to the host
        (``on_online`` is called just before the unit contacts it)."""
        sale = next((e for e in self.log if e.seq == seq and e.type == "SALE"), None)
        if sale is None or sale.host_rc != "00" or not sale.stan:
            return ReversalResult("not_found")
        if any(e.type == "VOID" and e.stan == sale.stan for e in self.log):
            return ReversalResult("already_reversed", sale.amount)
        now = datetime.now(timezone.utc)
        doc = {"t": "0400", "2": sale.pan, "3": "000000", "4": f"{sale.amount:012d}",
               "7": now.strftime("%m%d%H%M%S"), "11": sale.stan, "41": self.terminal_id,
               "42": self.config.get("mid", ""), "49": self.config["currency"]}
        on_online()
        try:
            if self._host is None:
                self._host = self.connect_host(self.host_address, self.timing.host_timeout_s)
            reply = self._host.exchange(doc, timeout=self.timing.host_timeout_s)
        except (OSError, ProtocolError) as exc:
            self._reset_host()
            return ReversalResult(host_failure(exc), sale.amount)
        rc = str(reply.get("39", ""))
        if rc == "00":
            self.append("VOID", sale.amount, rc, rc, [], pan=sale.pan, stan=sale.stan)
        return ReversalResult("" if rc == "00" else "declined", sale.amount, rc)

    def totals(self, since: datetime | None = None) -> tuple[int, int]:
        """(count, sum in minor units) of approved, unreversed sales journaled since ``since``."""
        voided = {e.stan for e in self.log if e.type == "VOID" and e.stan}
        approved = [e for e in self.log if e.type == "SALE" and e.host_rc == "00"
                    and (since is None or e.ts >= since) and not (e.stan and e.stan in voided)]
        return len(approved), sum(e.amount for e in approved)

    def _send_pending_reversal(self) -> None:
        """A reversal left from before a reboot goes out at once, in the background so the ECR
        port answers meanwhile (one try on its own connection; else it goes with the next sale)."""
        reversal = self._pending_reversal
        if not reversal:
            return

        def send() -> None:
            try:
                with self.connect_host(self.host_address, self.timing.host_timeout_s) as client:
                    client.exchange(reversal, timeout=self.timing.host_timeout_s)
                if self._pending_reversal is reversal:
                    self._pending_reversal = None
            except (OSError, ProtocolError):
                pass

        threading.Thread(target=send, name="boot-reversal", daemon=True).start()

    def _reset_host(self) -> None:
        if self._host is not None:
            self._host.close()
            self._host = None


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
