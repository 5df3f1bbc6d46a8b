"""The virtual ACR122U on the USB/IP server, driven by nfcpy's own acr122 driver through
``PyusbTransport`` over posbench's pyusb USB/IP backend."""
from __future__ import annotations

import errno
import os
import random
import re
import struct
import subprocess
import time

import ndef
import nfc
import pytest
import usb.util

from posbench.core.errors import PortLost, PortUnavailable
from posbench.drivers.card.emv import BRAND_AIDS
from posbench.drivers.nfc.reader import NfcReader, ReaderLost, ReaderSilent
from posbench.drivers.nfc.usbip_transport import PyusbTransport, find_usb, open_usb_frontend, usb_path_match
from posbench.drivers.usb.backend import find_devices, open_backend
from posbench.setup.cards import load_deck
from posbench.sim.devices.acr122u import VirtualAcr122u, ccid_class_descriptor
from posbench.sim.devices.nfc_cards import CardApplication, Iso14443_4Card, Type2Tag
from posbench.sim.devices.usbip_server import UsbipServer

USBIP_TOOL = "/usr/sbin/usbip"
PATH = "usb:072f:2200"


@pytest.fixture(scope="module")
def server():
    srv = UsbipServer()
    yield srv
    assert srv.stop(2.0)


@pytest.fixture(scope="module")
def acr(server):
    return VirtualAcr122u(random.Random(5), server=server)


@pytest.fixture(scope="module")
def reader(acr, server):
    rdr = NfcReader(PATH, timeout=3.0, usb_backend=server.url)
    yield rdr
    rdr.close(2.0)


@pytest.fixture
def own_server():
    srv = UsbipServer()
    yield srv
    srv.stop(2.0)


def _deck_card(brand: str) -> tuple[Iso14443_4Card, str]:
    """A deck card of ``brand`` as the bench presents it in the field, and its AID."""
    card = next(c for c in load_deck().values() if c.brand == brand)
    aid = BRAND_AIDS[card.brand]
    return Iso14443_4Card(apps=(CardApplication(aid, card.brand.upper()[:16], 1),)), aid.upper()


# -- nfcpy's acr122 driver opens it and reads cards ---------------------------------------------
def test_nfcpy_initialises_the_reader_and_its_pn532(acr, reader):
    assert reader.describe().startswith("ACS ACR122U PN532v1.6 at usb:001:")
    seen = acr.counters.commands
    for code in (0x02, 0x00, 0x12, 0x32):  # GetFirmwareVersion, line test, SetParameters, RFConfiguration
        assert seen.get(code, 0) >= 1, f"nfcpy never sent PN532 command 0x{code:02X}"
    assert acr.counters.errors_sent == 0
    assert acr.picc_parameter == 0x7F      # nfcpy switched the firmware's own polling off
    assert acr.led_state == 0x02           # ... and set the LEDs to green only
    assert reader.probe()


def test_a_deck_card_selects_ppse(acr, reader):
    card, aid = _deck_card("Visa")
    acr.present(card)
    result = reader.tap(2.0)
    assert result.ok, result
    assert (result.tag_type, result.status_word, result.aids) == ("Type4Tag", "9000", (aid,))
    assert result.uid == "08A1B2C3" and result.polls == 1


def test_type2_tag_ndef(acr, reader):
    acr.present(Type2Tag(records=[ndef.TextRecord("hello over usb/ip")]))
    result = reader.tap(2.0)
    assert result.ok, result
    assert (result.tag_type, result.product, result.records) == ("Type2Tag", "NXP NTAG213", ("hello over usb/ip",))


def test_no_card_within_timeout(acr, reader):
    acr.remove()
    started = time.monotonic()
    result = reader.tap(0.5)
    assert result.reason == "no_card" and result.polls >= 3
    assert 0.5 <= time.monotonic() - started < 1.0


def test_healthy_antenna_20_taps_all_succeed(acr, reader):
    cards = [_deck_card("Mastercard")[0], Type2Tag()]
    results = []
    for i in range(20):
        acr.present(cards[i % 2])
        results.append(reader.tap(1.0))
    assert [r.reason for r in results] == ["ok"] * 20


def test_nfcpy_contactless_frontend_reads_the_tag_itself(own_server):
    """nfcpy's own ContactlessFrontend.connect on the device we opened: its tag objects work."""
    acr = VirtualAcr122u(random.Random(2), server=own_server)
    acr.present(Type2Tag(records=[ndef.UriRecord("https://example.com/acr")]))
    clf = open_usb_frontend(PATH, own_server.url, "nfc reader", 3.0)
    try:
        assert isinstance(clf, nfc.ContactlessFrontend)
        tag = clf.connect(rdwr={"on-connect": lambda tag: False, "iterations": 5, "interval": 0.05})
        assert tag is not None and tag.type == "Type2Tag"
        assert [r.iri for r in tag.ndef.records] == ["https://example.com/acr"]
    finally:
        clf.close()
    assert acr.led_state == 0x00  # nfcpy's close switched both LEDs off


# -- the antenna fault --------------------------------------------------------------------------
def test_antenna_fault_severity_1_misses_the_card(own_server):
    acr = VirtualAcr122u(random.Random(11), antenna_fault=1.0, server=own_server)
    rdr = NfcReader(PATH, timeout=3.0, usb_backend=own_server.url)
    try:
        results = []
        for i in range(12):
            acr.present(_deck_card("Visa")[0] if i % 2 else Type2Tag())
            results.append(rdr.tap(0.25))
        failed = [r for r in results if not r.ok]
        assert len(failed) >= 9, results
        assert {r.reason for r in failed} <= {"no_card", "rf_error", "bad_response"}
        assert acr.counters.missed > 0
        acr.set_antenna_fault(0.0)  # repaired mid-run: the next taps read
        acr.present(_deck_card("Visa")[0])
        assert rdr.tap(1.0).ok
        with pytest.raises(ValueError):
            acr.set_antenna_fault(1.5)
    finally:
        rdr.close(2.0)


# -- losing the reader ---------------------------------------------------------------------------
def test_power_off_mid_run_is_reader_lost_then_reopened(own_server):
    acr = VirtualAcr122u(random.Random(3), server=own_server)
    rdr = NfcReader(PATH, timeout=3.0, usb_backend=own_server.url)
    try:
        acr.present(_deck_card("Visa")[0])
        assert rdr.tap(1.0).ok
        acr.set_powered(False)
        assert not own_server.is_exported(acr)  # it left the bus
        started = time.monotonic()
        with pytest.raises(ReaderLost) as err:
            rdr.tap(1.0)
        assert time.monotonic() - started < 3.0
        assert isinstance(err.value, PortLost) and rdr.lost
        with pytest.raises(PortUnavailable):  # nothing on the bus to reopen
            rdr.reopen(2.0)
        acr.set_powered(True)
        rdr.reopen(3.0)
        acr.present(_deck_card("Visa")[0])
        assert rdr.tap(2.0).ok
    finally:
        rdr.close(2.0)


def test_unplugged_mid_run_is_reader_lost(own_server):
    acr = VirtualAcr122u(random.Random(4), server=own_server)
    rdr = NfcReader(PATH, timeout=3.0, usb_backend=own_server.url)
    try:
        own_server.remove(acr)
        started = time.monotonic()
        with pytest.raises(ReaderLost):
            rdr.tap(1.0)
        assert time.monotonic() - started < 3.0
        assert not rdr.probe()
    finally:
        rdr.close(2.0)


def test_a_silent_reader_on_the_bus_is_reader_silent(own_server):
    """Exported by its owner (a hub port that stays powered) but the reader itself is off."""
    acr = VirtualAcr122u(random.Random(6))
    own_server.add(acr)
    acr.set_powered(False)
    assert own_server.is_exported(acr)
    started = time.monotonic()
    with pytest.raises(ReaderSilent) as err:
        NfcReader(PATH, timeout=3.0, usb_backend=own_server.url)
    assert time.monotonic() - started < 2.0
    assert "unpowered" in str(err.value)


def test_no_reader_on_the_server_is_port_unavailable(own_server):
    with pytest.raises(PortUnavailable) as err:
        NfcReader(PATH, timeout=3.0, usb_backend=own_server.url)
    assert not isinstance(err.value, ReaderSilent) and "no USB device" in str(err.value)


def test_local_libusb_backend_keeps_nfcpys_own_transport():
    """``libusb1`` is nfcpy's own USB transport (local devices only): nothing there here."""
    with pytest.raises(PortUnavailable) as err:
        NfcReader("usb:072f:22ff", timeout=3.0, usb_backend="libusb1")
    assert "nfcpy found no reader" in str(err.value)


# -- the USB face ---------------------------------------------------------------------------------
def test_descriptors_through_pyusb_match_the_real_reader(acr, server):
    backend = open_backend(server.url)
    try:
        (dev,) = find_devices(backend, 0x072F, 0x2200)
        assert (dev.idVendor, dev.idProduct, dev.bcdDevice, dev.bDeviceClass) == (0x072F, 0x2200, 0x0207, 0)
        raw = bytes(dev.ctrl_transfer(0x80, 0x06, 0x0100, 0, 18))
        i_man, i_prod, i_ser = struct.unpack_from("<BBB", raw, 14)
        strings = [usb.util.get_string(dev, i) for i in (i_man, i_prod, i_ser)]
        assert strings == ["ACS", "ACR122U PICC Interface", "RR5A0C1D"]
        cfg = dev[0]
        assert (cfg.bmAttributes, cfg.bMaxPower) == (0xA0, 100)
        intf = cfg[(0, 0)]
        assert (intf.bInterfaceClass, intf.bInterfaceSubClass, intf.bInterfaceProtocol) == (0x0B, 0, 0)
        eps = [(ep.bEndpointAddress, usb.util.endpoint_type(ep.bmAttributes), ep.wMaxPacketSize)
               for ep in intf]
        assert eps == [(0x81, usb.util.ENDPOINT_TYPE_INTR, 8), (0x02, usb.util.ENDPOINT_TYPE_BULK, 64),
                       (0x82, usb.util.ENDPOINT_TYPE_BULK, 64)]
        ccid = bytes(intf.extra_descriptors)
        assert ccid == ccid_class_descriptor() and (len(ccid), ccid[1]) == (54, 0x21)
        assert struct.unpack_from("<H", ccid, 2)[0] == 0x0100          # bcdCCID 1.00
        assert struct.unpack_from("<I", ccid, 44)[0] == 271            # dwMaxCCIDMessageLength
        usb.util.dispose_resources(dev)
    finally:
        backend.close()


def test_ccid_messages_nfcpy_never_sends(own_server):
    """IccPowerOn with and without a card, a bad slot, an unknown message type: CCID answers."""
    acr = VirtualAcr122u(random.Random(7), server=own_server)
    backend = open_backend(own_server.url)
    (dev,) = find_usb(PATH, backend)
    transport = PyusbTransport(dev)
    try:
        transport.write(bytes.fromhex("62000000000001000000"))
        answer = transport.read(500)
        assert (answer[0], answer[6], answer[7], answer[8]) == (0x80, 1, 0x42, 0xFE)  # no ICC
        acr.present(Type2Tag())
        transport.write(bytes.fromhex("62000000000002000000"))
        answer = transport.read(500)
        assert answer[0] == 0x80 and answer[7] == 0x00
        atr = bytes(answer[10:])
        assert atr[:2] == b"\x3B\x8F" and _xor(atr[1:]) == 0  # PC/SC part 3 storage card, TCK ok
        transport.write(bytes.fromhex("65000000000100000000"))  # slot 1: there is none
        answer = transport.read(500)
        assert (answer[0], answer[5], answer[7], answer[8]) == (0x81, 1, 0x42, 0x05)
        transport.write(bytes.fromhex("6C000000000003000000"))  # SetParameters: not supported
        answer = transport.read(500)
        assert (answer[0], answer[6], answer[7] & 0xC0, answer[8]) == (0x81, 3, 0x40, 0x00)
        transport.write(bytes.fromhex("6F050000000004000000" "FF00480000"))  # XfrBlock, seq 4
        answer = transport.read(500)
        assert (answer[0], answer[6], bytes(answer[10:])) == (0x80, 4, b"ACR122U207")
        transport.write(bytes.fromhex("6B050000000005000000FF"))  # an Escape in two transfers
        with pytest.raises(OSError):
            transport.read(100)  # the reader waits for the rest
        transport.write(bytes.fromhex("00480000"))
        answer = transport.read(500)
        assert (answer[0], answer[6], bytes(answer[10:])) == (0x83, 5, b"ACR122U207")
    finally:
        transport.close()
        backend.close()


def _xor(data: bytes) -> int:
    out = 0
    for octet in data:
        out ^= octet
    return out


def test_transport_raises_as_nfcpys_own(own_server):
    acr = VirtualAcr122u(random.Random(8), server=own_server)
    backend = open_backend(own_server.url)
    (dev,) = find_usb(PATH, backend)
    transport = PyusbTransport(dev)
    try:
        assert (transport.manufacturer_name, transport.product_name) == ("ACS", "ACR122U PICC Interface")
        started = time.monotonic()
        with pytest.raises(OSError) as err:
            transport.read(100)  # nothing was asked: nothing comes
        assert err.value.errno == errno.ETIMEDOUT and time.monotonic() - started < 1.0
        acr.set_powered(False)
        with pytest.raises(OSError) as err:
            transport.write(bytes.fromhex("6F050000000000000000FF00480000"))
            transport.read(100)
        assert err.value.errno == errno.ENODEV
    finally:
        transport.close()
        transport.close()  # twice is harmless
        backend.close()


def test_nfcpy_usb_paths():
    assert usb_path_match("usb:072f:2200") == {"idVendor": 0x072F, "idProduct": 0x2200}
    assert usb_path_match("usb:072f") == {"idVendor": 0x072F}
    assert usb_path_match("usb:001:002") == {"bus": 1, "address": 2}
    assert usb_path_match("usb") == {}
    assert usb_path_match("tty:USB0:pn532") is None


@pytest.mark.skipif(not os.path.exists(USBIP_TOOL), reason=f"{USBIP_TOOL} (Debian usbip) is not installed")
def test_debian_usbip_tool_lists_the_reader(acr, server):
    result = subprocess.run([USBIP_TOOL, "--tcp-port", str(server.address[1]), "list", "-r", "127.0.0.1"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^\s*(\d+-[\d.]+): .*\((\w{4}):(\w{4})\)", result.stdout, re.M)
    assert (acr.busid, "072f", "2200") in listed
    assert "Chip/SmartCard" in result.stdout


def test_a_malformed_usb_path_is_port_unavailable(own_server):
    with pytest.raises(PortUnavailable) as err:
        NfcReader("usb:zz", timeout=3.0, usb_backend=own_server.url)
    assert "not an nfcpy USB path" in str(err.value)
