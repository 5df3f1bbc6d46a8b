"""The bench.toml `posbench discover --write` composes: valid, commented where the technician must
fill in, never overwriting; on a virtual bench, what no probe finds is taken from the sim's own
description (and only that)."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from posbench.setup.config import UsbId, load_bench
from posbench.setup.device_dir import Announcer, entries
from posbench.discover.nfc import NfcScan
from posbench.discover.probes import PortResult, TcpResult, Tried
from posbench.drivers.probing import Answer, LineSettings
from posbench.discover.survey import Address, SerialPort, Survey
from posbench.discover.usb import Found, Kind, Scan
from posbench.discover.writer import compose, toml_value, validate, write
from posbench.core.errors import ConfigError

NOW = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
AGENT = Answer("agent", "terminal", "answered ID: PT100 serial PT100-0000001 firmware 3.4.2", LineSettings(9600),
               {"protocol": "agent", "port": "/dev/serial/by-id/usb-FTDI-if00", "baudrate": 9600},
               {"model": "PT100", "serial": "PT100-0000001"})
KORAD = Answer("korad", "supply", "answered *IDN?: KORAD KA3005P V5.5", LineSettings(9600),
               {"driver": "korad", "port": "/dev/ttyACM0", "channel": 1})
PN532 = Answer("pn532", "nfc reader", "answered GetFirmwareVersion: PN532v1.6", LineSettings(115200),
               {"path": "tty:USB1:pn532"})
READER = Found("libusb1", UsbId(0x0801, 0x0002), Kind("magstripe reader", "MagTek Mini Swipe Reader (HID)", "hid",
                                                      "vid:pid"), "bus 1 port 2")
HUB = Found("libusb1", UsbId(0x2109, 0x2811), Kind("hub", "USB hub 2109:2811", None, "class"), "bus 1 port 1",
            "switches port power one by one (4 ports)", per_port_power=True)


def _survey(*ports: tuple[SerialPort, PortResult], usb: tuple[Found, ...] = (), tcp=()) -> Survey:
    return Survey(True, [p for p, _ in ports], {p.path: r for p, r in ports}, list(tcp),
                  [(Scan("libusb1", list(usb), seen=len(usb)), None)], NfcScan())


def _real_bench() -> Survey:
    return _survey((SerialPort(AGENT.section["port"]), PortResult(AGENT.section["port"], AGENT)),
                   (SerialPort("/dev/ttyACM0", adapter=UsbId(0x0416, 0x5011)), PortResult("/dev/ttyACM0", KORAD)),
                   (SerialPort("/dev/ttyUSB1"), PortResult("/dev/ttyUSB1", PN532)),
                   usb=(HUB, READER))


def test_a_real_bench_gives_a_valid_file_with_what_to_fill_in(tmp_path):
    plan = compose(_real_bench(), NOW)
    assert plan is not None and plan.origin is None
    path = tmp_path / "bench.toml"
    write(path, plan.text)
    config = load_bench(path)
    assert config.terminal.protocol == "agent" and config.terminal.port == AGENT.section["port"]
    assert config.terminal.baudrate == 9600 and config.unit.model == "PT100"
    assert config.power is not None and (config.power.driver, config.power.port) == ("korad", "/dev/ttyACM0")
    assert config.usb is not None and config.usb.reader == UsbId(0x0801, 0x0002) and config.usb.backend == "libusb1"
    assert config.nfc is not None and config.nfc.path == "tty:USB1:pn532"
    assert config.host is None and config.actuator.kind == "manual" and not config.bench.virtual
    assert config.unit.serial is None  # a real bench sees many units: the one found now is a comment
    assert '# serial = "PT100-0000001"  # the unit on the bench now' in path.read_text()
    text = path.read_text()
    assert "# [host]" in text and "FILL IN: where the acquirer host simulator listens" in text
    assert "# [network]" in text and "answered *IDN?" in text and "2026-01-02 03:04 UTC" in text
    assert plan.used == ["terminal (agent) at /dev/serial/by-id/usb-FTDI-if00", "supply at /dev/ttyACM0",
                         "reader 0801:0002 on libusb1", "nfc reader at /dev/ttyUSB1"]


def test_writing_never_overwrites(tmp_path):
    plan = compose(_real_bench(), NOW)
    assert plan is not None
    path = tmp_path / "bench.toml"
    path.write_text("# the technician's own\n")
    with pytest.raises(FileExistsError):
        write(path, plan.text)
    assert path.read_text() == "# the technician's own\n"


def test_an_invalid_composition_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "bench.toml"
    with pytest.raises(ConfigError, match="terminal"):
        write(path, '[terminal]\nprotocol = "agent"\n')  # no port: bench.toml refuses it
    with pytest.raises(ConfigError, match="invalid TOML"):
        validate("[terminal\n", path)
    assert not path.exists()


def test_no_terminal_no_file():
    survey = _survey((SerialPort("/dev/ttyACM0"), PortResult("/dev/ttyACM0", KORAD)),
                     (SerialPort("/dev/ttyS0"), PortResult("/dev/ttyS0", tried=[Tried("agent", "ID", "9600 8N1", "x")])))
    assert compose(survey, NOW) is None


def test_a_model_the_terminal_does_not_report_is_left_to_fill_in_and_the_hub_switches_power(tmp_path):
    zvt = Answer("zvt", "terminal", "answered the status enquiry 84 83 (function not possible)", None,
                 {"protocol": "zvt", "address": "10.0.0.5:20007"})
    survey = _survey(usb=(HUB,), tcp=[(Address("10.0.0.5"), [TcpResult("10.0.0.5:20007", zvt)])])
    plan = compose(survey, NOW)
    assert plan is not None
    write(tmp_path / "b.toml", plan.text)
    config = load_bench(tmp_path / "b.toml")
    assert config.unit.model is None and config.terminal.address == "10.0.0.5:20007"
    assert config.power is not None and config.power.driver == "usb-hub" and config.power.hub == UsbId(0x2109, 0x2811)
    assert config.usb is not None and config.usb.backend == "libusb1"
    assert '# model = "..."  # FILL IN' in plan.text and "FILL IN: the hub port the unit" in plan.text
    assert "[usb] no known card reader" not in plan.text and config.usb.reader is None


def test_a_silent_ch340_is_offered_as_the_relay_in_comments_only():
    ch340 = SerialPort("/dev/ttyUSB3", adapter=UsbId(0x1A86, 0x7523))
    survey = _survey((SerialPort(AGENT.section["port"]), PortResult(AGENT.section["port"], AGENT)),
                     (ch340, PortResult(ch340.path, tried=[Tried("agent", "ID", "9600 8N1", "silence")])))
    plan = compose(survey, NOW)
    assert plan is not None
    assert '# driver = "lcus-relay"  # FILL IN if the LCUS relay' in plan.text and '# port = "/dev/ttyUSB3"' in plan.text
    assert "power" not in tomllib.loads(plan.text)


def test_toml_values_escape_what_toml_wants_escaped():
    text = 'k1 = ' + toml_value('a "b" \\ \x7f\n') + '\nk2 = ' + toml_value(["x", 1, True, 1.5])
    assert tomllib.loads(text) == {"k1": 'a "b" \\ \x7f\n', "k2": ["x", 1, True, 1.5]}


def test_a_virtual_bench_lends_only_what_no_probe_finds(tmp_path):
    description = tmp_path / "sim-bench.toml"
    description.write_text(
        '[bench]\nname = "virtual"\nvirtual = true\n[unit]\nmodel = "PT100"\nserial = "WRONG"\n'
        '[terminal]\nport = "/dev/pts/999"\nbaudrate = 115200\nreply_timeout = 1.0\nsale_timeout = 5.0\n'
        '[host]\naddress = "127.0.0.1:8583"\nlog = "/tmp/host.jsonl"\n'
        '[usb]\nbackend = "usbip://127.0.0.1:1"\nreader = "0801:0001"\n[nfc]\npath = "/dev/pts/998"\n'
        '[power]\ndriver = "korad"\nport = "/dev/pts/997"\n'
        '[actuator]\nkind = "virtual"\naddress = "127.0.0.1:9"\n[sim]\npid = 1\nseed = 7\nfaults = []\n'
        'control = "127.0.0.1:9"\n')
    root = tmp_path / "devices"
    announcer = Announcer(root)
    announcer.description(description)
    zvt = Answer("zvt", "terminal", "answered the status enquiry 80 00: serial 1000000123", LineSettings(9600, stopbits=2),
                 {"protocol": "zvt", "port": "/dev/pts/5", "baudrate": 9600}, {"serial": "1000000123"})
    me = os.getpid()
    survey = Survey(True, [SerialPort("/dev/pts/5", origin=me), SerialPort("/dev/ttyACM0")],
                    {"/dev/pts/5": PortResult("/dev/pts/5", zvt), "/dev/ttyACM0": PortResult("/dev/ttyACM0", KORAD)},
                    [], [(Scan("libusb1"), None)], NfcScan())
    plan = compose(survey, NOW, root)
    announcer.remove()
    assert plan is not None and plan.origin == me
    config = tomllib.loads(plan.text)
    assert config["terminal"] == {"protocol": "zvt", "port": "/dev/pts/5", "baudrate": 9600, "reply_timeout": 1.0,
                                  "sale_timeout": 5.0}
    assert config["unit"] == {"model": "PT100", "serial": "1000000123"}
    assert config["host"] == {"address": "127.0.0.1:8583", "log": "/tmp/host.jsonl"}
    assert config["actuator"]["kind"] == "virtual" and config["sim"]["seed"] == 7 and config["bench"]["virtual"]
    # devices come from probing only: the real supply beside it is not the virtual bench's, and
    # the description's own [usb], [nfc], [power] are never read
    assert "usb" not in config and "nfc" not in config and "power" not in config
    assert f"# [host] from the running virtual bench's own description (pid {me})" in plan.text


def test_announced_entries_of_a_process_that_is_gone_are_ignored(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    gone = Announcer(tmp_path, pid=int(dead.stdout))
    gone.tcp("127.0.0.1", 20007)
    alive = Announcer(tmp_path)
    alive.tcp("127.0.0.1", 20008)
    alive.usbip("usbip://127.0.0.1:3240")
    master, slave = os.openpty()
    try:
        link = alive.serial(os.ttyname(slave))
        assert [e.value for e in entries("tcp", tmp_path)] == ["127.0.0.1:20008"]
        assert [(e.path, e.value) for e in entries("serial", tmp_path)] == [(link, os.ttyname(slave))]
        assert [e.value for e in entries("usbip", tmp_path)] == ["usbip://127.0.0.1:3240"]
    finally:
        os.close(master)
        os.close(slave)
    assert [p.name for p in Path(tmp_path, "tcp").iterdir()] == [f"sim{os.getpid()}-0"]  # the dead one's swept
    alive.remove()
    assert entries("tcp", tmp_path) == [] and not any(Path(tmp_path, "serial").iterdir())


def test_the_report_says_per_device_class_what_answered_and_what_was_tried():
    from posbench.discover.report import lines
    survey = _real_bench()
    survey.ports.append(SerialPort("/dev/ttyS0"))
    survey.results["/dev/ttyS0"] = PortResult("/dev/ttyS0", tried=[Tried("agent", "ID", "9600 8N1", "silence"),
                                                                  Tried("agent", "ID", "115200 8N1", "silence")])
    survey.ports.append(SerialPort("/dev/ttyUSB9"))
    survey.results["/dev/ttyUSB9"] = PortResult("/dev/ttyUSB9", problem="permission denied")
    survey.usb.append((Scan("usbip://192.0.2.1:3240", problem="connection refused"), None))
    text = "\n".join(lines(survey))
    assert "    terminal: agent at 9600 8N1, answered ID: PT100" in text
    assert "    supply: korad at 9600 8N1, answered *IDN?" in text
    assert "    nothing answered; tried agent (ID) at 9600 8N1, 115200 8N1" in text
    assert "  /dev/ttyUSB9\n    cannot be opened: permission denied" in text
    assert "  0801:0002  magstripe reader: MagTek Mini Swipe Reader (HID) (posbench's driver: hid), by vid:pid" in text
    assert "USB (usbip://192.0.2.1:3240): cannot enumerate: connection refused" in text
    assert "NFC readers on USB (nfcpy): none" in text
