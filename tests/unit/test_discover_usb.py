"""What `posbench discover` takes a USB device for: by vid:pid, then by class (descriptors given
as plain values: this is the classification alone), and one real scan of the virtual bench's
USB/IP server (its hub and reader)."""
from __future__ import annotations

import random

from posbench.setup.config import UsbId
from posbench.discover.usb import CH340, KNOWN, classify, scan

HID_BOOT_KEYBOARD = (0x03, 0x01, 0x01)
HID_PLAIN = (0x03, 0x00, 0x00)
VENDOR_SPECIFIC = (0xFF, 0x00, 0x00)


def test_magtek_readers_are_known_by_id_with_the_flavour_the_driver_runs():
    hid = classify(UsbId(0x0801, 0x0002), 0, (HID_PLAIN,))
    wedge = classify(UsbId(0x0801, 0x0001), 0, (HID_BOOT_KEYBOARD,))
    assert hid is not None and (hid.kind, hid.flavour, hid.by) == ("magstripe reader", "hid", "vid:pid")
    assert wedge is not None and (wedge.kind, wedge.flavour) == ("magstripe reader", "keyboard")


def test_other_makers_readers_are_known_but_not_offered_to_the_magtek_driver():
    for usb_id in (UsbId(0x0ACD, 0x2030), UsbId(0xC216, 0x0180), UsbId(0x5131, 0x2007), UsbId(0x0D3A, 0x0500)):
        kind = classify(usb_id, 0, (HID_PLAIN,))
        assert kind is not None and kind.kind == "magstripe reader" and kind.flavour is None, usb_id


def test_an_unlisted_reader_of_a_reader_maker_is_recognised_by_class():
    wedge = classify(UsbId(0x0801, 0x0099), 0, (HID_BOOT_KEYBOARD,))
    idtech = classify(UsbId(0x0ACD, 0x3999), 0, (HID_PLAIN,))
    assert wedge is not None and (wedge.by, wedge.flavour) == ("class", "keyboard") and "keyboard-wedge" in wedge.name
    assert idtech is not None and (idtech.by, idtech.flavour) == ("class", None) and "ID TECH HID" in idtech.name
    assert classify(UsbId(0x0801, 0x0099), 0, (VENDOR_SPECIFIC,)) is None  # a MagTek device that is no HID


def test_a_keyboard_of_an_unknown_maker_is_not_taken_for_a_reader():
    assert classify(UsbId(0x046D, 0xC31C), 0, (HID_BOOT_KEYBOARD,)) is None


def test_hubs_ccid_readers_ch340_and_the_acr122u():
    hub = classify(UsbId(0x05E3, 0x0608), 0x09, ((0x09, 0, 0),))
    ccid = classify(UsbId(0x076B, 0x3021), 0, ((0x0B, 0, 0),))
    relay = classify(UsbId(0x1A86, 0x7523), 0xFF, (VENDOR_SPECIFIC,))
    acr = classify(UsbId(0x072F, 0x2200), 0, ((0xFF, 0, 0),))
    assert hub is not None and hub.kind == "hub" and hub.by == "class"
    assert ccid is not None and ccid.kind == "card reader"
    assert relay is not None and relay.kind == "ch340" and UsbId(0x1A86, 0x7523) in CH340
    assert acr is not None and acr.kind == "nfc reader"
    assert classify(UsbId(0x8087, 0x0024), 0xEF, ((0xE0, 1, 1),)) is None


def test_every_known_id_has_a_kind_and_a_name():
    assert all(k.kind and k.name for k in KNOWN.values())


def test_a_scan_of_a_usbip_server_finds_the_reader_and_asks_the_hub_for_its_power_switching():
    from posbench.sim.devices.magstripe import VirtualMagstripeReader
    from posbench.sim.devices.usbip_server import UsbipServer
    from posbench.sim.devices.usb_hub import VirtualUsbHub
    server = UsbipServer()
    try:
        hub = VirtualUsbHub(server, ports=4)
        hub.attach(1, VirtualMagstripeReader("hid", rng=random.Random(1), serial="MSR00000001"))
        result = scan(server.url)
    finally:
        server.stop(timeout=2.0)
    assert result.problem == "" and result.seen == 2
    kinds = {f.kind.kind: f for f in result.found}
    assert kinds["hub"].per_port_power and "4 ports" in kinds["hub"].note
    assert kinds["magstripe reader"].usb_id == UsbId(0x0801, 0x0002)


def test_a_backend_that_cannot_be_reached_is_named():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = scan(f"usbip://127.0.0.1:{port}")
    assert result.found == [] and "refused" in result.problem.lower()
