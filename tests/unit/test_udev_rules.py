"""The shipped udev rules and those `posbench udev-rules --bench` writes parse as udev rules."""
from __future__ import annotations

import re

import pytest

from posbench.setup.config import parse_bench
from posbench.setup.udev_rules import known_rules, rules_for_bench

MATCH_KEYS = {"SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "KERNELS", "ATTR", "ATTRS", "ENV", "DRIVER", "DRIVERS", "ACTION"}
ASSIGN_KEYS = {"GROUP", "MODE", "OWNER", "ENV", "TAG", "SYMLINK", "RUN"}
PAIR = re.compile(r'(?P<key>[A-Z]+)(\{[A-Za-z_]+\})?(?P<op>==|!=|\+=|:=|=)"[^"]*"')


def problems(text: str) -> list[str]:
    """Lines that are not comma-separated KEY==/KEY= pairs of known udev keys, each rule
    with at least one match and one assignment."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs = [PAIR.fullmatch(p.strip()) for p in line.split(", ")]
        if not all(pairs):
            found.append(f"{number}: not KEY==/KEY= pairs: {line}")
            continue
        ops = [(m["key"], m["op"]) for m in pairs]
        if any(op in ("==", "!=") and key not in MATCH_KEYS or op not in ("==", "!=") and key not in ASSIGN_KEYS
               for key, op in ops):
            found.append(f"{number}: unknown key for its operator: {line}")
        if not any(op == "==" for _, op in ops) or all(op == "==" for _, op in ops):
            found.append(f"{number}: a rule needs a match and an assignment: {line}")
    return found


def test_the_shipped_rules_parse():
    text = known_rules()
    assert problems(text) == []
    assert 'ATTR{idVendor}=="072f", ATTR{idProduct}=="2200"' in text  # the ACR122U
    assert 'GROUP="dialout"' in text and 'GROUP="plugdev"' in text


@pytest.mark.parametrize("line", ['SUBSYSTEM="tty", GROUP="dialout"', 'SUBSYSTEM=="usb" GROUP="plugdev"',
                                  'SUBSYSTEM=="usb", COLOUR="red"', 'SUBSYSTEM=="usb", ATTR{idVendor}=="0801"'])
def test_the_checker_finds_broken_rules(line):
    assert problems(line)


def test_rules_for_a_bench_name_its_usb_ids():
    config = parse_bench({"terminal": {"port": "/dev/ttyUSB0"}, "usb": {"reader": "0801:0002"},
                          "nfc": {"path": "usb:072F:2200"}}, "bench.toml")
    text, missing = rules_for_bench(config)
    assert problems(text) == []
    assert 'ATTR{idVendor}=="0801", ATTR{idProduct}=="0002"' in text
    assert 'ATTR{idVendor}=="072f", ATTR{idProduct}=="2200"' in text


def _usb_rule(usb_id: str) -> str:
    vid, pid = usb_id.split(":")
    return f'ATTR{{idVendor}}=="{vid}", ATTR{{idProduct}}=="{pid}"'


def test_the_shipped_rules_cover_every_reader_profiles_usb_ids():
    from posbench.setup.profile import find_profile, known_profiles
    readers = [p for p in (find_profile(name) for name in known_profiles()) if p.is_reader and p.reader]
    ids = {p.reader.usb for p in readers if p.reader and p.reader.usb}
    assert {"0801:0001", "0801:0002", "072f:2200"} <= ids
    text = known_rules()
    assert all(_usb_rule(usb_id) in text for usb_id in ids)
    assert "pn533_usb and pn533" in text


@pytest.mark.parametrize("profile, usb_id", [("magtek-hid", "0801:0002"), ("magtek-keyboard", "0801:0001")])
def test_a_magstripe_reader_as_the_unit_gets_its_profiles_ids_without_usb_reader(profile, usb_id):
    """bench.toml's [usb] need not name the reader: its reader profile does."""
    config = parse_bench({"unit": {"profile": profile}, "usb": {"backend": "libusb1"}}, "reader.toml")
    text, missing = rules_for_bench(config)
    assert problems(text) == [] and missing == []
    assert text.count(_usb_rule(usb_id)) == 1 and "from its reader profile" in text
    assert "pn533" not in text
    named = parse_bench({"unit": {"profile": profile}, "usb": {"reader": usb_id}}, "reader.toml")
    assert rules_for_bench(named)[0].count(_usb_rule(usb_id)) == 1  # said once when bench.toml repeats it


def test_an_acr122u_as_the_unit_gets_its_rule_and_the_pn533_blacklist():
    config = parse_bench({"unit": {"profile": "acr122u"}, "usb": {"backend": "libusb1"},
                          "nfc": {"path": "usb:072f:2200"}}, "reader.toml")
    text, missing = rules_for_bench(config)
    assert problems(text) == [] and missing == []
    assert text.count(_usb_rule("072f:2200")) == 1
    assert "blacklist pn533_usb\\nblacklist pn533" in text and "sudo modprobe -r pn533_usb pn533" in text


def test_a_pn532_board_as_the_unit_is_its_serial_adapters(monkeypatch):
    from types import SimpleNamespace

    from serial.tools import list_ports
    adapter = SimpleNamespace(device="/dev/ttyUSB0", links=[], vid=0x10C4, pid=0xEA60)
    monkeypatch.setattr(list_ports, "comports", lambda include_links=False: [adapter])
    config = parse_bench({"unit": {"profile": "pn532-uart"}, "nfc": {"path": "tty:USB0:pn532"}}, "reader.toml")
    text, missing = rules_for_bench(config)
    assert problems(text) == [] and missing == []
    assert "# the unit, PN532 board (UART) on /dev/ttyUSB0" in text
    assert 'ATTRS{idVendor}=="10c4", ATTRS{idProduct}=="ea60", GROUP="dialout"' in text
    assert "pn533" not in text and 'SUBSYSTEM=="usb"' not in text
    unplugged = parse_bench({"unit": {"profile": "pn532-uart"}, "nfc": {"path": "/dev/ttyUSB7"}}, "reader.toml")
    assert rules_for_bench(unplugged)[1] == ["the unit, PN532 board (UART) /dev/ttyUSB7"]


def test_a_terminals_bench_with_an_acr122u_is_told_the_blacklist_too():
    config = parse_bench({"terminal": {"port": "/dev/ttyUSB0"}, "nfc": {"path": "usb:072f:2200"}}, "bench.toml")
    assert "blacklist pn533_usb" in rules_for_bench(config)[0]
