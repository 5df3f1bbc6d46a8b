"""What a HIL test may ask of a payment terminal, whatever ECR protocol it speaks.

Every terminal driver implements ``Terminal`` and declares its ``capabilities``: the questions
its protocol can answer. The posbench agent protocol (``drivers/ecr/agent/adapter.py``, units running
posbench's diagnostic agent) answers nearly all of them; ZVT (``drivers/ecr/zvt/adapter.py``)
far fewer. A test whose question the unit's protocol cannot answer is skipped and listed as
unmeasured, never counted as healthy. Results are plain dataclasses; a field the protocol does
not report is None.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable


CAPABILITIES: dict[str, str] = {
    "identity": "tell its serial number and firmware",
    "components": "list its component versions (EMV kernel, contactless kernel, drivers)",
    "status": "report its status",
    "memory": "report its free memory",
    "error_counters": "report its error counters",
    "config_checksum": "report a checksum of its configuration",
    "keys": "list the keys it holds",
    "maintenance": "report the date of its last maintenance",
    "clock": "report its clock",
    "boot_id": "tell one boot from the next (restarts)",
    "terminal_status": "report a terminal status code and lock bits",
    "journal": "hand over its transaction journal",
    "sale": "run a sale",
    "card_sale": "say how a sale read the card (technology, read errors), so its own readers can be judged",
    "reversal": "reverse a sale",
    "chip_diagnostic": "power a chip card and read its ATR and PSE on request",
    "echo": "time ISO 8583 echoes to its host on request",
    "host_diagnosis": "check its host connection on request",
    "link_counters": "count link-level errors (NAKs, repeats)",
    "reboot": "restart on request",
    "abort": "abort a transaction in progress",
}
"""Capability name -> what a terminal that has it can do (the words of a skip reason)."""


READ_PATH_CAUSE = {"magstripe": "msr_head", "chip": "chip_contacts", "contactless": "nfc_antenna"}
"""A card read failure points at the reader of the technology that read it (``SaleResult.card_technology``)."""


class Unsupported(Exception):
    """The terminal's protocol cannot answer this question (a capability it lacks)."""

    def __init__(self, protocol: str, capability: str):
        self.protocol, self.capability = protocol, capability
        super().__init__(f"the {protocol} protocol cannot {CAPABILITIES.get(capability, capability)}")


@dataclass(frozen=True)
class Identity:
    model: str
    serial: str
    firmware: str
    components: dict[str, str]


@dataclass(frozen=True)
class Status:
    """A status report; None where the protocol does not report the field."""
    uptime_s: float | None = None
    boot_id: str | None = None
    restarts: int | None = None
    free_mem_kib: int | None = None
    total_mem_kib: int | None = None
    error_counters: dict[str, int] | None = None
    cfg_crc: str | None = None
    cfg_crc_stored: str | None = None
    keys: tuple[str, ...] | None = None
    last_maintenance: str | None = None
    clock: str | None = None
    """ISO 8601 UTC, "YYYY-MM-DDTHH:MM:SSZ"."""
    log_seq: int | None = None
    terminal_status: int | None = None
    """Protocol status code (ZVT terminal status byte; 0 = ready)."""
    terminal_status_text: str = ""
    locks: tuple[str, ...] = ()
    """Names of the lock bits set (ZVT TLV 1F55), e.g. "transaction log defective"."""


@dataclass(frozen=True)
class SaleResult:
    display_code: str
    """The response code the unit showed the operator (two digits, e.g. "00", "01")."""
    host_answered: bool
    host_code: str
    """Field 39 the unit received from the host ("" when none)."""
    stan: str
    terminal_id: str
    pan: str
    """Masked PAN (first 6 / last 4)."""
    auth_code: str
    reason: str
    """Why the unit failed the sale itself, in the protocol's words ("" when it did not)."""
    result_code: int | None = None
    """The protocol's own result code (ZVT BMP 27 / 06 1E), None where it has none."""
    card_technology: str | None = None
    """How the card was read: "magstripe", "chip" or "contactless" (None: not reported)."""
    intermediates: tuple[int, ...] = ()
    """Intermediate statuses in order (ZVT 04 FF)."""
    details: dict[str, str] = field(default_factory=dict)
    """Further protocol findings by name (contactless error, vendor error code and text)."""
    acquirer_code: str | None = None
    """The acquirer's response code (ISO 8583 field 39) as the terminal's own report states it:
    ZVT BMP A0, else a host code 01-63 in BMP 27 [P15 10: passed through from the authorisation
    system]; Concert's report; Caisse-AP AF's field 39; the agent's ``host_rc``. "" when the
    report says the acquirer gave none (the terminal decided itself); None when the report cannot
    say (the protocol or this answer carries no acquirer code). What tells a host's 01 from a 01
    the unit made itself without posbench's own host log."""


@dataclass(frozen=True)
class ChipResult:
    """The terminal's chip diagnostic: power the contact card, ATR, SELECT PSE."""
    present: bool
    atr: bytes
    status_word: str
    fci: bytes
    reason: str


@dataclass(frozen=True)
class EchoResult:
    """An ISO 8583 echo series (0800/0810, 70=301) the unit ran to its host."""
    sent: int
    latencies_s: tuple[float | None, ...]
    """Per echo, seconds to the answer; None when it was not answered."""
    reconnects: int


@dataclass(frozen=True)
class HostCheck:
    """The unit's own check of its host connection (ZVT diagnosis)."""
    ok: bool
    result_code: int | None
    reason: str
    duration_s: float


@dataclass(frozen=True)
class LogRecord:
    seq: int
    ts: str
    type: str
    amount: int
    pan: str
    display_code: str
    host_code: str
    events: tuple[str, ...]


@runtime_checkable
class Terminal(Protocol):
    """A payment terminal on its ECR link. Methods a protocol cannot answer raise
    ``Unsupported``; ``capabilities`` says which those are before anything is asked."""

    protocol: str
    """"agent" | "zvt" | "concert" | "caisse-ap": in skip reasons and the verdict."""
    capabilities: frozenset[str]
    boot_timeout: float
    """Seconds the unit may take to answer again after power-on or a reboot."""

    def open(self) -> "Terminal": ...
    def close(self) -> None: ...
    def wait_ready(self, timeout: float) -> float: ...
    def identify(self) -> Identity: ...
    def status(self) -> Status: ...
    def sale(self, amount: int, timeout: float | None = None) -> SaleResult: ...
    def reverse_last(self) -> SaleResult: ...
    def transaction_log(self, last: int) -> list[LogRecord]: ...
    def chip(self) -> ChipResult: ...
    def echo(self, count: int, per_echo_s: float = 1.0) -> EchoResult: ...
    def host_check(self) -> HostCheck: ...
    def link_counters(self) -> dict[str, int]: ...
    def reboot(self) -> None: ...
    def abort(self) -> None: ...


class FewAnswers:
    """Base of a driver whose protocol answers few of ``Terminal``'s questions (ZVT, Concert,
    Caisse-AP): each question it does not define raises ``Unsupported`` naming the capability it
    lacks. ``protocol`` is set by the driver."""

    protocol: str

    def identify(self) -> Identity:
        raise Unsupported(self.protocol, "identity")

    def status(self) -> Status:
        raise Unsupported(self.protocol, "status")

    def reverse_last(self) -> SaleResult:
        raise Unsupported(self.protocol, "reversal")

    def transaction_log(self, last: int) -> list[LogRecord]:
        raise Unsupported(self.protocol, "journal")

    def chip(self) -> ChipResult:
        raise Unsupported(self.protocol, "chip_diagnostic")

    def echo(self, count: int, per_echo_s: float = 1.0) -> EchoResult:
        raise Unsupported(self.protocol, "echo")

    def host_check(self) -> HostCheck:
        raise Unsupported(self.protocol, "host_diagnosis")

    def link_counters(self) -> dict[str, int]:
        raise Unsupported(self.protocol, "link_counters")

    def reboot(self) -> None:
        raise Unsupported(self.protocol, "reboot")

    def abort(self) -> None:
        raise Unsupported(self.protocol, "abort")


def has(terminal: Terminal, capability: str) -> bool:
    if capability not in CAPABILITIES:
        raise KeyError(f"unknown capability {capability!r}")
    return capability in terminal.capabilities
