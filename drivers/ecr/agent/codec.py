"""The agent protocol's messages (PAX-style fields), carried in the frames of
``posbench.drivers.transport.frame``.

Message: printable ASCII, a command code then ``key=value`` fields, each preceded by FS (0x1C):
``ST`` / ``ST<FS>rc=OK<FS>uptime_s=12``. Written by hand: no library covers ECR framing.
Every parse error is a ``MessageError`` (a ``ProtocolError``).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import overload

from posbench.core.errors import MessageError
from posbench.drivers.transport.frame import FS, check_payload

_COMMAND_RE = re.compile(r"[A-Z][A-Z0-9]{1,7}")
_KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_MESSAGE_RE = re.compile(r"[A-Z][A-Z0-9]{1,7}(?:\x1c[a-z][a-z0-9_]{0,31}=[\x20-\x7e]*)*")
"""A whole well-formed message: the command, then FS key=value per field (printable values)."""
_FIELD_RE = re.compile(r"\x1c([a-z][a-z0-9_]{0,31})=([\x20-\x7e]*)")
"""One field of a message ``_MESSAGE_RE`` matched: (key, value) pairs in one ``findall``."""


@dataclass
class Message:
    """An application message: a command code and ordered ``key=value`` fields."""

    command: str
    fields: list[tuple[str, str]] = field(default_factory=list)

    @overload
    def get(self, key: str) -> str | None: ...
    @overload
    def get(self, key: str, default: str) -> str: ...

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.fields:
            if k == key:
                return v
        return default

    def getall(self, key: str) -> list[str]:
        return [v for k, v in self.fields if k == key]

    def require(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise MessageError(f"{self.command} reply lacks field {key!r}")
        return value

    def encode(self) -> bytes:
        return encode_message(self.command, self.fields)


def encode_message(command: str, fields: Sequence[tuple[str, object]] | dict[str, object] = ()) -> bytes:
    """Encode a command and its fields; raises ``MessageError`` for names or values it cannot carry."""
    if not _COMMAND_RE.fullmatch(command):
        raise MessageError(f"bad command code {command!r}")
    items = fields.items() if isinstance(fields, dict) else fields
    parts = [command.encode("ascii")]
    for key, value in items:
        if not _KEY_RE.fullmatch(key):
            raise MessageError(f"bad field name {key!r}")
        text = str(value)
        if not (text.isascii() and text.isprintable()):  # i.e. every character in 0x20..0x7E
            raise MessageError(f"field {key!r} has a character a message cannot carry")
        parts.append(f"{key}={text}".encode("ascii"))
    message = bytes([FS]).join(parts)
    check_payload(message)
    return message


def decode_message(payload: bytes) -> Message:
    """Decode a message payload; ``MessageError`` for anything that is not command + fields."""
    try:
        text = bytes(payload).decode("ascii")
    except UnicodeDecodeError:
        raise MessageError("message is not ASCII") from None
    if _MESSAGE_RE.fullmatch(text):  # one check of the whole message; else field by field for the error
        command = text.partition("\x1c")[0]
        return Message(command, _FIELD_RE.findall(text))
    command, *rest = text.split(chr(FS))
    if not _COMMAND_RE.fullmatch(command):
        raise MessageError(f"bad command code {command[:16]!r}")
    fields: list[tuple[str, str]] = []
    for part in rest:
        key, sep, value = part.partition("=")
        if not sep or not _KEY_RE.fullmatch(key):
            raise MessageError(f"field {part[:24]!r} is not key=value")
        if not value.isprintable():  # ASCII already: every character in 0x20..0x7E
            raise MessageError(f"field {key!r} has a control character")
        fields.append((key, value))
    return Message(command, fields)
