"""A card reader as the unit in `posbench discover --write`: with no terminal, the first reader a
reader profile matches (by its profile's [reader] usb, or a PN532 on a serial port) is written
as the unit, and the file loads; other readers are listed with the profile each would take; a
reader no profile describes gets no guess; a terminal found keeps today's terminal bench."""
from __future__ import annotations

import os
import tomllib
from datetime import datetime, timezone

import pytest

from posbench.discover.nfc import NfcFound, NfcScan
from posbench.discover.probes import PortResult
from posbench.discover.readers import found_readers, reader_profiles
from posbench.discover.report import lines
from posbench.discover.survey import SerialPort, Survey
from posbench.discover.usb import Found, Kind, Scan, classify
from posbench.discover.writer import compose, write
from posbench.drivers.probing import Answer, LineSettings
from posbench.setup.config import UsbId, load_bench

NOW = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
KORAD = Answer("korad", "supply", "answered *IDN?: KORAD KA3005P V5.5", LineSettings(9600),
               {"driver": "korad", "port": "/dev/ttyACM0", "channel": 1})
PN532 = Answer("pn532", "nfc reader", "answered GetFirmwareVersion: PN532v1.6", LineSettings(115200),
               {"path": "tty:USB1:pn532"})
AGENT = Answer("agent", "terminal", "answered ID: PT100 serial PT100-0000001 firmware 3.4.2", LineSettings(9600),
               {"protocol": "agent", "port": "/dev/ttyUSB0", "baudrate": 9600}, {"model": "PT100"})
HUB = Found("libusb1", UsbId(0x2109, 0x2811), Kind("hub", "USB hub 2109:2811", None, "class"), "bus 1 port 1",
            "switches port power one by one (4 ports)", per_port_power=True)


def usb_reader(vid: int, pid: int, serial: str = "", backend: str = "libusb1") -> Found:
    """A reader as the USB scan finds it (its kind from the scan's own classification)."""
    usb_id = UsbId(vid, pid)
    kind = classify(usb_id, 0, ((0x03, 0, 0),))
    assert kind is not None
    return Found(backend, usb_id, kind, "bus 1 port 2", serial=serial)


MAGTEK_HID = usb_reader(0x0801, 0x0002, "B0A1C2D3")
MAGTEK_KEYBOARD = usb_reader(0x0801, 0x0001)
ACR122U = usb_reader(0x072F, 0x2200)
IDTECH = usb_reader(0x0ACD, 0x2030)


def survey(*ports: tuple[str, Answer], usb: tuple[Found, ...] = (), nfc: tuple[str, ...] = (),
           origin: int | None = None) -> Survey:
    found = Survey(True, [SerialPort(p, origin=origin) for p, _ in ports],
                   {p: PortResult(p, a) for p, a in ports}, [], [(Scan("libusb1", list(usb), len(usb)), origin)])
    found.nfc = NfcScan([NfcFound(path, "opened by nfcpy: ACS ACR122U PN532v1.6") for path in nfc])
    return found


def written(tmp_path, found: Survey):
    plan = compose(found, NOW)
    assert plan is not None
    path = tmp_path / "reader.toml"
    write(path, plan.text)
    return plan, load_bench(path), tomllib.loads(path.read_text())


@pytest.mark.parametrize("reader, profile", [(MAGTEK_HID, "magtek-hid"), (MAGTEK_KEYBOARD, "magtek-keyboard")])
def test_a_magtek_alone_is_the_unit_on_its_usb(tmp_path, reader, profile):
    plan, config, data = written(tmp_path, survey(usb=(reader,)))
    assert config.terminal is None and "terminal" not in data
    assert config.unit.profile == profile and config.unit.model == reader_profiles()[profile].model
    assert config.usb is not None and config.usb.backend == "libusb1" and config.usb.reader == reader.usb_id
    assert config.nfc is None and config.actuator.kind == "manual" and config.host is None
    assert f'profile = "{profile}"  # the reader profile of its USB id {reader.usb_id}' in plan.text
    assert plan.used == [f"reader {reader.kind.name} at {reader.usb_id} on libusb1, bus 1 port 2 (profile {profile})"]


def test_the_serial_from_the_descriptor_is_offered_on_a_real_bench_and_set_on_a_virtual_one(tmp_path):
    plan, config, _ = written(tmp_path, survey(usb=(MAGTEK_HID,)))
    assert config.unit.serial is None  # a real bench sees many readers: pinned only when uncommented
    assert '# serial = "B0A1C2D3"  # from its USB descriptor' in plan.text
    virtual = compose(survey(usb=(MAGTEK_HID,), origin=os.getpid()), NOW)
    assert virtual is not None and tomllib.loads(virtual.text)["unit"]["serial"] == "B0A1C2D3"
    (tmp_path / "keyboard").mkdir()
    plan, _, _ = written(tmp_path / "keyboard", survey(usb=(MAGTEK_KEYBOARD,)))
    assert "serial" not in plan.text.split("[unit]")[1].split("[usb]")[0]  # it has no serial string


def test_an_acr122u_gets_its_usb_backend_and_its_nfc_path_once(tmp_path):
    # found by the USB scan and by nfcpy's own search: one reader, not two
    plan, config, data = written(tmp_path, survey(usb=(ACR122U,), nfc=("usb:072f:2200",)))
    assert config.unit.profile == "acr122u" and config.terminal is None
    assert config.nfc is not None and config.nfc.path == "usb:072f:2200"
    assert data["usb"] == {"backend": "libusb1"}  # no magstripe reader for [usb] reader
    assert plan.left == []


def test_an_acr122u_only_nfcpy_found_still_is_the_unit(tmp_path):
    found = survey(nfc=("usb:072f:2200",))
    found.usb = [(Scan("libusb1", problem="no libusb-1.0"), None)]
    _, config, _ = written(tmp_path, found)
    assert config.unit.profile == "acr122u" and config.nfc is not None and config.nfc.path == "usb:072f:2200"
    assert config.usb is not None and config.usb.backend == "libusb1"


def test_a_pn532_on_a_serial_port_with_a_supply(tmp_path):
    plan, config, _ = written(tmp_path, survey(("/dev/ttyACM0", KORAD), ("/dev/ttyUSB1", PN532)))
    assert config.unit.profile == "pn532-uart" and config.unit.serial is None
    assert config.nfc is not None and config.nfc.path == "tty:USB1:pn532" and config.usb is None
    assert config.power is not None and (config.power.driver, config.power.port) == ("korad", "/dev/ttyACM0")
    assert "supply at /dev/ttyACM0" in plan.used


def test_a_hub_switching_port_power_powers_a_usb_reader(tmp_path):
    _, config, _ = written(tmp_path, survey(usb=(HUB, MAGTEK_HID)))
    assert config.power is not None and config.power.driver == "usb-hub" and config.power.hub == HUB.usb_id


def test_several_readers_the_first_is_written_the_others_listed_with_their_profile(tmp_path):
    found = survey(("/dev/ttyUSB1", PN532), usb=(IDTECH, MAGTEK_HID, ACR122U))
    plan, config, _ = written(tmp_path, found)
    assert config.unit.profile == "magtek-hid"  # the ID TECH before it has no profile
    assert plan.left == [
        "reader ID TECH ValueMag Magnetic Stripe Reader at 0acd:2030 on libusb1, bus 1 port 2: no reader profile "
        "matches it (posbench has: acr122u, magtek-hid, magtek-keyboard, pn532-uart)",
        "reader ACS ACR122U (PN533 inside) at 072f:2200 on libusb1, bus 1 port 2: profile acr122u",
        "reader PN532 on a serial port at /dev/ttyUSB1: profile pn532-uart"]
    assert "# also found: ACS ACR122U (PN533 inside) at 072f:2200 on libusb1, bus 1 port 2: profile acr122u" \
        in plan.text
    said = "\n".join(lines(found))
    assert "Card readers (no terminal answered: a reader is the unit)" in said
    assert "  MagTek Mini Swipe Reader (HID) at 0801:0002 on libusb1, bus 1 port 2: profile magtek-hid" in said


def test_a_reader_no_profile_describes_gets_no_guess():
    found = survey(usb=(IDTECH,))
    assert compose(found, NOW) is None
    assert [r.name for r in found_readers(found)] == ["ID TECH ValueMag Magnetic Stripe Reader"]
    assert any("ID TECH ValueMag" in line and "no reader profile matches it" in line for line in lines(found))


def test_a_terminal_found_keeps_the_terminal_bench_and_its_readers_are_the_benchs(tmp_path):
    plan, config, data = written(tmp_path, survey(("/dev/ttyUSB0", AGENT), ("/dev/ttyUSB1", PN532),
                                                  usb=(MAGTEK_HID,)))
    assert config.terminal is not None and config.terminal.protocol == "agent" and config.unit.model == "PT100"
    assert "profile" not in data["unit"]  # the unit is the terminal, not a reader
    assert config.usb is not None and config.usb.reader == MAGTEK_HID.usb_id
    assert config.nfc is not None and config.nfc.path == "tty:USB1:pn532"
    assert not any("Card readers" in line for line in lines(survey(("/dev/ttyUSB0", AGENT), usb=(MAGTEK_HID,))))


def test_every_reader_profile_is_matched_by_its_own_usb_id_and_nothing_else():
    """The profiles are the table: a device with a profile's [reader] usb takes that profile."""
    profiles = reader_profiles()
    assert {"magtek-hid", "magtek-keyboard", "acr122u", "pn532-uart"} <= set(profiles)
    for name, profile in profiles.items():
        assert profile.reader is not None
        if profile.reader.usb is None:
            continue
        vid, pid = (int(part, 16) for part in profile.reader.usb.split(":"))
        readers = found_readers(survey(usb=(usb_reader(vid, pid),)))
        assert [r.profile(profiles) for r in readers] == [name]
    assert found_readers(survey(usb=(usb_reader(0x0801, 0x0003),)))[0].profile(profiles) is None
