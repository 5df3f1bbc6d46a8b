"""Per-port power of a USB hub through pyusb, with the control transfers uhubctl sends.

- hub descriptor: ``0xA0 / GET_DESCRIPTOR 0x06 / wValue 0x2900`` (0x2A00 on a USB 3 hub);
  ``wHubCharacteristics & 3``: 0 ganged, 1 per-port, 2/3 no power switching. Only per-port
  hubs are accepted: switching a ganged hub's "port" powers every port.
- port power: ``0x23 / SET_FEATURE 0x03`` (on) or ``CLEAR_FEATURE 0x01`` (off),
  ``wValue 8`` (PORT_POWER), ``wIndex port``, no data.
- port status: ``0xA3 / GET_STATUS 0x00 / wValue 0 / wIndex port``, 4 bytes
  (wPortStatus, wPortChange); power is bit 0x0100 on USB 2 hubs, 0x0200 on USB 3 hubs.
The hub is bench equipment: its failures are ``BenchError``s, never blamed on the unit.
"""
from __future__ import annotations

import errno
import struct
import time

import usb.core
import usb.util

from posbench.core.errors import BenchError, PortLost, PortUnavailable

from .backend import backend_name, find_devices

HUB_CLASS = 0x09
REQ_GET_STATUS, REQ_CLEAR_FEATURE, REQ_SET_FEATURE, REQ_GET_DESCRIPTOR = 0x00, 0x01, 0x03, 0x06
RT_HUB_IN, RT_PORT_OUT, RT_PORT_IN = 0xA0, 0x23, 0xA3
DT_HUB, DT_SS_HUB = 0x29, 0x2A
PORT_POWER = 8
PORT_STAT_CONNECTION, PORT_STAT_ENABLE = 0x0001, 0x0002
PORT_STAT_POWER, PORT_STAT_SS_POWER = 0x0100, 0x0200
POWER_MODES = {0: "ganged", 1: "per-port", 2: "none", 3: "none"}
TIMEOUT_MS = 1000


class HubPowerUnsupported(BenchError):
    """The hub cannot switch its ports' power one by one (ganged or no power switching)."""


class UsbHubPower:
    """Port power switch of one USB hub (the first hub matching ``vid``/``pid`` on ``backend``,
    or ``device``). ``HubPowerUnsupported`` when its descriptor does not promise per-port
    power switching; ``PortUnavailable`` when no hub is found."""

    def __init__(self, backend=None, *, vid: int | None = None, pid: int | None = None,
                 device: usb.core.Device | None = None, name: str = "usb hub"):
        self.name = name
        if device is None:
            if backend is None:
                raise ValueError("give a backend or a device")
            hubs = [d for d in find_devices(backend, vid, pid) if d.bDeviceClass == HUB_CLASS]
            if not hubs:
                raise PortUnavailable(name, f"finding a USB hub on {backend_name(backend)}",
                                      "no hub-class device")
            device = hubs[0]
        self.dev = device
        self.superspeed = (getattr(device, "bcdUSB", 0x0200) or 0) >= 0x0300
        self._power_bit = PORT_STAT_SS_POWER if self.superspeed else PORT_STAT_POWER
        desc = self._ctrl_in(RT_HUB_IN, REQ_GET_DESCRIPTOR,
                             (DT_SS_HUB if self.superspeed else DT_HUB) << 8, 0, 15,
                             "reading the hub descriptor")
        if len(desc) < 7 or desc[1] not in (DT_HUB, DT_SS_HUB):
            self.close()
            raise BenchError(name, "reading the hub descriptor", f"{len(desc)}-byte reply is not "
                             "a hub descriptor")
        self.ports: int = desc[2]
        self.characteristics: int = struct.unpack_from("<H", desc, 3)[0]
        self.power_on_delay_s: float = desc[5] * 0.002
        mode = POWER_MODES[self.characteristics & 3]
        if mode != "per-port":
            self.close()
            raise HubPowerUnsupported(name, "checking per-port power switching",
                                      f"wHubCharacteristics 0x{self.characteristics:04x} says "
                                      f"power switching is {mode}")

    def __repr__(self) -> str:
        return (f"UsbHubPower({self.dev.idVendor:04x}:{self.dev.idProduct:04x}, "
                f"{self.ports} ports)")

    def _error(self, exc: usb.core.USBError, doing: str) -> BenchError:
        if exc.errno == errno.ENODEV or exc.backend_error_code == -4:
            return PortLost(self.name, doing, "the hub disconnected")
        return BenchError(self.name, doing, str(exc))

    def _ctrl_in(self, rt: int, req: int, value: int, index: int, length: int, doing: str) -> bytes:
        try:
            return bytes(self.dev.ctrl_transfer(rt, req, value, index, length, timeout=TIMEOUT_MS))
        except usb.core.USBError as exc:
            raise self._error(exc, doing) from None

    def _check_port(self, port: int) -> None:
        if not isinstance(port, int) or not 1 <= port <= self.ports:
            raise ValueError(f"port must be 1..{self.ports}, got {port!r}")

    def port_status(self, port: int) -> tuple[int, int]:
        """(wPortStatus, wPortChange) of ``port`` (1-based)."""
        self._check_port(port)
        data = self._ctrl_in(RT_PORT_IN, REQ_GET_STATUS, 0, port, 4, f"reading port {port} status")
        if len(data) < 4:
            raise BenchError(self.name, f"reading port {port} status", f"{len(data)}-byte reply")
        status, change = struct.unpack_from("<HH", data)
        return status, change

    def is_powered(self, port: int) -> bool:
        return bool(self.port_status(port)[0] & self._power_bit)

    def is_connected(self, port: int) -> bool:
        """A device is attached (and powered) on ``port``."""
        return bool(self.port_status(port)[0] & PORT_STAT_CONNECTION)

    def power(self, port: int, on: bool) -> None:
        """Switch ``port`` on or off and check the hub reports the new state."""
        self._check_port(port)
        doing = f"switching port {port} {'on' if on else 'off'}"
        try:
            self.dev.ctrl_transfer(RT_PORT_OUT, REQ_SET_FEATURE if on else REQ_CLEAR_FEATURE,
                                   PORT_POWER, port, None, timeout=TIMEOUT_MS)
        except usb.core.USBError as exc:
            raise self._error(exc, doing) from None
        if self.is_powered(port) != bool(on):
            raise BenchError(self.name, doing, "the port status did not follow")

    def cycle(self, port: int, off_s: float = 2.0) -> None:
        """Power ``port`` off for ``off_s`` seconds, then on again."""
        self.power(port, False)
        time.sleep(max(0.0, off_s))
        self.power(port, True)

    def close(self) -> None:
        try:
            usb.util.dispose_resources(self.dev)
        except (usb.core.USBError, OSError):
            pass

    def __enter__(self) -> UsbHubPower:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
