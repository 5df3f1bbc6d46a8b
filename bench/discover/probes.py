"""The probe table: which protocols ``posbench discover --probe`` asks a port, at which line
settings, with what question, and what counts as an answer.

Each entry is one protocol. A serial port is asked entry by entry, each at its line settings in
order, until one answers; a port that answered is that device and is asked nothing more (a
terminal never gets a supply command, a supply never a terminal's). An entry whose adapter ids
(``usb_hint``) match the port's USB adapter goes first. Every question is bounded by a short
timeout, so a silent port costs the sum of the entries' waits (about 2 s), and a port that cannot
be opened is said once (``PortUnavailable`` from the first entry ends it).

Each ``ask`` reuses the driver that runs the device on a bench: a terminal protocol's entries are
its package's ``probe`` module (``posbench.drivers.registry``), then ``KoradSupply`` and nfcpy
through ``NfcReader``. The table's types are ``posbench.drivers.probing``'s.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from posbench.core.errors import BenchError, PortUnavailable
from posbench.drivers import registry
from posbench.drivers.probing import Answer, LineSettings, NoAnswer, SerialProbe, TcpProbe
from posbench.setup.config import UsbId

TIMEOUT_S = 0.3
"""How long each question waits for the first sign of an answer (seconds)."""


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
    *registry.serial_probes(),
    SerialProbe("korad", "supply", (LineSettings(9600),), "*IDN?", "a printable identity",
                ask_korad, frozenset({KORAD_ADAPTER})),
    SerialProbe("pn532", "nfc reader", (LineSettings(115200),), "GetFirmwareVersion (nfcpy)",
                "a PN532 firmware version", ask_pn532),
)
"""Serial protocols in the order a port is asked (terminals before the bench's instruments)."""

TCP_PROBES: tuple[TcpProbe, ...] = registry.tcp_probes()
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
