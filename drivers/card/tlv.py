"""BER-TLV, the one codec for EMV data (ISO/IEC 7816-4, EMV Book 3 Annex B), contactless FCI and
ZVT's BMP 06 [PA00P015 9]: multi-byte tags, short and long definite lengths, constructed tags
parsed recursively. What each user allows differs in policy, not in kind, and is its ``TlvRules``:
EMV skips 00/FF padding between objects and takes up to 4 length bytes; ZVT has no padding, allows
only the 81 and 82 long forms and never keeps the value of a card-data tag.

Written by hand: the small TLV packages on PyPI neither say *why* bytes are malformed (a diagnosis
needs that: a broken TLV from a chip is evidence against the reader) nor redact card data as they
parse.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from posbench.core.masking import mask_pan

SENSITIVE_TAGS = {
    0x56: "track 1 data", 0x57: "track 2 equivalent data", 0x5A: "PAN",
    0x5F20: "cardholder name", 0x99: "PIN data", 0x9F1F: "track 1 discretionary data",
    0x9F20: "track 2 discretionary data", 0x9F6B: "track 2 data",
}
"""Tags whose values a ``repr`` never shows (the PAN as first 6 / last 4 only)."""

REASONS = ("truncated", "bad_length", "indefinite_length", "tag_too_long", "too_deep")
"""Why bytes are not BER-TLV, as ``TlvRules.error`` is told."""


@dataclass(frozen=True)
class TlvRules:
    """What one user of BER-TLV accepts. ``error(reason, detail)`` makes the exception to raise
    (``reason`` one of ``REASONS``); ``redact``: tags whose value is dropped as it is parsed (only
    its length is kept, ``Tlv.redacted_length``)."""

    error: Callable[[str, str], Exception]
    max_depth: int
    max_length_bytes: int = 4
    skip_padding: bool = False
    redact: frozenset[int] = frozenset()


@dataclass(frozen=True, repr=False)
class Tlv:
    """One data object: ``tag`` as an int (``0x9F38``, ``0x1F12``), its value (b"" when redacted),
    for a constructed tag its children, parsed, and ``redacted_length`` (bytes not kept)."""

    tag: int
    value: bytes = b""
    children: tuple["Tlv", ...] = ()
    redacted_length: int = 0

    @property
    def constructed(self) -> bool:
        return bool(tag_bytes(self.tag)[0] & 0x20)

    def walk(self) -> Iterator["Tlv"]:
        """This object and every descendant, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, tag: int) -> "Tlv | None":
        """The first direct child with ``tag``, or None."""
        return next((child for child in self.children if child.tag == tag), None)

    def find_all(self, tag: int) -> list["Tlv"]:
        """Every direct child with ``tag``, in order."""
        return [child for child in self.children if child.tag == tag]

    def __repr__(self) -> str:
        if self.redacted_length:
            shown = f"<{self.redacted_length} B, not kept>"
        elif self.tag == 0x5A:
            shown = mask_pan(self.value.hex().upper().rstrip("F"))
        elif self.tag in SENSITIVE_TAGS:
            shown = f"<{SENSITIVE_TAGS[self.tag]}, redacted>"
        elif self.children:
            shown = "[" + ", ".join(map(repr, self.children)) + "]"
        else:
            shown = self.value.hex().upper()
        return f"Tlv({self.tag:X}, {len(self.value)} B, {shown})"


def tag_bytes(tag: int) -> bytes:
    """The bytes of tag number ``tag`` (0x1F12 -> 1F 12); ``ValueError`` for a negative one."""
    if tag < 0:
        raise ValueError(f"negative tag {tag}")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def ber_length(n: int) -> bytes:
    """A definite length: ``n`` below 128, ``81 n`` below 256, ``82 hi lo`` up to 65535;
    ``ValueError`` beyond (no card nor ZVT message is that long)."""
    if n < 0 or n > 0xFFFF:
        raise ValueError(f"length {n} cannot be BER-encoded in at most 3 bytes")
    if n < 0x80:
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def encode(tag: int, value: bytes | Sequence[Tlv] = b"") -> bytes:
    """One data object; a sequence of ``Tlv`` becomes a constructed value. ``ValueError`` for a
    redacted object (its value was never kept)."""
    if isinstance(value, (bytes, bytearray)):
        body = bytes(value)
    else:
        body = b"".join(_encode_item(item) for item in value)
    return tag_bytes(tag) + ber_length(len(body)) + body


def _encode_item(item: Tlv) -> bytes:
    if item.redacted_length:
        raise ValueError(f"tag {tag_bytes(item.tag).hex().upper()} was redacted and cannot be re-encoded")
    return encode(item.tag, item.children if item.children else item.value)


def parse(data: bytes, rules: TlvRules) -> tuple[Tlv, ...]:
    """Every data object in ``data`` by ``rules``; ``rules.error(reason, detail)`` is raised on
    anything malformed."""
    data = bytes(data)
    return _parse(data, 0, len(data), 0, rules)


def _parse(data: bytes, start: int, end: int, depth: int, rules: TlvRules) -> tuple[Tlv, ...]:
    if depth > rules.max_depth:
        raise rules.error("too_deep", f"constructed data objects nested deeper than {rules.max_depth}")
    items = []
    pos = start
    while pos < end:
        first = data[pos]
        if rules.skip_padding and first in (0x00, 0xFF):  # EMV Book 3 B1, ISO 7816-4 5.2.2
            pos += 1
            continue
        at = pos
        # One- and two-byte tags and short lengths, nearly all there are, are read in place; the
        # rest (and every malformed one) by _read_tag / read_length.
        if first & 0x1F != 0x1F:
            tag, pos = first, pos + 1
        elif pos + 1 < end and not data[pos + 1] & 0x80:
            tag, pos = first << 8 | data[pos + 1], pos + 2
        else:
            tag, pos = _read_tag(data, pos, end, rules)
        if pos < end and data[pos] < 0x80:
            length, pos = data[pos], pos + 1
        else:
            length, pos = read_length(data, pos, end, rules)
        if pos + length > end:
            raise rules.error("truncated", f"tag {tag_bytes(tag).hex().upper()} at offset {at} declares {length} "
                                           f"bytes, {end - pos} left")
        if tag in rules.redact:
            items.append(Tlv(tag, redacted_length=length))
        elif first & 0x20:
            items.append(Tlv(tag, data[pos:pos + length], _parse(data, pos, pos + length, depth + 1, rules)))
        else:
            items.append(Tlv(tag, data[pos:pos + length]))
        pos += length
    return tuple(items)


def _read_tag(data: bytes, pos: int, end: int, rules: TlvRules) -> tuple[int, int]:
    """A tag of more than one byte (b8 of each further byte says another follows)."""
    stop = pos + 1
    while True:
        if stop >= end:
            raise rules.error("truncated", f"tag at offset {pos} cut short")
        stop += 1
        if not data[stop - 1] & 0x80:
            break
        if stop - pos >= 4:
            raise rules.error("tag_too_long", f"tag at offset {pos} longer than 4 bytes")
    return int.from_bytes(data[pos:stop], "big"), stop


def read_length(data: bytes, pos: int, end: int, rules: TlvRules) -> tuple[int, int]:
    """The length field at ``pos``: (length, where its value starts), or what is wrong with it."""
    if pos >= end:
        raise rules.error("truncated", f"length field missing at offset {pos}")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if not 1 <= count <= rules.max_length_bytes:
        forms = "81 and 82" if rules.max_length_bytes == 2 else f"81 to 8{rules.max_length_bytes}"
        raise rules.error("indefinite_length" if first == 0x80 else "bad_length",
                          f"length byte 0x{first:02X} at offset {pos} is invalid (only {forms} are allowed)")
    if pos + 1 + count > end:
        raise rules.error("truncated", f"length field at offset {pos} cut short")
    return int.from_bytes(data[pos + 1:pos + 1 + count], "big"), pos + 1 + count


def walk(items: Sequence[Tlv]) -> Iterator[Tlv]:
    """Every object of ``items`` and their descendants, depth first."""
    for item in items:
        yield from item.walk()


def find(items: Sequence[Tlv], tag: int) -> Tlv | None:
    """The first object with ``tag`` anywhere in ``items`` (depth first), or None."""
    return next((item for item in walk(items) if item.tag == tag), None)


def find_all(items: Sequence[Tlv], tag: int) -> list[Tlv]:
    """Every object with ``tag`` anywhere in ``items``, depth first."""
    return [item for item in walk(items) if item.tag == tag]


def first_of_each(items: Sequence[Tlv]) -> dict[int, Tlv]:
    """The first object of every tag, depth first: ``find`` for all tags in one walk."""
    found: dict[int, Tlv] = {}
    for item in walk(items):
        found.setdefault(item.tag, item)
    return found
