"""Virtual PT100 payment terminal: the ECR protocol on a pseudo-terminal, ISO 8583 to the host.

A real state machine (booting, idle, sale, online, result), a transaction log, status counters
and injectable faults by cause id. Only protocol and device behaviour live here.
"""
from __future__ import annotations

import random
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from bench.errors import MessageError, ProtocolError, UnitError
from bench.masking import mask_pan
from bench.profile import Profile
from drivers.host.client import HostClient
from drivers.serial.ecr_frame import MAX_MESSAGE, Message, decode_message, encode_message
from drivers.serial.ecr_link import Link

from .chip_card import PSE, ContactCard
from .noisy_port import NoisyPort
from .pty_port import PtyPort

TEST_PAN = "4111111111111111"
"""Published Visa test PAN: the card the virtual cardholder presents."""
MERCHANT_ID = "POSBENCH0000001"
MAX_ECHOES = 20
"""Echo requests one ECHO command may ask for."""


def chip_failure_rate(severity: float) -> float:
    """Share of chip power-ups that fail with dirty contacts of ``severity`` (0 = clean)."""
    return min(0.95, 0.15 + 0.75 * severity) if severity else 0.0


def frame_error_rate(severity: float) -> float:
    """Share of the unit's ECR frames a cracked UART joint of ``severity`` corrupts."""
    return 0.08 + 0.22 * severity if severity else 0.0


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

    command_s: float = 0.02
    jitter_s: float = 0.01
    card_read_s: float = 0.08
    boot_s: float = 1.5
    app_restart_s: float = 0.8
    host_timeout_s: float = 2.0
    print_s: float = 0.2
    """Printing the receipt of an approved sale (the unit draws most current then)."""


@dataclass
class LogEntry:
    seq: int
    ts: datetime
    type: str
    amount: int
    pan: str
    display: str
    host_rc: str
    events: list[str] = field(default_factory=list)

    def encode(self) -> str:
        return ";".join([str(self.seq), self.ts.strftime("%Y-%m-%dT%H:%M:%SZ"), self.type,
                         str(self.amount), mask_pan(self.pan), self.display, self.host_rc,
                         "+".join(self.events)])


class VirtualTerminal:
    """A terminal on a pty. ``faults`` maps cause id to severity in (0, 1]."""

    def __init__(self, host_address: tuple[str, int], profile: Profile,
                 faults: dict[str, float] | None = None, seed: int = 0,
                 serial: str = "PT100-0000123", terminal_id: str = "PT100123",
                 timing: TerminalTiming | None = None):
        self.host_address, self.profile = host_address, profile
        self.faults = dict(faults or {})
        self.rng = random.Random(seed)
        self.serial, self.terminal_id = serial, terminal_id
        self.timing = timing or TerminalTiming(boot_s=profile.boot_time_s)
        self.pty = PtyPort()
        self.port = NoisyPort(self.pty, random.Random(seed + 7), frame_error_rate(self.sev("pcb_intermittent")))
        self.link = Link(self.port, device="virtual-terminal")
        self.slot: ContactCard | None = None
        self.powered = True
        self.on_activity: Callable[[str], None] = lambda activity: None
        """Called with "reading"/"idle"/...: the power model's current draw follows it."""
        self.connect_host: Callable[[tuple[str, int], float], HostClient] = \
            lambda address, timeout: HostClient(address, timeout=timeout)
        """Makes the unit's host connection (the network lab puts it in the unit's namespace)."""
        self.state = "booting"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._host: HostClient | None = None
        self._pending_reversal: dict | None = None
        self._stan = self.rng.randrange(1, 400000)
        self.restarts = 0
        self.power_losses = 0
        self._inflight: tuple[LogEntry, dict | None] | None = None
        """The journal record of the sale under way, and its 0200 once sent."""
        self._restart_after_reply = False
        self._build_unit()
        self._power_on()

    # -- identity and stored state ------------------------------------------------------------
    def sev(self, cause: str) -> float:
        return self.faults.get(cause, 0.0)

    def _build_unit(self) -> None:
        p, rng = self.profile, self.rng
        self.firmware = p.firmware.expected
        self.components = {name: versions[-1] for name, versions in p.components.items()}
        if self.sev("maintenance"):
            major, minor, *_ = (p.firmware.minimum + ".0.0").split(".")
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
        self.keys = list(p.keys_required)
        self.config = {"tid": self.terminal_id, "mid": MERCHANT_ID,
                       "host": f"{self.host_address[0]}:{self.host_address[1]}", "currency": "978"}
        self.cfg_crc_stored = self._cfg_crc()
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

    def _cfg_crc(self) -> str:
        text = ";".join(f"{k}={v}" for k, v in sorted(self.config.items()))
        return f"{zlib.crc32(text.encode()):08X}"

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
                self._append("SALE", amount, "55", "55", ["PIN_WRONG"], ts)
            elif roll < p_pin + p_pull:
                self._append("SALE", amount, "CE", "", ["CARD_PULLED"], ts)
            elif roll < p_pin + p_pull + p_fix:
                wrong = amount * 100
                self._append("SALE", wrong, "00", "00", [], ts)
                self._append("VOID", wrong, "00", "00", ["AMOUNT_CORRECTED"], ts + timedelta(seconds=40))
            else:
                self._append("SALE", amount, "00", "00", [], ts)
        if s := self.sev("data_loss"):
            for _ in range(1 + int(5 * s)):  # records deleted from the journal
                del self.log[rng.randrange(10, len(self.log) - 10)]

    def _append(self, kind: str, amount: int, display: str, host_rc: str, events: list[str],
                ts: datetime | None = None) -> LogEntry:
        seq = (self.log[-1].seq if self.log else 0) + 1
        entry = LogEntry(seq, ts or datetime.now(timezone.utc), kind, amount, TEST_PAN, display,
                         host_rc, events)
        self.log.append(entry)
        return entry

    # -- power and life cycle ---------------------------------------------------------------
    def _power_on(self, boot_s: float | None = None) -> None:
        self.boot_id = f"{self.rng.getrandbits(32):08x}"
        self.booted_at = time.monotonic() + (self.timing.boot_s if boot_s is None else boot_s)
        self.commands_since_boot = 0
        self.state = "booting"

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

    def start(self) -> "VirtualTerminal":
        self._thread = threading.Thread(target=self._run, name="virtual-terminal", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        if self._host:
            self._host.close()
        self.port.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.powered:
                self.port.discard_input()  # an unpowered unit hears nothing
                time.sleep(0.05)
                continue
            if self.state == "booting":
                if time.monotonic() < self.booted_at:
                    self.port.discard_input()  # a booting unit ignores its ECR port
                    time.sleep(0.05)
                    continue
                self.state = "idle"
                self._send_pending_reversal()
            try:
                if self.link.wait_enq(0.2):
                    self._serve_one()
            except (UnitError, OSError, TimeoutError):
                self.err["err_comm"] += 1  # the ECR side vanished or garbled a frame

    # -- command handling -------------------------------------------------------------------
    def _serve_one(self) -> None:
        try:
            request = decode_message(self.link.receive_after_enq("reading an ECR request"))
        except MessageError:
            self.err["err_comm"] += 1
            self.link.send(encode_message("ERR", {"rc": "ERR", "reason": "bad_message"}))
            return
        self.commands_since_boot += 1
        if self._app_crashes(request.command):
            self._app_restart()
            return  # the command is lost with the crash
        time.sleep(self._latency())
        losses = self.power_losses
        reply = self._dispatch(request)
        if self.power_losses != losses or not self.powered:
            return  # the unit lost power while working on it: no reply ever leaves
        self.link.send(reply.encode(), f"replying to {request.command}")
        if request.command == "RBT":
            self._power_on()
        elif self._restart_after_reply:
            self._restart_after_reply = False
            self._app_restart()

    def _latency(self) -> float:
        t = self.timing
        delay = t.command_s + self.rng.uniform(0, t.jitter_s)
        if s := self.sev("resources"):  # a leak: each command costs more than the last
            delay += min(0.4, 0.01 * s * self.commands_since_boot)
            self.free_mem_kib = max(512, self.free_mem_kib - 40)
        return delay

    def _app_crashes(self, command: str) -> bool:
        s = self.sev("application")
        return bool(s) and command in ("ST", "ID", "LOG") and self.rng.random() < 0.08 + 0.22 * s

    def _app_restart(self) -> None:
        self.err["err_app"] += 1
        self.restarts += 1
        self._power_on(self.timing.app_restart_s)

    def _dispatch(self, req: Message) -> Message:
        handlers = {"ID": self._identify, "ST": self._status, "SALE": self._sale,
                    "LOG": self._log_page, "RBT": lambda r: {}, "CHIP": self._chip,
                    "ECHO": self._echo}
        handler = handlers.get(req.command)
        if handler is None:
            return Message(req.command, [("rc", "ERR"), ("reason", "unknown_command")])
        try:
            fields = handler(req)
        except (ValueError, KeyError):
            return Message(req.command, [("rc", "ERR"), ("reason", "bad_field")])
        items = fields.items() if isinstance(fields, dict) else fields
        return Message(req.command, [("rc", "OK")] + [(k, str(v)) for k, v in items])

    def _identify(self, req: Message) -> dict:
        return {"model": self.profile.model, "serial": self.serial, "firmware": self.firmware,
                "components": ",".join(f"{k}:{v}" for k, v in self.components.items())}

    def _status(self, req: Message) -> dict:
        clock = datetime.now(timezone.utc) + timedelta(seconds=self.clock_offset_s)
        return {"uptime_s": f"{max(0.0, time.monotonic() - self.booted_at):.1f}",
                "boot_id": self.boot_id, "restarts": self.restarts,
                "free_mem_kib": self.free_mem_kib, "total_mem_kib": self.total_mem_kib,
                **self.err, "cfg_crc": self._cfg_crc(), "cfg_crc_stored": self.cfg_crc_stored,
                "keys": ",".join(self.keys), "last_maint": self.last_maintenance,
                "clock": clock.strftime("%Y-%m-%dT%H:%M:%SZ"), "log_seq": self.log[-1].seq}

    def _log_page(self, req: Message) -> list[tuple[str, object]]:
        start, count = int(req.require("start")), min(50, max(1, int(req.require("max"))))
        page = [e for e in self.log if e.seq >= start][:count]
        while page and len(encode_message("LOG", [("rec", e.encode()) for e in page])) > MAX_MESSAGE - 64:
            page.pop()
        nxt = page[-1].seq + 1 if page else start
        return [("count", len(page)), ("next", nxt)] + [("rec", e.encode()) for e in page]

    def _chip(self, req: Message) -> dict:
        """Chip diagnostic: power the card in the slot, read its ATR, SELECT PSE."""
        if self.slot is None:
            return {"present": 0, "atr": "", "sw": "", "fci": "", "reason": "no_card"}
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
            return {"present": 1, "atr": atr.hex().upper(), "sw": response[-2:].hex().upper(),
                    "fci": response[:-2].hex().upper(), "reason": reason}
        finally:
            self.on_activity("idle")

    def _echo(self, req: Message) -> dict:
        """Network check from the unit: ``n`` 0800 echo requests (70=301) to its host."""
        n = min(MAX_ECHOES, max(1, int(req.require("n"))))
        per_echo_s = min(self.timing.host_timeout_s, float(req.get("timeout_ms") or 1e9) / 1000)
        latencies: list[str] = []
        reconnects = 0
        for _ in range(n):
            self._stan = self._stan % 999999 + 1
            now = datetime.now(timezone.utc)
            doc = {"t": "0800", "7": now.strftime("%m%d%H%M%S"), "11": f"{self._stan:06d}",
                   "41": self.terminal_id, "70": "301"}
            start = time.monotonic()
            try:
                if self._host is None:
                    if latencies or reconnects:
                        reconnects += 1
                    self._host = self.connect_host(self.host_address, per_echo_s)
                self._host.exchange(doc, timeout=per_echo_s)
                latencies.append(f"{(time.monotonic() - start) * 1000:.1f}")
            except (OSError, ProtocolError):
                self._reset_host()
                latencies.append("-")
        return {"sent": n, "answered": sum(1 for x in latencies if x != "-"),
                "lat_ms": ",".join(latencies), "reconnects": reconnects}

    # -- the sale state machine -------------------------------------------------------------
    def _sale(self, req: Message) -> dict:
        amount = int(req.require("amount"))
        if not 0 < amount < 10**12:
            raise ValueError("amount out of range")
        losses = self.power_losses
        alive = lambda: self.power_losses == losses and self.powered  # noqa: E731
        self.state = "sale"
        self.on_activity("reading")
        time.sleep(self.timing.card_read_s)  # the cardholder inserts the card, the unit reads it
        self.on_activity("idle")
        self._stan = self._stan % 999999 + 1
        stan = f"{self._stan:06d}"
        result = {"display": "", "host": 0, "host_rc": "", "stan": stan, "tid": self.terminal_id,
                  "pan": mask_pan(TEST_PAN), "auth": "", "reason": ""}
        if not alive():
            return result  # the card read was cut off: nothing was journaled or sent
        local = self.profile.local_failure_code
        if "TAK" not in self.keys or "mid" not in self.config:
            reason = "no_keys" if "TAK" not in self.keys else "no_config"
        elif self.sev("firmware_driver") and self.rng.random() < 0.5 * self.sev("firmware_driver"):
            reason = "kernel_error"
        else:
            reason = ""
        entry = self._append("SALE", amount, "", "", ["IN_PROGRESS"])
        self._inflight = (entry, None)
        if reason:
            result.update(display=local, reason=reason)
        else:
            self.state = "online"
            reply, reason = self._go_online(amount, stan)
            if not alive():
                return result  # power went while online: the journal recovers it at boot
            if reply is not None and self.sev("application") and \
                    self.rng.random() < 0.1 + 0.3 * self.sev("application"):
                reply, reason = None, "app_restart"  # crashed holding the host's answer
                self._restart_after_reply = True
            if reply is None:
                result.update(display=local, reason=reason)
            else:
                rc = reply.get(39, "")
                result.update(display=rc, host=1, host_rc=rc, auth=reply.get(38, ""))
                if rc == "00":
                    entry.display, entry.host_rc = rc, rc
                    self.on_activity("printing")
                    time.sleep(self.timing.print_s)
                    self.on_activity("idle")
                    if not alive():
                        return result  # cut off while printing the receipt
        self.state = "result"
        entry.display, entry.host_rc = result["display"], result["host_rc"]
        entry.events = [result["reason"].upper()] if result["reason"] else []
        self._inflight = None
        self.state = "idle"
        return result

    def _go_online(self, amount: int, stan: str) -> tuple[dict | None, str]:
        """Send a 0200 and wait ``host_timeout_s``; returns (reply fields by number, reason)."""
        now = datetime.now(timezone.utc)
        doc = {"t": "0200", "2": TEST_PAN, "3": "000000", "4": f"{amount:012d}",
               "7": now.strftime("%m%d%H%M%S"), "11": stan, "12": now.strftime("%H%M%S"),
               "13": now.strftime("%m%d"), "22": "051", "25": "00", "41": self.terminal_id,
               "42": self.config["mid"], "49": self.config["currency"]}
        try:
            if self._host is None:
                self._host = self.connect_host(self.host_address, self.timing.host_timeout_s)
            if self._pending_reversal:
                self._host.exchange(self._pending_reversal, timeout=self.timing.host_timeout_s)
                self._pending_reversal = None
            if self._inflight is not None:
                self._inflight = (self._inflight[0], doc)  # from here on the host may have it
            reply = self._host.exchange(doc, timeout=self.timing.host_timeout_s)
        except (TimeoutError, ProtocolError) as exc:
            self._reset_host()
            self._pending_reversal = {**doc, "t": "0400"}
            return None, "host_timeout" if isinstance(exc, TimeoutError) else "host_format"
        except OSError:
            self._reset_host()
            return None, "host_unreachable"
        return {int(k): v for k, v in reply.items() if k.isdigit()}, ""

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
