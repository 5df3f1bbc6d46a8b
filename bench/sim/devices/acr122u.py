"""The virtual ACS ACR122U USB NFC reader (VID 072F, PID 2200): a CCID device over USB/IP with
a PN532 inside, driven by nfcpy's own ``acr122`` driver as a real one is.

    VirtualAcr122u(rng, antenna_fault=0.0, *, server=None, busid=None,
                   serial="RR5A0C1D", firmware=0x0207)

``rng`` and ``antenna_fault`` (the ``nfc_antenna`` severity in [0, 1]) go to the PN532 inside
(``pn532_chip.PN532Chip``, the same chip as the HSU emulator's). With ``server`` (a
``UsbipServer``) the reader exports itself there at once (under ``busid`` if given) and follows
its power: ``set_powered(False)`` unplugs it from the bus (its connections drop, as a reader
losing VBUS does), ``set_powered(True)`` exports it again under a new device number. Without a
server the owner exports it (``UsbipServer.add`` or a hub port) and an unpowered reader only
stops answering. ``present(card)``, ``remove()``, ``card``, ``powered``, ``counters`` and
``set_antenna_fault(severity)`` act on the chip, named as on ``PN532Emulator``.

USB: device class 0 (per interface), bcdDevice = firmware (2.07 -> version string
"ACR122U207"), strings "ACS" / "ACR122U PICC Interface" / serial, one configuration (bus
powered, remote wakeup, 200 mA) with one CCID interface (class 0x0B) carrying the 54-byte CCID
class descriptor and three endpoints: interrupt IN 0x81 (NotifySlotChange), bulk OUT 0x02,
bulk IN 0x82, 64 bytes each.

CCID (USB CCID 1.1, 6.1/6.2; header ``type, dwLength LE, bSlot, bSeq, 3 bytes``, the answer
echoes slot and sequence): XfrBlock 0x6F and Escape 0x6B carry the reader's pseudo-APDUs
(ACR122U API 2.x) and answer RDR_to_PC_DataBlock 0x80 / RDR_to_PC_Escape 0x83;
IccPowerOn 0x62 answers an ATR (PC/SC part 3) with a card in the field, else "no ICC";
IccPowerOff 0x63, GetSlotStatus 0x65 and anything else answer RDR_to_PC_SlotStatus 0x81.
Pseudo-APDUs: ``FF 00 48 00 00`` firmware version, ``FF 00 50``/``51`` get/set the PICC operating
parameter (``90 param``), ``FF 00 40 P2 04 T1 T2 N L`` LED and buzzer (``90 LED state``),
``FF 00 52`` buzzer on detection, ``FF CA 00 00 00`` the activated card's UID,
``FF 00 00 00 Lc D4 cmd ..`` direct transmit to the PN532 (``D5 cmd+1 .. 90 00``; a command the
chip rejects answers ``63 00``). Anything else answers ``6A 81`` (not supported).
"""
from __future__ import annotations

import logging
import random
import struct
import threading

from usbip.core import Setup, Stall
from usbip.device import In, Out, USBDevice
from usbip.function import Interface

from posbench.sim.devices.nfc_cards import Card
from posbench.sim.devices.pn532_chip import Counters, PN532Chip
from posbench.sim.devices.usbip_server import UsbipServer

log = logging.getLogger(__name__)

ACS_VID, ACR122U_PID = 0x072F, 0x2200
MANUFACTURER, PRODUCT = "ACS", "ACR122U PICC Interface"

CCID_HEADER = struct.Struct("<BIBB3s")
"""bMessageType, dwLength, bSlot, bSeq, 3 message-specific bytes (CCID 1.1, 6.1)."""
PC_TO_RDR_ICC_POWER_ON, PC_TO_RDR_ICC_POWER_OFF, PC_TO_RDR_GET_SLOT_STATUS = 0x62, 0x63, 0x65
PC_TO_RDR_ESCAPE, PC_TO_RDR_XFR_BLOCK = 0x6B, 0x6F
RDR_TO_PC_DATA_BLOCK, RDR_TO_PC_SLOT_STATUS, RDR_TO_PC_ESCAPE = 0x80, 0x81, 0x83
RDR_TO_PC_NOTIFY_SLOT_CHANGE = 0x50
# bStatus: bits 0-1 ICC status (0 active, 1 present and inactive, 2 absent), bits 6-7 command
# status (0 ok, 1 failed); bError when failed.
ICC_ACTIVE, ICC_INACTIVE, ICC_ABSENT, CMD_FAILED = 0x00, 0x01, 0x02, 0x40
ERR_ICC_MUTE, ERR_BAD_SLOT, ERR_NOT_SUPPORTED = 0xFE, 0x05, 0x00
MAX_MESSAGE = 271
"""dwMaxCCIDMessageLength: the longest message (header + data) the reader takes, bytes."""

SW_OK, SW_FAILED, SW_NOT_SUPPORTED = b"\x90\x00", b"\x63\x00", b"\x6A\x81"


def ccid_class_descriptor() -> bytes:
    """The 54-byte CCID functional descriptor (type 0x21): CCID 1.00, one slot, 5/3/1.8 V,
    T=0 and T=1, 4 MHz clock, 10752 bps, IFSD 254, automatic parameters/voltage/clock/baud/PPS/
    IFSD and short-APDU exchange (dwFeatures 0x000204BA), messages up to 271 bytes."""
    return struct.pack("<BBHBBIIIBIIBIIIIIBBHBB", 54, 0x21, 0x0100, 0, 0x07, 0x03, 4000, 4000, 0,
                       10752, 10752, 0, 254, 0, 0, 0x000204BA, MAX_MESSAGE, 0x00, 0x00, 0, 0, 1)


class _CcidInterface(Interface):
    """The smart-card (CCID) interface; OUT messages go to the reader's firmware."""

    bInterfaceClass = 0x0B
    notify_ep = In(0x01, "interrupt", mps=8, interval=10)
    out_ep = Out(0x02, "bulk", mps=64)
    in_ep = In(0x02, "bulk", mps=64)

    def __init__(self, reader: VirtualAcr122u):
        super().__init__()
        self._reader = reader

    def extra_descriptors(self) -> bytes:
        return ccid_class_descriptor()

    def on_control(self, setup: Setup, data: bytes = b""):
        raise Stall  # ABORT / GET_CLOCK_FREQUENCIES / GET_DATA_RATES: the ACR122U has none

    def on_out(self, ep, data: bytes) -> None:
        self._reader._received(bytes(data))

    def on_reset(self) -> None:
        self._reader._bus_reset()


class VirtualAcr122u(USBDevice):
    """An ACR122U on USB/IP with a ``PN532Chip`` inside (see the module docstring)."""

    def __init__(self, rng: random.Random, antenna_fault: float = 0.0, *,
                 server: UsbipServer | None = None, busid: str | None = None,
                 serial: str | None = "RR5A0C1D", firmware: int = 0x0207):
        super().__init__(ACS_VID, ACR122U_PID, manufacturer=MANUFACTURER, product=PRODUCT,
                         serial=serial, bcdDevice=firmware)
        self.chip = PN532Chip(rng, antenna_fault)
        self.firmware = f"{firmware >> 8:x}.{firmware & 0xFF:02x}"
        self.version = f"ACR122U{firmware >> 8:x}{firmware & 0xFF:02x}".encode()
        self.picc_parameter = 0xFF
        self.led_state = 0x00         # bit 0 red, bit 1 green
        self.buzzes = 0               # LED/buzzer commands that sounded the buzzer
        self.messages = 0             # CCID messages answered
        self._iface = self.add(_CcidInterface(self))
        self._inbox = bytearray()   # a CCID message split over several bulk OUT transfers
        self._lock = threading.Lock()
        self.server, self.busid_wanted = server, busid
        if server is not None:
            self.busid_wanted = server.add(self, busid)

    def config_bytes(self) -> bytes:
        """The configuration descriptor with the reader's own attributes: bus powered, remote
        wakeup (0xA0), 200 mA (100 x 2 mA); the package's default is 0x80, 100 mA."""
        raw = bytearray(super().config_bytes())
        raw[7], raw[8] = 0xA0, 100
        return bytes(raw)

    def __repr__(self) -> str:
        return (f"VirtualAcr122u(busid={self.busid}, powered={self.powered}, "
                f"antenna_fault={self.chip.severity:g})")

    # -- bench side (as PN532Emulator) -------------------------------------------------------
    def present(self, card: Card) -> None:
        """Put ``card`` in the field (replacing any other)."""
        self.chip.present(card)
        self._notify(True)

    def remove(self) -> None:
        """Take the card out of the field."""
        self.chip.remove()
        self._notify(False)

    @property
    def card(self) -> Card | None:
        return self.chip.card

    @property
    def counters(self) -> Counters:
        return self.chip.counters

    @property
    def severity(self) -> float:
        return self.chip.severity

    def set_antenna_fault(self, severity: float) -> None:
        self.chip.set_antenna_fault(severity)

    @property
    def powered(self) -> bool:
        return self.chip.powered

    def set_powered(self, on: bool) -> None:
        """Off: the reader leaves the bus (with a server) and answers nothing; on: it resets
        and (with a server) enumerates again under a new device number."""
        was = self.chip.powered
        self.chip.set_powered(on)
        if was and not on:
            with self._lock:
                self._inbox.clear()
            if self.server is not None:
                self.server.remove(self)
        elif on and not was:
            self.picc_parameter, self.led_state = 0xFF, 0x00
            if self.server is not None:
                self.server.add(self, self.busid_wanted)

    # -- USB side ----------------------------------------------------------------------------
    def _bus_reset(self) -> None:
        with self._lock:
            self._inbox.clear()

    def _notify(self, present: bool) -> None:
        ep = self._iface.notify_ep
        if len(ep._q) < 4:  # nobody may poll it (nfcpy does not): keep a few changes at most
            ep.write(bytes([RDR_TO_PC_NOTIFY_SLOT_CHANGE, 0x03 if present else 0x02]))

    def _received(self, data: bytes) -> None:
        """Bulk OUT: collect one CCID message, answer it on bulk IN (unpowered: nothing)."""
        if not self.chip.powered:
            return
        with self._lock:
            self._inbox += data
            if len(self._inbox) < CCID_HEADER.size:
                return
            length = CCID_HEADER.size + struct.unpack_from("<I", self._inbox, 1)[0]
            if length > MAX_MESSAGE:  # not a message this reader could take: drop it all
                log.debug("acr122u: dropping a %d-byte CCID message", length)
                self._inbox.clear()
                return
            if len(self._inbox) < length:
                return
            message = bytes(self._inbox[:length])
            del self._inbox[:length]
        answer = self._message(message)
        self.messages += 1
        self._iface.in_ep.write(answer)

    def _message(self, message: bytes) -> bytes:
        kind, _length, slot, seq, _rest = CCID_HEADER.unpack_from(message)
        data = message[CCID_HEADER.size:]
        if slot != 0:
            return _reply(RDR_TO_PC_SLOT_STATUS, slot, seq, CMD_FAILED | ICC_ABSENT, ERR_BAD_SLOT)
        if kind in (PC_TO_RDR_XFR_BLOCK, PC_TO_RDR_ESCAPE):
            answer = RDR_TO_PC_DATA_BLOCK if kind == PC_TO_RDR_XFR_BLOCK else RDR_TO_PC_ESCAPE
            return _reply(answer, slot, seq, self._icc_status(), 0, self._apdu(data))
        if kind == PC_TO_RDR_ICC_POWER_ON:
            atr = self._atr()
            if atr is None:
                return _reply(RDR_TO_PC_DATA_BLOCK, slot, seq, CMD_FAILED | ICC_ABSENT, ERR_ICC_MUTE)
            return _reply(RDR_TO_PC_DATA_BLOCK, slot, seq, ICC_ACTIVE, 0, atr)
        if kind in (PC_TO_RDR_ICC_POWER_OFF, PC_TO_RDR_GET_SLOT_STATUS):
            status = ICC_ABSENT if self.chip.card is None else ICC_INACTIVE
            return _reply(RDR_TO_PC_SLOT_STATUS, slot, seq, status, 0)
        return _reply(RDR_TO_PC_SLOT_STATUS, slot, seq, CMD_FAILED | self._icc_status(),
                      ERR_NOT_SUPPORTED)

    def _icc_status(self) -> int:
        return ICC_ACTIVE if self.chip.target is not None else (
            ICC_ABSENT if self.chip.card is None else ICC_INACTIVE)

    def _atr(self) -> bytes | None:
        """PC/SC part 3 ATR of the card in the field: ISO 14443-4 (no historical bytes) or a
        storage card (Type 2: NXP Ultralight family, standard 0x03, card name 0x0003)."""
        card = self.chip.card
        if card is None:
            return None
        if card.sak & 0x20:
            return bytes.fromhex("3B80800101")  # T0, TD1 (T=0), TD2 (T=1), TCK
        body = bytes.fromhex("8F8001804F0CA00000030603000300000000")
        tck = 0
        for octet in body:
            tck ^= octet
        return b"\x3B" + body + bytes([tck])

    def _apdu(self, apdu: bytes) -> bytes:
        """One pseudo-APDU (class FF) of the ACR122U API: its response with status word."""
        if len(apdu) < 5 or apdu[0] != 0xFF:
            return SW_NOT_SUPPORTED
        ins, p1, p2, lc = apdu[1], apdu[2], apdu[3], apdu[4]
        body = apdu[5:5 + lc]
        if ins == 0xCA and p1 == 0x00:  # Get Data: UID of the activated card
            target = self.chip.target
            return target.uid + SW_OK if target is not None else SW_FAILED
        if ins != 0x00:
            return SW_NOT_SUPPORTED
        if p1 == 0x00 and p2 == 0x00:  # Direct Transmit to the PN532
            if len(body) < 2 or len(body) != lc or body[0] != 0xD4:
                return SW_FAILED
            answer = self.chip.execute(body[1], bytes(body[2:]))
            return answer + SW_OK if answer is not None else SW_FAILED
        if p1 == 0x48:  # Get Firmware Version: the bare string, no status word
            return self.version
        if p1 == 0x50:
            return bytes([0x90, self.picc_parameter])
        if p1 == 0x51:
            self.picc_parameter = p2
            return bytes([0x90, p2])
        if p1 == 0x52:
            return SW_OK
        if p1 == 0x40 and len(body) == 4:
            return bytes([0x90, self._led(p2, body)])
        return SW_NOT_SUPPORTED

    def _led(self, p2: int, blink: bytes) -> int:
        """LED and buzzer control: P2 bits 0/1 final red/green, 2/3 their update masks; the
        last byte of the blinking data links the buzzer (1 on T1, 2 on T2, 3 both)."""
        for bit, mask in ((0x01, 0x04), (0x02, 0x08)):
            if p2 & mask:
                self.led_state = (self.led_state & ~bit) | (p2 & bit)
        if blink[3] & 0x03 and blink[2]:
            self.buzzes += 1
        return self.led_state


def _reply(kind: int, slot: int, seq: int, status: int, error: int, data: bytes = b"") -> bytes:
    """An RDR_to_PC message: header (``bStatus``, ``bError``, a 0 chain/clock byte) + data."""
    return CCID_HEADER.pack(kind, len(data), slot, seq, bytes([status, error, 0])) + data
