"""ZVT driver, ECR side: ``ZvtTerminal`` sends commands to a payment terminal (PT) and follows it
as slave until the command completes.

What the driver guarantees
  * Every wait is bounded: the link's ACK (T2, serial), the PT's answer to a command (T3, 5 s),
    and the slave phase (T4, 180 s), which every intermediate status (04 FF) or status
    information (04 0F) restarts and a 04 FF timeout replaces. A silent PT raises
    ``UnitNotResponding`` naming the command and the wait; nothing blocks for ever.
  * Every PT message of the slave phase is acknowledged ``80 00 00``: intermediate status, status
    information, print line, text block, completion, abort. PT commands the driver does not serve
    (dial-up, menus, input) are answered ``84 83 00`` and listed in ``refused_commands``.
  * Errors are typed: the bench's (``PortUnavailable``: wrong port or address, PT off;
    ``PortLost``) or the unit's (``UnitNotResponding``; ``CommandRejected`` for ``84 xx`` with the
    result-code meaning; ``TransmissionFailed``; ``ZvtFrameError`` / ``ZvtMessageError`` for
    malformed frames and messages, after answering ``84 9A 00`` to a malformed slave message).
  * Results are ``ZvtResult`` dataclasses: result code and meaning, intermediate statuses in
    order, receipt lines, terminal status, lock bits, device state, card technology (1F12),
    contactless error (1F47), vendor error (1F16/1F17), software version, terminal id, masked
    PAN, trace, receipt number, time/date, host result (A0).
  * Card data is never kept: the PAN is masked to first 6 / last 4, track, CVV and chip data are
    dropped when parsed (only their length is seen), receipt and display texts are scrubbed.
  * A 06 1E abort from the PT is a result (``aborted=True``), not an exception: a declined or
    failed payment is evidence for the bench, not a driver error.

Transports: ``ZvtTerminal.open_url("tcp://host[:port]")`` for ZVT over TCP (default port 20007),
any other URL (``/dev/ttyUSB0``, ``/dev/pts/N``, ``rfc2217://``, ``socket://``) for the serial
link through ``SerialBytePort``. Written by hand: no maintained ZVT library exists on PyPI.

Logging: the ``posbench.zvt`` logger has a DEBUG line per APDU sent and received
(``apdu_summary``: ``ECR>PT 06 01``, ``PT>ECR 04 FF status=0A``, ``PT>ECR 06 1E rc=64``), never
its data (``posbench triage --log FILE`` writes it).
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, TypeVar
from urllib.parse import urlsplit

from posbench.core.errors import BenchError, ConfigError, PortLost, PortUnavailable, UnitError, UnitNotResponding

from . import codes
from .codec import (Apdu, ZvtMessageError, bcd_encode, decode_apdu, encode_apdu, encode_bmp, is_positive,
                   parse_bmps)
from .results import Collector, ZvtResult
from .link import TCP_PORT, ZvtTiming, SerialTransport, Transport, ZvtLink
from .tcp import TcpTransport

T = TypeVar("T")
T3_S = 5.0
"""Longest wait for the PT's answer (80 00 / 84 xx) to a command, seconds [P16 5.2.5]."""
T4_S = 180.0
"""Longest wait from the answer to the completion, seconds; every 04 FF / 04 0F restarts it."""
CONFIG_BYTE = 0xBE
"""Registration config: ECR prints payment and administration receipts through 06 D1 / 06 D3,
wants intermediate status, controls payment and administration functions."""
SERVICE_STATUS_TLV = 0x04
"""Status enquiry service byte: send further status information (TLV 1F43 / 1F55 / E4)."""
SLAVE_MESSAGES = {(0x04, 0xFF): "intermediate", (0x04, 0x0F): "status_information",
                  (0x06, 0xD1): "print_line", (0x06, 0xD3): "text_block", (0x06, 0x1E): "abort"}
"""PT messages of the slave phase besides the completion -> the ``Collector`` method reading them."""
ACK_APDU = encode_apdu(0x80, 0x00)
NOT_POSSIBLE_APDU = encode_apdu(0x84, 0x83)
PROTOCOL_ERROR_APDU = encode_apdu(0x84, 0x9A)
ACKNOWLEDGING = {command: f"acknowledging PT message {command[0]:02X} {command[1]:02X}"
                 for command in ((0x06, 0x0F), *SLAVE_MESSAGES)}
"""What answering each slave-phase message is doing, in error messages (worded once)."""
log = logging.getLogger("posbench.zvt")
"""DEBUG: one line per APDU sent or received (``apdu_summary``); never payload or card data."""


def apdu_summary(apdu: Apdu, status_enquiry: bool = False) -> str:
    """An APDU for the log without its data: class and instruction, and only the result code
    (06 1E; BMP 27 of 04 0F / 06 0F), intermediate status (04 FF) and card type (BMP 8A) it
    carries: ``06 0F rc=00 card type=10``. A status enquiry's completion (``status_enquiry``)
    starts with the software version, not BMPs: only its command is shown."""
    text = f"{apdu.cls:02X} {apdu.instr:02X}"
    data = apdu.data
    if apdu.command in ((0x06, 0x1E), (0x04, 0xFF)) and data:
        return text + (" rc=" if apdu.instr == 0x1E else " status=") + f"{data[0]:02X}"
    if apdu.command == (0x06, 0x0F) and status_enquiry:
        return text
    if apdu.command in ((0x04, 0x0F), (0x06, 0x0F)):
        try:
            fields_ = parse_bmps(data)
        except ZvtMessageError:
            return text + " (malformed BMPs)"
        text += "".join(f" rc={v[0]:02X}" for bmp, v in fields_ if bmp == 0x27 and isinstance(v, bytes) and v)
        text += "".join(f" card type={v[0]}" for bmp, v in fields_ if bmp == 0x8A and isinstance(v, bytes) and v)
    return text


class CommandRejected(UnitError):
    """The PT refused a command with ``84 xx``; ``result_code`` and ``meaning`` say why."""

    def __init__(self, device: str, doing: str, result_code: int):
        self.result_code = result_code
        self.meaning = codes.result_meaning(result_code)
        super().__init__(device, doing, f"refused with result code {result_code:02X}: {self.meaning}")


class UnexpectedMessage(ZvtMessageError):
    """The PT sent a message that does not belong where it came (e.g. no 80 00 to a command)."""


class TerminalBusy(BenchError):
    """A command was called while another one of the same ``ZvtTerminal`` is still running (from
    another thread): both would read the same link. The bench's own requests collided: a bench
    error, never the unit's (the session's terminal, ``posbench.fixtures.shown_terminal``, has
    the bench's calls take turns so that this does not happen)."""


NOT_READY_CODES = frozenset({0x9C, 0xA0})
"""``84 xx`` answers to a status enquiry that mean "not yet" to ``wait_ready``: please wait,
receiver not ready."""


# What a command is doing, for error messages: worded once per command and timeout, not on every
# exchange (these run on every command's round trip).
@functools.lru_cache(maxsize=256)
def _doing(name: str, cls: int, instr: int) -> str:
    return f"ZVT {name} ({cls:02X} {instr:02X})"


@functools.lru_cache(maxsize=256)
def _waiting(doing: str, t3_s: float | None = None, t4_s: float | None = None) -> str:
    if t3_s is not None:
        return f"{doing}: waiting T3 = {t3_s:g} s for the PT's answer"
    return f"{doing}: waiting for the PT (T4 = {t4_s:g} s)"


@functools.lru_cache(maxsize=16)
def _bcd_password(password: str) -> bytes:
    return bcd_encode(password, 3)


def _check_range(what: str, value: int, top: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise ValueError(f"{what} must be an int from 0 to {top}, got {value!r}")


@dataclass
class ZvtTerminal:
    """ECR-side driver of one PT over a ``SerialTransport`` or ``TcpTransport``."""

    transport: Transport
    password: str = "000000"
    """Six digits, sent as 3 BCD bytes."""
    currency: int = 978
    """ISO 4217 numeric code (978 = EUR)."""
    config_byte: int = CONFIG_BYTE
    t3_s: float = T3_S
    t4_s: float = T4_S
    device: str = "terminal"
    _busy: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    _running: str = field(default="", init=False, repr=False, compare=False)
    heard_at: float | None = field(default=None, init=False, repr=False, compare=False)
    """When the PT's last message arrived (``time.monotonic`` s), None before its first: a
    silence is judged by what happened since (``posbench.fixtures.unit.UnitStrategy``)."""

    def __post_init__(self) -> None:
        # Our own commands' fields: a bad value is the caller's mistake, not the unit's.
        if not (len(self.password) == 6 and self.password.isdigit() and self.password.isascii()):
            raise ValueError(f"ZVT password must be 6 digits, got {self.password!r}")
        _check_range("currency", self.currency, 9999)

    @classmethod
    def open_url(cls, url: str, baudrate: int = 9600, timing: ZvtTiming | None = None,
                 **options) -> "ZvtTerminal":
        """A driver for ``tcp://host[:port]`` (ZVT over TCP) or any serial URL; not yet connected."""
        device = options.get("device", "terminal")
        if url.startswith("tcp://"):
            parts = urlsplit(url)
            try:
                port = parts.port or TCP_PORT
            except ValueError:
                raise ConfigError(url, "port", "a TCP port number 1..65535") from None
            if not parts.hostname:
                raise ConfigError(url, "host", "tcp://HOST[:PORT] with a host name or address")
            transport: Transport = TcpTransport(parts.hostname, port, device=device)
        else:
            transport = SerialTransport(url, baudrate, timing, device=device)
        return cls(transport, **options)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "ZvtTerminal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- commands ----------------------------------------------------------------------------------
    def register(self, config_byte: int | None = None, tlv: bool = True) -> ZvtResult:
        """Registration (06 00): password, config byte, currency; ``tlv`` adds an empty BMP 06 so
        the PT may send TLV containers (vendor errors, card technology) until log-off."""
        config = self.config_byte if config_byte is None else config_byte
        data = self._password() + bytes((config,)) + bcd_encode(self.currency, 2)
        if tlv:
            data += encode_bmp(0x06, b"")
        return self._run("registration", 0x06, 0x00, data)

    def authorize(self, amount: int) -> ZvtResult:
        """Authorization (06 01): a payment of ``amount`` minor currency units."""
        _check_range("amount (minor units)", amount, 10 ** 12 - 1)
        data = encode_bmp(0x04, bcd_encode(amount, 6)) + encode_bmp(0x49, bcd_encode(self.currency, 2))
        return self._run("authorization", 0x06, 0x01, data)

    def reverse(self, receipt_no: int) -> ZvtResult:
        """Reversal (06 30) of the payment with receipt number ``receipt_no`` (BMP 87)."""
        _check_range("receipt number", receipt_no, 9999)
        data = self._password() + encode_bmp(0x87, bcd_encode(receipt_no, 2))
        return self._run("reversal", 0x06, 0x30, data)

    def status_enquiry(self, service_byte: int = SERVICE_STATUS_TLV) -> ZvtResult:
        """Status enquiry (05 01): software version, terminal status and (service byte 04) the
        TLV with device state 1F43 and lock bits 1F55."""
        data = self._password() + encode_bmp(0x03, bytes((service_byte,)))
        return self._run("status enquiry", 0x05, 0x01, data, status_enquiry=True)

    def diagnosis(self) -> ZvtResult:
        """Diagnosis (06 70): the PT contacts its host."""
        return self._run("diagnosis", 0x06, 0x70)

    def print_system_configuration(self) -> ZvtResult:
        """Print system configuration (06 1A): the lines arrive in ``receipt_lines``."""
        return self._run("print system configuration", 0x06, 0x1A)

    def end_of_day(self) -> ZvtResult:
        """End of day (06 50)."""
        return self._run("end of day", 0x06, 0x50, self._password())

    def reset(self) -> ZvtResult:
        """Reset terminal (06 18): the PT restarts and completes with 06 0F."""
        return self._run("reset", 0x06, 0x18)

    def abort(self) -> ZvtResult:
        """Abort (06 B0), answered 80 00 00 with no slave phase.

        Only while the ECR is master, i.e. between commands: the ECR may send 06 B0 while the PT
        is master only where that command says so [P15 2.23, p.56] (Read Card 06 C0, the display
        text commands), and Authorization (06 01) does not [P15 2.2, pp.29-37]. Called from
        another thread while a command of this terminal runs, it raises ``TerminalBusy`` rather
        than write into a link another thread is reading (its 80 00 00 would reach the running
        command's reader)."""
        return self._run("abort", 0x06, 0xB0, slave=False)

    def log_off(self) -> ZvtResult:
        """Log-off (06 02), answered 80 00 00 with no slave phase."""
        return self._run("log-off", 0x06, 0x02, slave=False)

    def wait_ready(self, timeout_s: float, poll_s: float = 0.2) -> float:
        """Poll status enquiries (05 01) until the PT completes one; the seconds that took.

        While polling the link waits briefly: on serial one send and ``poll_s`` seconds for its
        ACK (T2, no repeats) instead of 3 x 5 s, on TCP ``poll_s`` to connect (a booting PT
        refuses or drops connections, which count as "not yet"); T3 and T4 never exceed the time
        left. ``84 9C`` / ``84 A0`` (please wait, not ready) count as "not yet", any other
        ``84 xx`` is raised as ``CommandRejected`` (the PT is up but refuses). After
        ``timeout_s`` seconds without a completion: ``UnitNotResponding`` with the last reason."""
        start = time.monotonic()
        deadline = start + timeout_s
        transport = self.transport
        saved = (self.t3_s, self.t4_s)
        saved_link = transport.timing if isinstance(transport, ZvtLink) else None
        saved_connect = transport.connect_timeout_s if isinstance(transport, TcpTransport) else None
        if isinstance(transport, ZvtLink):
            transport.timing = replace(transport.timing, t2_s=poll_s, repeats=0)
        if isinstance(transport, TcpTransport):
            transport.connect_timeout_s = poll_s
        last = "nothing tried"
        try:
            while True:
                tried = time.monotonic()
                left = max(poll_s, deadline - tried)
                self.t3_s, self.t4_s = min(saved[0], left), min(saved[1], left)
                try:
                    self.status_enquiry()
                    return time.monotonic() - start
                except CommandRejected as exc:
                    if exc.result_code not in NOT_READY_CODES:
                        raise
                    last = exc.detail
                except (PortUnavailable, PortLost) as exc:
                    if not isinstance(transport, TcpTransport):
                        raise  # a serial port that is missing is the bench's fault, not a boot
                    last = exc.detail
                except UnitError as exc:
                    last = exc.detail
                    if isinstance(transport, TcpTransport):
                        transport.close()  # a stale request must not be answered on the next poll
                now = time.monotonic()
                if now >= deadline:
                    raise UnitNotResponding(self.device, "waiting for the PT to answer a status enquiry",
                                            f"not ready within {timeout_s:g} s; last: {last}")
                time.sleep(min(max(0.0, poll_s - (now - tried)), deadline - now))
        finally:
            self.t3_s, self.t4_s = saved
            if isinstance(transport, ZvtLink) and saved_link is not None:
                transport.timing = saved_link
            if isinstance(transport, TcpTransport) and saved_connect is not None:
                transport.connect_timeout_s = saved_connect

    # -- flow --------------------------------------------------------------------------------------
    def _password(self) -> bytes:
        return _bcd_password(self.password)

    def _run(self, name: str, cls: int, instr: int, data: bytes = b"", slave: bool = True,
             status_enquiry: bool = False) -> ZvtResult:
        if not self._busy.acquire(blocking=False):
            raise TerminalBusy(self.device, f"sending the {name}",
                               f"ZVT {name} called while the {self._running or 'previous command'} is still "
                               "running: one command at a time per terminal")
        try:
            self._running = name
            return self._exchange(name, cls, instr, data, slave, status_enquiry)
        finally:
            self._running = ""
            self._busy.release()

    def _exchange(self, name: str, cls: int, instr: int, data: bytes, slave: bool,
                  status_enquiry: bool) -> ZvtResult:
        doing = _doing(name, cls, instr)
        self.transport.discard_input()
        self._send(encode_apdu(cls, instr, data), doing)
        answer = self._receive(self.t3_s, _waiting(doing, t3_s=self.t3_s))
        self._check_answer(answer, doing)
        collector = Collector(name)
        if slave:
            return self._follow(collector, doing, status_enquiry)
        return collector.result()

    def _send(self, apdu: bytes, doing: str) -> None:
        self.transport.send(apdu, doing)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: ECR>PT %s", self.device, apdu_summary(decode_apdu(apdu)))

    def _send_then(self, apdu: bytes, doing: str, work: Callable[[], T]) -> T:
        """``_send(apdu)`` and ``work()``: on the serial link ``work`` runs while the PT checks the
        frame and ACKs it (off the round trip); over TCP, where nothing is awaited, after sending."""
        if isinstance(self.transport, ZvtLink):
            result = self.transport.send_then(apdu, doing, work)
        else:
            self.transport.send(apdu, doing)
            result = work()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: ECR>PT %s", self.device, apdu_summary(decode_apdu(apdu)))
        return result

    def _receive(self, timeout_s: float, doing: str) -> Apdu:
        raw = self.transport.receive(timeout_s, doing)
        self.heard_at = time.monotonic()
        try:
            apdu = decode_apdu(raw)
        except ZvtMessageError:
            log.debug("%s: PT>ECR %d bytes, not an APDU", self.device, len(raw))
            raise
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: PT>ECR %s", self.device, apdu_summary(apdu, self._running == "status enquiry"))
        return apdu

    def _check_answer(self, answer: Apdu, doing: str) -> None:
        if is_positive(answer):
            return
        if answer.cls == 0x84:
            # 84 1E carries the result code in its data (e.g. 84 1E 01 6F: wrong currency).
            code = answer.data[0] if answer.instr == 0x1E and answer.data else answer.instr
            raise CommandRejected(self.device, doing, code)
        raise UnexpectedMessage(f"PT answered {answer.cls:02X} {answer.instr:02X} instead of 80 00 / 84 xx",
                                self.device, doing)

    def _follow(self, collector: Collector, doing: str, status_enquiry: bool) -> ZvtResult:
        """Slave phase: take the PT's messages until 06 0F / 06 1E, the command's result. T4 runs
        from the answer and restarts with every 04 FF / 04 0F; a 04 FF timeout becomes the new T4."""
        t4_s = self.t4_s
        deadline = time.monotonic() + t4_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UnitNotResponding(self.device, doing, f"no completion within T4 = {t4_s:g} s")
            message = self._receive(remaining, _waiting(doing, t4_s=t4_s))
            try:
                result = self._take(collector, message, status_enquiry)
            except ZvtMessageError:
                self._send(PROTOCOL_ERROR_APDU, f"{doing}: refusing a malformed message")
                raise
            if message.command in ((0x04, 0xFF), (0x04, 0x0F)):
                if message.command == (0x04, 0xFF) and collector.intermediates[-1].timeout_s:
                    t4_s = collector.intermediates[-1].timeout_s
                deadline = time.monotonic() + t4_s
            if result is not None:
                return result

    def _take(self, collector: Collector, message: Apdu, status_enquiry: bool) -> ZvtResult | None:
        """Read one slave-phase message and answer it; the command's result when it ends the
        command (built while the PT acknowledges our answer), else None."""
        command = message.command
        if command == (0x06, 0x0F):
            collector.completion(message.data, status_enquiry)
        elif command in SLAVE_MESSAGES:
            getattr(collector, SLAVE_MESSAGES[command])(message.data)
        else:
            name = f"{message.cls:02X} {message.instr:02X}"
            collector.refuse(name)
            self._send(NOT_POSSIBLE_APDU, f"refusing PT command {name}")
            return None
        if command in ((0x06, 0x0F), (0x06, 0x1E)):
            return self._send_then(ACK_APDU, ACKNOWLEDGING[command], collector.result)
        self._send(ACK_APDU, ACKNOWLEDGING[command])
        return None
