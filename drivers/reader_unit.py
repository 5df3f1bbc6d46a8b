"""A card reader that is itself the unit under test, as the HIL suite asks a unit.

A returned USB magstripe reader, a USB contactless reader (ACR122U) or a PN532 board has no ECR
link: it is ready when it answers on its own interface (a USB reader enumerated; a contactless
chip answering nfcpy), and it tells who it is (its USB descriptor's strings and release, or the
chip's firmware). It answers nothing else of ``Terminal`` (no sale, status or journal): those
tests do not apply to a reader and are not collected for one.

Its reader driver (``UsbReader``, ``NfcReader``) is the one the read-path and USB tests use:
``reader()`` hands it out, so the unit and its reads share one handle to the device.
"""
from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from posbench.core.errors import PortLost, PortUnavailable, UnitNotResponding
from posbench.drivers.terminal import FewAnswers, Identity, Unsupported

if TYPE_CHECKING:
    from posbench.drivers.nfc.reader import NfcReader
    from posbench.drivers.usb.reconnecting import UsbReader

POLL_S = 0.1
"""Seconds between looks for a reader that is not there yet."""

INTERFACES = ("usb-hid", "usb-keyboard", "usb-ccid", "uart")
"""How a reader talks to the bench (``posbench.setup.profile.ReaderSpec.interface``)."""

CAPABILITIES = frozenset({"identity", "components"})

_CHIP_FIRMWARE = re.compile(r"PN53\d\s*v?(\d+\.\d+)")


class ReaderUnit(FewAnswers):
    """The reader that is the unit. ``interface``: one of ``INTERFACES``; ``usb_backend`` the
    pyusb backend spec ("libusb1", "usbip://host:port") and ``usb_id`` its (vid, pid) for a USB
    reader; ``nfc_path`` the nfcpy path of a contactless one; ``boot_timeout`` seconds it may
    take to answer after power-on."""

    protocol = "reader"
    capabilities = CAPABILITIES

    def __init__(self, interface: str, model: str, *, usb_backend: str | None = None,
                 usb_id: tuple[int, int] | None = None, nfc_path: str | None = None, serial: str = "",
                 boot_timeout: float = 5.0):
        if interface not in INTERFACES:
            raise ValueError(f"interface must be one of {', '.join(INTERFACES)}, not {interface!r}")
        on_usb = interface.startswith("usb-")
        if on_usb and (usb_backend is None or usb_id is None):
            raise ValueError("a USB reader needs its backend and its (vid, pid)")
        if interface in ("usb-ccid", "uart") and not nfc_path:
            raise ValueError("a contactless reader needs its nfcpy path")
        self.interface, self.model, self.serial = interface, model, serial
        self.usb_backend, self.usb_id, self.nfc_path = usb_backend, usb_id, nfc_path
        self.boot_timeout = boot_timeout
        self.device = f"{model} (the unit)"
        self._usb: UsbReader | None = None
        self._nfc: NfcReader | None = None
        self._backend = None
        """The pyusb backend its presence is looked up on, opened once (``open_backend`` lists the
        bus to check it is there: opened per look, each look would list it twice)."""

    # -- the reader driver the read tests use --
    def usb_reader(self) -> UsbReader:
        """The magstripe reader's driver (a USB HID or keyboard reader)."""
        if self.interface not in ("usb-hid", "usb-keyboard"):
            raise Unsupported(self.protocol, "swipe")
        if self._usb is None:
            from posbench.drivers.usb.reconnecting import UsbReader
            assert self.usb_backend is not None
            self._usb = UsbReader(self.usb_backend, self.usb_id)
        return self._usb

    def nfc_reader(self, timeout: float | None = None) -> NfcReader:
        """The contactless reader's driver, opened (within ``timeout`` s, default ``boot_timeout``)."""
        if self.interface not in ("usb-ccid", "uart"):
            raise Unsupported(self.protocol, "tap")
        from posbench.drivers.nfc.reader import NfcReader, ReaderSilent
        wait = self.boot_timeout if timeout is None else timeout
        try:
            if self._nfc is None:
                assert self.nfc_path is not None
                if self.interface == "usb-ccid":  # nfcpy's acr122 driver, over the bench's USB backend
                    self._nfc = NfcReader(self.nfc_path, timeout=wait, usb_backend=self.usb_backend)
                else:
                    self._nfc = NfcReader(self.nfc_path, timeout=wait)
            elif not self._nfc.probe():
                self._nfc.reopen(wait)
        except ReaderSilent as exc:  # the reader is the unit: its silence is the unit's, not the bench's
            raise UnitNotResponding(self.device, "opening it", exc.detail) from None
        return self._nfc

    # -- Terminal --
    def open(self) -> ReaderUnit:
        return self

    def close(self) -> None:
        if self._usb is not None:
            self._usb.close()
        if self._nfc is not None:
            self._nfc.close()
        if self._backend is not None:
            getattr(self._backend, "close", lambda: None)()
            self._backend = None

    def wait_ready(self, timeout: float) -> float:
        """Until the reader answers on its interface (a USB reader enumerated; a contactless chip
        answering nfcpy); seconds waited. ``UnitNotResponding`` after ``timeout`` s; a USB
        backend that cannot be reached is the bench's (``PortUnavailable``)."""
        start = time.monotonic()
        while True:
            if self._answers(max(0.5, start + timeout - time.monotonic())):
                return time.monotonic() - start
            if time.monotonic() - start >= timeout:
                raise UnitNotResponding(self.device, "waiting for it to answer",
                                        f"not {'on the bus' if self.interface.startswith('usb-') else 'answering'} "
                                        f"after {timeout:g} s")
            time.sleep(POLL_S)

    def _answers(self, timeout: float) -> bool:
        """Whether the reader answers now. The USB backend unreachable raises (``PortUnavailable``:
        the bench's); the reader absent, or present and silent, is False."""
        if self.interface.startswith("usb-"):
            if self._usb_device() is None:
                return False
            if self.interface != "usb-ccid":
                return True
        try:
            return self.nfc_reader(timeout).probe()
        except (PortUnavailable, PortLost, UnitNotResponding):  # gone from the bus, or silent: not answering yet
            return False

    def where(self) -> tuple[int, int] | None:
        """A USB reader's (bus, address), None while it is off the bus (it re-enumerates at another
        address after a drop). ``PortUnavailable`` when the USB backend cannot be reached."""
        dev = self._usb_device()
        return (dev.bus, dev.address) if dev is not None else None

    def _usb_device(self):
        from posbench.drivers.usb.backend import find_devices, open_backend
        assert self.usb_backend is not None and self.usb_id is not None
        if self._backend is None:
            self._backend = open_backend(self.usb_backend)
        found = find_devices(self._backend, *self.usb_id)
        return found[0] if found else None

    def identify(self) -> Identity:
        """Who the reader says it is: a USB reader's descriptor (product, serial, ``bcdDevice`` as
        its firmware); a PN532 board's chip firmware (it has no serial number: the bench's
        ``[unit] serial``)."""
        if self.interface.startswith("usb-"):
            import usb.core

            from posbench.drivers.usb.descriptors import describe
            dev = self._usb_device()
            if dev is None:
                raise UnitNotResponding(self.device, "reading its USB descriptor", "it is not on the bus")
            try:
                info = describe(dev)
            except (usb.core.USBError, ValueError) as exc:
                raise UnitNotResponding(self.device, "reading its USB descriptor", str(exc)) from None
            firmware = str(info["firmware"])
            return Identity(str(info["product"] or self.model), str(info["serial"] or self.serial), firmware,
                            {"firmware": firmware})
        described = self.nfc_reader().describe()
        found = _CHIP_FIRMWARE.search(described)
        if found is None:
            raise UnitNotResponding(self.device, "reading its chip's firmware", f"nfcpy says {described!r}")
        return Identity(self.model, self.serial, found.group(1), {"firmware": found.group(1)})

    def link_counters(self) -> dict[str, int]:
        """None counted: a reader has no ECR link whose frames could be damaged (its own
        interface's failures show as reads cut off and drops off the bus)."""
        return {}

    def sale(self, amount: int, timeout: float | None = None):
        raise Unsupported(self.protocol, "sale")

    def abort(self) -> None:
        raise Unsupported(self.protocol, "abort")
