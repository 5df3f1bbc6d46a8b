"""Hub port power over USB/IP: the pyusb driver against the virtual hub (uhubctl's requests)."""
from __future__ import annotations

import os
import random
import re
import subprocess

import pytest

from posbench.setup.cards import load_deck
from posbench.sim.devices.magstripe import VirtualMagstripeReader
from posbench.sim.devices.usbip_server import UsbipServer
from posbench.sim.devices.usb_hub import VirtualUsbHub
from posbench.core.errors import PortLost
from posbench.drivers.usb.backend import find_devices, open_backend
from posbench.drivers.usb.hub import HubPowerUnsupported, UsbHubPower
from posbench.drivers.usb.magstripe import MAGTEK_VID, PID_HID, MagstripeReader

USBIP_TOOL = "/usr/sbin/usbip"


@pytest.fixture
def rig():
    server = UsbipServer()
    events: list[tuple[int, bool]] = []
    hub = VirtualUsbHub(server, ports=4, on_port_power=lambda port, on: events.append((port, on)))
    reader = VirtualMagstripeReader("hid", rng=random.Random(3))
    hub.attach(2, reader)
    backend = open_backend(server.url)
    power = UsbHubPower(backend)
    try:
        yield server, hub, reader, backend, power, events
    finally:
        power.close()
        backend.close()
        assert server.stop(timeout=3.0)


def _readers(backend):
    return find_devices(backend, MAGTEK_VID, PID_HID)


def test_hub_descriptor_and_port_status_bits(rig):
    _server, hub, _reader, backend, power, _events = rig
    assert power.ports == 4 and power.characteristics & 3 == 1
    raw = bytes(power.dev.ctrl_transfer(0xA0, 0x06, 0x2900, 0, 15))
    assert raw[1] == 0x29 and raw[2] == 4 and raw == hub.hub_descriptor()
    status, change = power.port_status(2)
    assert status & 0x0100 and status & 0x0001  # powered, device connected
    assert change & 0x0001  # connection changed since the hub came up
    empty, _ = power.port_status(1)
    assert empty & 0x0100 and not empty & 0x0001
    power.dev.ctrl_transfer(0x23, 0x01, 16, 2, None)  # CLEAR_FEATURE C_PORT_CONNECTION
    assert power.port_status(2)[1] == 0
    with pytest.raises(ValueError):
        power.is_powered(5)


def test_port_power_off_unplugs_the_device_and_on_re_enumerates_it(rig):
    server, hub, reader, backend, power, events = rig
    (before,) = _readers(backend)
    assert before.port_numbers == (1, 2) and before.parent.bDeviceClass == 9
    driver = MagstripeReader(backend, pid=PID_HID)
    try:
        power.power(2, False)
        assert not power.is_powered(2) and not hub.is_powered(2)
        assert power.port_status(2)[0] & 0x0101 == 0
        assert _readers(backend) == [] and not server.is_exported(reader)
        with pytest.raises(PortLost):
            driver.read_swipe(timeout=1.0)
        power.power(2, True)
        (after,) = _readers(backend)
        assert after.address != before.address  # a new device number: it re-enumerated
    finally:
        driver.close()
    driver = MagstripeReader(backend, pid=PID_HID)
    try:
        reader.swipe(load_deck()["DISC-T1"])
        assert driver.read_swipe(timeout=2.0).ok
    finally:
        driver.close()
    assert events == [(2, False), (2, True)]


def test_other_ports_are_untouched_and_cycle_switches_off_then_on(rig):
    _server, hub, _reader, backend, power, events = rig
    power.power(3, False)
    assert [power.is_powered(p) for p in (1, 2, 3, 4)] == [True, True, False, True]
    assert len(_readers(backend)) == 1
    power.cycle(2, off_s=0.05)
    assert power.is_powered(2) and len(_readers(backend)) == 1
    assert events == [(3, False), (2, False), (2, True)]


def test_ganged_hub_is_refused():
    server = UsbipServer()
    try:
        ganged = VirtualUsbHub(server, ports=2, ganged=True)
        backend = open_backend(server.url)
        try:
            with pytest.raises(HubPowerUnsupported, match="ganged"):
                UsbHubPower(backend)
            ganged.set_power(1, False)  # a ganged hub switches every port together
            assert not ganged.is_powered(2)
        finally:
            backend.close()
    finally:
        assert server.stop(timeout=3.0)


@pytest.mark.skipif(not os.path.exists(USBIP_TOOL), reason=f"{USBIP_TOOL} (Debian usbip) is not installed")
def test_debian_usbip_tool_sees_the_port_power(rig):
    server, _hub, _reader, _backend, power, _events = rig

    def listed():
        out = subprocess.run([USBIP_TOOL, "--tcp-port", str(server.address[1]), "list", "-r",
                              "127.0.0.1"], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        return re.findall(r"^\s*(\d+-[\d.]+): ", out.stdout, re.M)

    assert listed() == ["1-1", "1-1.2"]
    power.power(2, False)
    assert listed() == ["1-1"]
    power.power(2, True)
    assert listed() == ["1-1", "1-1.2"]
