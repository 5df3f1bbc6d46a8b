"""The PN532's HSU frames (user manual UM0701-02, 6.2.1), as the virtual chip reads and
writes them: normal ``00 00 FF LEN LCS TFI PD.. DCS 00``, extended ``00 00 FF FF FF LENm LENl
LCS TFI PD.. DCS 00``, ACK ``00 00 FF 00 FF 00``, NACK ``00 00 FF FF 00 00``, syntax error
``00 00 FF 01 FF 7F 81 00``; ``FrameParser`` splits the host's byte stream into them."""
from __future__ import annotations

from dataclasses import dataclass

ACK = bytes.fromhex("0000FF00FF00")
NACK = bytes.fromhex("0000FFFF0000")
ERROR_FRAME = bytes.fromhex("0000FF01FF7F8100")
MAX_FRAME = 265
"""Largest TFI+PD the PN532 accepts from the host (its frame buffer); longer is a syntax error."""


def checksum(data: bytes) -> int:
    """Byte that makes ``sum(data) + it`` zero modulo 256 (LCS and DCS)."""
    return (0x100 - sum(data)) & 0xFF


def encode_frame(payload: bytes) -> bytes:
    """Frame TFI+PD with exactly one 00 preamble; extended syntax when LEN would not fit a byte.

    nfcpy reads LEN 0xFF as the extended marker, so 255 bytes go extended too.
    """
    n = len(payload)
    if n < 0xFF:
        head = bytes([0x00, 0x00, 0xFF, n, checksum(bytes([n]))])
    else:
        lm, ll = n >> 8, n & 0xFF
        head = bytes([0x00, 0x00, 0xFF, 0xFF, 0xFF, lm, ll, checksum(bytes([lm, ll]))])
    return head + bytes(payload) + bytes([checksum(payload), 0x00])


@dataclass(frozen=True)
class FrameEvent:
    """What the parser found: ``frame`` (``data`` = TFI+PD), ``ack``, ``nack``,
    ``checksum`` (data checksum wrong: answer NACK) or ``syntax`` (answer the error frame)."""

    kind: str
    data: bytes = b""


class FrameParser:
    """Incremental host-to-chip frame parser. Never raises; bytes that are no frame are skipped.

    A bad length checksum means no frame started there (resynchronise on the next ``00 FF``).
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.skipped = 0

    def reset(self) -> None:
        self.skipped += len(self.buf)
        self.buf.clear()

    def feed(self, data: bytes) -> list[FrameEvent]:
        self.buf += data
        events: list[FrameEvent] = []
        while True:
            start = self.buf.find(b"\x00\xFF")
            if start < 0:
                keep = 1 if self.buf[-1:] == b"\x00" else 0
                self.skipped += len(self.buf) - keep
                del self.buf[:len(self.buf) - keep]
                return events
            if start:
                self.skipped += start
                del self.buf[:start]
            event, used = self._one()
            if used == 0:
                return events  # incomplete: wait for more bytes
            del self.buf[:used]
            if event is not None:
                events.append(event)

    def _one(self) -> tuple[FrameEvent | None, int]:
        """Parse at a ``00 FF`` start code: (event or None, bytes consumed; 0 = need more)."""
        b = self.buf
        if len(b) < 4:
            return None, 0
        length, lcs = b[2], b[3]
        if length == 0x00 and lcs == 0xFF:
            return FrameEvent("ack"), 4
        if length == 0xFF and lcs == 0x00:
            return FrameEvent("nack"), 4
        if length == 0xFF and lcs == 0xFF:
            if len(b) < 7:
                return None, 0
            if (b[4] + b[5] + b[6]) & 0xFF:
                self.skipped += 1
                return None, 1  # not a frame: resync after this byte
            length, head = (b[4] << 8) | b[5], 7
        elif (length + lcs) & 0xFF:
            self.skipped += 1
            return None, 1
        else:
            head = 4
        if length == 0 or length > MAX_FRAME:
            return FrameEvent("syntax", b"length %d" % length), head
        if len(b) < head + length + 1:
            return None, 0
        data = bytes(b[head:head + length])
        if (sum(data) + b[head + length]) & 0xFF:
            return FrameEvent("checksum"), head + length + 1
        if data[0] != 0xD4 or length < 2:
            return FrameEvent("syntax", b"TFI/length"), head + length + 1
        return FrameEvent("frame", data), head + length + 1
