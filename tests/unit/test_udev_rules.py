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
