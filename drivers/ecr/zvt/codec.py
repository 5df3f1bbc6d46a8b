"""ZVT application data: APDUs, BCD, LLVAR/LLLVAR, BMP fields and the BER-TLV container (BMP 06).

Sources: PA00P016 5.2 (APDU), PA00P015 chapter 9 (TLV) and 13 (BMPs). Written by hand: there is no
maintained ZVT library on PyPI, and the generic TLV packages do not know ZVT's BMP 06 framing.
Usable by either side (ECR driver or PT emulator). Every parse error is a ``ZvtMessageError``
(a ``posbench.core.errors.MessageError``) naming what is wrong; nothing else escapes on any input.

Card data: BMP 22 (PAN) decodes to a masked string (first 6 / last 4 at most); tracks, CVV, chip
and PIN data (BMPs 23 24 2D 2E 3A A7 D1, TLV 1F08 1F09 1F0A 1F1A 1F31 1F3E) are parsed past and
only their length is kept (``Redacted`` / ``Tlv.redacted_length``).

Public API
  ZvtMessageError, ApduError, BmpError, TlvError   typed parse errors (MessageError subclasses)
  MAX_DATA, MAX_TLV_DEPTH                          largest data block (bytes), deepest TLV nesting
  Apdu(cls, instr, data)                           one APDU; .command, .encode(), .hex()
  encode_apdu(cls, instr, data=b"") -> bytes        CLASS INSTR LEN data (LEN FF lo hi past 254)
  decode_apdu(raw) -> Apdu                         exactly one APDU, length checked
  apdu_size(head) -> int | None                    total APDU size from its first 3 or 5 bytes
  header_size(head) -> int | None                  header size (3 or 5) once known
  is_positive(apdu) -> bool                        80 xx / 84 00 (positive completion)
  bcd_encode(value, size) -> bytes                 int or digit string, zero-padded left
  bcd_decode(data) -> int / bcd_text(data) -> str  packed BCD to number / digit string
  bcd_digits(text) -> bytes                        the digits of any text as BCD (serial number, 1F42)
  encode_llvar(data) / encode_lllvar(data)         Fx Fy / Fx Fy Fz decimal-length prefix
  read_var(data, pos, digits) -> (bytes, pos)      read one LL (2) / LLL (3) variable field
  BmpFormat, BmpSpec, BMPS                         the BMP table: FIXED(size) / LLVAR / LLLVAR / TLV
  REDACTED_BMPS, REDACTED_TLV_TAGS                 BMPs / TLV tags whose content is never kept
  Redacted(length)                                 stands for card data not kept
  BmpValue                                         bytes | str (masked PAN) | Redacted | tuple[Tlv]
  read_bmp(data, pos) -> (bmp, value, pos)          one BMP at ``pos``
  parse_bmps(data, start=0) -> list[(bmp, value)]   every BMP of a data block, in order
  encode_bmp(bmp, value) -> bytes                  one BMP with its prefix (06: list of Tlv or bytes)
  masked_pan(raw) -> str                           BMP 22 content to a masked PAN ('E' -> '*')
  Tlv(tag, value, children, redacted_length)       one data object (tags as ints: 0x1F12)
  parse_tlv(data) -> tuple[Tlv, ...]               BER-TLV list (constructed tags parsed too)
  encode_tlv(tag, value) -> bytes                  one data object (value: bytes or list of Tlv)
  encode_tlv_container(items) -> bytes             BMP 06 + BER length + objects
  ber_length(n) -> bytes                           BER length field (n, 81 n, 82 hi lo)
  tag_bytes(tag) -> bytes                          a tag number to its bytes
  find_tlv(items, tag) -> Tlv | None               first object with ``tag``, depth first
  find_all_tlv(items, tag) -> list[Tlv]            every object with ``tag``, depth first
  first_tlvs(items) -> dict[int, Tlv]              the first object of each tag, depth first (one walk)
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence, Union

from posbench.core.errors import MessageError
from posbench.core.masking import mask_pan
from posbench.drivers.card import tlv
from posbench.drivers.card.tlv import (Tlv, TlvRules, ber_length, encode as encode_tlv, find as find_tlv,
                                       find_all as find_all_tlv, first_of_each as first_tlvs, tag_bytes)

MAX_DATA = 0xFFFF
"""Largest APDU data block in bytes (extended length)."""
MAX_TLV_DEPTH = 8
"""Deepest nesting of constructed data objects accepted."""


class ZvtMessageError(MessageError):
    """A ZVT message (APDU, BMP, TLV) is malformed; ``detail`` says what and where."""

    def __init__(self, detail: str, device: str = "terminal", doing: str = "parsing a ZVT message"):
        super().__init__(detail, device, doing)


class ApduError(ZvtMessageError):
    """An APDU's header or length is wrong."""


class BmpError(ZvtMessageError):
    """A BMP field is unknown, cut short or has a bad length prefix or content."""


class TlvError(ZvtMessageError):
    """A BER-TLV data object (BMP 06) is malformed."""


# -- APDU ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Apdu:
    """One APDU: ``cls`` and ``instr`` (CCRC/APRC in an answer) and the data block."""

    cls: int
    instr: int
    data: bytes = b""

    @property
    def command(self) -> tuple[int, int]:
        """(CLASS, INSTR), e.g. (0x06, 0x0F) for a completion."""
        return (self.cls, self.instr)

    def encode(self) -> bytes:
        return encode_apdu(self.cls, self.instr, self.data)

    def hex(self) -> str:
        """The encoded APDU as spaced hex ("06 0F 00")."""
        return self.encode().hex(" ").upper()


def encode_apdu(cls: int, instr: int, data: bytes = b"") -> bytes:
    """``CLASS INSTR LEN data``; a data block over 254 bytes gets ``FF lo hi``."""
    if not (0 <= cls <= 0xFF and 0 <= instr <= 0xFF):
        raise ApduError(f"class/instruction 0x{cls:X}/0x{instr:X} is not a byte")
    data = bytes(data)
    if len(data) > MAX_DATA:
        raise ApduError(f"data block of {len(data)} bytes exceeds {MAX_DATA}")
    if len(data) < 0xFF:
        return bytes((cls, instr, len(data))) + data
    return bytes((cls, instr, 0xFF, len(data) & 0xFF, len(data) >> 8)) + data


def header_size(head: bytes | bytearray) -> int | None:
    """Header size (3, or 5 with extended length) once ``head`` holds its first 3 bytes."""
    if len(head) < 3:
        return None
    return 5 if head[2] == 0xFF else 3


def apdu_size(head: bytes | bytearray) -> int | None:
    """Total APDU size in bytes from its first bytes; None while the header is incomplete."""
    size = header_size(head)
    if size is None or len(head) < size:
        return None
    if size == 3:
        return 3 + head[2]
    return 5 + (head[3] | head[4] << 8)


def decode_apdu(raw: bytes) -> Apdu:
    """Exactly one APDU; ``ApduError`` when the length field and the byte count disagree."""
    raw = bytes(raw)
    total, head = apdu_size(raw), header_size(raw)
    if total is None or head is None:  # head is None only if total is
        raise ApduError(f"APDU of {len(raw)} bytes is shorter than its header")
    if len(raw) != total:
        raise ApduError(f"APDU {raw[:2].hex(' ').upper()} declares {total - head} data "
                        f"bytes but carries {len(raw) - head}")
    return Apdu(raw[0], raw[1], raw[head:])


def is_positive(apdu: Apdu) -> bool:
    """True for a positive completion: ``80 xx`` or ``84 00`` [P16 5.2]."""
    return apdu.cls == 0x80 or (apdu.cls == 0x84 and apdu.instr == 0x00)


# -- BCD and variable lengths ----------------------------------------------------------------------
def bcd_encode(value: int | str, size: int) -> bytes:
    """Packed BCD of ``value`` (int or digit string) in ``size`` bytes, zero-padded on the left."""
    digits = str(value)
    if not digits.isdigit() or not digits.isascii():
        raise BmpError(f"{value!r} is not a non-negative decimal number")
    if len(digits) > 2 * size:
        raise BmpError(f"{value!r} does not fit in {size} BCD bytes")
    return bytes.fromhex(digits.zfill(2 * size))


def bcd_text(data: bytes) -> str:
    """The decimal digits of packed BCD ``data``; ``BmpError`` on a nibble above 9."""
    text = bytes(data).hex()
    if not text.isdigit() and text:
        raise BmpError(f"{bytes(data).hex(' ').upper()} is not packed BCD")
    return text


def bcd_digits(text: str) -> bytes:
    """The decimal digits of ``text``, in order, as packed BCD, an odd count padded with a leading
    0: how a PT reports a serial number such as "PT100-0000123" in TLV 1F42, which is BCD [P15
    9.4.12.1, p.178] ("1000000123" -> 10 00 00 01 23). ``BmpError`` when ``text`` has no digit."""
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    if not digits:
        raise BmpError(f"{text!r} has no decimal digit to send as BCD")
    return bytes.fromhex(digits.zfill(len(digits) + len(digits) % 2))


def bcd_decode(data: bytes) -> int:
    """Packed BCD ``data`` as a number (b"" is 0)."""
    return int(bcd_text(data) or "0")


_VAR_PREFIX = {2: "LLVAR", 3: "LLLVAR"}


def _var_prefix(length: int, digits: int) -> bytes:
    if length >= 10 ** digits:
        raise BmpError(f"{length} bytes do not fit an {_VAR_PREFIX[digits]} (max {10 ** digits - 1})")
    return bytes(0xF0 | int(d) for d in str(length).zfill(digits))


def encode_llvar(data: bytes) -> bytes:
    """``Fx Fy`` + data: the decimal length (0..99) in the low nibbles."""
    return _var_prefix(len(data), 2) + bytes(data)


def encode_lllvar(data: bytes) -> bytes:
    """``Fx Fy Fz`` + data: the decimal length (0..999) in the low nibbles."""
    return _var_prefix(len(data), 3) + bytes(data)


_VAR_DIGITS = bytes(range(0xF0, 0xFA))
"""The bytes of an LL/LLL prefix: F0 .. F9, one decimal digit each."""
_VAR_DIGIT_TEXT = bytes.maketrans(_VAR_DIGITS, b"0123456789")


def read_var(data: bytes, pos: int, digits: int) -> tuple[bytes, int]:
    """Read an LLVAR (``digits`` 2) or LLLVAR (3) field at ``pos``; return it and the next position."""
    kind = _VAR_PREFIX[digits]
    prefix = bytes(data[pos:pos + digits])
    if len(prefix) < digits:
        raise BmpError(f"{kind} prefix cut short at offset {pos}")
    if prefix.translate(None, _VAR_DIGITS):  # a byte other than F0 .. F9 is left
        raise BmpError(f"bad {kind} prefix {prefix.hex(' ').upper()} at offset {pos}")
    length = int(prefix.translate(_VAR_DIGIT_TEXT))
    start = pos + digits
    if start + length > len(data):
        raise BmpError(f"{kind} at offset {pos} declares {length} bytes, {len(data) - start} left")
    return bytes(data[start:start + length]), start + length


# -- BMP table -------------------------------------------------------------------------------------
class BmpFormat(enum.Enum):
    FIXED = "fixed"
    LLVAR = "LLVAR"
    LLLVAR = "LLLVAR"
    TLV = "TLV"


@dataclass(frozen=True)
class BmpSpec:
    """A BMP's name, format and (FIXED only) size in bytes [P15 13]."""

    name: str
    format: BmpFormat
    size: int = 0


def _table() -> dict[int, BmpSpec]:
    fixed = {
        0x01: ("timeout", 1), 0x02: ("max status infos", 1), 0x03: ("service byte", 1),
        0x04: ("amount", 6), 0x05: ("pump number", 1), 0x0B: ("trace number", 3),
        0x0C: ("time HHMMSS", 3), 0x0D: ("date MMDD", 2), 0x0E: ("expiry YYMM", 2),
        0x17: ("card sequence number", 2), 0x19: ("status / payment type", 1),
        0x27: ("result code", 1), 0x29: ("terminal id", 4), 0x2A: ("VU number", 15),
        0x37: ("original trace number", 3), 0x3A: ("CVV/CVC", 2), 0x3B: ("AID", 8),
        0x3D: ("password", 3), 0x49: ("currency code", 2), 0x70: ("display image request id", 4),
        0x71: ("display image size", 4), 0x72: ("image MIME type", 1), 0x73: ("image encoding", 1),
        0x74: ("image chunk count", 1), 0x75: ("image chunk index", 1), 0x87: ("receipt number", 2),
        0x88: ("turnover record number", 3), 0x8A: ("card type", 1),
        0x8C: ("network card type id", 1), 0xA0: ("host result code", 1), 0xAA: ("date YYMMDD", 3),
        0xBA: ("AID parameter", 5), 0xD0: ("algorithm key", 1), 0xD2: ("card output direction", 1),
        0xD3: ("DUKPT key identifier", 1), 0xE0: ("min input length", 1),
        0xE9: ("max input length", 1), 0xEA: ("echo input", 1), 0xEB: ("MAC over texts", 8),
        0xF0: ("display duration", 1), 0xF9: ("beep tones", 1), 0xFA: ("card reader activation", 1),
        0xFB: ("input confirmation", 1), 0xFC: ("dialog control", 1), 0xFD: ("display device", 1),
    }
    table = {bmp: BmpSpec(name, BmpFormat.FIXED, size) for bmp, (name, size) in fixed.items()}
    llvar = {0x22: "PAN", 0x23: "track 2", 0x2D: "track 1", 0x8B: "card name",
             0xA7: "chip data EF_ID", 0xD1: "card offset / PIN data"}
    llvar.update({0xE0 + n: f"text2 line {n}" for n in range(1, 9)})
    llvar.update({0xF0 + n: f"text1 line {n}" for n in range(1, 9)})
    lllvar = {0x24: "track 3", 0x2E: "synchronous chip data", 0x3C: "additional text",
              0x60: "individual totals", 0x9A: "GeldKarte records", 0xAF: "EF_Info"}
    table.update({bmp: BmpSpec(name, BmpFormat.LLVAR) for bmp, name in llvar.items()})
    table.update({bmp: BmpSpec(name, BmpFormat.LLLVAR) for bmp, name in lllvar.items()})
    table[0x06] = BmpSpec("TLV container", BmpFormat.TLV)
    return table


BMPS: dict[int, BmpSpec] = _table()
"""Every BMP of PA00P015 chapter 13, by number."""
REDACTED_BMPS = frozenset({0x23, 0x24, 0x2D, 0x2E, 0x3A, 0xA7, 0xD1})
"""Card data (tracks, chip data, CVV, PIN data): parsed past, only its length kept."""
REDACTED_TLV_TAGS = frozenset({0x1F08, 0x1F09, 0x1F0A, 0x1F1A, 0x1F31, 0x1F3E})
"""TLV tags holding tracks, a PAN, PIN or cardholder data: only their length is kept."""


@dataclass(frozen=True)
class Redacted:
    """Card data that was received but not kept; ``length`` in bytes."""

    length: int


# -- BER-TLV (posbench.drivers.card.tlv, with ZVT's rules) ----------------------------------------
ZVT_TLV = TlvRules(error=lambda reason, detail: TlvError(detail), max_depth=MAX_TLV_DEPTH, max_length_bytes=2,
                   redact=REDACTED_TLV_TAGS)
"""ZVT's BER-TLV [PA00P015 9]: no padding, long lengths 81 and 82 only, card-data tags' values never
kept (``Tlv.redacted_length``)."""


def parse_tlv(data: bytes) -> tuple[Tlv, ...]:
    """Parse a list of BER-TLV data objects (the content of BMP 06); ``TlvError`` when malformed."""
    return tlv.parse(data, ZVT_TLV)


def encode_tlv_container(items: Sequence[Tlv] | bytes = ()) -> bytes:
    """BMP 06 + BER length + data objects (``items`` as ``Tlv`` or ready-made bytes)."""
    return encode_tlv(0x06, items)


# -- BMP parsing -----------------------------------------------------------------------------------
BmpValue = Union[bytes, str, Redacted, tuple[Tlv, ...]]
"""bytes (raw field), str (masked PAN, BMP 22), Redacted (card data), tuple of Tlv (BMP 06)."""


def masked_pan(raw: bytes) -> str:
    """BMP 22 content (BCD, 'E' a masked digit, 'F' padding) as a PAN showing at most the first 6
    and last 4 digits; ``BmpError`` on any other nibble."""
    digits = bytes(raw).hex().upper().rstrip("F")
    if any(ch not in "0123456789E" for ch in digits):
        raise BmpError(f"PAN (BMP 22) of {len(raw)} bytes holds a non-decimal nibble")
    return mask_pan(digits.replace("E", "*"))


def read_bmp(data: bytes, pos: int) -> tuple[int, BmpValue, int]:
    """The BMP at ``pos``: its number, its value (see ``BmpValue``) and the next position."""
    bmp = data[pos]
    spec = BMPS.get(bmp)
    if spec is None:
        raise BmpError(f"unknown BMP 0x{bmp:02X} at offset {pos}: its length is not known")
    start = pos + 1
    if spec.format is BmpFormat.FIXED:
        end = start + spec.size
        if end > len(data):
            raise BmpError(f"BMP {bmp:02X} ({spec.name}) at offset {pos} needs {spec.size} bytes, "
                           f"{len(data) - start} left")
        value: bytes = bytes(data[start:end])
    elif spec.format is BmpFormat.TLV:
        length, body = tlv.read_length(data, start, len(data), ZVT_TLV)
        end = body + length
        if end > len(data):
            raise TlvError(f"TLV container at offset {pos} declares {length} bytes, {len(data) - body} left")
        return bmp, parse_tlv(data[body:end]), end
    else:
        value, end = read_var(data, start, 2 if spec.format is BmpFormat.LLVAR else 3)
    if bmp in REDACTED_BMPS:
        return bmp, Redacted(len(value)), end
    if bmp == 0x22:
        return bmp, masked_pan(value), end
    return bmp, value, end


def parse_bmps(data: bytes, start: int = 0) -> list[tuple[int, BmpValue]]:
    """Every BMP of ``data`` from offset ``start``, in order of arrival."""
    data = bytes(data)
    fields: list[tuple[int, BmpValue]] = []
    pos = start
    while pos < len(data):
        bmp, value, pos = read_bmp(data, pos)
        fields.append((bmp, value))
    return fields


def encode_bmp(bmp: int, value: bytes | Sequence[Tlv]) -> bytes:
    """One BMP with the prefix its format needs; BMP 06 takes ``Tlv`` objects or their bytes."""
    spec = BMPS.get(bmp)
    if spec is None:
        raise BmpError(f"unknown BMP 0x{bmp:02X}")
    if spec.format is BmpFormat.TLV:
        return encode_tlv_container(value)
    if not isinstance(value, (bytes, bytearray)):
        raise BmpError(f"BMP {bmp:02X} ({spec.name}) takes bytes")
    if spec.format is BmpFormat.FIXED:
        if len(value) != spec.size:
            raise BmpError(f"BMP {bmp:02X} ({spec.name}) is {spec.size} bytes, got {len(value)}")
        return bytes((bmp,)) + bytes(value)
    encode = encode_llvar if spec.format is BmpFormat.LLVAR else encode_lllvar
    return bytes((bmp,)) + encode(value)
