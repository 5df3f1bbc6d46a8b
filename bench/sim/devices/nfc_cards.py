"""Virtual contactless cards the PN532 emulator finds in its field.

A card sees what the reader's RF front end would deliver: raw ISO 14443-3A frames without CRC
(the chip checks and strips CRC_A). Two cards:

* ``Iso14443_4Card``: a Type A payment card (SAK 0x20) speaking ISO-DEP (ISO 14443-4) with
  block numbers, chaining, R(ACK)/R(NAK) and S(DESELECT), answering SELECT PPSE with the FCI of
  the published Visa test card application (AID A0000000031010). No PAN is ever produced.
* ``Type2Tag``: an NXP NTAG213 (7-byte UID, SAK 0x00) with the factory memory layout and an NDEF
  message (built with the ``ndef`` library nfcpy uses).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import ndef

from posbench.drivers.card.emv import PPSE as PPSE_NAME
from posbench.drivers.card.emv import encode_tlv

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_NOT_FOUND = b"\x6A\x82"
SW_INS_NOT_SUPPORTED = b"\x6D\x00"
SW_CLA_NOT_SUPPORTED = b"\x6E\x00"
SW_CONDITIONS = b"\x69\x85"

FSD = (16, 24, 32, 40, 48, 64, 96, 128, 256)
"""Frame size for FSDI/FSCI 0..8 (ISO 14443-4, 5.2.2)."""


@dataclass(frozen=True)
class Reply:
    """What a card sends back. ``short`` marks a 4-bit ACK/NAK frame (it carries no CRC)."""

    data: bytes
    short: bool = False


class Card:
    """ISO 14443-3A life cycle shared by every card: off/idle -> active (selected) -> halt.

    ``atqa`` is the 16-bit ATQA (the PN532 reports it most significant byte first), ``sak`` the
    SELECT acknowledge, ``uid`` 4 or 7 bytes.
    """

    atqa: int
    sak: int
    uid: bytes

    def __init__(self) -> None:
        self.state = "idle"

    def power_off(self) -> None:
        """The field went off: the card loses power and forgets its session."""
        self.state = "idle"

    def select(self) -> bool:
        """REQA + anticollision + SELECT. A halted card ignores REQA until the field cycles."""
        if self.state == "halt":
            return False
        self.state = "active"
        return True

    def rats(self, param: int) -> bytes | None:
        """RATS for cards that support ISO-DEP; others stay silent."""
        return None

    def frame(self, data: bytes) -> Reply | None:
        """Process one frame (CRC removed); None = no answer (the reader sees a timeout)."""
        if self.state == "active" and data[:2] == b"\x50\x00":  # HLTA
            self.state = "halt"
        return None


# -- ISO-DEP payment card ----------------------------------------------------------------------
@dataclass(frozen=True)
class CardApplication:
    """An EMV application the card holds: AID (hex), label and priority as in its PPSE entry."""

    aid: str
    label: str
    priority: int = 1


VISA_TEST_APP = CardApplication("A0000000031010", "VISA CREDIT", 1)
"""The application of the published Visa test card (no PAN needed for PPSE)."""


class Iso14443_4Card(Card):
    """Type A ISO-DEP card: SAK 0x20, ATS with FSCI 8 (256 bytes) and FWI 7 (38.7 ms)."""

    ats = bytes.fromhex("0578807000")
    """TL=5, T0=78 (TA1 TB1 TC1 follow, FSCI 8), TA1=80, TB1=70 (FWI 7, SFGI 0), TC1=00 (no NAD/CID)."""

    def __init__(self, uid: bytes = bytes.fromhex("08A1B2C3"),
                 apps: tuple[CardApplication, ...] = (VISA_TEST_APP,), ppse: bool = True):
        """``ppse=False`` makes a contact-only style card that answers SELECT PPSE with 6A82."""
        super().__init__()
        self.has_ppse = ppse
        if len(uid) != 4:
            raise ValueError("a payment card in this bench has a 4-byte (random) UID")
        self.uid, self.apps = bytes(uid), tuple(apps)
        self.atqa, self.sak = 0x0004, 0x20
        self.apdus = 0
        self._reset_dep()

    def _reset_dep(self) -> None:
        self.block = 1                 # PICC block number, 1 after activation (14443-4, 7.5.3.2)
        self.fsd = 256
        self.last: bytes = b""         # last block sent, for retransmission
        self.rx_chain = bytearray()    # command being chained by the reader
        self.tx_pending = b""          # response still to chain to the reader
        self.selected_app: CardApplication | None = None

    def power_off(self) -> None:
        super().power_off()
        self._reset_dep()

    def rats(self, param: int) -> bytes | None:
        if self.state != "active":
            return None
        self.fsd = FSD[min(param >> 4, 8)]
        self.state = "protocol"
        self.block = 1
        return self.ats

    # ISO 14443-4 block protocol, PICC rules 10-13 (7.5.4.3)
    def frame(self, data: bytes) -> Reply | None:
        if not data:
            return None
        if self.state == "active":
            if data[0] == 0xE0 and len(data) == 2:
                ats = self.rats(data[1])
                return Reply(ats) if ats else None
            return super().frame(data)
        if self.state != "protocol":
            return None
        pcb = data[0]
        pos = 1 + bool(pcb & 0x08) + bool(pcb & 0x04 and pcb & 0xC0 == 0x00)  # skip CID, NAD
        inf = data[pos:]
        if pcb & 0xE2 == 0x02:                        # I-block
            self.block ^= 1
            if pcb & 0x10:                            # reader chains: acknowledge
                self.rx_chain += inf
                return self._send(bytes([0xA2 | self.block]))
            command = bytes(self.rx_chain + inf)
            self.rx_chain.clear()
            self.tx_pending = self.apdu(command)
            return self._next_chunk()
        if pcb & 0xE6 == 0xA2:                        # R-block
            nak, number = bool(pcb & 0x10), pcb & 0x01
            if number == self.block:
                return Reply(self.last) if self.last else None   # rule 11: retransmit
            if nak:
                return self._send(bytes([0xA2 | self.block]))    # rule 12: R(ACK)
            if self.tx_pending:                                  # rule 13: continue chaining
                self.block ^= 1
                return self._next_chunk()
            return None
        if pcb & 0xF7 == 0xC2:                        # S(DESELECT)
            self.state = "halt"
            return Reply(bytes([pcb]))
        return None

    def _next_chunk(self) -> Reply:
        room = self.fsd - 3                          # PCB + CRC_A
        chunk, self.tx_pending = self.tx_pending[:room], self.tx_pending[room:]
        chaining = 0x10 if self.tx_pending else 0x00
        return self._send(bytes([0x02 | chaining | self.block]) + chunk)

    def _send(self, block: bytes) -> Reply:
        self.last = block
        return Reply(block)

    # ISO 7816-4 / EMV Book 1 application layer
    def apdu(self, cmd: bytes) -> bytes:
        """Answer one command APDU; the response ends with the status word."""
        self.apdus += 1
        if len(cmd) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = cmd[:4]
        if cla not in (0x00, 0x80):
            return SW_CLA_NOT_SUPPORTED
        if ins == 0xA4:
            if len(cmd) < 5 or len(cmd) not in (5 + cmd[4], 6 + cmd[4]):
                return SW_WRONG_LENGTH
            name = cmd[5:5 + cmd[4]]
            if p1 != 0x04 or p2 & 0x02:               # only "first occurrence by DF name"
                return SW_NOT_FOUND
            if name == PPSE_NAME and self.has_ppse:
                self.selected_app = None
                return self.ppse_fci() + SW_OK
            for app in self.apps:
                if len(name) >= 5 and bytes.fromhex(app.aid).startswith(name):
                    self.selected_app = app
                    return self.app_fci(app) + SW_OK
            return SW_NOT_FOUND
        if ins in (0xA8, 0xB2, 0xCA):                  # GPO, READ RECORD, GET DATA
            return SW_CONDITIONS                       # not personalised beyond SELECT
        return SW_INS_NOT_SUPPORTED

    def ppse_fci(self) -> bytes:
        entries = b"".join(encode_tlv(0x61, encode_tlv(0x4F, bytes.fromhex(app.aid))
                                      + encode_tlv(0x50, app.label.encode("ascii"))
                                      + encode_tlv(0x87, bytes([app.priority])))
                           for app in self.apps)
        return encode_tlv(0x6F, encode_tlv(0x84, PPSE_NAME)
                          + encode_tlv(0xA5, encode_tlv(0xBF0C, entries)))

    def app_fci(self, app: CardApplication) -> bytes:
        # PDOL of a Visa qVSDC card: TTQ, amount, other amount, country, TVR, currency, date,
        # type, unpredictable number.
        pdol = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
        return encode_tlv(0x6F, encode_tlv(0x84, bytes.fromhex(app.aid)) + encode_tlv(
            0xA5, encode_tlv(0x50, app.label.encode("ascii")) + encode_tlv(0x87, bytes([app.priority]))
            + encode_tlv(0x9F38, pdol)))


# -- NFC Forum Type 2 Tag ----------------------------------------------------------------------
NAK_INVALID = Reply(b"\x00", short=True)
ACK = Reply(b"\x0A", short=True)


class Type2Tag(Card):
    """NXP NTAG213: 45 pages of 4 bytes, user memory pages 4..39 (144 bytes).

    Commands: READ 30, FAST_READ 3A, WRITE A2, GET_VERSION 60, READ_SIG 3C, READ_CNT 39,
    PWD_AUTH 1B, HLTA 50 00. An unknown command (e.g. Ultralight C's AUTHENTICATE 1A) makes the
    tag fall silent until it is selected again, as the datasheet says and nfcpy relies on.
    """

    PAGES = 45
    VERSION = bytes.fromhex("0004040201000F03")

    def __init__(self, uid: bytes = bytes.fromhex("04A1B2C3D4E580"),
                 records: list[ndef.Record] | None = None):
        super().__init__()
        if len(uid) != 7:
            raise ValueError("an NTAG213 has a 7-byte UID")
        self.uid, self.atqa, self.sak = bytes(uid), 0x0044, 0x00
        records = records if records is not None else [ndef.TextRecord("posbench test tag")]
        self.message = b"".join(ndef.message_encoder(records))
        self.memory = self._factory_memory(self.message)
        self.reads = self.writes = 0

    def _factory_memory(self, message: bytes) -> bytearray:
        u = self.uid
        mem = bytearray(4 * self.PAGES)
        mem[0:4] = bytes([u[0], u[1], u[2], 0x88 ^ u[0] ^ u[1] ^ u[2]])
        mem[4:8] = u[3:7]
        mem[8:12] = bytes([u[3] ^ u[4] ^ u[5] ^ u[6], 0x48, 0x00, 0x00])  # BCC1, internal, lock
        mem[12:16] = bytes.fromhex("E1101200")         # CC: NDEF 1.0, 144 bytes, read/write
        length = bytes([len(message)]) if len(message) < 0xFF else b"\xFF" + len(message).to_bytes(2, "big")
        user = bytes.fromhex("0103A00C34") + b"\x03" + length + message + b"\xFE"
        if len(user) > 144:
            raise ValueError(f"NDEF message of {len(message)} bytes does not fit an NTAG213")
        mem[16:16 + len(user)] = user
        mem[160:180] = bytes.fromhex("000000BD" "040000FF" "00050000" "FFFFFFFF" "00000000")
        return mem

    def _page_bytes(self, page: int) -> bytes:
        if page in (43, 44):                          # PWD and PACK always read as zero
            return b"\x00\x00\x00\x00"
        return bytes(self.memory[4 * page:4 * page + 4])

    def frame(self, data: bytes) -> Reply | None:
        if self.state != "active" or not data:
            return None
        cmd = data[0]
        if cmd == 0x30 and len(data) == 2:            # READ 4 pages, rolling over at the end
            if data[1] >= self.PAGES:
                return self._nak()
            self.reads += 1
            return Reply(b"".join(self._page_bytes((data[1] + i) % self.PAGES) for i in range(4)))
        if cmd == 0x3A and len(data) == 3:            # FAST_READ start..end
            start, end = data[1], data[2]
            if start > end or end >= self.PAGES:
                return self._nak()
            return Reply(b"".join(self._page_bytes(p) for p in range(start, end + 1)))
        if cmd == 0xA2 and len(data) == 6:            # WRITE one page
            return self._write(data[1], data[2:6])
        if cmd == 0x60 and len(data) == 1:
            return Reply(self.VERSION)
        if cmd == 0x3C and len(data) == 2:            # READ_SIG: 32-byte originality signature
            return Reply(hashlib.sha256(b"NTAG213" + self.uid).digest())
        if cmd == 0x39 and len(data) == 2:            # READ_CNT (NFC counter 2, disabled: 0)
            return Reply(b"\x00\x00\x00") if data[1] == 0x02 else self._nak()
        if cmd == 0x1B and len(data) == 5:            # PWD_AUTH: PACK if the password matches
            if data[1:5] == self.memory[172:176]:
                return Reply(bytes(self.memory[176:178]))
            return self._nak()
        if data[:2] == b"\x50\x00":
            self.state = "halt"
            return None
        self.state = "idle"                           # unsupported: the tag goes mute
        return None

    def _nak(self) -> Reply:
        self.state = "idle"                           # after a NAK the tag must be selected again
        return NAK_INVALID

    def _write(self, page: int, value: bytes) -> Reply:
        if page < 2 or page >= self.PAGES:
            return self._nak()
        at = 4 * page
        if page == 2:                                 # static lock bytes are one-time (OR)
            self.memory[at + 2] |= value[2]
            self.memory[at + 3] |= value[3]
        elif page == 3:                               # capability container is one-time (OR)
            for i in range(4):
                self.memory[at + i] |= value[i]
        else:
            self.memory[at:at + 4] = value
        self.writes += 1
        return ACK
