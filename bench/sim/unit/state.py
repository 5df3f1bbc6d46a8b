"""The virtual unit's identity and stored state: firmware, keys, configuration, counters,
the transaction journal and its history, and the boot that sets its clock (the first layer of
``posbench.sim.unit.model.VirtualUnit``). Times are seconds, amounts minor units, memory KiB."""
from __future__ import annotations

import random
import time
import zlib
from datetime import datetime, timedelta, timezone
from typing import Callable

from posbench.drivers.host.client import HostClient

from posbench.sim.devices.chip_card import ContactCard
from posbench.sim.unit.records import MERCHANT_ID, TEST_PAN, UNIT_KEYS, UNKNOWN_MODEL_FIRMWARE, LogEntry, TerminalTiming
from posbench.setup.profile import Profile


class UnitState:
    """The unit's identity, stored state and journal, and its boot. ``faults`` maps cause id to
    severity in (0, 1]."""

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

    # -- boot and power ----------------------------------------------------------------------
    def _power_on(self, boot_s: float | None = None) -> None:
        self.boot_id = f"{self.rng.getrandbits(32):08x}"
        self.booted_at = time.monotonic() + (self.timing.boot_s if boot_s is None else boot_s)
        self.commands_since_boot = 0
        self.state = "booting"

    def watch_power(self) -> Callable[[], bool]:
        """A check that stays True while the unit keeps the power it has now."""
        losses = self.power_losses
        return lambda: self.power_losses == losses and self.powered
