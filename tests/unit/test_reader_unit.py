"""A card reader that is itself the unit (issue 25): its profile, a bench file without
[terminal], the reader as the unit (``ReaderUnit``) over USB/IP, the tests that apply to it, and
a verdict in a reader's words."""
from __future__ import annotations

import random
import time
from datetime import datetime, timezone

import pytest

from posbench.core.errors import ConfigError, UnitNotResponding
from posbench.diagnosis.ranking import verdict
from posbench.drivers.reader_unit import ReaderUnit
from posbench.run.profile_check import check_profile, hil_tests
from posbench.setup.config import parse_bench
from posbench.setup.profile import Profile, find_profile
from posbench.sim.devices.magstripe import VirtualMagstripeReader
from posbench.sim.devices.usbip_server import UsbipServer
from posbench.spec.evidence import Evidence, Recorder, RunRecord
from posbench.spec.measures import bind, declaration
from posbench.spec.taxonomy import READER_CAUSES

READERS = ("magtek-hid", "magtek-keyboard", "acr122u", "pn532-uart")


@pytest.mark.parametrize("name", READERS)
def test_each_reader_profile_loads_as_a_reader(name):
    profile = find_profile(name)
    assert profile.is_reader and profile.reader is not None and not profile.protocols
    path = "swipe" if profile.reader.reads == "usb_magstripe" else "tap"
    assert getattr(profile.read_paths, path) is not None and "firmware" in profile.components


@pytest.mark.parametrize("change, error", [
    ({"reader": None}, "needs a \\[reader\\] table"),
    ({"protocols": ["zvt"]}, "speaks no ECR protocol"),
    ({"reader": {"interface": "usb-hid"}}, "names its USB identity"),
    ({"reader": {"interface": "uart", "usb": "0801:0002"}}, "has no USB identity"),
    ({"kind": "terminal"}, "add kind = \"reader\""),
])
def test_a_wrong_reader_profile_says_what_is_wrong(change, error):
    data = find_profile("magtek-hid").model_dump(exclude_none=False)
    data.update(change)
    if data.get("reader") is None:
        data.pop("reader")
    with pytest.raises(ValueError, match=error):
        Profile.model_validate(data)


def test_a_terminal_profile_still_needs_its_sale_amounts():
    data = find_profile("pt100").model_dump()
    data["tests"]["sale_amounts"] = []
    with pytest.raises(ValueError, match="sale_amounts"):
        Profile.model_validate(data)


def test_a_bench_without_terminal_is_a_reader_bench_or_a_config_error(tmp_path):
    reader = parse_bench({"unit": {"profile": "magtek-hid"}, "usb": {"backend": "usbip://127.0.0.1:3240"}},
                         tmp_path / "bench.toml")
    assert reader.terminal is None
    with pytest.raises(ConfigError, match="terminal.*required but missing.*payment terminal"):
        parse_bench({"unit": {"profile": "zvt-generic"}}, tmp_path / "bench.toml")
    with pytest.raises(ConfigError, match="terminal.*no \\[unit\\] profile"):
        parse_bench({"usb": {"backend": "libusb1"}}, tmp_path / "bench.toml")
    with pytest.raises(ConfigError, match="nfc.*required but missing.*ACS ACR122U"):
        parse_bench({"unit": {"profile": "acr122u"}}, tmp_path / "bench.toml")


@pytest.fixture
def served():
    """A MagTek HID reader on a USB/IP server, as the virtual bench serves it."""
    server = UsbipServer()
    device = VirtualMagstripeReader("hid", rng=random.Random(1), serial="MT000042")
    server.add(device)
    unit = ReaderUnit("usb-hid", "MagTek USB Swipe Reader (HID)", usb_backend=server.url,
                      usb_id=(0x0801, 0x0002), boot_timeout=2.0)
    try:
        yield server, device, unit
    finally:
        unit.close()
        assert server.stop(timeout=3.0)


def test_a_usb_reader_is_the_unit_ready_on_the_bus_and_identified_by_its_descriptor(served):
    server, device, unit = served
    assert unit.wait_ready(2.0) < 2.0 and unit.where() is not None
    who = unit.identify()
    assert (who.model, who.serial, who.firmware, who.components) == (
        "USB Swipe Reader", "MT000042", "1.50", {"firmware": "1.50"})
    assert unit.usb_reader().connect(2.0) >= 0  # the read tests' driver, on the same device


def test_a_usb_reader_off_the_bus_does_not_answer(served):
    server, device, unit = served
    server.remove(device)
    assert unit.where() is None
    started = time.monotonic()
    with pytest.raises(UnitNotResponding, match="not on the bus after 0.5 s"):
        unit.wait_ready(0.5)
    assert time.monotonic() - started < 2.0
    with pytest.raises(UnitNotResponding, match="not on the bus"):
        unit.identify()


def test_only_the_tests_that_apply_to_a_reader_bind_to_its_profile():
    profile = find_profile("magtek-hid")
    applying = {test.split("::")[1].split("[")[0] for test, decl, _ in hil_tests() if decl.applies_to(profile)}
    assert applying == {"test_identity", "test_swipe", "test_tap", "test_load", "test_usb_stable",
                        "test_cold_boot", "test_cycle_soak"}
    check = check_profile(profile)  # no ConfigError for the terminal's limits a reader has not
    assert all("test_code01" not in key for key in check.judged + list(check.not_judged))


def test_a_reader_binds_only_what_it_can_give():
    from posbench.hil import test_identity, test_power
    profile = find_profile("pn532-uart")
    assert set(bind(declaration(test_power.test_cycle_soak), profile, {})) == {
        "soak_cycles_missed", "failed_boots", "slow_boots"}  # no journal, no configuration checksum
    assert set(bind(declaration(test_power.test_cold_boot), profile, {})) == {"cold_boot_s"}  # no USB
    assert set(bind(declaration(test_identity.test_identity), profile, {})) == {"component_firmware_allowed"}


def _reader_verdict(cause: str):
    run = RunRecord(unit={"serial": "MT000042", "model": "USB Swipe Reader", "kind": "reader"})
    Recorder(run, "t").add(Evidence.of(cause, "decisive", "x"))
    return verdict(run, datetime.now(timezone.utc), 1.0)


def test_a_readers_verdict_names_its_cause_as_a_readers_and_says_code_01_does_not_apply():
    doc = _reader_verdict("power_supply")
    assert doc.verdict == "fault" and doc.causes[0].name == "Reader power (USB port or supply)" and "hub port" in doc.causes[0].action
    assert doc.wire()["unit"]["kind"] == "reader"
    assert doc.code01_meaning.startswith("code 01 does not apply to a reader alone")
    assert set(READER_CAUSES) == {"msr_head", "nfc_antenna", "pcb_intermittent", "power_supply", "firmware_driver"}


def test_a_terminals_verdict_keeps_its_words_and_its_json():
    run = RunRecord(unit={"serial": "1", "model": "PT100"})
    Recorder(run, "t").add(Evidence.of("power_supply", "decisive", "x"))
    doc = verdict(run, datetime.now(timezone.utc), 1.0)
    assert doc.causes[0].name == "Power supply" and "kind" not in doc.wire()["unit"]
