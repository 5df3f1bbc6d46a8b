"""nfcpy's USB transport, on pyusb over any pyusb backend (posbench's USB/IP one above all).

nfcpy's own ``nfc.clf.transport.USB`` calls python-libusb1 directly, so it reaches only local
devices (a USB/IP device only after the kernel's vhci driver attached it, which needs root).
``PyusbTransport`` offers what nfcpy's USB drivers (``nfc.clf.acr122.init``) use of it:
``read(timeout_ms)``, ``write(frame, timeout_ms)``, ``close()``, ``manufacturer_name``,
``product_name``, ``TYPE == "USB"``, and raises as nfcpy's does: ``IOError`` with
``errno.ETIMEDOUT`` on a timeout, ``ENODEV`` when the device is gone, ``EIO`` otherwise.
Written here because no maintained package bridges nfcpy to pyusb.

``find_usb(path, backend)`` resolves an nfcpy ``usb[:VID[:PID]]`` / ``usb:BUS[:ADDR]`` path
against the backend's devices; ``open_usb_frontend`` opens an ``nfc.ContactlessFrontend`` there.
"""
from __future__ import annotations

import errno
import importlib
import logging
import os
import re
import struct

import nfc
import nfc.clf.device
import usb.core
import usb.util

from posbench.core.errors import PortUnavailable
from posbench.drivers.usb.backend import backend_name, open_backend

log = logging.getLogger(__name__)

READ_SIZE = 300
"""Bytes asked for per bulk IN read (as nfcpy's own USB transport)."""
DEFAULT_TIMEOUT_MS = 5000
"""nfcpy's timeout 0 means 'forever' to libusb; here it is this bound (milliseconds)."""

_VID_PID = re.compile(r"^usb:([0-9a-fA-F]{4})(?::([0-9a-fA-F]{4}))?$")
_BUS_ADR = re.compile(r"^usb:([0-9]{1,3})(?::([0-9]{1,3}))?$")


def usb_path_match(path: str) -> dict[str, int] | None:
    """nfcpy's USB path syntax -> the fields to match (``{}`` for plain ``usb``), or None when
    ``path`` is no USB path. VID:PID wins over BUS:ADDR where both would read (as in nfcpy)."""
    if path in ("usb", "usb:"):
        return {}
    m = _VID_PID.match(path)
    if m:
        return {k: int(v, 16) for k, v in zip(("idVendor", "idProduct"), m.groups()) if v}
    m = _BUS_ADR.match(path)
    if m:
        return {k: int(v) for k, v in zip(("bus", "address"), m.groups()) if v}
    return None


def find_usb(path: str, backend) -> list[usb.core.Device]:
    """Devices on ``backend`` that the nfcpy USB ``path`` names (``ValueError`` for another path).
    ``OSError`` when the backend cannot enumerate."""
    match = usb_path_match(path)
    if match is None:
        raise ValueError(f"{path!r} is not an nfcpy USB path (usb:VID:PID or usb:BUS:ADDR)")
    return list(usb.core.find(find_all=True, backend=backend, **match))


def _ioerror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class PyusbTransport:
    """nfcpy USB transport on one pyusb ``device``: its first bulk IN and OUT endpoints of
    interface 0 (the CCID pipes on an ACR122U). ``IOError(ENODEV)`` when they are missing or
    the device cannot be opened."""

    TYPE = "USB"

    def __init__(self, device: usb.core.Device):
        self.device: usb.core.Device | None = device
        try:
            intf = device.get_active_configuration()[(0, 0)]
        except usb.core.USBError:
            try:
                device.set_configuration()
                intf = device.get_active_configuration()[(0, 0)]
            except (usb.core.USBError, OSError) as exc:
                raise self._error(exc) from None
        except OSError as exc:
            raise self._error(exc) from None
        self.ep_in = self.ep_out = None
        for ep in intf:
            if usb.util.endpoint_type(ep.bmAttributes) != usb.util.ENDPOINT_TYPE_BULK:
                continue
            if usb.util.endpoint_direction(ep.bEndpointAddress) == usb.util.ENDPOINT_IN:
                self.ep_in = self.ep_in or ep
            else:
                self.ep_out = self.ep_out or ep
        if self.ep_in is None or self.ep_out is None:
            log.error("no bulk endpoints for read and write")
            self.close()
            raise _ioerror(errno.ENODEV)
        self._manufacturer_name, self._product_name = self._strings(device)

    def _strings(self, device: usb.core.Device) -> tuple[str | None, str | None]:
        """Manufacturer and product strings, from a device descriptor read off the device (a
        USB/IP device list carries no string indexes)."""
        try:
            raw = bytes(device.ctrl_transfer(0x80, 0x06, 0x0100, 0, 18, timeout=1000))
            i_manufacturer, i_product = struct.unpack_from("<BB", raw, 14)
            return (usb.util.get_string(device, i_manufacturer) if i_manufacturer else None,
                    usb.util.get_string(device, i_product) if i_product else None)
        except (usb.core.USBError, ValueError, struct.error) as exc:
            log.debug("reading the USB strings failed: %s", exc)
            return None, None

    @property
    def manufacturer_name(self) -> str | None:
        return self._manufacturer_name

    @property
    def product_name(self) -> str | None:
        return self._product_name

    @staticmethod
    def _error(exc: BaseException) -> OSError:
        if isinstance(exc, usb.core.USBTimeoutError):
            return _ioerror(errno.ETIMEDOUT)
        if getattr(exc, "errno", None) in (errno.ENODEV, errno.ESHUTDOWN, errno.ECONNRESET,
                                            errno.EPIPE):
            return _ioerror(errno.ENODEV)
        if isinstance(exc, (ConnectionError, BrokenPipeError)):
            return _ioerror(errno.ENODEV)
        log.error("%r", exc)
        return _ioerror(errno.EIO)

    def read(self, timeout: int = 0) -> bytearray:
        """One bulk IN transfer within ``timeout`` ms (0: ``DEFAULT_TIMEOUT_MS``)."""
        if self.device is None or self.ep_in is None:
            raise _ioerror(errno.ENODEV)
        try:
            frame = self.device.read(self.ep_in.bEndpointAddress, READ_SIZE,
                                     timeout or DEFAULT_TIMEOUT_MS)
        except (usb.core.USBError, OSError) as exc:
            raise self._error(exc) from None
        if len(frame) == 0:
            log.error("bulk read returned zero data")
            raise _ioerror(errno.EIO)
        return bytearray(frame)

    def write(self, frame: bytes, timeout: int = 0) -> None:
        """One bulk OUT transfer (plus a zero-length packet when ``frame`` fills its last
        packet, as nfcpy's transport sends) within ``timeout`` ms (0: ``DEFAULT_TIMEOUT_MS``)."""
        if self.device is None or self.ep_out is None:
            raise _ioerror(errno.ENODEV)
        addr = self.ep_out.bEndpointAddress
        try:
            self.device.write(addr, bytes(frame), timeout or DEFAULT_TIMEOUT_MS)
            if len(frame) % self.ep_out.wMaxPacketSize == 0:
                self.device.write(addr, b"", timeout or DEFAULT_TIMEOUT_MS)
        except (usb.core.USBError, OSError) as exc:
            raise self._error(exc) from None

    def close(self) -> None:
        """Release the device (closes its USB/IP connection); safe to call twice."""
        device, self.device = self.device, None
        if device is not None:
            try:
                usb.util.dispose_resources(device)
            except (usb.core.USBError, OSError) as exc:
                log.debug("releasing the USB device failed: %s", exc)


def open_usb_frontend(path: str, backend_spec: str, device_name: str,
                      timeout: float = 3.0) -> nfc.ContactlessFrontend:
    """An nfcpy frontend on the first device ``path`` names on the pyusb backend ``backend_spec``
    (``usbip://host:port``), with the nfcpy driver its VID:PID maps to (``acr122`` for any
    other: an ACR122-compatible reader). ``PortUnavailable`` when the backend is unreachable
    or no such device is on it; the driver's ``OSError`` when the device does not answer."""
    backend = open_backend(backend_spec, timeout)
    try:
        found = find_usb(path, backend)
    except (OSError, ConnectionError, ValueError) as exc:
        raise PortUnavailable(device_name, f"enumerating {backend_name(backend)}", str(exc)) from None
    if not found:
        raise PortUnavailable(device_name, "opening the reader",
                              f"no USB device {path} on {backend_name(backend)}")
    dev = found[0]
    driver = importlib.import_module(
        "nfc.clf." + nfc.clf.device.usb_device_map.get((dev.idVendor, dev.idProduct), "acr122"))
    transport = PyusbTransport(dev)
    try:
        device = driver.init(transport)
    except BaseException:
        transport.close()
        raise
    device._path = f"usb:{dev.bus:03}:{dev.address:03}"  # what nfcpy's connect() sets
    clf = nfc.ContactlessFrontend()
    clf.device = device
    return clf
