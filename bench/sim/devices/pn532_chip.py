"""The virtual NXP PN532's command processor (firmware v1.6), shared by every interface it sits behind.

``PN532Chip`` executes host commands (UM0701-02 chapter 7) against the cards in its field
(``posbench.sim.devices.nfc_cards``) and models a degraded antenna (cause ``nfc_antenna``) where
the RF front end is. It knows nothing of framing: the HSU emulator (``pn532.PN532Emulator``,
on a pty) and the ACR122U (``acr122u.VirtualAcr122u``, over USB/IP) wrap its answers in their
own frames. ``execute(code, params)`` returns the response TFI+PD (``D5 code+1 ...``) or None
for a command the chip rejects with its syntax error frame.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

from posbench.sim.devices.nfc_cards import Card, Reply

log = logging.getLogger(__name__)

FIRMWARE = bytes.fromhex("32010607")
"""GetFirmwareVersion: IC 0x32 (PN532), version 1.6, supports ISO 14443A/B and ISO 18092."""

# Status bytes the PN532 returns in InDataExchange/InCommunicateThru (UM0701-02, 7.1; the same
# table as nfcpy's pn532.Chipset.ERR and libnfc's pn53x.c).
ST_OK, ST_TIMEOUT, ST_CRC, ST_PARITY, ST_PROTOCOL, ST_FORMAT = 0x00, 0x01, 0x02, 0x03, 0x0B, 0x13
ST_BAD_PARAM, ST_MIFARE_NAK, ST_NOT_ACCEPTABLE = 0x10, 0x14, 0x27
RF_GARBLED = (ST_CRC, ST_PARITY, ST_FORMAT, ST_PROTOCOL, ST_TIMEOUT)
"""What the chip reports when the card's answer collapses mid-frame."""

RF_ITEM_LENGTHS = {0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}
"""RFConfiguration CfgItem -> number of ConfigurationData bytes."""

REG_TX_MODE, REG_RX_MODE, REG_TX_AUTO, REG_FIFO_DATA, REG_FIFO_LEVEL = (
    0x6302, 0x6303, 0x6305, 0x6339, 0x633A)
CIU_RESET = {0x6301: 0x3F, REG_TX_MODE: 0x00, REG_RX_MODE: 0x00, 0x6304: 0x80, REG_TX_AUTO: 0x00,
             0x6306: 0x10, 0x6307: 0x84, 0x6308: 0x84, 0x6309: 0x4D, 0x6316: 0x48, 0x6317: 0x88,
             0x6318: 0x20, 0x6319: 0x20, 0x6327: 0x80, REG_FIFO_LEVEL: 0x00, 0x633B: 0x08,
             0x633C: 0x10}
"""CIU (PN512 core) register reset values the host may read back."""

class _Syntax(Exception):
    """The command's parameters are wrong: the chip answers with the syntax error frame."""

@dataclass
class Counters:
    """What the emulator saw and did, for tests and evidence."""

    frames_received: int = 0
    acks_received: int = 0
    nacks_received: int = 0
    bytes_ignored: int = 0
    errors_sent: int = 0          # syntax error frames + NACKs sent
    rf_errors_sent: int = 0       # non-zero RF status bytes returned
    polls: int = 0                # InListPassiveTarget commands
    detections: int = 0           # ... that found a card
    missed: int = 0               # ... that missed a card in the field (antenna fault)
    commands: dict[int, int] = field(default_factory=dict)

class PN532Chip:
    """The chip: state, commands, cards in its field. ``antenna_fault`` is the ``nfc_antenna``
    severity in [0, 1]; ``wake`` cuts RF timeout waits short when set (the owner stopping).

    The antenna fault acts where a weak antenna does: the card sits in a dead spot for a while
    (no detection), single polls miss it, and a marginal field browns the card out soon after
    activation so its next answers come back as RF errors (CRC, parity, format, timeout).
    """

    DEAD_SPOT_S = 0.3
    """Seconds one draw of 'the card is in a dead spot' lasts (a hand never holds still longer)."""

    def __init__(self, rng: random.Random, antenna_fault: float = 0.0,
                 wake: threading.Event | None = None, firmware: bytes = FIRMWARE):
        if not 0.0 <= antenna_fault <= 1.0:
            raise ValueError(f"antenna_fault severity must be in [0, 1], got {antenna_fault:g}")
        self.rng, self.severity, self.firmware = rng, float(antenna_fault), bytes(firmware)
        self._wake = wake if wake is not None else threading.Event()
        self.counters = Counters()
        self._lock = threading.RLock()
        self._card: Card | None = None
        self._powered = True
        self._dead_until = 0.0
        self._dead = False
        self._reset_chip()

    # -- bench side ------------------------------------------------------------------------

    def present(self, card: Card) -> None:
        """Put ``card`` in the field (replacing any other)."""
        with self._lock:
            if self._card is not None:
                self._card.power_off()
            card.power_off()
            self._card = card
            self._dead_until = 0.0

    def remove(self) -> None:
        with self._lock:
            if self._card is not None:
                self._card.power_off()
            self._card = None

    @property
    def card(self) -> Card | None:
        return self._card

    def set_powered(self, on: bool) -> None:
        """Unpowered, the chip answers nothing at all; powering up resets it."""
        with self._lock:
            if on and not self._powered:
                self._reset_chip()
            self._powered = bool(on)
            if not on and self._card is not None:
                self._card.power_off()

    @property
    def powered(self) -> bool:
        return self._powered

    def set_antenna_fault(self, severity: float) -> None:
        """Change the ``nfc_antenna`` severity in [0, 1] (a fault injected mid-run)."""
        if not 0.0 <= severity <= 1.0:
            raise ValueError(f"antenna_fault severity must be in [0, 1], got {severity!r}")
        with self._lock:
            self.severity = float(severity)

    # -- chip state --------------------------------------------------------------------------
    def _reset_chip(self) -> None:
        self.registers: dict[int, int] = dict(CIU_RESET)
        self.rf_on = False
        self.parameters = 0x00
        self.rf_items: dict[int, bytes] = {0x02: bytes([0x00, 0x0B, 0x0A]), 0x05: bytes([0xFF, 0x01, 0xFF])}
        self.target: Card | None = None     # card activated by the last InListPassiveTarget
        self.dep_block = 0                  # block number when the chip runs ISO-DEP itself
        self.asleep = False
        self._frames_left: int | None = None

    def _field(self, on: bool) -> None:
        if self.rf_on and not on and self._card is not None:
            self._card.power_off()
        if not on:
            self.target = None
        self.rf_on = on
        self.registers[0x6304] = (self.registers.get(0x6304, 0x80) & 0xFC) | (0x03 if on else 0)

    def execute(self, code: int, params: bytes) -> bytes | None:
        """Run one host command: the response TFI+PD (``D5``, ``code + 1``, data), or None when
        the chip answers with its syntax error frame (counted in ``errors_sent``)."""
        with self._lock:
            self.counters.commands[code] = self.counters.commands.get(code, 0) + 1
            self.asleep = False  # any frame from the host wakes the chip from PowerDown
            handler = self._HANDLERS.get(code)
            try:
                if handler is None:
                    raise _Syntax(f"unsupported command 0x{code:02X}")
                out = handler(self, params)
            except _Syntax as exc:
                log.debug("pn532 chip: syntax error: %s", exc)
                self.counters.errors_sent += 1
                return None
            return bytes([0xD5, (code + 1) & 0xFF]) + out

    # -- commands (UM0701-02 chapter 7) -------------------------------------------------------
    def _diagnose(self, p: bytes) -> bytes:
        if not p:
            raise _Syntax("Diagnose without NumTst")
        if p[0] == 0x00:          # communication line test: echo NumTst + InParam
            return p
        if p[0] in (0x01, 0x02):  # ROM / RAM self test: OK
            return b"\x00"
        raise _Syntax(f"Diagnose test 0x{p[0]:02X} not emulated")

    def _firmware(self, p: bytes) -> bytes:
        return self.firmware

    def _general_status(self, p: bytes) -> bytes:
        if self.target is None:
            return bytes([0x00, int(self.rf_on), 0x00, 0x00])
        return bytes([0x00, int(self.rf_on), 0x01, 0x01, 0x00, 0x00, 0x00, 0x00])

    def _read_register(self, p: bytes) -> bytes:
        if not p or len(p) % 2:
            raise _Syntax("ReadRegister needs 16-bit addresses")
        out = bytearray()
        for i in range(0, len(p), 2):
            out.append(self.registers.get((p[i] << 8) | p[i + 1], 0x00))
        return bytes(out)

    def _write_register(self, p: bytes) -> bytes:
        if not p or len(p) % 3:
            raise _Syntax("WriteRegister needs address/value triples")
        for i in range(0, len(p), 3):
            self.registers[(p[i] << 8) | p[i + 1]] = p[i + 2]
        return b""

    def _set_baudrate(self, p: bytes) -> bytes:
        if len(p) != 1 or p[0] > 0x08:
            raise _Syntax("SetSerialBaudRate needs BR 0..8")
        return b""  # a pty has no line speed: the host's stty/reopen is harmless

    def _set_parameters(self, p: bytes) -> bytes:
        if len(p) != 1:
            raise _Syntax("SetParameters needs one flags byte")
        self.parameters = p[0]
        return b""

    def _sam_configuration(self, p: bytes) -> bytes:
        if not 1 <= len(p) <= 3 or not 1 <= p[0] <= 4:
            raise _Syntax("SAMConfiguration mode must be 1..4")
        return b""

    def _power_down(self, p: bytes) -> bytes:
        if not 1 <= len(p) <= 2:
            raise _Syntax("PowerDown needs WakeUpEnable [GenerateIRQ]")
        self._field(False)
        self.asleep = True
        return b"\x00"

    def _rf_configuration(self, p: bytes) -> bytes:
        if not p or RF_ITEM_LENGTHS.get(p[0]) != len(p) - 1:
            raise _Syntax("RFConfiguration item/length")
        self.rf_items[p[0]] = p[1:]
        if p[0] == 0x01:
            self._field(bool(p[1] & 0x01))
        return b""

    def _rf_timeout_s(self) -> float:
        """InCommunicateThru/InDataExchange timeout: 100 us * 2**(n-1), n from CfgItem 0x02."""
        n = self.rf_items.get(0x02, b"\x00\x0B\x0A")[2]
        return 1.0 if n == 0 else min(1.0, 100e-6 * 2 ** (n - 1))

    def _in_list_passive_target(self, p: bytes) -> bytes:
        if len(p) < 2 or not 1 <= p[0] <= 2 or p[1] not in (0, 1, 2, 3, 4):
            raise _Syntax("InListPassiveTarget MaxTg 1..2, BrTy 0..4")
        self.counters.polls += 1
        self._field(True)
        self.target = None
        card = self._card
        if p[1] != 0x00 or card is None:          # only Type A 106 kbps cards exist here
            self.registers[REG_FIFO_DATA] = 0x26   # REQA still in the FIFO: nobody answered
            return b"\x00"
        wanted = _strip_cascade_tags(p[2:])
        if wanted and wanted != card.uid:
            self.registers[REG_FIFO_DATA] = 0x26
            return b"\x00"
        if self._antenna_misses() or not card.select():
            self.registers[REG_FIFO_DATA] = 0x26
            return b"\x00"
        self.counters.detections += 1
        self.target = card
        self.dep_block = 0
        self.registers[REG_TX_MODE] = 0x80  # 106 kbps Type A, CRC on for both directions
        self.registers[REG_RX_MODE] = 0x80
        self.registers[REG_FIFO_DATA] = 0x00
        self._draw_marginal()
        out = bytes([0x01, 0x01]) + card.atqa.to_bytes(2, "big") + bytes([card.sak, len(card.uid)]) + card.uid
        if card.sak & 0x20 and self.parameters & 0x10:  # fAutomaticRATS
            ats = card.rats(0x80)
            if ats:
                out += ats
        return out

    def _in_data_exchange(self, p: bytes) -> bytes:
        if len(p) < 1 or p[0] & 0x3F not in (1, 2):
            raise _Syntax("InDataExchange needs Tg 1..2")
        if self.target is None or p[0] & 0x3F != 1:
            return bytes([ST_NOT_ACCEPTABLE])
        data = p[1:]
        if self.target.sak & 0x20 and self.parameters & 0x10:  # the chip runs ISO-DEP itself
            status, reply = self._rf_exchange(bytes([0x02 | self.dep_block]) + data)
            answer = bytearray()
            for _ in range(64):  # the card chains a long answer; the chip acknowledges each part
                if status:
                    return bytes([status])
                if not reply.data or reply.data[0] & 0xE2 != 0x02:
                    return bytes([ST_PROTOCOL])
                self.dep_block ^= 1
                answer += reply.data[1:]
                if not reply.data[0] & 0x10:
                    return bytes([ST_OK]) + bytes(answer)
                status, reply = self._rf_exchange(bytes([0xA2 | self.dep_block]))
            return bytes([ST_PROTOCOL])
        status, reply = self._rf_exchange(data)
        if status:
            return bytes([status])
        if reply.short:
            return bytes([ST_OK if reply.data == b"\x0A" else ST_MIFARE_NAK])
        return bytes([ST_OK]) + reply.data

    def _in_communicate_thru(self, p: bytes) -> bytes:
        if not p:
            raise _Syntax("InCommunicateThru without data")
        data = p
        if not self.registers.get(REG_TX_MODE, 0) & 0x80:
            # TxCRCEn off: the host appended CRC_A itself; a card drops a frame with a bad CRC.
            if len(data) < 3 or crc_a(data[:-2]) != data[-2:]:
                return self._timeout_status()
            data = data[:-2]
        status, reply = self._rf_exchange(data)
        if status:
            return bytes([status])
        out = reply.data
        if not reply.short and not self.registers.get(REG_RX_MODE, 0) & 0x80:
            out += crc_a(out)  # RxCRCEn off: the chip hands the CRC bytes up unchecked
        return bytes([ST_OK]) + out

    def _timeout_status(self) -> bytes:
        self._wake.wait(self._rf_timeout_s())
        self.counters.rf_errors_sent += 1
        return bytes([ST_TIMEOUT])

    def _rf_exchange(self, data: bytes) -> tuple[int, Reply]:
        """Send ``data`` over the air to the card in the field: (status, reply)."""
        card = self._card if self.rf_on else None
        reply = card.frame(bytes(data)) if card is not None else None
        if reply is None:
            return self._timeout_status()[0], Reply(b"")
        status = self._antenna_damages()
        if status:
            self.counters.rf_errors_sent += 1
            if status == ST_TIMEOUT:
                self._wake.wait(self._rf_timeout_s())
            return status, Reply(b"")
        return ST_OK, reply

    def _in_release(self, p: bytes) -> bytes:
        if len(p) != 1:
            raise _Syntax("InRelease/InDeselect needs Tg")
        if self.target is not None and p[0] in (0, 1):
            if self.target.sak & 0x20 and self.target.state == "protocol":
                self.target.frame(b"\xC2")  # S(DESELECT)
            else:
                self.target.frame(b"\x50\x00")  # HLTA
            self.target = None
        return b"\x00"

    def _in_select(self, p: bytes) -> bytes:
        if len(p) != 1:
            raise _Syntax("InSelect needs Tg")
        return b"\x00" if self.target is not None and p[0] == 1 else bytes([ST_NOT_ACCEPTABLE])

    _HANDLERS = {0x00: _diagnose, 0x02: _firmware, 0x04: _general_status, 0x06: _read_register,
                 0x08: _write_register, 0x10: _set_baudrate, 0x12: _set_parameters,
                 0x14: _sam_configuration, 0x16: _power_down, 0x32: _rf_configuration,
                 0x40: _in_data_exchange, 0x42: _in_communicate_thru, 0x44: _in_release,
                 0x4A: _in_list_passive_target, 0x52: _in_release, 0x54: _in_select}

    # -- the antenna fault ---------------------------------------------------------------------
    def _antenna_misses(self) -> bool:
        """Does this poll miss a card that is in the field? Never with a healthy antenna."""
        s = self.severity
        if s <= 0.0:
            return False
        now = time.monotonic()
        if now >= self._dead_until:  # the card moved: is it in a dead spot now?
            self._dead = self.rng.random() < 0.35 * s
            self._dead_until = now + self.DEAD_SPOT_S
        if self._dead or self.rng.random() < 0.3 * s:
            self.counters.missed += 1
            return True
        return False

    def _draw_marginal(self) -> None:
        """After activation: will the marginal field brown the card out, and after how many answers?"""
        s = self.severity
        self._frames_left = None
        if s > 0.0 and self.rng.random() < min(0.95, 1.0 - (1.0 - s) ** 3):
            self._frames_left = self.rng.randint(0, 1)

    def _antenna_damages(self) -> int:
        """Status for an answer that reached the card: 0 if it comes back intact."""
        s = self.severity
        if s <= 0.0:
            return ST_OK
        if self._frames_left is not None:
            if self._frames_left == 0:
                self._frames_left = None
                if self._card is not None:
                    self._card.power_off()  # brown-out: later frames simply time out
                return self.rng.choice(RF_GARBLED)
            self._frames_left -= 1
        if self.rng.random() < 0.05 * s:  # a single glitch the protocol's retries recover from
            return self.rng.choice(RF_GARBLED)
        return ST_OK

def _strip_cascade_tags(uid: bytes) -> bytes:
    """InListPassiveTarget's UID argument carries cascade tags (88) before each UID level."""
    if len(uid) == 8 and uid[0] == 0x88:
        return bytes(uid[1:])
    if len(uid) == 12 and uid[0] == 0x88 and uid[4] == 0x88:
        return bytes(uid[1:4] + uid[5:])
    return bytes(uid)

def crc_a(data: bytes) -> bytes:
    """ISO 14443-3 CRC_A (initial 0x6363, reflected polynomial 0x8408), low byte first."""
    reg = 0x6363
    for octet in data:
        for pos in range(8):
            bit = (reg ^ (octet >> pos)) & 1
            reg >>= 1
            if bit:
                reg ^= 0x8408
    return bytes([reg & 0xFF, reg >> 8])
