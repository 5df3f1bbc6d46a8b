"""`posbench discover`: next to a running `posbench sim`, every virtual device is found by probing
it, and the bench.toml written from that triages like the sim's own; next to nothing it says what
it tried and writes nothing."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from .conftest import posbench, start_sim, stop_sim, triage

DEVICES = ("terminal", "usb", "nfc", "power")


@pytest.fixture(autouse=True)
def own_device_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's sims announce their devices, and discover looks, in a directory of its own (other
    tests' sims run in parallel)."""
    root = tmp_path / "devices"
    monkeypatch.setenv("POSBENCH_DEVICE_DIR", str(root))
    return root


def _discover_next_to_sim(tmp_path: Path, protocol: str) -> tuple[dict, dict, str, Path]:
    """Start a sim speaking ``protocol``, run ``discover --probe --write``; both descriptions
    (the sim's, the written one), discover's output and the written file."""
    return _discover_next_to_sim_with(tmp_path, protocol)


def _discover_next_to_sim_with(tmp_path: Path, protocol: str, *more: str) -> tuple[dict, dict, str, Path]:
    """``_discover_next_to_sim`` with ``more`` arguments to discover."""
    proc, sim_file = start_sim(tmp_path, "--protocol", protocol, "--timing", "boot_s=0.2", "--seed", "12")
    written = tmp_path / "found.toml"
    try:
        out = posbench("discover", "--probe", *more, "--write", str(written), cwd=tmp_path, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        return tomllib.loads(sim_file.read_text()), tomllib.loads(written.read_text()), out.stdout, written
    finally:
        stop_sim(proc)


IDENTIFIES = ("agent", "zvt")
"""Protocols whose terminal tells its serial number (Caisse-AP and Concert do not)."""


def _same_devices(sim: dict, found: dict, said: str) -> None:
    """Every device of the sim found where the sim has it (``said``: discover's output, which
    tells what each port answered or what was tried there)."""
    for section in DEVICES:
        assert section in found, f"no [{section}] found:\n{said}"
        for key in ("port", "address", "protocol", "backend", "reader", "path", "driver"):
            if key in sim[section]:
                assert found[section].get(key) == sim[section][key], (section, key, found[section], said)
    assert found["unit"]["model"] == sim["unit"]["model"]
    if sim["terminal"].get("protocol", "agent") in IDENTIFIES:  # the unit told its serial when asked
        assert found["unit"]["serial"] == sim["unit"]["serial"]
    else:  # no probe can learn it, and the sim's serial is no instrument setting: left out
        assert "serial" not in found["unit"]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("protocol", ["agent", "zvt-tcp", "concert", "caisse-ap"])
def test_the_file_written_next_to_a_virtual_bench_triages_like_the_sims_own(tmp_path, protocol):
    proc, sim_file = start_sim(tmp_path, "--protocol", protocol, "--timing", "boot_s=0.2", "--seed", "12")
    written = tmp_path / "found.toml"
    try:
        out = posbench("discover", "--probe", "--write", str(written), cwd=tmp_path, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        sim, found = tomllib.loads(sim_file.read_text()), tomllib.loads(written.read_text())
        _same_devices(sim, found, out.stdout)
        result = triage(tmp_path, "--bench", str(written), "--store", f"sqlite:///{tmp_path / 'store.sqlite'}")
    finally:
        stop_sim(proc)
    # how each device answered, said for a person
    said = " ".join(out.stdout.split())
    assert {"agent": "answered ID: PT100", "zvt-tcp": "answered the status enquiry 80 00",
            "concert": "terminal: concert at 9600 8N1, answered ENQ with ACK (8N1)",
            "caisse-ap": "terminal: caisse-ap, answered: Caisse-AP terminal, version"}[protocol] in said
    assert "supply: korad at 9600 8N1, answered *IDN?: KORAD KA3005P" in said
    assert "nfc reader: pn532" in said and "0801:0002 magstripe reader: MagTek" in said
    assert "switches port power one by one (4 ports)" in said
    text = written.read_text()
    assert "from the running virtual bench's own description" in text and "[host]" in text
    # the sim's own file gives a healthy verdict for this seed (tests/e2e/test_triage.py): so must this one
    assert result.code == 0 and result.doc is not None, result.out + result.err
    assert result.doc["verdict"] == "pass"
    if protocol not in ("concert", "caisse-ap"):
        assert result.doc["unit"]["serial"] == sim["unit"]["serial"]


@pytest.mark.timeout(90)
def test_a_serial_zvt_terminal_is_found_at_its_line_settings(tmp_path):
    sim, found, out, _ = _discover_next_to_sim(tmp_path, "zvt")
    _same_devices(sim, found, out)
    assert found["terminal"]["baudrate"] == 9600
    assert "terminal: zvt at 9600 8N2, answered the status enquiry 80 00" in out


@pytest.mark.timeout(60)
def test_next_to_nothing_it_says_what_it_tried_and_writes_nothing(tmp_path):
    master, slave = os.openpty()
    silent = os.ttyname(slave)
    written = tmp_path / "f.toml"
    try:
        out = posbench("discover", "--probe", "--write", str(written), "--port", silent, "--port",
                       "/dev/ttyPOSBENCH-NONE", cwd=tmp_path, timeout=40)
    finally:
        os.close(master)
        os.close(slave)
    said = " ".join(out.stdout.split())
    assert out.returncode == 0, out.stdout + out.stderr
    assert not written.exists() and f"no terminal answered and no card reader was found: {written} not written" in said
    assert (f"{silent} named on the command line nothing answered; tried agent (ID) at 9600 8N1, 115200 8N1; zvt (status enquiry 05 01) "
            "at 9600 8N2, 115200 8N2; concert (ENQ) at 9600 8N1, 9600 7E1; korad (*IDN?) at 9600 8N1; pn532") in said, \
        out.stdout
    assert "/dev/ttyPOSBENCH-NONE named on the command line cannot be opened: [Errno 2] could not open port" in said
    assert said.count("ttyPOSBENCH-NONE: [Errno 2] No such file") == 1  # said once, not per protocol


@pytest.mark.timeout(30)
def test_an_existing_file_is_never_overwritten(tmp_path):
    written = tmp_path / "bench.toml"
    written.write_text("# mine\n")
    out = posbench("discover", "--probe", "--write", str(written), cwd=tmp_path, timeout=20)
    assert out.returncode == 3 and "the file exists; discover never overwrites" in " ".join(out.stderr.split())
    assert written.read_text() == "# mine\n"
    without_probe = posbench("discover", "--write", str(tmp_path / "new.toml"), cwd=tmp_path, timeout=20)
    assert without_probe.returncode == 3 and "--write needs --probe" in without_probe.stderr


# -- a card reader as the unit: no terminal answers, a reader is served on USB/IP or a pty --------
def _served_magtek(flavour: str):
    """A MagTek reader of ``flavour`` behind a hub that switches port power, on a USB/IP server."""
    import random

    from posbench.sim.devices.magstripe import VirtualMagstripeReader
    from posbench.sim.devices.usb_hub import VirtualUsbHub
    from posbench.sim.devices.usbip_server import UsbipServer
    server = UsbipServer()
    hub = VirtualUsbHub(server, ports=4)
    hub.attach(2, VirtualMagstripeReader(flavour, rng=random.Random(1), serial="MSR00000042"))
    return server


@pytest.mark.timeout(90)
@pytest.mark.parametrize("flavour, profile, usb_id", [("hid", "magtek-hid", "0801:0002"),
                                                       ("keyboard", "magtek-keyboard", "0801:0001")])
def test_a_magtek_alone_on_usbip_is_written_as_the_unit(tmp_path, flavour, profile, usb_id):
    from posbench.setup.config import load_bench
    server = _served_magtek(flavour)
    written = tmp_path / "reader.toml"
    try:
        out = posbench("discover", "--probe", "--usb", server.url, "--write", str(written), cwd=tmp_path, timeout=60)
        checked = posbench("check", "--bench", str(written), cwd=tmp_path, timeout=60) if written.exists() else None
    finally:
        server.stop(timeout=2.0)
    assert out.returncode == 0, out.stdout + out.stderr
    said = " ".join(out.stdout.split())
    config = load_bench(written)
    # the bench's preflight finds the unit it names, on the backend written (the manual actuator
    # has nobody to prompt here: no terminal)
    assert checked is not None
    assert f"ok unit {server.url}: {'USB Swipe Reader' if flavour == 'hid' else 'USB Keyboard Swipe Reader'}, " \
           "serial MSR00000042" in " ".join(checked.stdout.split()), checked.stdout + checked.stderr
    assert "ok usb hub hub 2109:2811" in " ".join(checked.stdout.split())
    assert config.terminal is None and config.unit.profile == profile
    assert config.usb is not None and config.usb.backend == server.url and str(config.usb.reader) == usb_id
    assert config.power is not None and config.power.driver == "usb-hub"  # the hub switching port power
    assert config.actuator.kind == "manual" and config.nfc is None
    # its serial was read from its USB descriptor through the USB/IP server (a comment: a real bench)
    assert '# serial = "MSR00000042"  # from its USB descriptor' in written.read_text()
    assert "Card readers (no terminal answered: a reader is the unit)" in said and f"profile {profile}" in said
    assert f"wrote {written}" in said


@pytest.mark.timeout(90)
def test_a_pn532_on_a_pty_is_written_as_the_unit(tmp_path):
    import random

    from posbench.setup.config import load_bench
    from posbench.sim.devices.pn532 import PN532Emulator
    emu = PN532Emulator(random.Random(2)).start()
    written = tmp_path / "reader.toml"
    try:
        out = posbench("discover", "--probe", "--port", emu.path, "--write", str(written), cwd=tmp_path, timeout=60)
    finally:
        emu.stop()
    assert out.returncode == 0, out.stdout + out.stderr
    config = load_bench(written)
    assert config.terminal is None and config.unit.profile == "pn532-uart"
    assert config.nfc is not None and config.nfc.path == emu.path and config.usb is None
    assert "nfc reader: pn532" in " ".join(out.stdout.split())


@pytest.mark.timeout(90)
def test_with_several_readers_the_first_is_the_unit_and_the_others_are_named(tmp_path):
    import random

    from posbench.setup.config import load_bench
    from posbench.sim.devices.pn532 import PN532Emulator
    server = _served_magtek("hid")
    emu = PN532Emulator(random.Random(2)).start()
    written = tmp_path / "reader.toml"
    try:
        out = posbench("discover", "--probe", "--port", emu.path, "--usb", server.url, "--write", str(written),
                       cwd=tmp_path, timeout=60)
    finally:
        emu.stop()
        server.stop(timeout=2.0)
    assert out.returncode == 0, out.stdout + out.stderr
    said = " ".join(out.stdout.split())
    assert load_bench(written).unit.profile == "magtek-hid"  # USB readers first
    assert f"not used (comments in the file): reader PN532 on a serial port at {emu.path}: " \
           "profile pn532-uart" in said


@pytest.mark.timeout(240)
def test_a_terminal_and_readers_found_keep_the_terminal_bench(tmp_path):
    """Next to the PT100 sim (a terminal, a MagTek and a PN532 of its bench) and one more MagTek on
    a USB/IP server of its own, the terminal is the unit as before; no reader profile is written."""
    server = _served_magtek("keyboard")
    try:
        sim, found, out, written = _discover_next_to_sim_with(tmp_path, "agent", "--usb", server.url)
    finally:
        server.stop(timeout=2.0)
    _same_devices(sim, found, out)
    assert "profile" not in found["unit"] and found["terminal"]["protocol"] == "agent"
    assert "Card readers (no terminal answered" not in out
