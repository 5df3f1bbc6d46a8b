"""The virtual USB hub: a hub-class (0x09) device on the USB/IP server, with N ports.

Mirrors ``drivers/usb/hub.py``. It answers the hub class requests uhubctl uses (hub
descriptor, port GET_STATUS, SET/CLEAR_FEATURE PORT_POWER, plus PORT_RESET/ENABLE and the
change-bit clears a host hub driver sends) and reports port changes on its interrupt IN
status-change endpoint. A device attached to a port is exported as ``<hub busid>.<port>``
while the port is powered: powering the port off unplugs it from the server (its connections
drop), powering it on exports it again under a new device number (it re-enumerates).

``ganged=True`` builds a hub whose descriptor says ganged power switching (and which switches
every port together), so the driver's refusal can be tested. ``on_port_power(port, on)`` is
called after every change of a port's power, outside any lock (the power model hooks in here).
"""
from __future__ import annotations

import struct
import threading
from collections.abc import Callable

from usbip.core import Setup, Stall
from usbip.device import In, USBDevice
from usbip.function import Interface

from posbench.drivers.usb.hub import (DT_HUB, PORT_POWER, PORT_STAT_CONNECTION, PORT_STAT_ENABLE,
                             PORT_STAT_POWER, REQ_CLEAR_FEATURE, REQ_GET_DESCRIPTOR,
                             REQ_GET_STATUS, REQ_SET_FEATURE)

from posbench.sim.devices.usbip_server import UsbipServer

HUB_VID, HUB_PID = 0x2109, 0x2811  # VIA Labs USB 2.0 hub, a per-port-switching model uhubctl lists
PORT_ENABLE, PORT_SUSPEND, PORT_RESET = 1, 2, 4
C_PORT_CONNECTION, C_PORT_ENABLE, C_PORT_SUSPEND, C_PORT_OVER_CURRENT, C_PORT_RESET = 16, 17, 18, 19, 20
_CHANGE_BITS = {C_PORT_CONNECTION: 0x01, C_PORT_ENABLE: 0x02, C_PORT_SUSPEND: 0x04,
                C_PORT_OVER_CURRENT: 0x08, C_PORT_RESET: 0x10}
PORT_STAT_SUSPEND = 0x0004
RECIPIENT_DEVICE, RECIPIENT_OTHER = 0, 3
PWR_ON_2_PWR_GOOD = 50  # x 2 ms = 100 ms, as the descriptor states it


class _Port:
    def __init__(self, number: int):
        self.number = number
        self.powered = True
        self.enabled = False
        self.suspended = False
        self.change = 0
        self.device: USBDevice | None = None


class _HubInterface(Interface):
    """Hub class interface: one interrupt IN endpoint for the port status-change bitmap."""

    bInterfaceClass = 0x09
    status_change = In(0x81, "interrupt", mps=1, interval=255)

    def __init__(self, hub: VirtualUsbHub):
        super().__init__()
        self._hub = hub

    def on_control(self, setup: Setup, data: bytes = b""):
        return self._hub._class_request(setup)


class VirtualUsbHub(USBDevice):
    """A ``ports``-port USB 2.0 hub exported on ``server`` (added on construction)."""

    def __init__(self, server: UsbipServer, ports: int = 4, *, ganged: bool = False,
                 on_port_power: Callable[[int, bool], None] | None = None,
                 busid: str | None = None):
        if not 1 <= ports <= 7:
            raise ValueError(f"ports must be 1..7 (one status byte), got {ports!r}")
        super().__init__(HUB_VID, HUB_PID, manufacturer="VIA Labs, Inc.", product="USB2.0 Hub",
                         bcdDevice=0x9013, device_class=0x09, device_subclass=0, device_protocol=0)
        self.server = server
        self.ganged = ganged
        self.on_port_power = on_port_power
        self._lock = threading.Lock()
        self._ports = {n: _Port(n) for n in range(1, ports + 1)}
        self._iface = self.add(_HubInterface(self))
        server.add(self, busid)

    @property
    def ports(self) -> int:
        return len(self._ports)

    def __repr__(self) -> str:
        state = "".join("1" if p.powered else "0" for p in self._ports.values())
        return f"VirtualUsbHub(busid={self.busid}, ports={state}, ganged={self.ganged})"

    def hub_descriptor(self) -> bytes:
        """The USB 2.0 hub descriptor (type 0x29): per-port or ganged power switching,
        individual over-current protection, no removable-device restrictions."""
        characteristics = (0x0000 if self.ganged else 0x0001) | 0x0008
        nbytes = (len(self._ports) + 1 + 7) // 8
        body = struct.pack("<BBBHBB", 7 + 2 * nbytes, DT_HUB, len(self._ports), characteristics,
                           PWR_ON_2_PWR_GOOD, 100)
        return body + bytes(nbytes) + b"\xff" * nbytes

    # --- downstream devices ---
    def downstream_busid(self, port: int) -> str:
        return f"{self.busid}.{port}"

    def attach(self, port: int, device: USBDevice) -> None:
        """Plug ``device`` into ``port``; it is exported at once if the port is powered."""
        with self._lock:
            p = self._port(port)
            if p.device is not None:
                raise ValueError(f"port {port} already has a device")
            p.device = device
            if p.powered:
                p.change |= _CHANGE_BITS[C_PORT_CONNECTION]
            export = p.powered
        if export:
            self.server.add(device, self.downstream_busid(port))
            self._signal_change(port)

    def detach(self, port: int) -> USBDevice | None:
        """Unplug whatever is on ``port``."""
        with self._lock:
            p = self._port(port)
            device, p.device = p.device, None
            if device is not None and p.powered:
                p.change |= _CHANGE_BITS[C_PORT_CONNECTION]
            p.enabled = False
        if device is not None:
            self.server.remove(device)
            self._signal_change(port)
        return device

    def _port(self, port: int) -> _Port:
        try:
            return self._ports[port]
        except KeyError:
            raise ValueError(f"port must be 1..{len(self._ports)}, got {port!r}") from None

    # --- power ---
    def is_powered(self, port: int) -> bool:
        with self._lock:
            return self._port(port).powered

    def set_power(self, port: int, on: bool) -> None:
        """Switch ``port`` (every port when ganged), as SET/CLEAR_FEATURE PORT_POWER does."""
        with self._lock:
            self._port(port)
            targets = list(self._ports.values()) if self.ganged else [self._ports[port]]
            changed = []
            for p in targets:
                if p.powered == on:
                    continue
                p.powered = on
                p.enabled = False
                p.suspended = False
                if p.device is not None:
                    p.change |= _CHANGE_BITS[C_PORT_CONNECTION]
                changed.append((p.number, p.device))
        for number, device in changed:
            if device is not None:
                if on:
                    self.server.add(device, self.downstream_busid(number))  # re-enumerates
                else:
                    self.server.remove(device)
                self._signal_change(number)
            if self.on_port_power is not None:
                self.on_port_power(number, on)

    def port_status(self, port: int) -> tuple[int, int]:
        """(wPortStatus, wPortChange) as GET_STATUS reports them."""
        with self._lock:
            p = self._port(port)
            status = PORT_STAT_POWER if p.powered else 0
            if p.powered and p.device is not None:
                status |= PORT_STAT_CONNECTION
                if p.enabled:
                    status |= PORT_STAT_ENABLE
                if p.suspended:
                    status |= PORT_STAT_SUSPEND
            return status, p.change

    def _signal_change(self, port: int) -> None:
        ep = self._iface.status_change
        # The status-change pipe NAKs until polled; keep at most a few bitmaps queued for a
        # host that never polls it (a pyusb power switch does not), so soaks cannot pile up.
        if len(ep._q) < 4:
            ep.write(bytes([1 << port]))

    # --- class requests on EP0 ---
    def _class_request(self, setup: Setup) -> bytes:
        recipient, req = setup.recipient, setup.bRequest
        if req == REQ_GET_DESCRIPTOR and setup.direction == 1:  # class 0xA0, or standard 0x80
            if setup.wValue >> 8 == DT_HUB and recipient == RECIPIENT_DEVICE:
                return self.hub_descriptor()
            raise Stall
        if setup.type != 1:
            raise Stall
        if recipient == RECIPIENT_DEVICE:
            if req == REQ_GET_STATUS:
                return bytes(4)  # local power good, no over-current, no changes
            if req in (REQ_SET_FEATURE, REQ_CLEAR_FEATURE):
                return b""  # C_HUB_LOCAL_POWER / C_HUB_OVER_CURRENT: nothing to clear
            raise Stall
        if recipient != RECIPIENT_OTHER:
            raise Stall
        port = setup.wIndex & 0xFF
        if port not in self._ports:
            raise Stall
        if req == REQ_GET_STATUS:
            return struct.pack("<HH", *self.port_status(port))
        if req == REQ_SET_FEATURE:
            return self._set_feature(port, setup.wValue)
        if req == REQ_CLEAR_FEATURE:
            return self._clear_feature(port, setup.wValue)
        raise Stall

    def _set_feature(self, port: int, feature: int) -> bytes:
        if feature == PORT_POWER:
            self.set_power(port, True)
            return b""
        with self._lock:
            p = self._ports[port]
            if feature == PORT_RESET:
                if p.powered and p.device is not None:
                    p.enabled = True
                    p.change |= _CHANGE_BITS[C_PORT_RESET]
            elif feature == PORT_SUSPEND:
                p.suspended = p.enabled
            elif feature not in (PORT_ENABLE,) and feature not in _CHANGE_BITS:
                raise Stall
        return b""

    def _clear_feature(self, port: int, feature: int) -> bytes:
        if feature == PORT_POWER:
            self.set_power(port, False)
            return b""
        with self._lock:
            p = self._ports[port]
            if feature in _CHANGE_BITS:
                p.change &= ~_CHANGE_BITS[feature]
            elif feature == PORT_ENABLE:
                p.enabled = False
            elif feature == PORT_SUSPEND:
                p.suspended = False
            else:
                raise Stall
        return b""
