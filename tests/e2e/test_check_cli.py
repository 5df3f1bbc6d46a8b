"""`posbench check --bench FILE`: bench.toml and its DUT profile validated, every device looked
for, and nothing sent to the unit that changes its state."""
from __future__ import annotations

from pathlib import Path

import pytest

from posbench.setup.config import load_bench
from posbench.drivers.power import KoradSupply
from posbench.setup.profile import PROFILE_DIR

from .conftest import posbench, start_sim, stop_sim


def _supply_state(bench: Path) -> tuple[float, float, bool]:
    """The virtual supply's voltage setpoint (V), current limit (A) and output state."""
    power = load_bench(bench).power
    assert power is not None and power.port is not None
    supply = KoradSupply(power.port, power.channel).open()
    try:
        return supply.voltage_setpoint(), supply.current_limit(), supply.is_on()
    finally:
        supply.close()


def _host_log(bench: Path) -> bytes:
    host = load_bench(bench).host
    assert host is not None and host.log is not None
    return Path(host.log).read_bytes()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("protocol,profile", [("agent", None), ("zvt-tcp", "zvt-generic")])
def test_a_healthy_virtual_bench_is_found_whole_and_left_as_it_was(tmp_path, protocol, profile):
    proc, bench = start_sim(tmp_path, "--seed", "11", "--protocol", protocol)
    try:
        if profile:  # the virtual unit checked against a real terminal's profile, found by name
            bench.write_text(bench.read_text().replace('model = "PT100"', f'profile = "{profile}"'))
        supply, log = _supply_state(bench), _host_log(bench)
        r = posbench("check", "--bench", str(bench), cwd=tmp_path, timeout=60)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        assert _supply_state(bench) == supply, "the supply's setpoint, limit or output changed"
        assert _host_log(bench) == log, "the unit was made to talk to its host (a sale, a diagnosis)"
        assert proc.poll() is None, "the virtual bench died"
    finally:
        stop_sim(proc)
    lines = out.splitlines()
    for device in ("terminal", "magstripe reader", "nfc reader", "host", "host log", "actuator"):
        assert any(line.split()[:1] == ["ok"] and f" {device} " in f" {line} " for line in lines), (device, out)
    supply_line = next(line for line in lines if " supply " in f" {line} ")
    if profile:  # the PT100's 2 A limit is not the generic profile's 2.5 A: said, and left as it is
        assert supply_line.split()[0] == "warn" and "(profile 2.5 A)" in supply_line, out
        assert "left as it is" in supply_line, out
    else:
        assert supply_line.split()[0] == "ok", out
    assert "not opened: read-only check" in out  # the USB reader is listed, not claimed (a light reset)
    summary = lines[-1]
    assert summary.startswith("bench ok: 7 devices found"), out
    model = (profile or "PT100").upper()
    assert f"profile {model}: " in summary and " measurements judged, " in summary
    assert "not (the protocol cannot tell them)" in summary
    assert "Traceback" not in out and "HIL tests" not in out


@pytest.mark.timeout(60)
def test_a_missing_port_is_exit_2_naming_it(tmp_path):
    gone = tmp_path / "no-such-ttyUSB0"
    bench = tmp_path / "bench.toml"
    bench.write_text(f'[bench]\nname = "b"\n[unit]\nprofile = "zvt-generic"\n'
                     f'[terminal]\nprotocol = "zvt"\nport = "{gone}"\n')
    r = posbench("check", "--bench", str(bench), cwd=tmp_path, timeout=40)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert f"no such port {gone}" in out and "is the USB-serial cable plugged in?" in out
    # the manual actuator has nobody to prompt here (no terminal): a triage would stop there too
    assert "bench not ready: 2 of 2 device(s) missing or unusable (terminal, actuator)" in out
    assert "bench ok" not in out and "Traceback" not in out


@pytest.mark.timeout(60)
def test_a_bad_profile_is_exit_3_naming_file_and_key_before_any_device(tmp_path):
    text = (PROFILE_DIR / "concert-generic.toml").read_text()
    profile = tmp_path / "mine.toml"
    profile.write_text("\n".join(line for line in text.splitlines() if not line.startswith("echo_loss")))
    bench = tmp_path / "bench.toml"
    bench.write_text(f'[bench]\nname = "b"\n[unit]\nprofile = "mine.toml"\n'
                     f'[terminal]\nprotocol = "concert"\nport = "{tmp_path}/no-such-ttyUSB0"\n')
    r = posbench("check", "--bench", str(bench), cwd=tmp_path, timeout=40)
    out = r.stdout + r.stderr
    assert r.returncode == 3, out
    assert f"{profile}: limits.echo_loss: is missing" in out and "test_network.py::test_echo_series" in out
    assert "preflight" not in out and "no-such-ttyUSB0" not in out  # no device looked at
    named = tmp_path / "named.toml"
    named.write_text('[bench]\nname = "b"\n[unit]\nprofile = "zvt-genric"\n[terminal]\nprotocol = "zvt"\n'
                     'address = "192.0.2.7:20007"\n')
    r = posbench("check", "--bench", str(named), cwd=tmp_path, timeout=40)
    assert r.returncode == 3 and f"{named}: unit.profile: no packaged DUT profile 'zvt-genric'" in r.stderr, r.stderr
