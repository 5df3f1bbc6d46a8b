"""The unit's USB magstripe reader, found again after it leaves the bus (``UsbReader``), and
``UsbGone``: the unit's device left while the bus is still there.

The backend and magstripe drivers (pyusb) are imported on first use: importing this stays cheap.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from posbench.core.errors import PortLost, PortUnavailable, UnitError

if TYPE_CHECKING:
    from posbench.drivers.usb.magstripe import MagstripeReader


class UsbGone(UnitError):
    """The unit's USB device left the bus (the bus itself is still there)."""


class UsbReader:
    """The magstripe reader, found again after it leaves the bus (a drop or a power cycle).

    A reader that vanishes while the USB backend still answers is the unit's business
    (``UsbGone``); a backend that cannot be reached is the bench's (``PortUnavailable``).
    """

    def __init__(self, spec: str, reader: tuple[int, int] | None):
        """``spec``: the pyusb backend ("libusb1", "usbip://host:port"); ``reader``: its
        (vid, pid), or None for the first known reader."""
        from posbench.drivers.usb.backend import open_backend
        self.spec = spec
        self.backend = open_backend(spec)
        self.reader = reader
        self.ids = {"vid": reader[0], "pid": reader[1]} if reader else {}
        self.driver: MagstripeReader | None = None

    def present(self) -> bool:
        return self.where() is not None

    def where(self) -> tuple[int, int] | None:
        """The reader's (bus, address), or None while it is off the bus. A device that left the
        bus and came back is enumerated anew, at another address: a drop shorter than the time
        between two looks still shows."""
        from posbench.drivers.usb.backend import find_devices
        found = find_devices(self.backend, self.ids.get("vid", 0x0801), self.ids.get("pid"))
        return (found[0].bus, found[0].address) if found else None

    def connect(self, timeout: float) -> float:
        """Open the reader, waiting up to ``timeout`` s for it to enumerate; returns the wait."""
        from posbench.drivers.usb.magstripe import MagstripeReader
        start = time.monotonic()
        self.close()
        while True:
            try:
                self.driver = (MagstripeReader(self.backend, vid=self.reader[0], pid=self.reader[1])
                               if self.reader else MagstripeReader(self.backend))
                return time.monotonic() - start
            except PortUnavailable as exc:
                if time.monotonic() - start >= timeout:
                    if self._backend_alive():
                        raise UsbGone("magstripe reader", "waiting for it to enumerate",
                                      f"not on the bus after {timeout:g} s") from None
                    raise exc
                time.sleep(0.1)

    def _backend_alive(self) -> bool:
        from posbench.drivers.usb.backend import find_devices
        try:
            find_devices(self.backend)
            return True
        except Exception:  # noqa: BLE001 - any failure to list means the bus is unreachable
            return False

    def read_swipe(self, timeout: float):
        """One swipe; ``PortLost`` only when the bus is gone, ``UsbGone`` when the reader is."""
        if self.driver is None:
            raise UsbGone("magstripe reader", "reading a swipe", "it left the bus earlier")
        try:
            return self.driver.read_swipe(timeout)
        except PortLost:
            self.close()
            if self._backend_alive():
                raise UsbGone("magstripe reader", "reading a swipe", "it left the bus") from None
            raise

    def flush(self) -> None:
        """Drop pending reports; a reader that left the bus is simply found again by the next read."""
        if self.driver is not None:
            try:
                self.driver.flush()
            except PortLost:
                self.close()

    def close(self) -> None:
        if self.driver is not None:
            try:
                self.driver.close()
            except Exception:  # noqa: BLE001 - a vanished device cannot be closed cleanly
                pass
            self.driver = None
