"""BER-TLV (EMV Book 3 annex B) and the PPSE File Control Information a contactless card returns.

Hand-written on purpose: EMV BER-TLV is a few dozen lines (tags of 1-3 bytes, definite lengths
of at most 3 bytes, 00/FF padding between objects) and no installed library parses it; pyasn1
needs an ASN.1 schema that EMV data does not have.
"""
from __future__ import annotations

from dataclasses import dataclass

PPSE_NAME = b"2PAY.SYS.DDF01"
"""Proximity Payment System Environment, selected by name on every contactless EMV card."""

MAX_DEPTH = 8
"""Nesting deeper than this is malformed (a real FCI nests four levels)."""


class FciError(ValueError):
    """Bytes that are not valid BER-TLV, or an FCI missing a mandatory object."""


@dataclass(frozen=True)
class Tlv:
    """One data object. ``children`` is set for constructed tags (bit 6 of the first tag byte)."""

    tag: int
    value: bytes
    children: tuple["Tlv", ...] | None = None

    def find(self, tag: int) -> "Tlv | None":
        """First direct child with ``tag``, or None."""
        for child in self.children or ():
            if child.tag == tag:
                return child
        return None

    def find_all(self, tag: int) -> list["Tlv"]:
        return [child for child in self.children or () if child.tag == tag]


def _read_tag(data: bytes, pos: int) -> tuple[int, int, bool]:
    first = data[pos]
    tag, pos = first, pos + 1
    if first & 0x1F == 0x1F:  # multi-byte tag: more bytes while bit 8 is set
        for _ in range(3):
            if pos >= len(data):
                raise FciError("tag truncated")
            tag = (tag << 8) | data[pos]
            pos += 1
            if not data[pos - 1] & 0x80:
                break
        else:
            raise FciError("tag longer than 4 bytes")
    return tag, pos, bool(first & 0x20)


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise FciError("length missing")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 3:
        raise FciError(f"unsupported length form 0x{first:02X}")
    if pos + 1 + count > len(data):
        raise FciError("length truncated")
    return int.from_bytes(data[pos + 1:pos + 1 + count], "big"), pos + 1 + count


def parse_tlv(data: bytes, depth: int = 0) -> tuple[Tlv, ...]:
    """Parse a sequence of data objects; ``FciError`` says what is malformed."""
    if depth > MAX_DEPTH:
        raise FciError(f"nested deeper than {MAX_DEPTH} levels")
    data = bytes(data)
    out: list[Tlv] = []
    pos = 0
    while pos < len(data):
        if data[pos] in (0x00, 0xFF):  # padding between objects (EMV Book 3, B1)
            pos += 1
            continue
        tag, pos, constructed = _read_tag(data, pos)
        length, pos = _read_length(data, pos)
        if pos + length > len(data):
            raise FciError(f"tag {tag:X}: length {length} runs past the end ({len(data) - pos} left)")
        value = data[pos:pos + length]
        pos += length
        children = parse_tlv(value, depth + 1) if constructed else None
        out.append(Tlv(tag, value, children))
    return tuple(out)


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One data object with a definite length (short form below 128 bytes)."""
    tag_bytes = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n <= 0xFF:
        length = bytes([0x81, n])
    elif n <= 0xFFFF:
        length = bytes([0x82]) + n.to_bytes(2, "big")
    else:
        raise ValueError(f"value of {n} bytes is too long for a card")
    return tag_bytes + length + bytes(value)


@dataclass(frozen=True)
class DirectoryEntry:
    """One application the PPSE lists: AID (tag 4F), label (50) and priority (87)."""

    aid: bytes
    label: str | None = None
    priority: int | None = None


@dataclass(frozen=True)
class PpseFci:
    df_name: bytes
    entries: tuple[DirectoryEntry, ...]

    @property
    def aids(self) -> tuple[str, ...]:
        return tuple(e.aid.hex().upper() for e in self.entries)


def parse_ppse_fci(data: bytes) -> PpseFci:
    """Parse the FCI a card answers to SELECT PPSE (status word removed).

    ``6F [84 DF name] [A5 [BF0C [61 [4F AID] [50 label] [87 priority]]...]]``; every entry must
    carry an AID of 5..16 bytes (ISO 7816-5 RID + PIX).
    """
    top = parse_tlv(data)
    if len(top) != 1 or top[0].tag != 0x6F:
        raise FciError("the FCI is not a single 6F template")
    fci = top[0]
    name = fci.find(0x84)
    if name is None:
        raise FciError("FCI without DF name (84)")
    prop = fci.find(0xA5)
    if prop is None or prop.children is None:
        raise FciError("FCI without proprietary template (A5)")
    directory = prop.find(0xBF0C)
    if directory is None or directory.children is None:
        raise FciError("PPSE FCI without issuer discretionary data (BF0C)")
    entries = []
    for entry in directory.find_all(0x61):
        aid = entry.find(0x4F)
        if aid is None or not 5 <= len(aid.value) <= 16:
            raise FciError("directory entry (61) without a 5..16 byte AID (4F)")
        label = entry.find(0x50)
        prio = entry.find(0x87)
        entries.append(DirectoryEntry(
            aid.value,
            label.value.decode("ascii", "replace") if label else None,
            prio.value[0] if prio and len(prio.value) == 1 else None))
    if not entries:
        raise FciError("PPSE FCI lists no application (61)")
    return PpseFci(name.value, tuple(entries))
