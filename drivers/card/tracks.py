"""ISO 7811 / 7813 magnetic stripe tracks: characters <-> bit streams, and track 1/2 fields.

Bit level (ISO 7811-2): track 1 carries 7 bits per character (6 data bits LSB first, then an
odd parity bit), value = ASCII - 0x20; tracks 2 and 3 carry 5 bits (4 data + odd parity),
value = ASCII - 0x30. After the end sentinel comes the LRC character: XOR of the data bits of
every character from start to end sentinel, with its own odd parity. Clocking zeros lead and
trail the data. A reader syncs on the first 1 bit; a card swiped backwards arrives bit-reversed.

Field level (ISO 7813): track 1 format B ``%B<PAN>^<NAME>^<YYMM><SC><DD>?``, track 2
``;<PAN>=<YYMM><SC><DD>?``. Parsing checks sentinels, separators, expiry, service code and Luhn.

Hand-written: no maintained PyPI library does ISO 7811 bit-level encoding with parity and LRC
(the magstripe parsers on PyPI work on already-decoded ASCII and skip LRC/parity).

Card data never leaves this module in clear: errors name the track, the failure and at most a
character position; ``TrackData``'s repr masks the PAN and never shows discretionary data.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from posbench.core.errors import UnitError
from posbench.core.masking import mask_pan

REASONS = ("no_data", "start_sentinel", "end_sentinel", "parity", "lrc", "format", "luhn",
           "unreadable")
"""Every ``TrackError.reason``. ``decode_bits`` and the parsers raise the first seven;
``unreadable`` is a reader that flagged a track bad without saying why (keyboard-emulation
readers type ``E`` for it)."""


@dataclass(frozen=True)
class _Spec:
    data_bits: int
    offset: int          # ASCII code of value 0
    start: str
    end: str
    max_chars: int       # including sentinels and LRC (ISO 7811: 79 / 40 / 107)


SPECS = {
    1: _Spec(6, 0x20, "%", "?", 79),
    2: _Spec(4, 0x30, ";", "?", 40),
    3: _Spec(4, 0x30, ";", "?", 107),
}
LEAD_ZEROS = 20
"""Clocking zeros before the start sentinel and after the LRC of an encoded stream."""


class TrackError(UnitError):
    """A track failed to decode or parse. ``track`` 1..3, ``reason`` one of ``REASONS``.

    The message names the track, the reason and at most a character position: never track text.
    """

    def __init__(self, track: int, reason: str, detail: str = "", device: str = "magstripe"):
        if reason not in REASONS:
            raise ValueError(f"unknown track error reason {reason!r}")
        self.track, self.reason = track, reason
        text = reason.replace("_", " ") + (f" ({detail})" if detail else "")
        super().__init__(device, f"reading track {track}", text)


def _spec(track: int) -> _Spec:
    try:
        return SPECS[track]
    except KeyError:
        raise ValueError(f"track must be 1, 2 or 3, got {track!r}") from None


def _odd_parity_bit(value: int, nbits: int) -> int:
    return 0 if bin(value & ((1 << nbits) - 1)).count("1") % 2 else 1


def char_value(track: int, ch: str) -> int:
    """The data value of ``ch`` on ``track``; ``TrackError(format)`` if it is not encodable."""
    spec = _spec(track)
    value = ord(ch) - spec.offset
    if len(ch) != 1 or not 0 <= value < (1 << spec.data_bits):
        raise TrackError(track, "format", "character outside the track's character set")
    return value


def _char_bits(value: int, nbits: int) -> list[int]:
    return [(value >> i) & 1 for i in range(nbits)] + [_odd_parity_bit(value, nbits)]


def lrc_value(track: int, text: str) -> int:
    """XOR of the data values of ``text`` (start sentinel .. end sentinel)."""
    lrc = 0
    for ch in text:
        lrc ^= char_value(track, ch)
    return lrc


def lrc_char(track: int, text: str) -> str:
    """The LRC of ``text`` as a character of the track's set."""
    return chr(lrc_value(track, text) + _spec(track).offset)


def encode_bits(track: int, text: str, lead: int = LEAD_ZEROS, trail: int = LEAD_ZEROS) -> list[int]:
    """Encode ``text`` (start sentinel .. end sentinel, no LRC) as written on the stripe.

    Returns ``lead`` zeros, each character's data bits LSB first plus odd parity, the LRC
    character, ``trail`` zeros. ``TrackError(format)`` for text that is not a track.
    """
    spec = _spec(track)
    if len(text) < 2 or text[0] != spec.start or text[-1] != spec.end:
        raise TrackError(track, "format", "text must run from start to end sentinel")
    if len(text) + 1 > spec.max_chars:
        raise TrackError(track, "format", f"longer than {spec.max_chars} characters")
    bits = [0] * lead
    for ch in text:
        bits += _char_bits(char_value(track, ch), spec.data_bits)
    bits += _char_bits(lrc_value(track, text), spec.data_bits)
    return bits + [0] * trail


def _decode_forward(track: int, bits: list[int]) -> str:
    spec = _spec(track)
    width = spec.data_bits + 1
    start = next((i for i, b in enumerate(bits) if b), None)
    if start is None:
        raise TrackError(track, "no_data", "no flux transitions")
    out: list[str] = []
    lrc = 0
    pos = start
    while True:
        chunk = bits[pos:pos + width]
        if len(chunk) < width:
            if not out:
                raise TrackError(track, "start_sentinel", "stream ends before a full character")
            raise TrackError(track, "end_sentinel", f"no end sentinel after {len(out)} characters")
        value = sum(b << i for i, b in enumerate(chunk[:spec.data_bits]))
        ch = chr(value + spec.offset)
        if not out and ch != spec.start:
            raise TrackError(track, "start_sentinel", "first character is not the start sentinel")
        if chunk[-1] != _odd_parity_bit(value, spec.data_bits):
            raise TrackError(track, "parity", f"at character {len(out)}")
        out.append(ch)
        lrc ^= value
        pos += width
        if ch == spec.end:
            break
        if len(out) >= spec.max_chars:
            raise TrackError(track, "end_sentinel", f"none within {spec.max_chars} characters")
    chunk = bits[pos:pos + width]
    if len(chunk) < width:
        raise TrackError(track, "lrc", "stream ends before the LRC character")
    value = sum(b << i for i, b in enumerate(chunk[:spec.data_bits]))
    if chunk[-1] != _odd_parity_bit(value, spec.data_bits):
        raise TrackError(track, "lrc", "LRC character fails its parity")
    if value != lrc:
        raise TrackError(track, "lrc", "LRC mismatch")
    return "".join(out)


def decode_bits(track: int, bits) -> str:
    """Decode a raw bit stream from the head into text (start .. end sentinel, LRC checked).

    Tries the stream as read, then reversed (a card swiped the other way), as a real reader
    does. Raises ``TrackError`` with reason ``no_data``, ``start_sentinel``, ``end_sentinel``,
    ``parity`` or ``lrc``: the error of the forward read unless the reversed read gets further.
    """
    seq = [1 if b else 0 for b in bits]
    try:
        return _decode_forward(track, seq)
    except TrackError as forward:
        if forward.reason != "start_sentinel":
            raise
        try:
            return _decode_forward(track, seq[::-1])
        except TrackError:
            raise forward from None


def luhn_valid(pan: str) -> bool:
    """Luhn (mod 10) check: from the right, double every second digit; valid if sum % 10 == 0."""
    if not pan or not pan.isdigit() or not pan.isascii():
        return False
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class TrackData:
    """The fields of a financial track. ``expiry`` is ``YYMM``; ``name`` is None on track 2.

    repr/str mask the PAN (first 6 / last 4) and never show the discretionary data.
    """

    pan: str
    name: str | None
    expiry: str
    service_code: str
    discretionary: str = field(repr=False)

    def __repr__(self) -> str:
        name = "" if self.name is None else f", name={self.name!r}"
        return (f"TrackData(pan={mask_pan(self.pan)!r}{name}, expiry={self.expiry!r}, "
                f"service_code={self.service_code!r}, discretionary=<{len(self.discretionary)} chars>)")

    __str__ = __repr__


def _strip_sentinels(track: int, text: str) -> str:
    spec = _spec(track)
    if not isinstance(text, str) or not text:
        raise TrackError(track, "no_data", "empty track")
    if text[0] != spec.start:
        raise TrackError(track, "start_sentinel", "text does not begin with the start sentinel")
    end = text.find(spec.end, 1)
    if end < 0:
        raise TrackError(track, "end_sentinel", "no end sentinel")
    tail = text[end + 1:]
    if len(tail) > 1:
        raise TrackError(track, "format", "characters after the end sentinel and LRC")
    for ch in text[:end + 1]:
        char_value(track, ch)
    if tail:  # an LRC character was kept: check it
        if lrc_value(track, text[:end + 1]) != char_value(track, tail):
            raise TrackError(track, "lrc", "LRC mismatch")
    return text[1:end]


def _check_expiry_sc(track: int, rest: str) -> tuple[str, str, str]:
    if len(rest) < 7 or not rest[:7].isdigit() or not rest[:7].isascii():
        raise TrackError(track, "format", "expiry or service code is not 7 digits")
    expiry, service_code = rest[:4], rest[4:7]
    if not 1 <= int(expiry[2:]) <= 12:
        raise TrackError(track, "format", "expiry month out of range")
    return expiry, service_code, rest[7:]


def _check_pan(track: int, pan: str) -> None:
    if not (pan.isdigit() and pan.isascii()) or not 12 <= len(pan) <= 19:
        raise TrackError(track, "format", f"PAN is not 12-19 digits ({len(pan)} characters)")
    if not luhn_valid(pan):
        raise TrackError(track, "luhn", f"PAN {mask_pan(pan)} fails the Luhn check")


def parse_track1(text: str) -> TrackData:
    """Parse ISO 7813 track 1 format B (``%B...?``, optional trailing LRC char)."""
    body = _strip_sentinels(1, text)
    if not body.startswith("B"):
        raise TrackError(1, "format", "format code is not B")
    parts = body[1:].split("^")
    if len(parts) != 3:
        raise TrackError(1, "format", f"expected 2 field separators, found {len(parts) - 1}")
    pan, name, rest = parts
    _check_pan(1, pan)
    if not 2 <= len(name) <= 26:
        raise TrackError(1, "format", f"name is {len(name)} characters, not 2-26")
    expiry, service_code, disc = _check_expiry_sc(1, rest)
    if len(text) > SPECS[1].max_chars:
        raise TrackError(1, "format", f"longer than {SPECS[1].max_chars} characters")
    return TrackData(pan, name, expiry, service_code, disc)


def parse_track2(text: str) -> TrackData:
    """Parse ISO 7813 track 2 (``;PAN=YYMMSSS...?``, optional trailing LRC char)."""
    body = _strip_sentinels(2, text)
    pan, sep, rest = body.partition("=")
    if not sep:
        raise TrackError(2, "format", "no field separator")
    _check_pan(2, pan)
    expiry, service_code, disc = _check_expiry_sc(2, rest)
    if not (disc.isdigit() and disc.isascii()) and disc:
        raise TrackError(2, "format", "discretionary data is not numeric")
    if len(text) > SPECS[2].max_chars:
        raise TrackError(2, "format", f"longer than {SPECS[2].max_chars} characters")
    return TrackData(pan, None, expiry, service_code, disc)


def parse_track(track: int, text: str) -> TrackData:
    """``parse_track1`` or ``parse_track2`` by track number."""
    if track == 1:
        return parse_track1(text)
    if track == 2:
        return parse_track2(text)
    raise ValueError(f"only tracks 1 and 2 carry ISO 7813 financial data, not {track!r}")
