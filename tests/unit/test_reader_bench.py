"""The virtual bench whose unit is a card reader (``ReaderBench``), driven by posbench's own drivers
(pyusb over USB/IP, nfcpy on the PN532's pty, the Korad driver on the supply's pty) and by the
control port, as the HIL suite drives it. No test asserts a duration."""
from __future__ import annotations

import time
import tomllib

import pytest
from click.testing import CliRunner

from posbench.cli import EXIT_USAGE, cli
from posbench.core.errors import PortLost, PortUnavailable
from posbench.drivers.actuator.virtual import request as control
from posbench.drivers.nfc.reader import NfcReader
from posbench.drivers.power import KoradSupply
from posbench.drivers.usb.backend import find_devices, open_backend
from posbench.drivers.usb.magstripe import PID_HID, MagstripeReader
from posbench.setup.config import load_bench, parse_bench
from posbench.sim.launcher import VirtualBench
from posbench.sim.reader_bench import ReaderBench, bcd_release, pn532_firmware
from posbench.sim.unit.faults import READER_CAUSES, injectable
from posbench.sim.bench import sim_profile

MAGTEK = (0x0801, PID_HID)


def on_bus(bench: ReaderBench) -> bool:
    assert bench.usb is not None
    return bool(find_devices(open_backend(bench.usb.url), *MAGTEK))


def wait_for(check, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def powered(bench: ReaderBench) -> ReaderBench:
    """The bench once its reader has booted on the supply."""
    assert bench.power is not None and wait_for(lambda: bench.power is not None and bench.power.state == "on")
    return bench


def swipes(bench: ReaderBench, count: int) -> list[bool]:
    """Swipe VISA-T1 ``count`` times through the control port; whether each read clean."""
    assert bench.control and bench.usb
    ok = []
    for _ in range(count):
        assert wait_for(lambda: on_bus(bench))
        reader = MagstripeReader(open_backend(bench.usb.url), pid=PID_HID)
        try:
            assert control(bench.control.address, {"action": "swipe", "card": "VISA-T1"})["swiped"]
            ok.append(reader.read_swipe(3.0).ok)
        finally:
            reader.close()
        time.sleep(0.6)  # past the swipe's load and any reset it caused
    return ok


def test_the_cli_writes_a_bench_file_without_a_terminal():
    with VirtualBench(seed=5, profile="magtek-hid") as path:
        config = load_bench(path)
        assert config.terminal is None and config.host is None
        assert config.usb is not None and config.usb.backend.startswith("usbip://127.0.0.1:")
        assert str(config.usb.reader) == "0801:0002" and config.unit.profile == "magtek-hid"
        assert config.power is not None and config.power.driver == "korad"


def test_the_usb_reader_follows_the_supply_and_reads_a_swipe():
    with ReaderBench("magtek-hid", seed=5) as bench:
        assert wait_for(lambda: on_bus(bench))
        assert bench.supply is not None
        supply = KoradSupply(bench.supply.path, timeout=0.3).open()
        try:
            assert 0.02 < supply.amps() < 0.1  # a swipe reader idles at tens of mA
            supply.off()
            assert wait_for(lambda: not on_bus(bench))
            supply.on()
            assert wait_for(lambda: on_bus(bench))
        finally:
            supply.close()
        assert swipes(bench, 2) == [True, True]
        info = MagstripeReader(open_backend(bench.usb.url), pid=PID_HID)
        try:
            assert info.info()["firmware"] == "1.50" and info.info()["serial"] == bench.serial
        finally:
            info.close()


@pytest.mark.parametrize("cause", READER_CAUSES["usb_magstripe"])
def test_each_magstripe_cause_shows_as_it_says(cause):
    with ReaderBench("magtek-hid", faults={cause: 1.0}, seed=11) as bench:
        assert wait_for(lambda: on_bus(bench))
        assert bench.power is not None
        if cause == "msr_head":
            assert swipes(bench, 5).count(False) >= 3  # bit errors; it stays on the bus
            assert on_bus(bench) and bench.dropper is not None and bench.dropper.drops == 0
        elif cause == "pcb_intermittent":
            assert wait_for(lambda: bench.dropper is not None and bench.dropper.drops >= 2)
            assert not [e for e in bench.power.events if e[1] in ("power_off", "brownout")]  # steady supply
        elif cause == "power_supply":
            for _ in range(4):  # each swipe loads the weak supply path
                if on_bus(bench):
                    control(bench.control.address, {"action": "swipe", "card": "VISA-T1"})
                time.sleep(0.8)
            assert "brownout" in [e[1] for e in bench.power.events]
        else:
            dev = MagstripeReader(open_backend(bench.usb.url), pid=PID_HID)
            try:
                assert dev.info()["firmware"] == "1.30"
            finally:
                dev.close()
            assert "1.30" not in sim_profile("magtek-hid").components["firmware"]


def test_the_pn532_board_answers_nfcpy_and_reads_a_tap():
    with ReaderBench("pn532-uart", seed=5) as bench:
        powered(bench)
        assert bench.nfc is not None and bench.control is not None
        reader = NfcReader(bench.nfc.path, timeout=3.0)
        try:
            assert "PN532v1.6" in reader.describe()
            control(bench.control.address, {"action": "tap", "card": "VISA-T1"})
            result = reader.tap(3.0)
            assert result.ok and result.aids, result
            assert bench.power is not None and bench.power.current() > 0.1  # the RF field's draw
        finally:
            reader.close()


@pytest.mark.parametrize("cause", READER_CAUSES["nfc"])
def test_each_pn532_cause_shows_as_it_says(cause):
    with ReaderBench("pn532-uart", faults={cause: 1.0}, seed=11) as bench:
        powered(bench)
        assert bench.nfc is not None and bench.power is not None and bench.control is not None
        if cause == "firmware_driver":
            reader = NfcReader(bench.nfc.path, timeout=3.0)
            try:
                assert "PN532v1.4" in reader.describe()
            finally:
                reader.close()
        elif cause == "nfc_antenna":
            reader = NfcReader(bench.nfc.path, timeout=3.0)
            try:
                results = []
                for _ in range(4):
                    control(bench.control.address, {"action": "tap", "card": "VISA-T1"})
                    results.append(reader.tap(1.0).ok)
                    control(bench.control.address, {"action": "remove"})
                assert results.count(False) >= 2
            finally:
                reader.close()
        elif cause == "pcb_intermittent":
            assert wait_for(lambda: bench.dropper is not None and bench.dropper.drops >= 2)
            failed = 0
            for _ in range(6):  # nfcpy's traffic crosses the cracked joint
                try:
                    NfcReader(bench.nfc.path, timeout=1.0).close()
                except (PortUnavailable, PortLost):
                    failed += 1
            assert getattr(bench.nfc.port, "corrupted", 0) > 0 or failed, "no frame damaged, no open failed"
            assert not [e for e in bench.power.events if e[1] in ("power_off", "brownout")]
        else:
            for _ in range(4):
                control(bench.control.address, {"action": "tap", "card": "VISA-T1"})
                time.sleep(0.6)
                control(bench.control.address, {"action": "remove"})
            assert "brownout" in [e[1] for e in bench.power.events]


def test_the_acr122u_is_found_by_nfcpy_over_usbip_follows_the_supply_and_reads_a_tap(tmp_path):
    with ReaderBench("acr122u", seed=5) as bench:
        powered(bench)
        config = parse_bench(tomllib.loads(bench.bench_toml()), tmp_path / "bench.toml")
        assert config.terminal is None and config.nfc is not None and config.nfc.path == "usb:072f:2200"
        assert config.usb is not None and bench.control is not None and bench.supply is not None
        reader = NfcReader(config.nfc.path, timeout=3.0, usb_backend=config.usb.backend)
        try:
            assert "ACR122U" in reader.describe()
            control(bench.control.address, {"action": "tap", "card": "VISA-T1"})
            result = reader.tap(3.0)
            assert result.ok and result.aids, result
        finally:
            reader.close()
        backend = open_backend(config.usb.backend)
        supply = KoradSupply(bench.supply.path, timeout=0.3).open()
        try:
            supply.off()
            assert wait_for(lambda: not find_devices(backend, 0x072F, 0x2200))  # off the bus, unpowered
            supply.on()
            assert wait_for(lambda: bool(find_devices(backend, 0x072F, 0x2200)))
        finally:
            supply.close()


def test_the_release_encodings():
    assert bcd_release("1.50") == 0x0150 and bcd_release("2.07") == 0x0207
    assert pn532_firmware("1.6") == bytes.fromhex("32010607")


def run(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="posbench")


def test_reader_usage_errors(tmp_path):
    out = str(tmp_path / "bench.toml")
    result = run("sim", "--profile", "magtek-hid", "--protocol", "zvt", "--write-bench", out)
    assert result.exit_code == EXIT_USAGE and "--protocol zvt" in result.output and "magtek-hid" in result.output
    result = run("sim", "--profile", "magtek-hid", "--fault", "chip_contacts", "--write-bench", out)
    assert result.exit_code == EXIT_USAGE and "msr_head" in result.output, result.output
    result = run("triage", "--virtual", "--profile", "pn532-uart", "--fault", "msr_head")
    assert result.exit_code == EXIT_USAGE and "nfc_antenna" in result.output, result.output
    result = run("sim", "--profile", "acr122u", "--protocol", "concert", "--write-bench", out)
    assert result.exit_code == EXIT_USAGE and "acr122u" in result.output
    assert injectable(sim_profile("magtek-hid")) == READER_CAUSES["usb_magstripe"]
