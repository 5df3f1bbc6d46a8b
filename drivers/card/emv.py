"""EMV contact chip basics: ATR parsing (ISO/IEC 7816-3), SELECT APDUs, status words, BER-TLV.

A chip diagnostic powers the contact card, reads the ATR, selects the PSE and reports the
status words. A malformed ATR or TLV is evidence against the chip reader (``chip_contacts``),
so every parse error here is a ``ProtocolError`` (the unit misbehaved) with a stable
``reason`` id.

Hand-written rather than a library: pyscard (``smartcard.ATR``) needs the PC/SC daemon and
its C library and is not a project dependency, and neither it nor the small TLV packages on
PyPI report *why* a byte string is malformed with typed errors, which is what a diagnosis
needs. The formats are small and fully specified (ISO 7816-3 §8, EMV Book 3 Annex B).

ATRs are taken as readers deliver them: already decoded, so an inverse-convention card shows
TS = 3F (on the wire it would be the byte 03 read in direct convention).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from posbench.core.errors import ProtocolError

from . import tlv
from .tlv import Tlv, TlvRules

CHIP = "chip reader"

# -- ATR -----------------------------------------------------------------------------------
TS_DIRECT = 0x3B
TS_INVERSE = 0x3F
MAX_ATR_LEN = 33
"""ISO 7816-3: an ATR is at most 32 bytes after TS (TS + T0 + 15 interface + 15 historical + TCK)."""

ATR_REASONS = ("no_atr", "bad_ts", "truncated", "bad_td1", "missing_tck", "tck_mismatch",
               "too_long", "extra_bytes")


class AtrError(ProtocolError):
    """An answer to reset that is missing or malformed. ``reason`` is one of ``ATR_REASONS``."""

    def __init__(self, reason: str, detail: str = "", device: str = CHIP,
                 doing: str = "parsing the ATR"):
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason, device, doing)


@dataclass(frozen=True)
class InterfaceBytes:
    """TAi, TBi, TCi, TDi of one level i (None when absent)."""

    ta: int | None = None
    tb: int | None = None
    tc: int | None = None
    td: int | None = None


@dataclass(frozen=True)
class Atr:
    """A parsed answer to reset."""

    convention: Literal["direct", "inverse"]
    t0: int
    interface: tuple[InterfaceBytes, ...]
    """Level 1, 2, ...: ``interface[0]`` holds TA1, TB1, TC1, TD1."""
    historical: bytes
    tck: int | None
    tck_valid: bool | None
    """None without TCK; False only from ``parse_atr(strict=False)``."""
    protocols: tuple[int, ...] = field(default=(0,))
    """Offered protocols T in TDi order, without T=15 (global bytes); (0,) when there is no TD1."""

    @property
    def ts(self) -> int:
        return TS_DIRECT if self.convention == "direct" else TS_INVERSE

    @property
    def tck_required(self) -> bool:
        return _tck_required(self.interface)

    def to_bytes(self) -> bytes:
        """The ATR bytes, TCK as stored (``parse_atr(atr.to_bytes()) == atr`` for a valid ATR)."""
        out = bytearray([self.ts, self.t0])
        for level in self.interface:
            out += bytes(b for b in (level.ta, level.tb, level.tc, level.td) if b is not None)
        out += self.historical
        if self.tck is not None:
            out.append(self.tck)
        return bytes(out)

    def __str__(self) -> str:
        return self.to_bytes().hex(" ").upper()


def _tck_required(levels: tuple[InterfaceBytes, ...] | list[InterfaceBytes]) -> bool:
    # ISO 7816-3 8.2.5: TCK is absent if only T=0 is indicated, present in all other cases
    # (T=15 counts as "other": T=0 + global bytes still needs TCK).
    return any(lv.td is not None and lv.td & 0x0F != 0 for lv in levels)


def _xor(data: bytes | bytearray) -> int:
    value = 0
    for b in data:
        value ^= b
    return value


def parse_atr(data: bytes, strict: bool = True) -> Atr:
    """Parse an ATR. Raises ``AtrError`` with a reason for anything malformed.

    ``strict=False`` returns an ``Atr`` with ``tck_valid=False`` for a wrong or missing TCK
    (the rest of the ATR was readable) instead of raising; every other error still raises.
    """
    data = bytes(data)
    if not data:
        raise AtrError("no_atr", "the card sent nothing after reset")
    if len(data) > MAX_ATR_LEN:
        raise AtrError("too_long", f"{len(data)} bytes, at most {MAX_ATR_LEN}")
    ts = data[0]
    if ts not in (TS_DIRECT, TS_INVERSE):
        raise AtrError("bad_ts", f"TS = {ts:02X}, expected 3B or 3F")
    if len(data) < 2:
        raise AtrError("truncated", "T0 missing")
    t0 = data[1]
    n_hist = t0 & 0x0F
    pos, y, level = 2, t0 >> 4, 1
    levels: list[InterfaceBytes] = []
    protocols: list[int] = []
    while y:  # a level exists only when the previous T0/TDi announced some of its bytes
        values: list[int | None] = []
        for bit, name in ((0x1, "TA"), (0x2, "TB"), (0x4, "TC"), (0x8, "TD")):
            if y & bit:
                if pos >= len(data):
                    raise AtrError("truncated", f"{name}{level} declared but missing")
                values.append(data[pos])
                pos += 1
            else:
                values.append(None)
        lv = InterfaceBytes(*values)
        levels.append(lv)
        if lv.td is None:
            break
        t = lv.td & 0x0F
        if level == 1 and t == 15:
            raise AtrError("bad_td1", "TD1 indicates T=15, which only qualifies global bytes")
        if t != 15 and t not in protocols:
            protocols.append(t)
        y, level = lv.td >> 4, level + 1
    end_hist = pos + n_hist
    if end_hist > len(data):
        raise AtrError("truncated", f"{n_hist} historical bytes declared, {len(data) - pos} present")
    historical = data[pos:end_hist]
    tck: int | None = None
    tck_valid: bool | None = None
    if _tck_required(levels):
        if end_hist == len(data):
            if strict:
                raise AtrError("missing_tck", "a protocol other than T=0 is offered but TCK is absent")
            tck_valid = False
        else:
            tck = data[end_hist]
            tck_valid = _xor(data[1:end_hist + 1]) == 0
            if not tck_valid and strict:
                raise AtrError("tck_mismatch", f"TCK = {tck:02X}, expected {_xor(data[1:end_hist]):02X}")
            end_hist += 1
    if end_hist != len(data):
        raise AtrError("extra_bytes", f"{len(data) - end_hist} bytes after the end of the ATR")
    return Atr("direct" if ts == TS_DIRECT else "inverse", t0, tuple(levels), historical, tck,
               tck_valid, tuple(protocols) or (0,))


def build_atr(interface: list[InterfaceBytes] | tuple[InterfaceBytes, ...] = (),
              historical: bytes = b"", convention: Literal["direct", "inverse"] = "direct") -> bytes:
    """Build ATR bytes for an emulated card: Y/K nibbles and TCK computed; TDi must be consistent.

    The presence nibble of each TDi (and of T0) is derived from the next level's bytes, so
    ``interface[i].td`` only needs its low nibble (the protocol); its high nibble is replaced.
    """
    if len(historical) > 15:
        raise ValueError("at most 15 historical bytes")
    levels = list(interface)
    for lv in levels[:-1]:
        if lv.td is None:
            raise ValueError("every level but the last needs TDi to chain to the next")

    def y(lv: InterfaceBytes) -> int:
        return sum(bit for bit, b in ((1, lv.ta), (2, lv.tb), (4, lv.tc), (8, lv.td)) if b is not None)

    out = bytearray([TS_DIRECT if convention == "direct" else TS_INVERSE,
                     (y(levels[0]) << 4 if levels else 0) | len(historical)])
    fixed: list[InterfaceBytes] = []
    for i, lv in enumerate(levels):
        td = lv.td
        if td is not None:
            td = (y(levels[i + 1]) << 4 if i + 1 < len(levels) else 0) | (td & 0x0F)
        fixed.append(InterfaceBytes(lv.ta, lv.tb, lv.tc, td))
        out += bytes(b for b in (lv.ta, lv.tb, lv.tc, td) if b is not None)
    out += historical
    if _tck_required(fixed):
        out.append(_xor(out[1:]))
    if len(out) > MAX_ATR_LEN:
        raise ValueError(f"ATR would be {len(out)} bytes, at most {MAX_ATR_LEN}")
    return bytes(out)


# -- APDUs and status words ------------------------------------------------------------------
PSE = b"1PAY.SYS.DDF01"
"""Payment System Environment (contact)."""
PPSE = b"2PAY.SYS.DDF01"
"""Proximity PSE (contactless)."""


class ApduError(ProtocolError):
    """A card response that is not a valid APDU response (shorter than SW1 SW2)."""

    def __init__(self, reason: str, detail: str = "", device: str = CHIP,
                 doing: str = "reading an APDU response"):
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason, device, doing)


def select_by_name(name: bytes, next_occurrence: bool = False) -> bytes:
    """SELECT by DF name: ``00 A4 04 00 Lc name 00`` (P2 = 02 for the next occurrence)."""
    name = bytes(name)
    if not 1 <= len(name) <= 16:
        raise ValueError(f"a DF name or AID is 1..16 bytes, got {len(name)}")
    return bytes([0x00, 0xA4, 0x04, 0x02 if next_occurrence else 0x00, len(name)]) + name + b"\x00"


def read_record(sfi: int, record: int) -> bytes:
    """READ RECORD ``00 B2 record (sfi<<3 | 4) 00`` (SFI 1..30, record 1..254)."""
    if not (1 <= sfi <= 30 and 1 <= record <= 254):
        raise ValueError(f"SFI 1..30 and record 1..254, got SFI {sfi}, record {record}")
    return bytes([0x00, 0xB2, record, (sfi << 3) | 0x04, 0x00])


def get_response(length: int) -> bytes:
    """GET RESPONSE ``00 C0 00 00 Le`` (after a 61xx)."""
    if not 0 <= length <= 255:
        raise ValueError(f"Le is 0..255, got {length}")
    return bytes([0x00, 0xC0, 0x00, 0x00, length])


_SW_EXACT = {
    0x9000: "ok",
    0x6281: "warning: part of the returned data may be corrupted",
    0x6282: "warning: end of file reached before Le bytes",
    0x6283: "warning: selected file invalidated (application blocked)",
    0x6284: "warning: FCI not formatted as expected",
    0x6300: "warning: verification failed",
    0x6400: "error: execution error, memory unchanged",
    0x6581: "error: memory failure",
    0x6700: "wrong length (Lc or Le)",
    0x6882: "secure messaging not supported",
    0x6983: "authentication method blocked (PIN tries exhausted)",
    0x6984: "referenced data invalidated",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6A80: "incorrect data field",
    0x6A81: "function not supported (to SELECT: card blocked, the terminal ends the session)",
    0x6A82: "file or application not found (no PSE: the terminal falls back to its AID list)",
    0x6A83: "record not found",
    0x6A86: "incorrect P1 P2",
    0x6A88: "referenced data not found",
    0x6B00: "wrong parameters P1 P2",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}
_SW1_CLASS = {0x62: "warning, memory unchanged", 0x63: "warning, memory changed",
              0x64: "execution error, memory unchanged", 0x65: "execution error, memory changed",
              0x66: "security error", 0x67: "wrong length", 0x68: "function in CLA not supported",
              0x69: "command not allowed", 0x6A: "wrong parameters", 0x6B: "wrong parameters P1 P2",
              0x6D: "instruction not supported", 0x6E: "class not supported",
              0x6F: "no precise diagnosis"}


def sw_meaning(sw1: int, sw2: int) -> str:
    """What ``SW1 SW2`` means (ISO 7816-4 / EMV Book 1 and 3)."""
    sw = (sw1 << 8) | sw2
    if sw in _SW_EXACT:
        return _SW_EXACT[sw]
    if sw1 == 0x61:
        return f"ok, {sw2 or 256} more bytes available (GET RESPONSE)"
    if sw1 == 0x6C:
        return f"wrong Le: resend with Le = {sw2}"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed, {sw2 & 0x0F} tries left"
    if sw1 in _SW1_CLASS:
        return f"{_SW1_CLASS[sw1]} ({sw:04X})"
    return f"unknown status {sw:04X}"


def status_word(resp: bytes) -> tuple[int, int, str]:
    """(SW1, SW2, meaning) of a card response (its last two bytes)."""
    resp = bytes(resp)
    if len(resp) < 2:
        raise ApduError("short_response", f"{len(resp)} bytes, a response ends with SW1 SW2")
    sw1, sw2 = resp[-2], resp[-1]
    return sw1, sw2, sw_meaning(sw1, sw2)


def split_response(resp: bytes) -> tuple[bytes, int, int]:
    """(data, SW1, SW2) of a card response."""
    sw1, sw2, _ = status_word(resp)
    return bytes(resp[:-2]), sw1, sw2


# -- BER-TLV (EMV Book 3 Annex B) -----------------------------------------------------------
MAX_TLV_DEPTH = 16
"""Nesting limit: EMV templates nest 4 deep at most; a deeper input is not EMV data."""


class TlvError(ProtocolError):
    """Bytes that are not valid BER-TLV. ``reason``: truncated, bad_length, indefinite_length,
    tag_too_long, too_deep, missing_tag."""

    def __init__(self, reason: str, detail: str = "", device: str = CHIP,
                 doing: str = "parsing BER-TLV"):
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason, device, doing)


EMV_TLV = TlvRules(error=TlvError, max_depth=MAX_TLV_DEPTH, max_length_bytes=4, skip_padding=True)
"""EMV's BER-TLV (``posbench.drivers.card.tlv``): 00/FF padding between objects skipped, lengths
of up to 4 bytes, values kept (a ``repr`` masks card data)."""


def parse_tlv(data: bytes) -> list[Tlv]:
    """Parse EMV BER-TLV: multi-byte tags, 1..4-byte long lengths, constructed tags recursively,
    00/FF padding between objects skipped. Raises ``TlvError`` on anything malformed."""
    return list(tlv.parse(data, EMV_TLV))


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One data object with a definite length (short form below 128 bytes, else 81 / 82)."""
    return tlv.encode(tag, value)


def find_tag(objects: list[Tlv], tag: int) -> Tlv | None:
    """The first object with ``tag`` anywhere in ``objects`` (depth first), or None."""
    return tlv.find(objects, tag)


def fci_df_name(fci: bytes) -> bytes:
    """The DF name (tag 84) of an FCI template (6F), the response data of a SELECT."""
    objects = parse_tlv(fci)
    top = find_tag(objects, 0x6F)
    if top is None:
        raise TlvError("missing_tag", "no FCI template (6F)", doing="reading the FCI")
    name = find_tag([top], 0x84)
    if name is None:
        raise TlvError("missing_tag", "FCI without a DF name (84)", doing="reading the FCI")
    return name.value


def fci_aids(data: bytes) -> list[bytes]:
    """Every application identifier (tag 4F) in an FCI (PPSE: 6F/A5/BF0C/61/4F) or a PSE
    directory record (70/61/4F), in order."""
    return [obj.value for top in parse_tlv(data) for obj in top.walk() if obj.tag == 0x4F]


BRAND_AIDS = {
    "Visa": "A0000000031010",              # Visa credit/debit
    "Mastercard": "A0000000041010",        # Mastercard credit/debit
    "American Express": "A00000002501",
    "Discover": "A0000001523010",          # Discover (D-PAS)
    "Diners Club": "A0000001523010",       # Diners runs on Discover's network
    "JCB": "A0000000651010",
}
"""The AID a payment card of each brand lists first in its PPSE (published registrations)."""
