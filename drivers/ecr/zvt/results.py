"""What a ZVT command brought back, and the reading of the PT's messages into it.

Public API
  IntermediateStatus(code, meaning, timeout_s, texts)   one 04 FF, in order of arrival
  ZvtResult                                             typed outcome of one command (see fields)
  Collector(command)                                    folds the PT's messages into a ZvtResult:
    .intermediate(data) -> IntermediateStatus            04 FF
    .status_information(data)                            04 0F
    .print_line(data) / .text_block(data)                06 D1 / 06 D3 (receipt lines)
    .completion(data, status_enquiry=False)              06 0F
    .abort(data)                                         06 1E
    .refuse(command)                                     note a PT command answered 84 83 00
    .result() -> ZvtResult
  decode_text(raw) -> str                               PT text (ZVT 8-bit set, read as CP437), PANs masked

Card data: the PAN is kept masked (first 6 / last 4), tracks never (see ``codec``), and every
text line goes through ``posbench.core.masking.scrub``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from posbench.core.masking import scrub

from . import codes
from .codec import (
    BmpError,
    BmpValue,
    Redacted,
    Tlv,
    ZvtMessageError,
    bcd_decode,
    bcd_text,
    find_all_tlv,
    first_tlvs,
    parse_bmps,
    read_var,
)

MAX_LINEFEEDS = 20
"""Most empty lines one 06 D1 linefeed command adds to the receipt."""


def decode_text(raw: bytes, terminated: bool = False) -> str:
    """Text from the PT (the ZVT 8-bit character set is CP437-based), any PAN in it masked.
    ``terminated``: a field real PTs end with a NUL, as a C string (BMP 8B's card name arrives as
    "Debit Mastercard\\x00"): the text ends before the first NUL."""
    raw = bytes(raw)
    if terminated:
        raw = raw.split(b"\x00", 1)[0]
    # CP437's lower half is ASCII: the C ASCII decoder gives the same text as the (Python) cp437
    # codec for nearly every PT text, at a fraction of the cost.
    return scrub(raw.decode("ascii") if raw.isascii() else raw.decode("cp437"))


@dataclass(frozen=True)
class IntermediateStatus:
    """One intermediate status (04 FF)."""

    code: int
    meaning: str
    timeout_s: float | None = None
    """The new T4 the PT asked for (seconds), None when it sent none."""
    texts: tuple[str, ...] = ()
    """Display texts sent with it (TLV 24 / 07)."""


@dataclass(frozen=True)
class ZvtResult:
    """The outcome of one ZVT command. Fields the PT did not send are None or empty."""

    command: str
    """What was sent, e.g. "authorization"."""
    result_code: int = 0
    """BMP 27 / 06 1E result code; 0 when the PT completed without one."""
    result_meaning: str = "no error"
    aborted: bool = False
    """The PT ended with 06 1E (abort) rather than 06 0F (completion)."""
    intermediate: tuple[IntermediateStatus, ...] = ()
    receipt_lines: tuple[str, ...] = ()
    terminal_status: int | None = None
    """Terminal status byte of the status enquiry completion."""
    terminal_status_meaning: str = ""
    status_byte: int | None = None
    """BMP 19 as received: the PT status bits after registration, the payment type after a payment."""
    status_byte_meanings: tuple[str, ...] = ()
    """Registration only: the meanings of the bits set in ``status_byte``."""
    lock_bits: int | None = None
    """TLV 1F55 as a 16-bit number (byte 1 high)."""
    locks: tuple[str, ...] = ()
    """Names of the locks set in ``lock_bits``."""
    device_state: int | None = None
    """TLV 1F43."""
    device_state_meaning: str = ""
    card_technology: int | None = None
    """TLV 1F12: 0 magstripe, 1 chip, 2 contactless."""
    card_technology_name: str = ""
    contactless_error: int | None = None
    """TLV 1F47 (the first one sent)."""
    contactless_error_meaning: str = ""
    vendor_error_code: str = ""
    """TLV 1F16 as hex digits."""
    vendor_error_text: str = ""
    """TLV 1F17."""
    software_version: str = ""
    device_name: str = ""
    """TLV 1F40 (in E4 after a status enquiry with service byte 04)."""
    serial_number: str = ""
    """TLV 1F42, BCD [P15 9.4.12.1, p.178] as its decimal digits ("1000000123"); a PT that sends
    something not BCD is read as text."""
    terminal_id: str = ""
    pan: str = ""
    """Masked PAN (BMP 22): never more than the first 6 and last 4 digits."""
    card_type: int | None = None
    """ZVT card-type ID: BMP 8A (one binary byte), or TLV 41 when 8A is FF or missing."""
    card_type_name: str = ""
    """Its name from ``codes.CARD_TYPES`` ("Visa" for 10)."""
    card_name: str = ""
    """BMP 8B."""
    amount: int | None = None
    """BMP 04 in minor currency units."""
    currency: int | None = None
    """BMP 49, e.g. 978 for EUR."""
    trace: int | None = None
    """BMP 0B trace number."""
    receipt_no: int | None = None
    """BMP 87."""
    time: str = ""
    """BMP 0C as HH:MM:SS."""
    date: str = ""
    """BMP AA as YY-MM-DD, else BMP 0D as MM-DD."""
    host_result: int | None = None
    """BMP A0: the host's own result code."""
    additional_text: str = ""
    """BMP 3C."""
    refused_commands: tuple[str, ...] = ()
    """PT commands the driver does not serve, answered 84 83 00 ("04 0D", ...)."""

    @property
    def ok(self) -> bool:
        """Completed with result code 00."""
        return not self.aborted and self.result_code == 0


_RESULT_FIELDS = frozenset(f.name for f in fields(ZvtResult))
_RESULT_DEFAULTS = {f.name: f.default for f in fields(ZvtResult) if f.name != "command"}
"""Every field's default but ``command``'s (all immutable: None, numbers, strings, tuples)."""


def _new_result(values: dict) -> ZvtResult:
    """``ZvtResult(**values)``, built without the frozen dataclass ``__init__`` and its
    ``object.__setattr__`` per field (37 of them, ~4 us per command): the defaults and ``values``
    go into the instance dict at once. ``values`` must name fields only and hold ``command``."""
    result = object.__new__(ZvtResult)
    state = result.__dict__
    state.update(_RESULT_DEFAULTS)
    state.update(values)
    return result


def _hhmmss(raw: bytes) -> str:
    digits = bcd_text(raw)
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def _dashed(raw: bytes) -> str:
    digits = bcd_text(raw)
    return "-".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def _bcd_or_text(raw: bytes) -> str:
    """BCD digits, or (for a PT that does not send BCD) the bytes read as text."""
    try:
        return bcd_text(raw)
    except BmpError:
        return decode_text(raw).strip()


_VAR_DIGITS = bytes(range(0xF0, 0xFA))
"""The bytes of an LL/LLL prefix: F0 .. F9."""


def _looks_like_lllvar(data: bytes) -> bool:
    return len(data) >= 3 and not bytes(data[:3]).translate(None, _VAR_DIGITS)


@dataclass
class Collector:
    """Builds a ``ZvtResult`` from the PT's messages of one command."""

    command: str
    values: dict = field(default_factory=dict)
    intermediates: list[IntermediateStatus] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    # -- messages ----------------------------------------------------------------------------------
    def intermediate(self, data: bytes) -> IntermediateStatus:
        """04 FF: <status> [<timeout, BCD minutes>] [06 TLV]. Some PTs send the TLV without the
        timeout the spec requires before it: a 06 that starts a well-formed container is read so."""
        if not data:
            raise BmpError("intermediate status (04 FF) without a status byte")
        timeout_s = None
        rest = data[1:]
        if rest and not (rest[0] == 0x06 and self._parses(rest)):
            minutes = bcd_decode(rest[:1])
            timeout_s = minutes * 60.0 if minutes else None  # 00 would end T4 at once: keep the old
            rest = rest[1:]
        fields_ = parse_bmps(rest)
        self._take(fields_)
        texts = tuple(decode_text(t.value) for t in find_all_tlv(self._tlvs(fields_), 0x07))
        status = IntermediateStatus(data[0], codes.intermediate_meaning(data[0]), timeout_s, texts)
        self.intermediates.append(status)
        return status

    @staticmethod
    def _parses(data: bytes) -> bool:
        try:
            parse_bmps(data)
        except ZvtMessageError:
            return False
        return True

    def status_information(self, data: bytes) -> None:
        """04 0F: BMPs (27 result code, 04, 0B, 0C, 0D, 22, 29, 87, 8A, 8B, A0, 06 ...)."""
        self._take(parse_bmps(data))

    def print_line(self, data: bytes) -> None:
        """06 D1: <attribute> <text>; attribute FF means <text> is a count of linefeeds."""
        if not data:
            raise BmpError("print line (06 D1) without an attribute byte")
        if data[0] == 0xFF:
            count = data[1] if len(data) > 1 else 1
            self.lines.extend([""] * min(count, MAX_LINEFEEDS))
        else:
            self.lines.append(decode_text(data[1:]))

    def text_block(self, data: bytes) -> None:
        """06 D3: 06 TLV with print texts (25) holding text lines (07)."""
        items = self._tlvs(parse_bmps(data))
        blocks = find_all_tlv(items, 0x25) or [Tlv(0x25, children=items)]
        for block in blocks:
            self.lines.extend(decode_text(t.value) for t in find_all_tlv(block.children, 0x07))

    def completion(self, data: bytes, status_enquiry: bool = False) -> None:
        """06 0F: BMPs; after a status enquiry [<SW version LLLVAR>] <terminal status> [06 TLV]."""
        if status_enquiry and data:
            pos = 0
            if _looks_like_lllvar(data):
                raw, pos = read_var(data, 0, 3)
                self.values["software_version"] = decode_text(raw).strip()
            if pos >= len(data):
                raise BmpError("status enquiry completion without a terminal status byte")
            self.values["terminal_status"] = data[pos]
            self.values["terminal_status_meaning"] = codes.terminal_status_meaning(data[pos])
            data = data[pos + 1:]
        self._take(parse_bmps(data))

    def abort(self, data: bytes) -> None:
        """06 1E: <result code> [06 TLV]."""
        if not data:
            raise BmpError("abort (06 1E) without a result code")
        self.values["aborted"] = True
        self._result_code(data[0])
        self._take(parse_bmps(data[1:]))

    def refuse(self, command: str) -> None:
        self.refused.append(command)

    def result(self) -> ZvtResult:
        values = {k: v for k, v in self.values.items() if k in _RESULT_FIELDS}
        in_tlv = self.values.get("card_type_tlv")
        if in_tlv is not None and values.get("card_type") in (None, codes.CARD_TYPE_IN_TLV):
            values["card_type"] = in_tlv
        if values.get("card_type") is not None:
            values["card_type_name"] = codes.card_type_name(values["card_type"])
        values.update(command=self.command, intermediate=tuple(self.intermediates),
                      receipt_lines=tuple(self.lines), refused_commands=tuple(self.refused))
        return _new_result(values)

    # -- fields ------------------------------------------------------------------------------------
    @staticmethod
    def _tlvs(fields_: list[tuple[int, BmpValue]]) -> tuple[Tlv, ...]:
        return tuple(item for bmp, value in fields_ if bmp == 0x06 and isinstance(value, tuple) for item in value)

    def _result_code(self, code: int) -> None:
        self.values["result_code"] = code
        self.values["result_meaning"] = codes.result_meaning(code)

    def _take(self, fields_: list[tuple[int, BmpValue]]) -> None:
        for bmp, value in fields_:
            if bmp == 0x06:
                assert isinstance(value, tuple)  # parse_bmps gives BMP 06 as its TLV items
                self._take_tlv(value)
            elif bmp == 0x22:
                self.values["pan"] = value
            elif not isinstance(value, Redacted):
                assert isinstance(value, bytes)  # only BMP 22 (masked PAN) is a str, only 06 a tuple
                self._take_bmp(bmp, value)

    def _take_bmp(self, bmp: int, raw: bytes) -> None:
        v = self.values
        if bmp == 0x27:
            self._result_code(raw[0])
        elif bmp == 0x04:
            v["amount"] = bcd_decode(raw)
        elif bmp == 0x49:
            v["currency"] = bcd_decode(raw)
        elif bmp == 0x0B:
            v["trace"] = bcd_decode(raw)
        elif bmp == 0x87:
            v["receipt_no"] = bcd_decode(raw)
        elif bmp == 0x0C:
            v["time"] = _hhmmss(raw)
        elif bmp == 0x0D:
            v.setdefault("date", _dashed(raw))
        elif bmp == 0xAA:
            v["date"] = _dashed(raw)
        elif bmp == 0x29:
            v["terminal_id"] = bcd_text(raw)
        elif bmp == 0x19:
            v["status_byte"] = raw[0]
            if self.command == "registration":
                v["status_byte_meanings"] = codes.registration_status_names(raw[0])
        elif bmp == 0x8A:
            v["card_type"] = raw[0]
        elif bmp == 0x8B:
            v["card_name"] = decode_text(raw, terminated=True)
        elif bmp == 0xA0:
            v["host_result"] = raw[0]
        elif bmp == 0x3C:
            v["additional_text"] = decode_text(raw, terminated=True)

    def _take_tlv(self, items: tuple[Tlv, ...]) -> None:
        v = self.values
        # Only the tags present are looked at (a completion carries a few of the eleven read).
        for tag, item in first_tlvs(items).items():
            if tag not in _TLV_TAGS:
                continue
            raw = item.value
            if tag == 0x1F12:
                if raw:
                    v["card_technology"] = raw[0]
                    v["card_technology_name"] = codes.meaning(codes.CARD_TECHNOLOGY, raw[0], "card technology")
            elif tag == 0x1F47:
                if raw:
                    v["contactless_error"] = raw[0]
                    v["contactless_error_meaning"] = codes.meaning(codes.CONTACTLESS_ERRORS, raw[0],
                                                                   "card read error")
            elif tag == 0x1F16:
                v["vendor_error_code"] = raw.hex().upper()
            elif tag == 0x1F17:
                v["vendor_error_text"] = decode_text(raw)
            elif tag == 0x1F55:
                v["lock_bits"] = int.from_bytes(raw[:2].ljust(2, b"\0"), "big")
                v["locks"] = codes.lock_names(raw)
            elif tag == 0x1F43:
                if raw:
                    v["device_state"] = raw[0]
                    v["device_state_meaning"] = codes.meaning(codes.DEVICE_STATE, raw[0], "device state")
            elif tag == 0x1F41:
                v.setdefault("software_version", decode_text(raw).strip())
            elif tag == 0x1F40:
                v["device_name"] = decode_text(raw).strip()
            elif tag == 0x1F42:
                v["serial_number"] = _bcd_or_text(raw)
            elif tag == 0x41:
                if raw:
                    v["card_type_tlv"] = int.from_bytes(raw, "big")
            else:  # 0x1F44
                v.setdefault("terminal_id", raw.hex().upper())


_TLV_TAGS = frozenset({0x1F12, 0x1F47, 0x1F16, 0x1F17, 0x1F55, 0x1F43, 0x1F41, 0x1F40, 0x1F42, 0x41, 0x1F44})
"""The TLV tags ``Collector._take_tlv`` reads (the first object of each)."""
