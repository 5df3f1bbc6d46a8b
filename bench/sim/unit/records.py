"""What the virtual unit is made of and answers with: its constants, its step times
(``TerminalTiming``), the fault rates by severity, and the plain results a front end turns into
its own wire messages (journal records, chip diagnostics, card reads, echoes, sales, reversals).
Times are seconds, amounts minor units."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from posbench.core.errors import ProtocolError
from posbench.core.masking import mask_pan
from posbench.setup.profile import Profile


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
class Authorisation:
    """The end of a sale inside the virtual unit, before a front end puts it in its protocol's
    words (not ``posbench.drivers.terminal.SaleResult``, what a driver reads from those words).
    ``display`` is the code the unit shows (the host's, or its own
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
