"""The Caisse-AP message: ASCII fields ``TAG(2) LEN(3 decimal digits) VALUE``, CZ (the protocol
version, e.g. "0300") first, each tag at most once, every value at least one character long
[reference/terminal-protocols.md, Caisse-AP; Nepting's local API documentation].

No public library speaks Caisse-AP (the open implementations are GPL scripts, not libraries), so
the codec is written here. A message has no overall length: ``field_end`` tells how much of a
buffer is whole fields, and the reader decides where a message stops (``client.py``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from posbench.core.errors import MessageError

VERSION = "0300"
"""Protocol version the bench sends in CZ (Caisse-AP 3.00; terminals answer with their own)."""
TAG_RE = re.compile(rb"[A-Z]{2}")
"""A tag is two capital letters (Nepting: "Alphabetic (A..Z)")."""
MAX_VALUE = 999
"""The length field has three digits."""

AE_DONE, AE_NOT_DONE, AE_TAKEN = "10", "01", "11"
AE_MEANING = {AE_DONE: "operation done", AE_NOT_DONE: "operation not done",
              AE_TAKEN: "request taken into account (BA = 1: the result comes later)"}
"""AE, the operation's result."""

AF_REASONS = {
    "00": "unknown", "01": "authorised transaction", "02": "phone call (refer to the card issuer)",
    "03": "forcing", "04": "refused", "05": "forbidden", "06": "abandon", "07": "not ended",
    "08": "user input timeout", "09": "bad message format", "10": "bad selection",
    "11": "acquirer abandon", "12": "unknown operation", "13": "currency not supported",
}
"""AF reason codes (its first two characters) and their meaning [Nepting local API, AF]."""

AF_PARTS = (("reason", 2), ("field39", 2), ("field44", 21), ("df70", 2), ("ff50", 2))
"""AF after the reason, for CB / EMV applications [Nepting]: the CB2A authorisation response
(field 39, the issuer's code), the message to the initiator (field 44 BC), the acceptance
system's check results (field 55 DF70) and the reason the transaction did not end (field 58
FF50); a part the terminal does not fill is spaces, a shorter AF leaves the rest out."""

APPLICATIONS = {
    "000": "indifferent", "001": "CB contact", "002": "American Express contact", "003": "CB enseigne",
    "004": "Cetelem", "005": "Cofinoga", "006": "Diners Club", "007": "Pass", "008": "Franfinance",
    "009": "JCB", "101": "CB VAD", "00A": "Banque Accord EMV", "00B": "CB contactless",
    "00C": "cheque", "00D": "American Express contactless", "00E": "Conecs contact",
    "00U": "UnionPay", "10E": "Conecs contactless",
}
"""CC, the payment application [Nepting local API, CC] (those a bench meets; others are kept
as their code)."""
CONTACTLESS_APPLICATIONS = frozenset({"00B", "00D", "10E"})

OPERATIONS = {"0": "debit", "1": "credit", "2": "cancel"}
"""CD, the operation."""


class FieldError(MessageError):
    """Bytes that are not Caisse-AP fields: a bad tag or length, non-digits, a value cut off,
    a repeated tag, CZ missing or not first."""

    def __init__(self, detail: str, device: str = "terminal", doing: str = "parsing a Caisse-AP message"):
        super().__init__(detail, device, doing)


def encode_field(tag: str, value: str) -> bytes:
    if not TAG_RE.fullmatch(tag.encode("ascii", "replace")):
        raise ValueError(f"tag {tag!r} is not two capital letters")
    if not 1 <= len(value) <= MAX_VALUE:
        raise ValueError(f"field {tag}: a value has 1..{MAX_VALUE} characters, got {len(value)}")
    return tag.encode("ascii") + f"{len(value):03d}".encode("ascii") + value.encode("ascii")


def encode_message(fields: dict[str, str]) -> bytes:
    """The fields as one message, CZ first (``ValueError`` for a value that cannot be sent)."""
    if "CZ" not in fields:
        raise ValueError("a Caisse-AP message starts with CZ (the protocol version)")
    order = ["CZ"] + [tag for tag in fields if tag != "CZ"]
    return b"".join(encode_field(tag, fields[tag]) for tag in order)


def field_end(buffer: bytes | bytearray) -> int:
    """How many bytes at the start of ``buffer`` are whole fields (0..len); what follows is an
    unfinished field. ``FieldError`` for bytes that can never become a field."""
    pos = 0
    while pos < len(buffer):
        head = bytes(buffer[pos:pos + 5])
        tag, digits = head[:2], head[2:]
        if not (TAG_RE.fullmatch(tag) or (len(tag) == 1 and tag.isupper())):  # one letter: the tag arriving
            raise FieldError(f"bad tag {tag!r} at byte {pos}")
        if len(head) < 5:
            if digits and not digits.isdigit():
                raise FieldError(f"field {tag.decode()}: length {digits!r} is not digits")
            return pos
        if not head[2:].isdigit():
            raise FieldError(f"field {head[:2].decode()}: length {head[2:]!r} is not three digits")
        size = int(head[2:])
        if size == 0:
            raise FieldError(f"field {head[:2].decode()} has length 000 (a value has at least one character)")
        if pos + 5 + size > len(buffer):
            return pos
        pos += 5 + size
    return pos


def decode_message(raw: bytes) -> dict[str, str]:
    """Fields by tag, in the order they came; ``FieldError`` for a malformed or truncated message,
    a repeated tag, CZ missing or not first, or a value that is not printable ASCII."""
    end = field_end(raw)
    if end != len(raw):
        raise FieldError(f"message cut off: {len(raw) - end} byte(s) of an unfinished field after byte {end}")
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(raw):
        tag = raw[pos:pos + 2].decode("ascii")
        size = int(raw[pos + 2:pos + 5])
        value = raw[pos + 5:pos + 5 + size]
        if any(b < 0x20 or b > 0x7E for b in value):
            raise FieldError(f"field {tag}: its value is not printable ASCII")
        if tag in fields:
            raise FieldError(f"field {tag} appears twice")
        fields[tag] = value.decode("ascii")
        pos += 5 + size
    if not fields:
        raise FieldError("empty message")
    if next(iter(fields)) != "CZ":
        raise FieldError("CZ (the protocol version) missing or not first" if "CZ" in fields
                         else "CZ (the protocol version) missing")
    return fields


@dataclass(frozen=True)
class Reason:
    """AF taken apart (``AF_PARTS``); ``field39`` is "" when the terminal passed none."""

    code: str
    field39: str = ""
    message: str = ""
    """Field 44, the message to the transaction initiator (what the terminal displayed)."""
    df70: str = ""
    ff50: str = ""

    @property
    def meaning(self) -> str:
        return AF_REASONS.get(self.code, f"reason {self.code}")

    def encode(self) -> str:
        """AF's value: the parts up to the last one filled, unfilled ones as spaces."""
        parts = [self.code, self.field39, self.message, self.df70, self.ff50]
        text = "".join(part[:size].ljust(size) for part, (_, size) in zip(parts, AF_PARTS))
        return text.rstrip() if text[2:].strip() else self.code


def parse_reason(value: str) -> Reason:
    """AF's value taken apart; ``FieldError`` when its reason is not two digits or field 39 is
    neither digits nor blank."""
    code = value[:2]
    if len(code) != 2 or not code.isdigit():
        raise FieldError(f"AF {value!r}: the reason is not two digits")
    parts, pos = {}, 0
    for name, size in AF_PARTS:
        parts[name] = value[pos:pos + size].strip()
        pos += size
    if parts["field39"] and not parts["field39"].isalnum():
        raise FieldError(f"AF {value!r}: field 39 {parts['field39']!r} is not a response code")
    return Reason(code, parts["field39"], parts["field44"], parts["df70"], parts["ff50"])
