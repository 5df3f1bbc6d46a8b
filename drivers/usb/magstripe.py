"""USB HID magstripe reader driver (pyusb), MagTek-style, in its two common flavours.

- ``hid`` (vendor HID, MagTek PID 0x0002): one 337-byte input report per swipe on the interrupt
  IN endpoint. Bytes 0..2 decode status of tracks 1..3, 3..5 their lengths, 6 the card encode
  type, track data 110 bytes each at offsets 7, 117, 227 (ASCII, start to end sentinel).
- ``keyboard`` (keyboard emulation, MagTek PID 0x0001): the reader types
  ``[%...?][;...?][+...?]`` and Enter as HID boot keyboard reports; a bad track is typed
  ``%E?`` (``;E?``, ``+E?``), a track the card does not carry is left out.

Decode status codes (byte 0..2 of the ``hid`` report; our reader model uses them, a real
MagTek only promises 0 = OK, non-zero = error, which this driver reports as ``unreadable``):

====  ==================  =================================================
code  reason              meaning
====  ==================  =================================================
0x00  (ok)                track decoded, LRC good
0x01  ``no_data``         no flux transitions: blank track or not on the card
0x02  ``start_sentinel``  data found but no start sentinel (also: misframed)
0x03  ``end_sentinel``    no end sentinel within the track's length
0x04  ``parity``          a character failed its odd parity
0x05  ``lrc``             the LRC character failed its parity or did not match
====  ==================  =================================================
"""
from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field

import usb.core
import usb.util

from posbench.core.errors import PortLost, PortUnavailable, ProtocolError, UnitError, UnitNotResponding
from posbench.drivers.card.tracks import TrackData, TrackError, parse_track

from .backend import backend_name, find_devices
from .descriptors import describe
from .hid_keyboard import KeyboardDecoder

MAGTEK_VID = 0x0801
PID_KEYBOARD, PID_HID = 0x0001, 0x0002
FLAVOUR_BY_PID = {PID_KEYBOARD: "keyboard", PID_HID: "hid"}

REPORT_LEN = 337
STATUS_OFFSET, LENGTH_OFFSET, ENCODE_TYPE_OFFSET = 0, 3, 6
TRACK_OFFSETS = {1: 7, 2: 117, 3: 227}
TRACK_FIELD_LEN = 110

STATUS_OK, STATUS_NO_DATA, STATUS_START_SENTINEL, STATUS_END_SENTINEL = 0x00, 0x01, 0x02, 0x03
STATUS_PARITY, STATUS_LRC = 0x04, 0x05
STATUS_REASONS = {STATUS_NO_DATA: "no_data", STATUS_START_SENTINEL: "start_sentinel",
                  STATUS_END_SENTINEL: "end_sentinel", STATUS_PARITY: "parity", STATUS_LRC: "lrc"}
REASON_STATUS = {reason: code for code, reason in STATUS_REASONS.items()}
STATUS_UNREADABLE = 0xFF
"""What the driver records for a track a reader flagged bad without a cause (keyboard ``E``)."""

ENCODE_ISO_ABA, ENCODE_AAMVA, ENCODE_BLANK, ENCODE_OTHER = 0, 1, 3, 4

KEYBOARD_SENTINELS = {"%": 1, ";": 2, "+": 3}
INTER_REPORT_TIMEOUT_S = 0.5
"""Once a swipe started, the longest gap between its reports (seconds)."""


class SwipeTimeout(UnitNotResponding):
    """No swipe arrived within the timeout."""


@dataclass(frozen=True)
class TrackRead:
    """One track as the reader reported it. ``raw`` is start to end sentinel (None when the
    track failed or is absent); ``reason`` is None when ``status`` is OK. repr masks the data."""

    track: int
    status: int
    raw: str | None = field(default=None, repr=False)
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK and bool(self.raw)

    def __repr__(self) -> str:
        data = f"{len(self.raw)} chars" if self.raw else "none"
        return (f"TrackRead(track={self.track}, status=0x{self.status:02x}, "
                f"reason={self.reason!r}, data=<{data}>)")


@dataclass(frozen=True)
class Swipe:
    """One swipe: per-track reads (1..3). ``ok`` when tracks 1 and 2 both read (ISO 7813
    financial cards carry both); track 3 only counts when the card carries it."""

    flavour: str
    tracks: dict[int, TrackRead]
    encode_type: int | None = None

    @property
    def ok(self) -> bool:
        return all(self.tracks[n].ok for n in (1, 2))

    def failures(self) -> dict[int, str]:
        """Track -> reason for every failed track (an absent track 3 is not a failure)."""
        out = {}
        for n, read in sorted(self.tracks.items()):
            if read.ok or (n == 3 and read.reason == "no_data"):
                continue
            out[n] = read.reason or "no_data"
        return out

    def raw(self, track: int) -> str | None:
        return self.tracks[track].raw

    def track_data(self, track: int) -> TrackData:
        """Parsed ISO 7813 fields of track 1 or 2; ``TrackError`` when the track failed or its
        content is invalid (the reason names what failed)."""
        read = self.tracks[track]
        if not read.ok or read.raw is None:  # ok implies raw
            raise TrackError(track, read.reason or "no_data", "reported by the reader")
        return parse_track(track, read.raw)

    def __repr__(self) -> str:
        parts = ", ".join(f"t{n}={'ok' if r.ok else r.reason}" for n, r in sorted(self.tracks.items()))
        return f"Swipe({self.flavour}: {parts})"


def _status_read(track: int, status: int, raw: str | None) -> TrackRead:
    if status == STATUS_OK:
        if not raw:
            return TrackRead(track, STATUS_NO_DATA, None, "no_data")
        return TrackRead(track, status, raw, None)
    return TrackRead(track, status, None, STATUS_REASONS.get(status, "unreadable"))


def parse_hid_report(report: bytes, device: str = "magstripe reader") -> Swipe:
    """Decode one 337-byte vendor HID report. ``ProtocolError`` for a malformed report
    (wrong size, a length over 110, bytes outside the track character set)."""
    report = bytes(report)
    if len(report) != REPORT_LEN:
        raise ProtocolError(f"report is {len(report)} bytes, not {REPORT_LEN}", device,
                            "decoding a swipe report")
    tracks = {}
    for n, offset in TRACK_OFFSETS.items():
        status, length = report[STATUS_OFFSET + n - 1], report[LENGTH_OFFSET + n - 1]
        if length > TRACK_FIELD_LEN:
            raise ProtocolError(f"track {n} length {length} exceeds {TRACK_FIELD_LEN}", device,
                                "decoding a swipe report")
        data = report[offset:offset + length]
        bad = next((i for i, b in enumerate(data) if not 0x20 <= b <= 0x5F), None)
        if bad is not None:
            raise ProtocolError(f"track {n} byte {bad} is outside the track character set",
                                device, "decoding a swipe report")
        tracks[n] = _status_read(n, status, data.decode("ascii") if status == STATUS_OK else None)
    return Swipe("hid", tracks, report[ENCODE_TYPE_OFFSET])


def build_hid_report(reads: dict[int, tuple[int, str | None]], encode_type: int = ENCODE_ISO_ABA) -> bytes:
    """The 337-byte report for ``{track: (status, text)}`` (the reader model's side)."""
    report = bytearray(REPORT_LEN)
    report[ENCODE_TYPE_OFFSET] = encode_type
    for n, offset in TRACK_OFFSETS.items():
        status, text = reads.get(n, (STATUS_NO_DATA, None))
        data = text.encode("ascii") if status == STATUS_OK and text else b""
        if len(data) > TRACK_FIELD_LEN:
            raise ValueError(f"track {n} longer than {TRACK_FIELD_LEN} bytes")
        report[STATUS_OFFSET + n - 1] = status
        report[LENGTH_OFFSET + n - 1] = len(data)
        report[offset:offset + len(data)] = data
    return bytes(report)


def parse_keyboard_text(text: str, device: str = "magstripe reader") -> Swipe:
    """Decode what a keyboard-emulation reader typed (``[%...?][;...?][+...?]``, Enter
    optional). ``ProtocolError`` for text outside any track or an unterminated track."""
    tracks: dict[int, TrackRead] = {}
    i = 0
    text = text.rstrip("\r\n")
    while i < len(text):
        ch = text[i]
        n = KEYBOARD_SENTINELS.get(ch)
        if n == 2 and 2 in tracks and 3 not in tracks:
            n = 3  # some readers start track 3 with ';' as well, as it is on the card
        if n is None or n in tracks:
            raise ProtocolError(f"unexpected character at position {i} outside a track", device,
                                "decoding keyboard swipe data")
        end = text.find("?", i + 1)
        if end < 0:
            raise ProtocolError(f"track {n} has no end sentinel", device,
                                "decoding keyboard swipe data")
        body = text[i:end + 1]
        if body[1:-1] == "E":
            tracks[n] = TrackRead(n, STATUS_UNREADABLE, None, "unreadable")
        else:
            if n == 3 and body[0] == "+":
                body = ";" + body[1:]  # report track 3 with its on-card start sentinel
            tracks[n] = TrackRead(n, STATUS_OK, body, None)
        i = end + 1
    for n in (1, 2, 3):
        tracks.setdefault(n, TrackRead(n, STATUS_NO_DATA, None, "no_data"))
    return Swipe("keyboard", tracks)


def _is_gone(exc: usb.core.USBError) -> bool:
    return exc.errno in (errno.ENODEV, errno.ESHUTDOWN) or exc.backend_error_code == -4


class MagstripeReader:
    """A USB magstripe reader. ``flavour`` ``"hid"`` or ``"keyboard"``; default from the PID.

    Opens the first matching device on ``backend`` (or ``device``), detaches a kernel driver
    where one is bound (usbhid on a local bus), selects configuration 1 and finds the interrupt
    IN endpoint. ``PortUnavailable`` when no reader is found or it cannot be claimed.
    """

    def __init__(self, backend=None, *, vid: int = MAGTEK_VID, pid: int | None = None,
                 flavour: str | None = None, device: usb.core.Device | None = None,
                 name: str = "magstripe reader"):
        self.name = name
        if device is None:
            if backend is None:
                raise ValueError("give a backend or a device")
            found = [d for d in find_devices(backend, vid, pid)
                     if pid is not None or flavour is not None or d.idProduct in FLAVOUR_BY_PID]
            if not found:
                what = f"{vid:04x}:{pid:04x}" if pid is not None else f"{vid:04x}:*"
                raise PortUnavailable(name, f"finding a reader {what} on {backend_name(backend)}",
                                      "no such USB device")
            device = found[0]
        self.dev = device
        self.flavour = flavour or FLAVOUR_BY_PID.get(device.idProduct)
        if self.flavour not in ("hid", "keyboard"):
            raise ValueError(f"flavour must be 'hid' or 'keyboard' (PID 0x{device.idProduct:04x} "
                             "does not say)")
        self._decoder = KeyboardDecoder(name)
        self._open()

    def _open(self) -> None:
        try:
            cfg = self.dev[0]
            for intf in cfg:
                n = intf.bInterfaceNumber
                try:
                    if self.dev.is_kernel_driver_active(n):
                        self.dev.detach_kernel_driver(n)
                except NotImplementedError:
                    pass  # backends without kernel drivers (openusb, USB/IP) say so
            self.dev.set_configuration()
            intf = self.dev.get_active_configuration()[(0, 0)]
            usb.util.claim_interface(self.dev, intf)
            ep = usb.util.find_descriptor(
                intf, custom_match=lambda e: (
                    usb.util.endpoint_direction(e.bEndpointAddress) == usb.util.ENDPOINT_IN
                    and usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_INTR))
        except usb.core.USBError as exc:
            self.close()
            raise PortUnavailable(self.name, "opening the reader", str(exc)) from None
        if ep is None:
            self.close()
            raise PortUnavailable(self.name, "opening the reader", "no interrupt IN endpoint")
        self.ep_in = ep.bEndpointAddress
        self.packet_size = ep.wMaxPacketSize or 8

    def __repr__(self) -> str:
        return (f"MagstripeReader({self.flavour}, {self.dev.idVendor:04x}:{self.dev.idProduct:04x} "
                f"bus {self.dev.bus} address {self.dev.address})")

    def info(self) -> dict[str, object]:
        """Identity from the device descriptor and its strings (manufacturer, product, serial,
        ``bcdDevice`` as the firmware version) and the reader's flavour."""
        try:
            return {**describe(self.dev), "flavour": self.flavour}
        except (usb.core.USBError, ValueError) as exc:
            raise self._usb_error(exc, "reading the device descriptor") from None

    def _usb_error(self, exc: Exception, doing: str) -> Exception:
        if isinstance(exc, usb.core.USBError) and _is_gone(exc):
            return PortLost(self.name, doing, "the device disconnected")
        return UnitError(self.name, doing, str(exc))

    def _read(self, size: int, timeout_s: float, doing: str) -> bytes | None:
        """One interrupt IN transfer; None on timeout."""
        try:
            return bytes(self.dev.read(self.ep_in, size, timeout=max(1, int(timeout_s * 1000))))
        except usb.core.USBTimeoutError:
            return None
        except usb.core.USBError as exc:
            raise self._usb_error(exc, doing) from None

    def read_swipe(self, timeout: float) -> Swipe:
        """Wait up to ``timeout`` seconds for a swipe. ``SwipeTimeout`` when none comes,
        ``PortLost`` when the reader disconnects, ``ProtocolError`` for malformed data."""
        if self.flavour == "hid":
            return self._read_hid(timeout)
        return self._read_keyboard(timeout)

    def _read_hid(self, timeout: float) -> Swipe:
        doing = "reading a swipe"
        first = self._read(REPORT_LEN, timeout, doing)
        if first is None:
            raise SwipeTimeout(self.name, doing, f"no swipe within {timeout:g} s")
        report = bytearray(first)
        while len(report) < REPORT_LEN:  # a backend may hand the report over packet by packet
            more = self._read(REPORT_LEN - len(report), INTER_REPORT_TIMEOUT_S, doing)
            if more is None:
                raise ProtocolError(f"report ended after {len(report)} of {REPORT_LEN} bytes",
                                    self.name, doing)
            report += more
        return parse_hid_report(bytes(report[:REPORT_LEN]), self.name)

    def _read_keyboard(self, timeout: float) -> Swipe:
        doing = "reading a keyboard swipe"
        self._decoder.reset()
        typed: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            started = any(typed)  # release reports alone (the tail of a last swipe) start nothing
            wait = INTER_REPORT_TIMEOUT_S if started else deadline - time.monotonic()
            if wait <= 0:
                raise SwipeTimeout(self.name, doing, f"no swipe within {timeout:g} s")
            chunk = self._read(self.packet_size, wait, doing)
            if chunk is None:
                if started:
                    raise ProtocolError(f"typing stopped after {len(''.join(typed))} characters "
                                        "without Enter", self.name, doing)
                raise SwipeTimeout(self.name, doing, f"no swipe within {timeout:g} s")
            for i in range(0, len(chunk), 8):  # a short tail makes feed() raise ProtocolError
                typed.append(self._decoder.feed(chunk[i:i + 8]))
            text = "".join(typed)
            if "\r" in text:
                return parse_keyboard_text(text[:text.index("\r")], self.name)

    def flush(self, quiet_s: float = 0.05) -> int:
        """Discard queued input until the reader is quiet for ``quiet_s`` s; returns bytes dropped
        (at most 64 transfers, so a chattering reader cannot hold us)."""
        dropped = 0
        for _ in range(64):
            chunk = self._read(REPORT_LEN if self.flavour == "hid" else self.packet_size,
                               quiet_s, "flushing input")
            if chunk is None:
                break
            dropped += len(chunk)
        self._decoder.reset()
        return dropped

    def close(self) -> None:
        """Release the device (closes the USB/IP connection)."""
        try:
            usb.util.dispose_resources(self.dev)
        except (usb.core.USBError, OSError):
            pass

    def __enter__(self) -> MagstripeReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

