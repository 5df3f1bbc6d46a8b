"""The virtual magstripe reader: a USB HID device model served over USB/IP.

Mirrors ``drivers/usb/magstripe.py``. A swipe runs like real hardware: each track of the card
is encoded into its ISO 7811 bit stream (``posbench.drivers.card.tracks.encode_bits``), passes the read head
(where the ``msr_head`` fault drops and flips bits), and the reader firmware decodes what the
head gave it (``decode_bits``: sentinels, parity, LRC), then reports per-track status and data:
a 337-byte vendor report (``hid``) or typed keys (``keyboard``, a bad track typed ``%E?``).

Head fault: per bit of the stream (clocking zeros included), an error happens with probability
``BIT_ERROR_HEALTHY + BIT_ERROR_FAULT * severity ** 1.3``; an error drops the bit (40 %) or
flips it (60 %). About 700 bits pass per swipe, so a healthy head fails about 0.1 % of swipes,
severity 0.3 about 35 %, severity 1 about 88 % (``swipe_failure_probability`` computes it).
"""
from __future__ import annotations

import random
from collections.abc import Mapping

from usbip.classes.device import hid
from usbip.device import USBDevice

from posbench.setup.cards import Card
from posbench.drivers.card.tracks import TrackError, decode_bits, encode_bits
from posbench.drivers.usb.hid_keyboard import text_reports
from posbench.drivers.usb.magstripe import (ENCODE_BLANK, ENCODE_ISO_ABA, MAGTEK_VID, PID_HID,
                                   PID_KEYBOARD, REASON_STATUS, REPORT_LEN, STATUS_NO_DATA,
                                   STATUS_OK, build_hid_report)

BIT_ERROR_HEALTHY = 1e-6
BIT_ERROR_FAULT = 3e-3
DROP_SHARE = 0.4
KEYBOARD_SENTINEL = {1: "%", 2: ";", 3: "+"}


def bit_error_probability(severity: float) -> float:
    """Per-bit error probability of a head with ``msr_head`` fault ``severity`` in [0, 1]."""
    return BIT_ERROR_HEALTHY + BIT_ERROR_FAULT * max(0.0, min(1.0, severity)) ** 1.3


def swipe_failure_probability(severity: float, bits: int = 700) -> float:
    """Chance that at least one bit of a ``bits``-long swipe is hit (nearly every hit fails)."""
    return 1.0 - (1.0 - bit_error_probability(severity)) ** bits


def magtek_report_descriptor() -> bytes:
    """Vendor-page report descriptor of the 337-byte input report (MagTek layout: 3 decode
    statuses, 3 lengths, the card encode type, 3 x 110 bytes of track data)."""
    items = [hid.usage_page(0xFF00), hid.usage(0x01), hid.collection(0x01),
             hid.logical_min(0), hid.logical_max(255), hid.report_size(8)]
    for usage in (0x20, 0x21, 0x22, 0x28, 0x29, 0x2A, 0x38):  # statuses, lengths, encode type
        items += [hid.usage(usage), hid.report_count(1), hid.input_(0x02)]
    for usage in (0x30, 0x31, 0x32):  # track 1..3 data
        items += [hid.usage(usage), hid.report_count(110), hid.input_(0x02)]
    items.append(hid.end_collection())
    return b"".join(items)


class VirtualMagstripeReader(USBDevice):
    """A MagTek-style USB swipe reader. ``flavour`` ``"hid"`` (PID 0x0002) or ``"keyboard"``
    (PID 0x0001). ``rng`` drives the head; ``head_fault`` is the ``msr_head`` severity in [0, 1].
    Export it with ``UsbipServer.add(reader)``; ``swipe(card)`` queues the reports.
    """

    def __init__(self, flavour: str = "hid", *, rng: random.Random | None = None,
                 head_fault: float = 0.0, serial: str = "B0A1C2D3", firmware: int = 0x0150):
        if flavour not in ("hid", "keyboard"):
            raise ValueError(f"flavour must be 'hid' or 'keyboard', not {flavour!r}")
        pid = PID_HID if flavour == "hid" else PID_KEYBOARD
        product = "USB Swipe Reader" if flavour == "hid" else "USB Keyboard Swipe Reader"
        super().__init__(MAGTEK_VID, pid, manufacturer="Mag-Tek", product=product, serial=serial,
                         bcdDevice=firmware)
        self.flavour = flavour
        self.rng = rng if rng is not None else random.Random()
        self.head_fault = 0.0
        self.set_head_fault(head_fault)
        self.swipes = 0
        if flavour == "hid":
            self.hid = self.add(hid.HID(magtek_report_descriptor(), in_ep=0x81, in_mps=64,
                                        in_interval=1))
        else:
            self.hid = self.add(hid.HID(hid.keyboard_report_descriptor(),
                                        subclass=hid.SUBCLASS_BOOT,
                                        protocol=hid.PROTOCOL_KEYBOARD, in_ep=0x81, in_mps=8,
                                        in_interval=10))

    def set_head_fault(self, severity: float) -> None:
        if not 0.0 <= severity <= 1.0:
            raise ValueError(f"head fault severity must be in [0, 1], got {severity!r}")
        self.head_fault = float(severity)

    def __repr__(self) -> str:
        return (f"VirtualMagstripeReader({self.flavour}, busid={self.busid}, "
                f"head_fault={self.head_fault:g}, swipes={self.swipes})")

    # --- the head and the firmware ---
    def _head(self, bits: list[int]) -> list[int]:
        """The bits as the head picks them up: dropped or flipped at the fault's rate."""
        p = bit_error_probability(self.head_fault)
        out: list[int] = []
        rand = self.rng.random
        for bit in bits:
            if rand() < p:
                if rand() < DROP_SHARE:
                    continue
                bit ^= 1
            out.append(bit)
        return out

    def read_tracks(self, tracks: Mapping[int, str],
                    reverse: bool = False) -> dict[int, tuple[int, str | None]]:
        """Pass each track through the head and the firmware's decoder:
        ``{track: (status, decoded text or None)}`` for tracks 1..3 (absent: no data)."""
        result: dict[int, tuple[int, str | None]] = {}
        for n in (1, 2, 3):
            text = tracks.get(n)
            if not text:
                result[n] = (STATUS_NO_DATA, None)
                continue
            bits = encode_bits(n, text)
            if reverse:
                bits.reverse()
            try:
                result[n] = (STATUS_OK, decode_bits(n, self._head(bits)))
            except TrackError as exc:
                result[n] = (REASON_STATUS[exc.reason], None)
        return result

    def swipe(self, card: Card | Mapping[int, str], *, reverse: bool = False) -> dict[int, int]:
        """Swipe ``card`` (a deck ``Card`` or ``{track: text}``, text from start to end sentinel)
        and queue the reports on the interrupt IN endpoint. ``reverse`` swipes it the other way.
        Returns ``{track: status}`` as reported (0 = OK, see ``posbench.drivers.usb.magstripe``)."""
        tracks = card.tracks() if isinstance(card, Card) else dict(card)
        reads = self.read_tracks(tracks, reverse)
        self.swipes += 1
        if self.flavour == "hid":
            blank = all(status == STATUS_NO_DATA for status, _ in reads.values())
            report = build_hid_report(reads, ENCODE_BLANK if blank else ENCODE_ISO_ABA)
            assert len(report) == REPORT_LEN
            self.hid.send_report(report)
        else:
            typed = ""
            for n, (status, text) in sorted(reads.items()):
                if status == STATUS_OK:
                    assert text is not None  # read_tracks decodes every OK track
                    typed += KEYBOARD_SENTINEL[n] + text[1:] if n == 3 else text
                elif status != STATUS_NO_DATA:
                    typed += f"{KEYBOARD_SENTINEL[n]}E?"
            for report in text_reports(typed + "\r"):
                self.hid.in_ep.write(report)
        return {n: status for n, (status, _text) in reads.items()}
