"""The probe table: which protocols ``posbench discover --probe`` asks a port, at which line
settings, with what question, and what counts as an answer.

Each entry is one protocol. A serial port is asked entry by entry, each at its line settings in
order, until one answers; a port that answered is that device and is asked nothing more (a
terminal never gets a supply command, a supply never a terminal's). An entry whose adapter ids
(``usb_hint``) match the port's USB adapter goes first. Every question is bounded by a short
timeout, so a silent port costs the sum of the entries' waits (about 2 s), and a port that cannot
be opened is said once (``PortUnavailable`` from the first entry ends it).

Each ``ask`` reuses the driver that runs the device on a bench: the agent protocol's
``AgentTerminal``, the ZVT driver's link (``ZvtTerminal`` on ``SerialTransport`` /
``TcpTransport``), ``KoradSupply``, and nfcpy through ``NfcReader``.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from posbench.setup.config import TerminalSection, UsbId
from posbench.core.errors import BenchError, PortUnavailable, UnitError

if TYPE_CHECKING:
    from posbench.drivers.ecr.zvt.client import ZvtTerminal

TIMEOUT_S = 0.3
"""How long each question waits for the first sign of an answer (seconds)."""


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
    usb_hint: frozenset[UsbId] = frozenset()
    """USB-serial adapters this device is usually on: such a port asks this entry first."""


@dataclass(frozen=True)
class TcpProbe:
    protocol: str
    port: int
    """The protocol's usual TCP port, tried when ``--address`` names only a host."""
    asks: str
    answered_by: str
    ask: TcpAsk


# -- the agent protocol ---------------------------------------------------------------------------
def ask_agent(port: str, settings: LineSettings, timeout_s: float) -> Answer:
    from posbench.drivers.ecr.agent.adapter import AgentTerminal
    from posbench.drivers.transport.enq_ack import LinkTiming
    timing = LinkTiming(enq_tries=1, enq_wait=timeout_s, ack_wait=1.0, inter_byte=0.2)
    terminal = AgentTerminal(port, settings.baudrate, reply_timeout=1.0, timing=timing)
    try:
        terminal.open()  # PortUnavailable: the port cannot be opened at all
        ident = terminal.identify()
    except PortUnavailable:
        raise
    except (UnitError, BenchError) as exc:  # silence, garbage, or the port lost mid-question
        raise NoAnswer(exc.detail or str(exc)) from None
    finally:
        terminal.close()
    return Answer("agent", "terminal", f"answered ID: {ident.model} serial {ident.serial} firmware "
                  f"{ident.firmware}", settings, {"protocol": "agent", "port": port,
                                                  "baudrate": settings.baudrate},
                  {"model": ident.model, "serial": ident.serial})


# -- ZVT ------------------------------------------------------------------------------------------
ZVT_PASSWORD = TerminalSection.model_fields["password"].default
"""The password the status enquiry carries: bench.toml's default (a PT with another one
answers 84 xx, which identifies it as well)."""


def _zvt_answer(terminal: ZvtTerminal, where: dict[str, Any], settings: LineSettings | None) -> Answer:
    """Run a status enquiry (05 01) on ``terminal``: answered 80 00 (with its completion) or
    84 xx is a ZVT PT; silence or anything else is ``NoAnswer``."""
    from posbench.drivers.ecr.zvt.client import CommandRejected
    try:
        result = terminal.status_enquiry()
    except CommandRejected as exc:
        return Answer("zvt", "terminal", f"answered the status enquiry 84 {exc.result_code:02X} "
                      f"({exc.meaning})", settings, where)
    except (UnitError, BenchError) as exc:  # silence, garbage, refused connection, port lost
        raise NoAnswer(exc.detail or str(exc)) from None
    finally:
        terminal.close()
    unit = {k: v for k, v in (("model", result.device_name), ("serial", result.serial_number)) if v}
    about = ", ".join(f"{k} {v}" for k, v in (("model", result.device_name), ("serial", result.serial_number),
                                               ("software", result.software_version)) if v)
    status = result.terminal_status_meaning or "no status byte"
    return Answer("zvt", "terminal", f"answered the status enquiry 80 00: {about or 'no identity'}; "
                  f"status {status}", settings, where, unit)


def ask_zvt_serial(port: str, settings: LineSettings, timeout_s: float) -> Answer:
    from posbench.drivers.ecr.zvt.client import ZvtTerminal
    from posbench.drivers.ecr.zvt.link import LinkTiming, SerialTransport
    transport = SerialTransport(port, settings.baudrate, LinkTiming(t2_s=timeout_s, repeats=0), reopen_s=0.0)
    transport.open()  # PortUnavailable: the port cannot be opened at all
    terminal = ZvtTerminal(transport, password=ZVT_PASSWORD, t3_s=1.0, t4_s=2.0)
    return _zvt_answer(terminal, {"protocol": "zvt", "port": port, "baudrate": settings.baudrate}, settings)


def ask_zvt_tcp(host: str, port: int, timeout_s: float) -> Answer:
    from posbench.drivers.ecr.zvt.client import ZvtTerminal
    from posbench.drivers.ecr.zvt.link import TcpTransport
    transport = TcpTransport(host, port, connect_timeout_s=timeout_s, rest_timeout_s=1.0)
    terminal = ZvtTerminal(transport, password=ZVT_PASSWORD, t3_s=1.0, t4_s=2.0)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return _zvt_answer(terminal, {"protocol": "zvt", "address": address}, None)


# -- Caisse-AP (Concert V3 over TCP) ----------------------------------------------------------------
def ask_caisse_ap(host: str, port: int, timeout_s: float) -> Answer:
    from posbench.drivers.ecr.caisse_ap.client import probe
    said = probe(host, port, timeout_s=timeout_s)
    if said is None:
        raise NoAnswer("no Caisse-AP answer (a CZ field and AE)")
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Answer("caisse-ap", "terminal", f"answered: {said}", None,
                  {"protocol": "caisse-ap", "address": address})


# -- Concert V2 -----------------------------------------------------------------------------------
def ask_concert(port: str, settings: LineSettings, timeout_s: float) -> Answer:
    from posbench.drivers.ecr.concert.link import probe
    try:
        answered = probe(port, line=settings.line, timeout_s=timeout_s)
    except PortUnavailable as exc:
        if settings.bytesize == 8:  # 8N1 comes first: a port that cannot be opened at all
            raise
        # The port opened at 8N1 a moment ago; refusing 7E1 (a pty, an adapter without 7-bit
        # support) says only that no 7E1 terminal can be on it.
        raise NoAnswer(f"the port refuses {settings.line} ({exc.detail or exc})") from None
    if not answered:
        raise NoAnswer("no ACK to ENQ")
    return Answer("concert", "terminal", f"answered ENQ with ACK ({settings.line})", settings,
                  {"protocol": "concert", "port": port, "baudrate": settings.baudrate, "line": settings.line})


# -- Korad KA3005P and rebadges -------------------------------------------------------------------
def ask_korad(port: str, settings: LineSettings, timeout_s: float) -> Answer:
    from posbench.drivers.power.korad import KoradSupply
    supply = KoradSupply(port, timeout=timeout_s, reopen_s=0.0)
    try:
        supply.open()  # PortUnavailable: the port cannot be opened at all
        ident = supply.identify()
    except PortUnavailable:
        raise
    except BenchError as exc:  # SupplyNotResponding, SupplyProtocolError: no supply answered
        raise NoAnswer(exc.detail or str(exc)) from None
    finally:
        supply.close()
    return Answer("korad", "supply", f"answered *IDN?: {ident.text}", settings,
                  {"driver": "korad", "port": port, "channel": 1})


# -- PN532 on a UART, through nfcpy -----------------------------------------------------------------
_DEV_TTY = re.compile(r"/dev/tty(?P<name>[A-Za-z0-9]+)")


def nfc_path(port: str) -> str:
    """The nfcpy path of a PN532 on ``port``: ``tty:USB0:pn532`` for /dev/ttyUSB0 (nfcpy's own
    tty search), the device path itself where nfcpy's syntax cannot name it (a by-id link, a pty)."""
    m = _DEV_TTY.fullmatch(port)
    return f"tty:{m['name']}:pn532" if m else port


def ask_pn532(port: str, settings: LineSettings, timeout_s: float) -> Answer:
    from posbench.drivers.nfc.reader import NfcReader
    path = nfc_path(port)
    try:
        reader = NfcReader(path, timeout=max(1.0, timeout_s))
    except PortUnavailable as exc:  # ReaderSilent, or nfcpy found no reader there
        raise NoAnswer(exc.detail) from None
    try:
        described = reader.describe()
    finally:
        reader.close()
    return Answer("pn532", "nfc reader", f"answered GetFirmwareVersion: {described}", settings, {"path": path})


# -- the tables -----------------------------------------------------------------------------------
KORAD_ADAPTER = UsbId(0x0416, 0x5011)
"""The KA3005P's own USB CDC port (Winbond "Virtual Com Port")."""

SERIAL_PROBES: tuple[SerialProbe, ...] = (
    SerialProbe("agent", "terminal", (LineSettings(9600), LineSettings(115200)), "ID",
                "an ID reply (model, serial, firmware)", ask_agent),
    SerialProbe("zvt", "terminal", (LineSettings(9600, stopbits=2), LineSettings(115200, stopbits=2)),
                "status enquiry 05 01", "80 00 or 84 xx", ask_zvt_serial),
    SerialProbe("concert", "terminal", (LineSettings(9600), LineSettings(9600, 7, "E")), "ENQ", "ACK",
                ask_concert),
    SerialProbe("korad", "supply", (LineSettings(9600),), "*IDN?", "a printable identity",
                ask_korad, frozenset({KORAD_ADAPTER})),
    SerialProbe("pn532", "nfc reader", (LineSettings(115200),), "GetFirmwareVersion (nfcpy)",
                "a PN532 firmware version", ask_pn532),
)
"""Serial protocols in the order a port is asked (terminals before the bench's instruments)."""

TCP_PROBES: tuple[TcpProbe, ...] = (
    TcpProbe("zvt", 20007, "status enquiry 05 01", "80 00 or 84 xx", ask_zvt_tcp),
    TcpProbe("caisse-ap", 8888, "a debit request without amount", "CZ and AE (a refusal, AF 09)", ask_caisse_ap),
)
"""TCP protocols ``--address`` tries, each on its usual port (or the port given)."""


# -- running the table ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Tried:
    """One question that drew no answer: which protocol, what it asked, where (line settings or
    TCP port), and what came instead."""

    protocol: str
    asks: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.protocol} ({self.asks}) at {self.where}: {self.detail}"


def summary(tried: list[Tried]) -> str:
    """``agent (ID) at 9600 8N1, 115200 8N1; zvt (...) at ...``: each protocol once."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for t in tried:
        grouped.setdefault((t.protocol, t.asks), []).append(t.where)
    return "; ".join(f"{p} ({a}) at {', '.join(w)}" for (p, a), w in grouped.items())


@dataclass
class PortResult:
    """What one serial port answered (``answer``), what was tried where nothing did
    (``tried``), or why it could not be opened (``problem``)."""

    port: str
    answer: Answer | None = None
    tried: list[Tried] = field(default_factory=list)
    problem: str = ""


def order_for(adapter: UsbId | None, probes: tuple[SerialProbe, ...] = SERIAL_PROBES) -> list[SerialProbe]:
    """The table with the entries hinted by ``adapter`` first (stable otherwise)."""
    return sorted(probes, key=lambda p: adapter not in p.usb_hint)


def probe_port(port: str, adapter: UsbId | None = None, probes: tuple[SerialProbe, ...] = SERIAL_PROBES,
               timeout_s: float = TIMEOUT_S) -> PortResult:
    """Ask ``port`` entry by entry until one answers."""
    result = PortResult(port)
    for probe in order_for(adapter, probes):
        for settings in probe.settings:
            try:
                result.answer = probe.ask(port, settings, timeout_s)
                return result
            except NoAnswer as exc:
                result.tried.append(Tried(probe.protocol, probe.asks, str(settings), exc.detail))
            except PortUnavailable as exc:
                result.problem = exc.detail or str(exc)
                return result
    return result


@dataclass
class TcpResult:
    """What answered at one TCP address, or what was tried there."""

    address: str
    answer: Answer | None = None
    tried: list[Tried] = field(default_factory=list)


def split_address(text: str) -> tuple[str, int | None]:
    """``HOST``, ``HOST:PORT``, ``[v6]:PORT`` or a bare IPv6 address -> (host, port or None)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return text, None


def probe_address(host: str, port: int | None = None, probes: tuple[TcpProbe, ...] = TCP_PROBES,
                  timeout_s: float = 1.0) -> list[TcpResult]:
    """Each TCP entry at ``host``: on ``port`` when given, else on the protocol's usual port."""
    results: dict[int, TcpResult] = {}
    for probe in probes:
        where = port or probe.port
        result = results.setdefault(where, TcpResult(f"{host}:{where}"))
        if result.answer is not None:
            continue
        try:
            result.answer = probe.ask(host, where, timeout_s)
        except NoAnswer as exc:
            result.tried.append(Tried(probe.protocol, probe.asks, f"TCP {where}", exc.detail))
    return list(results.values())
