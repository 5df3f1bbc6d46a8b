"""Driver of the posbench agent protocol (``docs/agent-protocol.md``): units that run posbench's
diagnostic agent answer identity, a rich status, sales, the journal, a chip diagnostic and echo
series over a serial ECR link. Implements ``posbench.drivers.terminal.Terminal``."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from posbench.core.errors import MessageError, PortLost, UnitError
from posbench.core.masking import mask_pan

from posbench.drivers.terminal import (ChipResult, EchoResult, HostCheck, Identity, LogRecord, SaleResult, Status,
                              Unsupported)

from .codec import Message, decode_message, encode_message
from posbench.drivers.transport.enq_ack import Link, LinkTiming
from posbench.drivers.serial.port import SerialBytePort
from .section import Section


class UnitRejected(UnitError):
    """The unit answered with ``rc=BUSY`` or ``rc=ERR``."""


def _int(msg: Message, key: str) -> int:
    try:
        return int(msg.require(key))
    except ValueError:
        raise MessageError(f"{msg.command} field {key!r} is not a number") from None


def parse_log_record(text: str) -> LogRecord:
    parts = text.split(";")
    if len(parts) != 8:
        raise MessageError(f"log record has {len(parts)} parts, expected 8")
    seq, ts, kind, amount, pan, display, host_rc, events = parts
    try:
        return LogRecord(int(seq), ts, kind, int(amount), mask_pan(pan) if pan else "", display,
                         host_rc, tuple(e for e in events.split("+") if e))
    except ValueError:
        raise MessageError("log record has a non-numeric sequence or amount") from None


AGENT_CAPABILITIES = frozenset({
    "identity", "components", "status", "memory", "error_counters", "config_checksum", "keys", "maintenance",
    "clock", "boot_id", "journal", "sale", "chip_diagnostic", "echo", "host_diagnosis",
    "link_counters", "reboot"})
"""What the agent protocol answers (no reversal or abort command, no card technology in a sale)."""


@dataclass
class AgentTerminal:
    """A unit running posbench's agent on its ECR link; ``url`` is anything
    ``serial.serial_for_url`` opens."""

    protocol = "agent"
    capabilities = AGENT_CAPABILITIES

    url: str
    baudrate: int = 9600
    reply_timeout: float = 3.0
    """Seconds to wait for the reply to a short command."""
    sale_timeout: float = 40.0
    """Seconds to wait for a sale to finish."""
    boot_timeout: float = 30.0
    """Seconds to wait for the unit to answer after a reboot."""
    timing: LinkTiming = field(default_factory=LinkTiming)
    device: str = "terminal"

    def __post_init__(self) -> None:
        self.port = SerialBytePort(self.url, self.baudrate, self.device)
        self.link = Link(self.port, self.timing, self.device)
        self._serial_seen: str | None = None
        self._reopens_checked = 0

    def open(self) -> "AgentTerminal":
        self.port.open()
        return self

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> "AgentTerminal":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, command: str, fields: dict[str, object] | None = None,
                timeout: float | None = None) -> Message:
        """Send one command and return its reply; typed errors for every failure."""
        self._check_same_unit()
        return self._exchange(command, fields, timeout)

    def _check_same_unit(self) -> None:
        """After the port was reopened, make sure the unit that answers is the one we had.

        A port path can come back belonging to another device (a pty number reused, another
        adapter enumerated as ttyUSB0): talking on would judge the wrong unit.
        """
        if self.port.reopens == self._reopens_checked or self._serial_seen is None:
            return
        self._reopens_checked = self.port.reopens
        serial = self._exchange("ID").get("serial")
        if serial != self._serial_seen:
            raise PortLost(self.device, f"reopening ECR port {self.url}",
                           f"unit {serial} answers on the port that came back, not {self._serial_seen}")

    def _exchange(self, command: str, fields: dict[str, object] | None = None,
                  timeout: float | None = None) -> Message:
        doing = f"{command} command"
        self.link.send(encode_message(command, fields or {}), doing)
        reply = self.link.receive_as(decode_message, timeout or self.reply_timeout, doing)
        if reply.command != command:
            raise MessageError(f"reply to {command} carries command {reply.command}",
                               self.device, doing)
        rc = reply.get("rc")
        if rc != "OK":
            raise UnitRejected(self.device, doing, f"rc={rc} reason={reply.get('reason', '')}")
        return reply

    def identify(self) -> Identity:
        msg = self.request("ID")
        components = {}
        for item in filter(None, msg.require("components").split(",")):
            name, _, version = item.partition(":")
            components[name] = version
        identity = Identity(msg.require("model"), msg.require("serial"), msg.require("firmware"),
                            components)
        self._serial_seen = self._serial_seen or identity.serial
        return identity

    def status(self) -> Status:
        msg = self.request("ST")
        try:
            uptime = float(msg.require("uptime_s"))
        except ValueError:
            raise MessageError("ST field 'uptime_s' is not a number") from None
        return Status(
            uptime_s=uptime, boot_id=msg.require("boot_id"), restarts=_int(msg, "restarts"),
            free_mem_kib=_int(msg, "free_mem_kib"), total_mem_kib=_int(msg, "total_mem_kib"),
            error_counters={k: _int(msg, k) for k in ("err_comm", "err_reader", "err_app")},
            cfg_crc=msg.require("cfg_crc"), cfg_crc_stored=msg.require("cfg_crc_stored"),
            keys=tuple(k for k in msg.require("keys").split(",") if k),
            last_maintenance=msg.require("last_maint"), clock=msg.require("clock"),
            log_seq=_int(msg, "log_seq"))

    def sale(self, amount: int, timeout: float | None = None) -> SaleResult:
        """Run a sale of ``amount`` (minor units); ``timeout`` s defaults to ``sale_timeout``."""
        msg = self.request("SALE", {"amount": int(amount)}, timeout=timeout or self.sale_timeout)
        return SaleResult(
            display_code=msg.require("display"), host_answered=msg.require("host") == "1",
            host_code=msg.get("host_rc", ""), acquirer_code=msg.get("host_rc"),  # absent: the agent did not say
            stan=msg.require("stan"), terminal_id=msg.require("tid"),
            pan=mask_pan(msg.get("pan", "")) if msg.get("pan") else "", auth_code=msg.get("auth", ""),
            reason=msg.get("reason", ""))

    def chip(self) -> ChipResult:
        """Power the contact card in the slot, read its ATR and SELECT the PSE."""
        msg = self.request("CHIP", timeout=3 * self.reply_timeout)
        try:
            atr, fci = bytes.fromhex(msg.get("atr", "")), bytes.fromhex(msg.get("fci", ""))
        except ValueError:
            raise MessageError("CHIP field 'atr' or 'fci' is not hex", self.device, "CHIP command") from None
        return ChipResult(present=msg.require("present") == "1", atr=atr,
                          status_word=msg.get("sw", "").upper(), fci=fci, reason=msg.get("reason", ""))

    def echo(self, count: int, per_echo_s: float = 1.0) -> EchoResult:
        """Ask the unit to send ``count`` echo requests to its host (at most 20 per call), each
        given ``per_echo_s`` seconds; the reply is awaited for all of them plus the reply timeout."""
        msg = self.request("ECHO", {"n": int(count), "timeout_ms": int(per_echo_s * 1000)},
                           timeout=count * (per_echo_s + 0.2) + self.reply_timeout)
        latencies: list[float | None] = []
        for item in filter(None, msg.require("lat_ms").split(",")):
            try:
                latencies.append(None if item == "-" else float(item) / 1000)
            except ValueError:
                raise MessageError("ECHO field 'lat_ms' is not a list of numbers", self.device,
                                   "ECHO command") from None
        return EchoResult(sent=_int(msg, "sent"), latencies_s=tuple(latencies),
                          reconnects=_int(msg, "reconnects"))

    def host_check(self) -> HostCheck:
        """One echo through the unit to its host."""
        start = time.monotonic()
        result = self.echo(1)
        ok = bool(result.latencies_s) and result.latencies_s[0] is not None
        return HostCheck(ok, None, "" if ok else "the echo to its host went unanswered",
                         time.monotonic() - start)

    def link_counters(self) -> dict[str, int]:
        return self.link.stats.snapshot()

    def reverse_last(self) -> SaleResult:
        raise Unsupported(self.protocol, "reversal")

    def abort(self) -> None:
        raise Unsupported(self.protocol, "abort")

    def transaction_log(self, last: int) -> list[LogRecord]:
        """The newest ``last`` records, oldest first, read in pages."""
        newest = self.status().log_seq
        assert newest is not None  # status() always reads log_seq from the agent (_int)
        start = max(1, newest - last + 1)
        records: list[LogRecord] = []
        while start <= newest and len(records) < last:
            msg = self.request("LOG", {"start": start, "max": 20})
            page = [parse_log_record(r) for r in msg.getall("rec")]
            records.extend(page)
            nxt = _int(msg, "next")
            if not page or nxt <= start:
                break
            start = nxt
        return records[-last:]

    def reboot(self) -> None:
        """Restart the unit and wait until it answers again (``boot_timeout`` s at most)."""
        self.request("RBT")
        self.wait_ready(self.boot_timeout)

    def wait_ready(self, timeout: float, poll_s: float = 0.2) -> float:
        """Poll ``ST`` until the unit answers; returns the seconds it took.

        While polling, each try sends one ENQ and waits ``poll_s`` seconds for its ACK instead of
        the protocol's 3 x 1 s, so a unit that has just booted is seen within ``poll_s``.
        """
        start = time.monotonic()
        deadline = start + timeout
        self.link.timing = replace(self.timing, enq_tries=1, enq_wait=poll_s)
        try:
            while True:
                try:
                    self.status()
                    return time.monotonic() - start
                except UnitError:
                    if time.monotonic() >= deadline:
                        raise
        finally:
            self.link.timing = self.timing


CANNOT_TELL_APART = ""
"""What the agent protocol is known not to tell apart (stated under its calibration table): nothing."""


def open_terminal(section: Section, model: str | None = None) -> AgentTerminal:
    """The driver of a validated ``[terminal]`` section, opened (the agent reports its own model)."""
    if section.port is None:  # TerminalSection refuses this when bench.toml is read
        raise ValueError("the agent protocol needs a port")
    return AgentTerminal(section.port, section.baudrate, section.reply_timeout, section.sale_timeout,
                         section.boot_timeout).open()


def capabilities(section: Section) -> frozenset[str]:
    return AGENT_CAPABILITIES
