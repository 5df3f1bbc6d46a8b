"""Contactless reader driver on nfcpy: poll for a card, SELECT PPSE or read NDEF, typed failures.

Any nfcpy path works (``tty:USB0:pn532``, ``tty:AMA0:pn532``, ``usb:072f:2200`` for an ACR122U,
...). With ``usb_backend="usbip://host:port"`` (bench.toml's ``[usb] backend``) a ``usb:...``
path names a device on that USB/IP server, opened with nfcpy's own driver for it (``acr122``
for an unknown VID:PID) over ``usbip_transport.PyusbTransport``; ``"libusb1"`` or None keeps
nfcpy's own USB transport. A plain device path (``/dev/pts/7``, ``/dev/serial/by-id/...``) is
opened as a PN532 on HSU: nfcpy's path syntax cannot name it (only names directly in ``/dev``
without a ``/``).

Telling a dead reader from an unpowered unit: a PN532 built into a payment terminal is powered
by the terminal. When it does not answer, this driver raises ``ReaderSilent`` (at open) or
``ReaderLost`` (mid-run). Both are ``BenchError``s (``PortUnavailable`` / ``PortLost``) because
by default a silent reader is the bench's problem; the integrator who knows the unit is switched
off (its power switch says so) catches them, treats the silence as the unit's state, and calls
``reopen()`` once the unit is powered again. ``NfcReader.lost`` says whether the reader went
silent; ``probe()`` asks it for its firmware version without raising.
"""
from __future__ import annotations

import errno
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import ndef
import serial
import serial.rfc2217
import nfc
import nfc.clf
import nfc.clf.pn532
import nfc.clf.transport
import nfc.tag
import nfc.tag.tt2
import nfc.tag.tt4

from posbench.drivers.serial import relocation
from posbench.drivers.serial.port import claim_pty
from posbench.drivers.card.emv import PPSE as PPSE_NAME
from posbench.core.errors import PortLost, PortUnavailable
from posbench.core.masking import scrub
from posbench.core.threads import call_with_deadline

from .fci import FciError, parse_ppse_fci
from .usbip_transport import PyusbTransport, open_usb_frontend

log = logging.getLogger(__name__)

SELECT_PPSE = bytes([0x00, 0xA4, 0x04, 0x00, len(PPSE_NAME)]) + PPSE_NAME + b"\x00"
"""SELECT by DF name, first occurrence, Le = 00 (EMV Book A/B)."""


_nfc_log = logging.getLogger("nfc")
if _nfc_log.level == logging.NOTSET:
    # nfcpy logs every ISO-DEP retry and missed poll as a warning; that is expected noise on a
    # faulty antenna. Errors stay visible. A caller who configured the "nfc" logger keeps theirs.
    _nfc_log.setLevel(logging.ERROR)


URL_PATHS = re.compile(r"(rfc2217|socket)://")
"""A PN532 reached through a pyserial URL (a bench room's RFC 2217 port), not a local tty."""


class _Rfc2217LocalTimeout(serial.rfc2217.Serial):
    """pyserial's RFC 2217 client whose read timeout is the client's own business.

    nfcpy sets ``tty.timeout`` before every read. pyserial 3.5 answers that by renegotiating
    baud rate, data size, parity and stop bits with the server and waiting for each to be
    acknowledged: four round trips per read, and an nfc open over ser2net no longer fits its
    3 s. The timeout only bounds this client's wait on its own read buffer, so it is kept here.
    (labgrid's fork of pyserial, ``pyserial-labgrid``, does the same; which of the two provides
    ``serial`` depends on pip's install order, so posbench must not rely on either.)"""

    @property
    def timeout(self) -> float | None:
        return self._timeout

    @timeout.setter
    def timeout(self, timeout: float | None) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError(f"Not a valid timeout: {timeout!r}")
        self._timeout = timeout


class _UrlTTY(nfc.clf.transport.TTY):
    """nfcpy's TTY transport on ``serial.serial_for_url`` (nfcpy itself opens local ports only):
    the same framing and timeouts, over a serial port a bench room serves by RFC 2217."""

    def open(self, port, baudrate=115200):
        self.close()
        self.tty: serial.SerialBase = (_Rfc2217LocalTimeout(port, baudrate, timeout=0.05)
                                       if port.startswith("rfc2217://")
                                       else serial.serial_for_url(port, baudrate, timeout=0.05))


class ReaderSilent(PortUnavailable):
    """The port opened but no reader answered: unpowered (the unit is off?) or not that chip."""


class ReaderLost(PortLost):
    """The reader answered before and stopped answering (unplugged, unpowered, crashed)."""


@dataclass(frozen=True)
class TapResult:
    """One tap. ``reason``: ``ok``, ``no_card``, ``rf_error``, ``bad_response``, or ``link_error``
    (the frames between the bench and the reader's chip were damaged: no read over the air).

    ``polls`` counts sense cycles until a card was found (or the deadline passed);
    ``aids`` and ``status_word`` come from SELECT PPSE (Type 4), ``records`` from NDEF (Type 2),
    ``detail`` says what went wrong (scrubbed of anything that looks like a PAN).
    """

    reason: str
    tag_type: str = ""            # nfcpy's tag.type: "Type4Tag", "Type2Tag", ...
    product: str = ""             # nfcpy's tag.product, e.g. "NXP NTAG213"
    uid: str = ""
    aids: tuple[str, ...] = ()
    status_word: str = ""
    records: tuple[str, ...] = ()
    polls: int = 0
    duration_s: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


def _record_text(record: ndef.Record) -> str:
    if isinstance(record, ndef.TextRecord):
        return record.text
    if isinstance(record, ndef.UriRecord):
        return record.iri
    return f"{record.type}:{bytes(record.data).hex()}"


class NfcReader:
    """An nfcpy contactless frontend. ``timeout`` (seconds) bounds open, close and reopen.

    ``targets`` are the nfcpy technologies polled (payment cards are Type A or B at 106 kbps).
    """

    def __init__(self, path: str, timeout: float = 3.0, targets: tuple[str, ...] = ("106A", "106B"),
                 poll_interval: float = 0.05, usb_backend: str | None = None):
        self.path, self.timeout = path, float(timeout)
        self.usb_backend = usb_backend if usb_backend and usb_backend.strip() != "libusb1" else None
        self.targets, self.poll_interval = tuple(targets), float(poll_interval)
        self.device_name = f"nfc reader {path}"
        self.lost = False
        self._clf: nfc.ContactlessFrontend | None = None
        self._pty_id: tuple[int, int] | None = None
        self._open(self.timeout)

    # -- open / close --------------------------------------------------------------------------
    def _open(self, timeout: float) -> None:
        self.path = relocation.current(self.path)  # a bench room's port moves when its server restarts
        self._pty_id = claim_pty(self.path, self._pty_id, self.device_name, "opening the reader")
        abandoned = threading.Event()

        def attempt() -> nfc.ContactlessFrontend:
            clf = self._open_clf()
            if abandoned.is_set():  # the caller gave up: do not leave the port open
                clf.close()
            return clf

        try:
            self._clf = call_with_deadline(attempt, timeout, "nfc open")
        except TimeoutError as exc:
            abandoned.set()
            raise PortUnavailable(self.device_name, "opening the reader", str(exc)) from None
        self.lost = False
        log.info("%s: opened %s", self.device_name, self._clf.device)

    def _open_clf(self) -> nfc.ContactlessFrontend:
        if self.path.startswith("/") or URL_PATHS.match(self.path):
            return self._open_plain_tty()
        if self.usb_backend is not None and self.path.startswith("usb"):
            try:
                return open_usb_frontend(self.path, self.usb_backend, self.device_name, self.timeout)
            except OSError as exc:  # the device is on the bus, its driver's init got no answer
                raise ReaderSilent(self.device_name, "initialising the reader",
                                   f"no valid answer ({exc}): unpowered, or not that reader") from None
        try:
            return nfc.ContactlessFrontend(self.path)
        except Exception as exc:  # IOError, ValueError for a bad path, libusb errors
            if isinstance(exc, PortUnavailable):
                raise
            if self._tty_exists():
                raise ReaderSilent(self.device_name, "opening the reader",
                                   f"the port exists but no reader answered ({exc}): "
                                   "unpowered, or another driver is needed") from None
            raise PortUnavailable(self.device_name, "opening the reader",
                                  f"nfcpy found no reader on this path ({exc})") from None

    def _tty_exists(self) -> bool:
        try:
            found = nfc.clf.transport.TTY.find(self.path)
        except OSError:
            return True  # the node exists but cannot be used: not "missing"
        return bool(found and found[0])

    def _open_plain_tty(self) -> nfc.ContactlessFrontend:
        # Approach (c) of the protocol reference: build nfcpy's own TTY transport and run its
        # own pn532.init on it, then hand the device to a frontend of our own. Nothing global in
        # nfcpy is patched, so other nfcpy users in the process (other readers, nfcpy paths)
        # are unaffected; the only internal API touched is ContactlessFrontend.device.
        try:
            transport = (_UrlTTY if URL_PATHS.match(self.path) else nfc.clf.transport.TTY)(self.path)
        except OSError as exc:  # pyserial's SerialException is an OSError
            raise PortUnavailable(self.device_name, "opening the serial port", str(exc)) from None
        try:
            device = nfc.clf.pn532.init(transport)
        except OSError as exc:
            transport.close()
            if exc.errno in (errno.ENODEV, errno.ETIMEDOUT):  # no ACK / a wrong answer
                raise ReaderSilent(self.device_name, "initialising the PN532",
                                   "no valid answer to GetFirmwareVersion within 100 ms: "
                                   "the reader is unpowered or not a PN532") from None
            if exc.errno == errno.EIO:  # a frame checksum or start sequence wrong: something answered, damaged
                raise ReaderSilent(self.device_name, "initialising the PN532",
                                   "its answers arrived damaged (a frame checksum or start sequence wrong): "
                                   "a bad joint or cable on its UART, or a wrong baud rate") from None
            raise PortUnavailable(self.device_name, "initialising the PN532", str(exc)) from None
        device._path = self.path  # what nfcpy's device.connect() sets for a found device
        clf = nfc.ContactlessFrontend()
        clf.device = device
        return clf

    def close(self, timeout: float | None = None) -> None:
        """Put the chip to sleep and release the port; gives up after ``timeout`` seconds."""
        clf, self._clf = self._clf, None
        if clf is None:
            return
        try:
            call_with_deadline(clf.close, self.timeout if timeout is None else timeout, "nfc close")
        except TimeoutError:
            log.warning("%s: close did not finish in time; releasing the port", self.device_name)
            self._force_release(clf)
        except OSError as exc:
            log.warning("%s: close failed (%s); releasing the port", self.device_name, exc)
            self._force_release(clf)

    @staticmethod
    def _force_release(clf: nfc.ContactlessFrontend) -> None:
        chipset = getattr(clf.device, "chipset", None)
        transport = getattr(chipset, "transport", None)
        tty = transport if isinstance(transport, PyusbTransport) else getattr(transport, "tty", None)
        if tty is not None:
            try:
                tty.close()
            except OSError:
                pass

    def reopen(self, timeout: float | None = None) -> None:
        """Close whatever is left and open the reader again (after the unit was power-cycled),
        where its port is now (a bench room's port moves when its server restarts)."""
        self.close(0.5 if self.lost else None)
        self._open(self.timeout if timeout is None else timeout)

    def describe(self) -> str:
        """What nfcpy says the open reader is (chip, firmware, path)."""
        return str(self._clf.device) if self._clf is not None else "closed"

    def probe(self) -> bool:
        """True if the reader still answers GetFirmwareVersion-level traffic; never raises."""
        clf = self._clf
        if clf is None or clf.device is None:
            return False
        try:
            with clf.lock:
                chipset = getattr(clf.device, "chipset", None)
                if chipset is not None and hasattr(chipset, "get_firmware_version"):
                    chipset.get_firmware_version()
            return True
        except Exception:  # IOError, a chipset error frame, a closed transport: not answering
            return False

    def __enter__(self) -> "NfcReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- a tap ---------------------------------------------------------------------------------
    def tap(self, timeout: float) -> TapResult:
        """Poll up to ``timeout`` seconds for a card and read it.

        Type 4 (ISO-DEP): SELECT PPSE, AIDs from the FCI. Type 2: the NDEF records.
        Raises ``ReaderLost`` when the reader stops answering.
        """
        clf = self._require_open("polling for a card")
        started = time.monotonic()
        deadline = started + timeout
        polls = 0

        def terminate() -> bool:
            # nfcpy calls this before every sense cycle (iterations=1); pacing the polls here
            # keeps a PN532 with no card in the field from being polled in a busy loop.
            nonlocal polls
            now = time.monotonic()
            if now >= deadline:
                return True
            if polls:
                time.sleep(min(self.poll_interval, deadline - now))
            polls += 1
            return False

        options = {"targets": list(self.targets), "on-connect": lambda tag: False,
                   "iterations": 1, "interval": self.poll_interval, "beep-on-connect": False}
        try:
            tag = clf.connect(rdwr=options, terminate=terminate)
        except OSError as exc:
            self._lose("polling for a card", exc)
        if tag is False:  # nfcpy swallowed an IOError from the chip and logged it
            if not self.probe():
                self._lose("polling for a card", OSError("the reader stopped answering"))
            # nfcpy raises IOError only for the host<->chip link (a damaged frame, a missing ACK);
            # what goes wrong over the air comes as its CommunicationError, read in _read
            return self._result("link_error", started, polls,
                                detail="a frame between the bench and the reader's chip was damaged")
        if tag is None:
            return self._result("no_card", started, polls,
                                detail=f"no card detected in {timeout:g} s ({polls} polls)")
        try:
            return self._read(tag, started, polls)
        except OSError as exc:
            self._lose("reading the card", exc)

    def _read(self, tag: nfc.tag.Tag, started: float, polls: int) -> TapResult:
        kind = f"{tag.type}|{tag.product}"
        uid = bytes(tag.identifier).hex().upper()
        if isinstance(tag, nfc.tag.tt4.Type4Tag):
            try:
                rsp = tag.transceive(SELECT_PPSE)
            except nfc.tag.TagCommandError as exc:
                return self._result("rf_error", started, polls, kind, uid,
                                    detail=f"SELECT PPSE: {exc}")
            if rsp is None or len(rsp) < 2:
                return self._result("bad_response", started, polls, kind, uid,
                                    detail="SELECT PPSE: answer shorter than a status word")
            sw = bytes(rsp[-2:]).hex().upper()
            if sw != "9000":
                return self._result("bad_response", started, polls, kind, uid, status_word=sw,
                                    detail=f"SELECT PPSE: status word {sw}")
            try:
                fci = parse_ppse_fci(bytes(rsp[:-2]))
            except FciError as exc:
                return self._result("bad_response", started, polls, kind, uid, status_word=sw,
                                    detail=f"SELECT PPSE: FCI malformed: {exc}")
            return self._result("ok", started, polls, kind, uid, status_word=sw, aids=fci.aids)
        if isinstance(tag, nfc.tag.tt2.Type2Tag):
            try:
                message = tag.ndef
                if message is None:
                    tag.read(0)  # tells "no NDEF on this tag" from "the tag stopped answering"
                    return self._result("bad_response", started, polls, kind, uid,
                                        detail="Type 2 tag without an NDEF message")
                records = tuple(_record_text(r) for r in message.records)
            except nfc.tag.TagCommandError as exc:
                return self._result("rf_error", started, polls, kind, uid, detail=f"reading NDEF: {exc}")
            except ndef.DecodeError as exc:
                return self._result("bad_response", started, polls, kind, uid,
                                    detail=f"NDEF message malformed: {exc}")
            return self._result("ok", started, polls, kind, uid, records=records)
        return self._result("bad_response", started, polls, kind, uid,
                            detail=f"unsupported tag type {tag.type}")

    def _result(self, reason: str, started: float, polls: int, tag_type: str = "", uid: str = "",
                **kw: Any) -> TapResult:
        detail = scrub(str(kw.pop("detail", "")))
        tag_type, _, product = tag_type.partition("|")
        return TapResult(reason, tag_type, product, uid, polls=polls,
                         duration_s=time.monotonic() - started, detail=detail, **kw)

    def _require_open(self, doing: str) -> nfc.ContactlessFrontend:
        if self.lost:
            raise ReaderLost(self.device_name, doing, "the reader stopped answering earlier; reopen() it")
        if self._clf is None:
            raise PortUnavailable(self.device_name, doing, "the reader is closed")
        return self._clf

    def _lose(self, doing: str, exc: BaseException) -> NoReturn:
        self.lost = True
        raise ReaderLost(self.device_name, doing,
                         f"{exc}: the reader stopped answering (unplugged, unpowered or crashed)"
                         ) from None
