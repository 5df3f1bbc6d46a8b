"""A virtual EMV contact card as seen through the terminal's chip reader: ATR and SELECT PSE.

Only what the bench's chip diagnostic exercises: cold reset (ATR) and SELECT by name.
"""
from __future__ import annotations

from functools import reduce

PSE = b"1PAY.SYS.DDF01"


def _atr_t1(historical: bytes) -> bytes:
    """ATR offering T=0 and T=1 (so a TCK follows): TS, T0, TD1, TD2, historical, TCK."""
    t0 = 0x80 | len(historical)          # TD1 present, K historical bytes
    body = bytes([t0, 0x80, 0x01]) + historical  # TD1: TD2 follows, T=0; TD2: T=1
    return b"\x3b" + body + bytes([reduce(lambda a, b: a ^ b, body, 0)])


def _tlv(tag: bytes, value: bytes) -> bytes:
    assert len(value) < 0x80  # short form is all these small templates need
    return tag + bytes([len(value)]) + value


class ContactCard:
    """A test card's chip: ``atr`` after a cold reset, ``apdu()`` answers SELECT."""

    def __init__(self, card_id: str, aid: bytes = bytes.fromhex("A0000000031010"),
                 label: str = "VISA CREDIT"):
        self.card_id, self.aid, self.label = card_id, aid, label
        self.atr = _atr_t1(b"POSBENCH" + card_id[:2].encode().ljust(2, b"_"))

    def apdu(self, command: bytes) -> bytes:
        """Response data + SW1 SW2 to one command APDU."""
        if len(command) < 4:
            return b"\x67\x00"                      # wrong length
        cla, ins, p1, p2 = command[:4]
        if cla != 0x00:
            return b"\x6e\x00"                      # class not supported
        if ins != 0xA4:
            return b"\x6d\x00"                      # instruction not supported
        if p1 != 0x04 or len(command) < 5 or len(command) < 5 + command[4]:
            return b"\x6a\x86"                      # wrong P1/P2
        name = command[5:5 + command[4]]
        if name == PSE:
            proprietary = _tlv(b"\xa5", _tlv(b"\x88", b"\x01") + _tlv(b"\x5f\x2d", b"en"))
            return _tlv(b"\x6f", _tlv(b"\x84", PSE) + proprietary) + b"\x90\x00"
        if name == self.aid:
            return _tlv(b"\x6f", _tlv(b"\x84", self.aid) + _tlv(b"\xa5", _tlv(b"\x50", self.label.encode()))) + b"\x90\x00"
        return b"\x6a\x82"                          # file not found
