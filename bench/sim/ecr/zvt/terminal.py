"""Virtual ZVT payment terminal: the PT side of ZVT [PA00P015, PA00P016] over the unit model.

Serial on a pseudo-terminal (9600 8N2, ACK/NAK, T2, repeats: the ECR driver's ``ZvtLink``) or TCP
(bare APDUs, one ECR connection at a time: ``server.TcpServerTransport``). The ECR sends a command; the PT
answers ``80 00 00``, becomes master and sends intermediate statuses (04 FF), status
information (04 0F) and print lines (06 D1), each acknowledged by the ECR with ``80 00 00``
(``ecr_answer_s`` seconds each, else the transaction ends), and ends with a completion (06 0F)
or an abort (06 1E + result code). Unknown commands or BMPs get ``84 83 00``.

The unit behind it (``posbench.sim.unit.model.VirtualUnit``) owns the state, journal, host link, card
readers and power; the faults show here the way a real ZVT terminal shows them:

- msr_head: swipe: 04 FF 0C (or E2, cleaning card) then 06 1E 64, TLV 1F12 = 00
- chip_contacts: insert: 06 1E 72, or 04 FF 0C then 64; TLV 1F12 = 01
- nfc_antenna: tap: 06 1E 64 with TLV 1F12 = 02 and 1F47 = 01; lock bit "contactless reader
  not initialised" (severity >= 0.5)
- power_supply: resets mid-transaction (silence; the bench's power model), 06 1E BF at times,
  lock bit "low battery power"
- pcb_intermittent: serial: corrupted frames (the ECR NAKs, the PT repeats); TCP: dropped
  connections
- network_unstable / firewall / ip_conflict: 04 FF 04 then 06 1E A1 (no answer) or 9B (no
  connection, broken answer); 6C when the ECR's timeout (BMP 01) ran out first
- resources: 06 1E B1 / B2 on sales, terminal status B1, slower answers
- data_loss: 06 1E 85, terminal status 51, 1F43 = 02, lock bit "transaction log defective"
- maintenance: 06 1E C2, terminal status 62, drifted 0C/0D time and date
- firmware_driver: 06 1E C4 (chip, contactless) / 9A (magstripe)
- application: 06 1E FF with 1F16/1F17, or no 80 00 at all (and the app restarts)
- issuer_referral: 04 0F with 27 = 01 and A0 = 01, then 06 1E 01 (the host log has 39 = 01)
- operator_error: 06 1E 6C by the abort key; intermediates 15 (wrong PIN) / 18 (try limit)

Card data: BMP 22 carries the PAN masked ('E' nibbles: first 6 / last 4 only); tracks are
never sent. Amounts are minor units, times seconds.
"""
from __future__ import annotations

import random
import time
from datetime import datetime, timezone
from typing import Callable

from posbench.setup.cards import Card
from posbench.core.errors import UnitError
from posbench.core.masking import mask_pan
from posbench.setup.profile import Profile
from posbench.drivers.ecr.zvt.codec import (BmpError, Tlv, ZvtMessageError, bcd_decode, bcd_digits, bcd_encode,
                              bcd_text, decode_apdu, encode_apdu, encode_bmp, encode_lllvar,
                              parse_bmps)
from posbench.drivers.ecr.zvt.codes import SCHEME_CARD_TYPES
from posbench.drivers.ecr.zvt.link import ZvtLink, ZvtTiming

from posbench.sim.ecr.zvt.server import TcpServerTransport
from posbench.sim.unit.noisy_port import NoisyPort
from posbench.sim.devices.pty_port import PtyPort
from posbench.sim.unit.model import VirtualUnit
from posbench.sim.unit.front_end import PresentedCard, ReadsPresentedCards, UnitFrontEnd
from posbench.sim.unit.records import TerminalTiming, frame_error_rate
from posbench.sim.ecr.zvt.wire import (CARD_FAILURES, CARD_TIMEOUT_S, DEVICE, ECR_ANSWER_S, HOST_FAILURE_RC, INSERT_CARD_REPEAT_S,
                       LOCAL_FAILURE_RC, LOCK_BIT, OK, STATUS_COMMANDS, TCP_REST_S, TECH_CODE, UNKNOWN, EcrPort,
                       Ended, host_code, pan_bmp, time_bmps, tlv_bmp)


class VirtualZvtTerminal(ReadsPresentedCards, UnitFrontEnd):
    """A ZVT PT on a pty (``transport="serial"``: ``.port.path``) or on TCP (``"tcp"``:
    ``.address``, listening on ``address``, default 127.0.0.1 and any free port).

    ``faults`` maps cause id to severity in (0, 1]; ``password`` (6 digits) guards
    registration, reversal and end of day; ``currency`` is ISO 4217 numeric. ``present()``
    hands it the card the bench's actuator presents.
    """

    thread_name = "virtual-zvt-terminal"

    def __init__(self, host_address: tuple[str, int], profile: Profile,
                 faults: dict[str, float] | None = None, seed: int = 0,
                 serial: str = "PT100-0000123", terminal_id: str = "52100123",
                 timing: TerminalTiming | None = None, transport: str = "serial",
                 address: tuple[str, int] = ("127.0.0.1", 0), password: str = "123456",
                 currency: str = "978", card_timeout_s: float = CARD_TIMEOUT_S,
                 ecr_answer_s: float = ECR_ANSWER_S, link_timing: ZvtTiming | None = None):
        if transport not in ("serial", "tcp"):
            raise ValueError(f"transport must be 'serial' or 'tcp', got {transport!r}")
        self.unit = VirtualUnit(host_address, profile, faults, seed, serial, terminal_id, timing)
        self.password, self.currency = password, currency
        self.card_timeout_s, self.ecr_answer_s = card_timeout_s, ecr_answer_s
        self.rng = random.Random(seed + 29)
        """The PT's own draws (fault rates of its answers), apart from the unit's."""
        drops = frame_error_rate(self.sev("pcb_intermittent"))
        self.port: NoisyPort | None = None
        if transport == "serial":
            self.port = NoisyPort(PtyPort(), random.Random(seed + 7), drops, powered=lambda: self.unit.powered)
            link = ZvtLink(self.port, link_timing or ZvtTiming(), DEVICE)
            self._ecr = EcrPort(link, self.port.close)
        else:
            server = TcpServerTransport(address, TCP_REST_S, DEVICE)
            self._ecr = EcrPort(server, server.close, random.Random(seed + 7), drops)
        self.transport = transport
        self.registered: int | None = None
        """Config byte of the last registration (None: not registered, or logged off)."""
        self.card = PresentedCard()
        self._alive: Callable[[], bool] = self.unit.watch_power()
        self._last_eod = datetime.now(timezone.utc)
        """The journal before the PT started was closed by earlier ends of day."""
        self._init_thread()

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) the PT listens on (TCP), else None."""
        transport = self._ecr.transport
        return transport.local_address if isinstance(transport, TcpServerTransport) else None

    @property
    def link(self) -> ZvtLink | None:
        """The PT's end of the serial link (its ``timing`` and ``stats``), None on TCP."""
        transport = self._ecr.transport
        return transport if isinstance(transport, ZvtLink) else None

    # -- the serving loop -------------------------------------------------------------------
    def _idle(self) -> None:
        self._ecr.idle()

    def _close_transport(self) -> None:
        self._ecr.close()

    def _serve_next(self) -> None:
        raw = self._ecr.receive(0.2)
        if raw is None:
            return
        unit = self.unit
        try:
            command = decode_apdu(raw)
        except ZvtMessageError:
            self._ecr.send(UNKNOWN)
            return
        handler = self._handlers().get(command.command)
        if handler is None:
            self._ecr.send(UNKNOWN)
            return
        unit.begin_command()
        if command.command in STATUS_COMMANDS and unit.app_crashes():
            unit.app_restart()
            return  # the app died with the command: no 80 00 ever comes
        time.sleep(unit.latency())
        self._alive = unit.watch_power()
        try:
            handler(command.data)
        except BmpError:
            self._ecr.send(UNKNOWN)
        except Ended:
            pass
        unit.after_reply()

    def _handlers(self) -> dict[tuple[int, int], Callable[[bytes], None]]:
        return {(0x06, 0x00): self._registration, (0x06, 0x01): self._authorization,
                (0x06, 0x30): self._reversal, (0x05, 0x01): self._status_enquiry,
                (0x06, 0x70): self._diagnosis, (0x06, 0x1A): self._print_configuration,
                (0x06, 0x50): self._end_of_day, (0x06, 0xB0): self._accept,
                (0x06, 0x02): self._log_off, (0x06, 0x18): self._reset}

    # -- messages as master -----------------------------------------------------------------
    def _send(self, apdu: bytes) -> None:
        if not self._alive():
            raise Ended("power lost")  # a dead PT sends nothing more
        try:
            self._ecr.send(apdu)
        except (UnitError, OSError) as exc:
            self.unit.err["err_comm"] += 1
            raise Ended("link broken") from exc

    def _accept(self, data: bytes = b"") -> None:
        """``80 00 00``: command accepted (the PT now leads the exchange)."""
        self._send(OK)

    def _tell(self, cls: int, instr: int, data: bytes = b"") -> bool:
        """Send one message as master and wait for the ECR's answer; False when the ECR
        answered negatively (``84 xx``, e.g. printer not ready)."""
        self._send(encode_apdu(cls, instr, data))
        deadline = time.monotonic() + self.ecr_answer_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                raw = self._ecr.receive(remaining)
            except (UnitError, OSError) as exc:
                raise Ended("link broken") from exc
            if raw is None:
                break
            if raw[0] in (0x80, 0x84):
                return raw[0] == 0x80 or raw[1] == 0x00
        self.unit.err["err_comm"] += 1
        raise Ended("the ECR did not answer")

    def _intermediate(self, status: int) -> None:
        """04 FF intermediate status (only when the registration asked for them, bit 08)."""
        if self.registered is None or self.registered & 0x08:
            self._tell(0x04, 0xFF, bytes((status,)))

    def _complete(self, data: bytes = b"") -> None:
        self._tell(0x06, 0x0F, data)

    def _abort(self, rc: int, tlv: bytes = b"") -> None:
        self._tell(0x06, 0x1E, bytes((rc,)) + tlv)

    def _print(self, lines: list[str], receipt: bool = True) -> None:
        """06 D1 print lines (attribute 00); a receipt only when the ECR prints receipts (02)."""
        if receipt and self.registered is not None and not (self.registered & 0x02):
            return
        for line in lines:
            if not self._tell(0x06, 0xD1, b"\x00" + line.encode("ascii", "replace")[:40]):
                return  # the ECR's printer is not ready: stop printing

    def _check_password(self, data: bytes) -> None:
        if len(data) < 3 or bcd_text(data[:3]) != self.password:
            raise BmpError("password missing or wrong")

    # -- identity helpers -------------------------------------------------------------------
    def _tid(self) -> bytes:
        digits = "".join(ch for ch in self.unit.terminal_id if ch.isdigit())
        return bcd_encode(digits.zfill(8)[-8:], 4)

    def _currency(self) -> bytes:
        return bcd_encode(self.currency, 2)

    def _ids(self) -> bytes:
        """BMP 29 terminal id and 49 currency."""
        return encode_bmp(0x29, self._tid()) + encode_bmp(0x49, self._currency())

    # -- commands ---------------------------------------------------------------------------
    def _registration(self, data: bytes) -> None:
        """06 00: password, config byte [currency, no BMP][03 service byte][06 TLV]."""
        self._check_password(data)
        if len(data) < 4:
            raise BmpError("registration without config byte")
        pos = 4
        if len(data) >= 6 and data[4] not in (0x03, 0x06):
            if bcd_text(data[4:6]) != self.currency.zfill(4):
                raise BmpError("currency not supported")
            pos = 6
        parse_bmps(data, pos)
        self._accept()
        self.registered = data[3]
        self._complete(encode_bmp(0x19, b"\x00") + self._ids())

    def _log_off(self, data: bytes) -> None:
        self._accept()
        self.registered = None

    def _reset(self, data: bytes) -> None:
        """06 18: the PT acknowledges, completes and reboots (silent for its boot time)."""
        self._accept()
        self._complete()
        self.unit.reboot()

    def _status_enquiry(self, data: bytes) -> None:
        """05 01 [password [03 service byte][06 TLV]]: software version, terminal status and,
        with service byte 04, TLV 1F43 device state, 1F55 lock bits, the serial number."""
        service = 0
        if data:
            self._check_password(data)
            fields = dict(parse_bmps(data, 3))
            service_byte = fields.get(0x03, b"\x00")
            assert isinstance(service_byte, bytes)  # BMP 03 is a raw byte field
            service = service_byte[0]
        self._accept()
        unit = self.unit
        body = encode_lllvar(f"{unit.profile.model} {unit.firmware}".encode()) + bytes((self._terminal_status(),))
        if service & 0x04:
            # [P15 2.56.5, p.105]: 1F55 on its own, the device information in E4 [9.4.12, pp.178-179]:
            # 1F40 name and 1F41 version ASCII, 1F42 serial number BCD, 1F43 state.
            state = 0x02 if "TAK" not in unit.keys else 0x00
            device = (Tlv(0x1F40, unit.profile.model.encode()), Tlv(0x1F41, unit.firmware.encode()),
                      Tlv(0x1F42, bcd_digits(unit.serial)), Tlv(0x1F43, bytes((state,))))
            body += encode_bmp(0x06, [Tlv(0x1F55, self._locks().to_bytes(2, "big")),
                                      Tlv(0xE4, children=device)])
        self._complete(body)

    def _terminal_status(self) -> int:
        unit = self.unit
        if "TAK" not in unit.keys or "mid" not in unit.config:
            return 0x51  # initialisation required
        if abs(unit.clock_offset_s) > 120:
            return 0x62  # date/time incorrect
        if unit.free_mem_kib < 8192:
            return 0xB1  # memory full
        return 0x00

    def _locks(self) -> int:
        sev, bits = self.sev, 0
        if sev("power_supply"):
            bits |= 1 << LOCK_BIT["low battery power"]
        if sev("data_loss"):
            bits |= 1 << LOCK_BIT["transaction log defective"]
        if sev("nfc_antenna") >= 0.5:
            bits |= 1 << LOCK_BIT["contactless reader not initialised"]
        return bits

    def _diagnosis(self, data: bytes) -> None:
        """06 70: the PT checks its host (an ISO 8583 echo); failure ends 06 1E + result code."""
        parse_bmps(data)
        self._accept()
        self._intermediate(0x04)
        echo = self.unit.echo(1, self.unit.timing.host_timeout_s)
        if not echo.answered:
            return self._abort(HOST_FAILURE_RC.get(echo.failure, 0x9B))
        self._complete(encode_bmp(0x27, b"\x00") + time_bmps(self.unit.clock()))

    def _print_configuration(self, data: bytes) -> None:
        """06 1A: the system configuration as print lines, then ``06 0F 00``."""
        self._accept()
        unit = self.unit
        lines = ["SYSTEM CONFIGURATION", f"MODEL {unit.profile.model}", f"SERIAL {unit.serial}",
                 f"FIRMWARE {unit.firmware}"]
        lines += [f"{name.upper()} {version}" for name, version in unit.components.items()]
        lines.append(f"TID {self._tid().hex()}")
        self._print(lines, receipt=False)
        self._complete()

    def _end_of_day(self, data: bytes) -> None:
        """06 50: totals of the approved sales since the last end of day, printed and returned."""
        self._check_password(data)
        parse_bmps(data, 3)
        self._accept()
        count, total = self.unit.totals(self._last_eod)
        clock = self.unit.clock()
        self._print(["END OF DAY", f"TID {self._tid().hex()}", f"SALES {count}",
                     f"TOTAL {total / 100:.2f}", clock.strftime("%Y-%m-%d %H:%M:%S")])
        self._last_eod = datetime.now(timezone.utc)
        self._complete(encode_bmp(0x27, b"\x00") + encode_bmp(0x04, bcd_encode(total, 6))
                       + time_bmps(clock))

    def _reversal(self, data: bytes) -> None:
        """06 30: password, 87 receipt number [04 amount]: the sale is reversed at the host."""
        self._check_password(data)
        fields = dict(parse_bmps(data, 3))
        receipt = fields.get(0x87)
        if not isinstance(receipt, bytes):
            raise BmpError("reversal without receipt number (BMP 87)")
        self._accept()
        number = bcd_decode(receipt)
        seqs = [e.seq for e in self.unit.log if e.seq % 10000 == number and e.type == "SALE"]
        result = self.unit.reverse(max(seqs, default=-1), on_online=self._online_notice())
        failures = {"not_found": 0xB5, "already_reversed": 0xB4, **HOST_FAILURE_RC}
        if result.failure == "declined":
            return self._abort(host_code(result.host_rc))
        if result.failure:
            return self._abort(failures.get(result.failure, 0xB5))
        clock = self.unit.clock()
        self._tell(0x04, 0x0F, encode_bmp(0x27, b"\x00") + encode_bmp(0x04, bcd_encode(result.amount, 6))
                   + encode_bmp(0x87, receipt) + time_bmps(clock) + self._ids())
        self._print(["REVERSAL", f"RECEIPT {number:04d}", f"AMOUNT {result.amount / 100:.2f}", "OK"])
        self._complete(encode_bmp(0x27, b"\x00") + time_bmps(clock) + self._ids())

    def _online_notice(self) -> Callable[[], None]:
        """A callback sending 04 FF 04 (waiting for host) that never breaks the host exchange:
        a silent ECR is noticed at the next message."""
        def notice() -> None:
            try:
                self._intermediate(0x04)
            except Ended:
                pass
        return notice

    # -- the sale ---------------------------------------------------------------------------
    def _authorization(self, data: bytes) -> None:
        """06 01: 04 amount [49 currency][01 timeout s][02][19][8A][06 TLV]."""
        fields = dict(parse_bmps(data))
        raw_amount = fields.get(0x04)
        if not isinstance(raw_amount, bytes):
            raise BmpError("authorization without amount (BMP 04)")
        amount = bcd_decode(raw_amount)
        raw_timeout = fields.get(0x01)
        limit_s = float(raw_timeout[0]) if isinstance(raw_timeout, bytes) and raw_timeout[0] else None
        deadline = time.monotonic() + (limit_s or self.card_timeout_s)
        self._accept()
        currency = fields.get(0x49)
        if isinstance(currency, bytes) and bcd_text(currency) != self.currency.zfill(4):
            return self._abort(0x6F)
        if amount <= 0:
            return self._abort(0xC8)
        if refusal := self._refusal():
            return self._abort(refusal)
        self._intermediate(0x0A)  # insert card
        presented = self._wait_card(deadline)
        if presented is None:
            return self._abort(0x6C)
        card, technology = presented
        tech = (0x1F12, bytes((TECH_CODE[technology],)))
        read = self.unit.read_card(card.pan, card.expiry, technology)
        if not self._alive():
            raise Ended("power lost while reading the card")
        if not read.ok:
            shown, rc = CARD_FAILURES[read.failure]
            if shown is not None:
                self._intermediate(shown)
            extra = ((0x1F47, b"\x01"),) if read.failure == "rf_error" else ()
            return self._abort(rc, tlv_bmp(tech, *extra))
        if self._pin_fails():
            return self._abort(0x6C, tlv_bmp(tech))
        self._finish_sale(amount, card, technology, limit_s and deadline)

    def _refusal(self) -> int:
        """A result code the PT refuses a sale with before reading a card (0: none)."""
        sev, rng = self.sev, self.rng
        if (s := sev("power_supply")) and rng.random() < 0.15 * s:
            return 0xBF  # supply voltage too low
        if (s := sev("resources")) and rng.random() < 0.1 + 0.3 * s:
            return rng.choice((0xB1, 0xB2))  # memory / journal full
        if (s := sev("maintenance")) and rng.random() < 0.1 + 0.3 * s:
            return 0xC2  # diagnosis required
        if (s := sev("operator_error")) and rng.random() < 0.05 + 0.15 * s:
            self._intermediate(0x0A)
            return 0x6C  # the cashier pressed the abort key
        return 0

    def _wait_card(self, deadline: float) -> tuple[Card, str] | None:
        """The card presented before ``deadline`` (monotonic s); None on timeout or when the ECR
        aborts (06 B0, acknowledged ``80 00 00``). While it waits, "insert card" (04 FF 0A) is
        repeated every ``INSERT_CARD_REPEAT_S``: each restarts the ECR's T4, so a person's slow
        presentation ends in the PT's own timeout (06 1E 6C), never in the ECR's."""
        repeat_at = time.monotonic() + INSERT_CARD_REPEAT_S
        while True:
            presented = self.card.take()
            if presented is not None:
                return presented
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._alive():
                return None
            if time.monotonic() >= repeat_at:
                self._intermediate(0x0A)
                repeat_at = time.monotonic() + INSERT_CARD_REPEAT_S
                continue
            try:
                raw = self._ecr.receive(min(0.05, remaining))
            except (UnitError, OSError) as exc:
                raise Ended("link broken") from exc
            if raw is not None and raw[:2] == b"\x06\xb0":
                self._accept()
                return None

    @staticmethod
    def _card_type(brand: str) -> bytes:
        """BMP 8A: the brand's ZVT card-type ID as one binary byte [P15 13, BMP 8A, p.117; 12,
        p.185] (Visa 10 = 0x0A); a brand ZVT does not list goes without (8A may be omitted)."""
        code = SCHEME_CARD_TYPES.get(brand)
        return b"" if code is None else encode_bmp(0x8A, bytes((code,)))

    def _pin_fails(self) -> bool:
        """Cardholder PIN entry: with ``operator_error``, wrong PINs (04 FF 15) and sometimes
        the try limit (15, 15, 18: the sale fails)."""
        s = self.sev("operator_error")
        if not s:
            return False
        roll = self.rng.random()
        if roll < 0.05 + 0.15 * s:
            for status in (0x15, 0x15, 0x18):
                self._intermediate(status)
            return True
        if roll < 0.2 + 0.4 * s:
            self._intermediate(0x15)
        return False

    def _finish_sale(self, amount: int, card: Card, technology: str, deadline: float | None) -> None:
        """Online authorization through the unit, then status information, receipt, completion."""
        unit = self.unit
        host_wait = unit.timing.host_timeout_s
        if deadline:
            host_wait = max(0.05, min(host_wait, deadline - time.monotonic()))
        result = unit.authorize(amount, card.pan, technology, self._alive, host_wait,
                                on_online=self._online_notice())
        if not result.completed:
            raise Ended("power lost during the sale")
        tech = (0x1F12, bytes((TECH_CODE[technology],)))
        if result.reason == "kernel_error":
            return self._abort(0x9A if technology == "magstripe" else 0xC4, tlv_bmp(tech))
        if result.reason == "app_restart":
            return self._abort(0xFF, tlv_bmp(tech, (0x1F16, b"\x00\x00\x0f\xa1"),
                                          (0x1F17, b"APP WATCHDOG RESTART")))
        if result.reason in LOCAL_FAILURE_RC:
            return self._abort(LOCAL_FAILURE_RC[result.reason], tlv_bmp(tech))
        if result.reason:
            cut_short = deadline is not None and host_wait < unit.timing.host_timeout_s
            rc = 0x6C if cut_short and result.reason == "host_timeout" else HOST_FAILURE_RC[result.reason]
            return self._abort(rc, tlv_bmp(tech))
        rc = 0x00 if result.host_rc == "00" else host_code(result.host_rc)
        clock = unit.clock()
        info = (encode_bmp(0x27, bytes((rc,))) + encode_bmp(0x04, bcd_encode(amount, 6))
                + encode_bmp(0x0B, bcd_encode(int(result.stan) % 10**6, 3)) + time_bmps(clock)
                + pan_bmp(card.pan) + self._ids() + encode_bmp(0x87, bcd_encode(result.seq % 10000, 2))
                + self._card_type(card.brand)
                + encode_bmp(0x8B, card.brand.upper().encode()[:20]) + tlv_bmp(tech))
        if rc:
            # A0, the authorisation system's own code [P15 13], beside 27: what tells the host's
            # refusal from one of the PT's own (those end 06 1E with no A0); a code that is not
            # a number goes without (1 binary byte cannot carry it)
            a0 = encode_bmp(0xA0, bytes((int(result.host_rc),))) if result.host_rc.isdigit() else b""
            self._tell(0x04, 0x0F, info + a0)
            return self._abort(rc, tlv_bmp(tech))
        self._tell(0x04, 0x0F, info)
        self._print(["CARD PAYMENT", card.brand.upper(), f"PAN {mask_pan(card.pan)}",
                     f"TRACE {result.stan}  RECEIPT {result.seq % 10000:04d}",
                     f"AMOUNT {amount / 100:.2f}", f"AUTH {result.auth}", "APPROVED",
                     clock.strftime("%Y-%m-%d %H:%M:%S")])
        self._complete(encode_bmp(0x27, b"\x00") + time_bmps(clock) + self._ids())
