"""STX/ETX/LRC framing of the ENQ/ACK serial link (Concert E+ style), shared by the agent
protocol and Concert V2: ``STX`` + message + ``ETX`` + LRC, LRC = XOR of message and ETX (STX
excluded). A message is printable ASCII and FS, at most ``MAX_MESSAGE`` bytes. Every parse error is
a ``FrameError`` (or ``MessageError`` when encoding)."""
from __future__ import annotations

from posbench.core.errors import FrameError, MessageError

STX, ETX, EOT, ENQ, ACK, NAK, FS = 0x02, 0x03, 0x04, 0x05, 0x06, 0x15, 0x1C
MAX_MESSAGE = 4096
"""Largest message in bytes (a transaction-log page stays far below it)."""



_ALLOWED = bytes([FS, *range(0x20, 0x7F)])
"""The bytes a message may hold: printable ASCII and FS."""


def lrc(data: bytes) -> int:
    """XOR of every byte of ``data``.

    Folded as one integer (high half onto low half until one byte is left): a few big-int
    operations instead of a Python step per byte."""
    width = len(data)
    value = int.from_bytes(data, "little")
    while width > 1:
        half = (width + 1) >> 1
        bits = half << 3
        value = (value & ((1 << bits) - 1)) ^ (value >> bits)
        width = half
    return value


def encode_frame(message: bytes) -> bytes:
    """Wrap ``message`` as STX + message + ETX + LRC."""
    check_payload(message)
    body = bytes(message) + bytes([ETX])
    return bytes([STX]) + body + bytes([lrc(body)])


def decode_frame(frame: bytes) -> bytes:
    """Return the message inside one complete frame; ``FrameError`` says what is wrong."""
    frame = bytes(frame)
    if len(frame) < 3:
        raise FrameError(f"frame too short ({len(frame)} bytes)")
    if frame[0] != STX:
        raise FrameError(f"frame starts with 0x{frame[0]:02X}, expected STX")
    if frame[-2] != ETX:
        raise FrameError("frame has no ETX before its LRC")
    message = frame[1:-2]
    if ETX in message or STX in message:
        raise FrameError("STX or ETX inside a frame's message")
    if len(message) > MAX_MESSAGE:
        raise FrameError(f"message of {len(message)} bytes exceeds {MAX_MESSAGE}")
    expected = lrc(frame[1:-1])
    if frame[-1] != expected:
        raise FrameError(f"LRC mismatch: got 0x{frame[-1]:02X}, computed 0x{expected:02X}")
    check_payload(message, FrameError)
    return message


def check_payload(message: bytes, error: type[Exception] = MessageError) -> None:
    if len(message) > MAX_MESSAGE:
        raise error(f"message of {len(message)} bytes exceeds {MAX_MESSAGE}")
    bad = bytes(message).translate(None, _ALLOWED)  # what is left once the allowed bytes are gone
    if bad:
        raise error(f"byte 0x{bad[0]:02X} is not allowed in a message")
