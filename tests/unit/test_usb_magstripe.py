"""The USB read path end to end: virtual readers on a real USB/IP server on 127.0.0.1, the pyusb
driver over ``usbip://``, and the Debian ``usbip`` tool listing the devices."""
from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import threading
import time

import pytest
import usb.core
import usb.util

from posbench.setup.cards import load_deck
from posbench.core.errors import ConfigError, PortLost, PortUnavailable, UnitNotResponding
from posbench.sim.devices.magstripe import VirtualMagstripeReader
from posbench.sim.devices.usbip_server import UsbipServer
from posbench.drivers.card.tracks import REASONS
from posbench.drivers.usb.backend import UsbipBackend, find_devices, open_backend
from posbench.drivers.usb.magstripe import (MAGTEK_VID, PID_HID, PID_KEYBOARD, MagstripeReader,
                                   SwipeTimeout)

DECK = load_deck()
USBIP_TOOL = "/usr/sbin/usbip"


@pytest.fixture
def bench():
    server = UsbipServer()
    hid_reader = VirtualMagstripeReader("hid", rng=random.Random(1))
    kbd_reader = VirtualMagstripeReader("keyboard", rng=random.Random(2), serial="K0000001")
    server.add(hid_reader)
    server.add(kbd_reader)
    backend = open_backend(server.url)
    drivers: list[MagstripeReader] = []
    try:
        yield server, backend, hid_reader, kbd_reader, drivers
    finally:
        for driver in drivers:
            driver.close()
        backend.close()
        assert server.stop(timeout=3.0)


def _open(backend, drivers, **kw) -> MagstripeReader:
    driver = MagstripeReader(backend, **kw)
    drivers.append(driver)
    return driver


@pytest.mark.parametrize("flavour,pid", [("hid", PID_HID), ("keyboard", PID_KEYBOARD)])
def test_every_deck_card_reads_back_exactly(bench, flavour, pid):
    _server, backend, hid_reader, kbd_reader, drivers = bench
    sim = hid_reader if flavour == "hid" else kbd_reader
    reader = _open(backend, drivers, pid=pid)
    assert reader.flavour == flavour
    for i, card in enumerate(DECK.values()):
        statuses = sim.swipe(card, reverse=bool(i % 2))
        assert statuses == {1: 0, 2: 0, 3: 1}
        swipe = reader.read_swipe(timeout=2.0)
        assert swipe.ok, swipe
        assert swipe.raw(1) == card.track1 and swipe.raw(2) == card.track2
        t1, t2 = swipe.track_data(1), swipe.track_data(2)
        assert (t1.pan, t1.name, t1.expiry, t1.service_code) == (
            card.pan, card.name, card.expiry, card.service_code)
        assert (t2.pan, t2.expiry, t2.service_code) == (card.pan, card.expiry, card.service_code)
        assert card.pan not in repr(swipe)


def test_reader_identity_comes_from_the_descriptors(bench):
    _server, backend, _hid, _kbd, drivers = bench
    info = _open(backend, drivers, pid=PID_KEYBOARD).info()
    assert info["manufacturer"] == "Mag-Tek" and info["serial"] == "K0000001"
    assert info["firmware"] == "1.50" and info["flavour"] == "keyboard"
    assert {(d.idVendor, d.idProduct) for d in find_devices(backend, MAGTEK_VID)} == {
        (MAGTEK_VID, PID_HID), (MAGTEK_VID, PID_KEYBOARD)}


@pytest.mark.parametrize("pid", [PID_HID, PID_KEYBOARD])
def test_no_swipe_times_out_within_the_timeout(bench, pid):
    _server, backend, _hid, _kbd, drivers = bench
    reader = _open(backend, drivers, pid=pid)
    start = time.monotonic()
    with pytest.raises(SwipeTimeout, match=r"no swipe within 0\.3 s") as info:
        reader.read_swipe(timeout=0.3)
    assert 0.28 <= time.monotonic() - start < 1.0
    assert isinstance(info.value, UnitNotResponding)


def test_backend_interrupt_read_times_out_as_usb_timeout_and_keeps_working(bench):
    _server, backend, hid_reader, _kbd, _drivers = bench
    dev = find_devices(backend, MAGTEK_VID, PID_HID)[0]
    try:
        dev.set_configuration()
        for _ in range(3):  # unlinked URBs must not desynchronise the connection
            start = time.monotonic()
            with pytest.raises(usb.core.USBTimeoutError):
                dev.read(0x81, 337, timeout=150)
            assert time.monotonic() - start < 0.5
        hid_reader.swipe(DECK["MC-T1"])
        assert len(dev.read(0x81, 337, timeout=1000)) == 337
    finally:
        usb.util.dispose_resources(dev)


def test_head_fault_fails_swipes_with_typed_reasons(bench):
    server, backend, _hid, _kbd, drivers = bench
    faulty = VirtualMagstripeReader("hid", rng=random.Random(7), head_fault=1.0, serial="FAULTY01")
    server.add(faulty)
    reader = _open(backend, drivers, pid=PID_HID, device=[
        d for d in find_devices(backend, MAGTEK_VID, PID_HID) if d.address == faulty.devnum][0])
    failed, reasons = 0, set()
    for i in range(40):
        card = list(DECK.values())[i % len(DECK)]
        faulty.swipe(card)
        swipe = reader.read_swipe(timeout=2.0)
        if not swipe.ok:
            failed += 1
            reasons |= set(swipe.failures().values())
        else:
            assert swipe.raw(2) == card.track2
    assert failed >= 20, failed
    assert reasons and reasons <= set(REASONS) and "parity" in reasons


def test_head_fault_rates_by_severity():
    card = DECK["VISA-T1"]

    def rate(severity, n, seed):
        sim = VirtualMagstripeReader("hid", rng=random.Random(seed), head_fault=severity)
        bad = sum(any(status for t, (status, _) in sim.read_tracks(card.tracks()).items() if t < 3)
                  for _ in range(n))
        return bad / n

    assert rate(0.0, 2000, 11) < 0.005
    assert rate(0.3, 400, 12) >= 0.25
    assert rate(1.0, 400, 13) > 0.7


def test_keyboard_flavour_sends_e_for_a_bad_track(bench):
    server, backend, _hid, kbd_reader, drivers = bench
    reader = _open(backend, drivers, pid=PID_KEYBOARD)
    kbd_reader.set_head_fault(1.0)
    seen = set()
    for _ in range(15):
        statuses = kbd_reader.swipe(DECK["AMEX-T1"])
        swipe = reader.read_swipe(timeout=2.0)
        for n in (1, 2):
            assert (statuses[n] == 0) == swipe.tracks[n].ok
            if statuses[n]:
                seen.add(swipe.tracks[n].reason)
    assert seen == {"unreadable"}


def test_device_vanishing_mid_read_is_port_lost(bench):
    server, backend, hid_reader, _kbd, drivers = bench
    reader = _open(backend, drivers, pid=PID_HID)
    unplug = threading.Timer(0.2, server.remove, args=(hid_reader,))
    unplug.start()
    start = time.monotonic()
    try:
        with pytest.raises(PortLost, match="disconnected"):
            reader.read_swipe(timeout=5.0)
        assert time.monotonic() - start < 2.0
    finally:
        unplug.cancel()
        unplug.join(2.0)
    assert not find_devices(backend, MAGTEK_VID, PID_HID)


def test_unreachable_backend_is_port_unavailable_naming_the_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PortUnavailable, match=f"usbip://127.0.0.1:{port}"):
        open_backend(f"usbip://127.0.0.1:{port}", timeout=1.0)
    with pytest.raises(PortUnavailable, match=f"usbip://127.0.0.1:{port}"):
        find_devices(UsbipBackend("127.0.0.1", port, timeout=1.0))
    with pytest.raises(ConfigError, match="usb.backend"):
        open_backend("serial:///dev/ttyUSB0")


def test_no_reader_on_the_bus_is_port_unavailable(bench):
    _server, backend, _hid, _kbd, _drivers = bench
    with pytest.raises(PortUnavailable, match="no such USB device"):
        MagstripeReader(backend, vid=0x1234)


@pytest.mark.skipif(not os.path.exists(USBIP_TOOL), reason=f"{USBIP_TOOL} (Debian usbip) is not installed")
def test_debian_usbip_tool_lists_the_virtual_devices(bench):
    server, _backend, _hid, _kbd, _drivers = bench
    result = subprocess.run([USBIP_TOOL, "--tcp-port", str(server.address[1]), "list", "-r",
                             "127.0.0.1"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^\s*(\d+-[\d.]+): .*\((\w{4}):(\w{4})\)", result.stdout, re.M)
    assert sorted(listed) == [("1-1", "0801", "0002"), ("1-2", "0801", "0001")]
    assert "Human Interface Device" in result.stdout


def test_a_reader_that_dropped_between_two_looks_is_back_at_another_address():
    """``UsbReader.where()``: a drop shorter than the watch's look interval still shows, as a
    real re-enumeration does, by the new device address."""
    from posbench.drivers.usb.reconnecting import UsbReader
    server = UsbipServer()
    sim = VirtualMagstripeReader("hid", rng=random.Random(3))
    server.add(sim)
    reader = UsbReader(server.url, (MAGTEK_VID, PID_HID))
    try:
        first = reader.where()
        assert first is not None and reader.where() == first
        assert server.remove(sim)
        assert reader.where() is None and not reader.present()
        server.add(sim)
        again = reader.where()
        assert again is not None and again != first
    finally:
        reader.backend.close()
        assert server.stop(timeout=3.0)
