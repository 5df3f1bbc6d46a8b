"""The technician is not the unit: a person presenting cards (the virtual bench's simulated
technician, or a manual actuator with nobody to prompt) through the real `posbench triage`."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import causes_said, start_sim, stop_sim, triage


@pytest.fixture
def sim(tmp_path):
    """Start ``posbench sim`` with the given arguments; stopped when the test ends, pass or fail."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> Path:
        proc, bench = start_sim(tmp_path, "--no-announce", *args)
        started.append(proc)
        return bench

    yield start
    for proc in started:
        stop_sim(proc)


def operator_events(doc: dict) -> int:
    return sum(s.get("operator_events", 0) for s in doc.get("read_paths", {}).values())


@pytest.mark.timeout(300)
def test_a_healthy_unit_with_a_technician_late_now_and_then_passes(sim, tmp_path):
    bench = sim("--seed", "5", "--technician", "--technician-s", "0.3")
    assert "technician = true" in bench.read_text()
    r = triage(tmp_path, "--bench", str(bench))
    assert r.code == 0, f"{r.out[-3000:]}\n{r.err[-2000:]}\n{causes_said(r.doc)}"
    assert operator_events(r.doc) > 0, r.doc.get("read_paths")  # the technician was late or wrong, and it did not count
    assert all(s["verdict"] == "healthy" for s in r.doc["read_paths"].values()), r.doc["read_paths"]


@pytest.mark.timeout(300)
def test_a_dead_antenna_is_the_fault_though_a_technician_presents_the_cards(sim, tmp_path):
    bench = sim("--seed", "5", "--technician", "--technician-s", "0.3", "--fault", "nfc_antenna")
    r = triage(tmp_path, "--bench", str(bench))
    assert r.code == 1, f"{r.out[-3000:]}\n{r.err[-2000:]}"
    assert r.doc["causes"][0]["id"] == "nfc_antenna", causes_said(r.doc)


@pytest.mark.timeout(120)
def test_a_manual_bench_without_a_terminal_stops_at_the_preflight(sim, tmp_path):
    bench = sim("--seed", "6")
    manual = tmp_path / "manual.toml"
    manual.write_text(re.sub(r'\[actuator\]\nkind = "virtual"\naddress = "[^"]+"\n', '[actuator]\nkind = "manual"\n',
                             bench.read_text()), encoding="utf-8")
    assert 'kind = "manual"' in manual.read_text()
    r = triage(tmp_path, "--bench", str(manual), timeout=90)  # stdin is /dev/null, no controlling terminal
    out = r.out + r.err
    assert r.code == 2, out
    assert "HIL tests" not in out and r.doc["tests"] == [], out  # no test ran
    fails = [line for line in out.splitlines() if line.strip().startswith("FAIL")]
    assert len(fails) == 1 and "actuator" in fails[0] and "nobody can be prompted" in fails[0], out
    assert "run the triage from a terminal" in out
    assert any("actuator" in e and "nobody can be prompted" in e for e in r.doc["bench_errors"]), r.doc


def test_the_technician_timing_is_checked(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "posbench.cli", "sim", "--technician", "--technician-s", "0",
                           "--write-bench", str(tmp_path / "b.toml")], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 3 and "--technician-s" in proc.stdout + proc.stderr
    assert not (tmp_path / "b.toml").exists()


@pytest.mark.parametrize("command", [["sim", "--technician", "--write-bench", "b.toml"], ["triage", "--virtual"]])
def test_a_technician_slower_than_the_units_card_wait_is_refused(tmp_path, command):
    """A punctual technician presents within the unit's card wait (3 s on the virtual Concert
    terminal): only then is a card still on its way the unit's refusal, not lateness."""
    proc = subprocess.run([sys.executable, "-m", "posbench.cli", *command, "--profile", "concert-generic",
                           "--technician-s", "2.8"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out
    assert "card wait (3 s): at most 2.5 s" in out and "--technician-s" in out
    assert not (tmp_path / "b.toml").exists() and not (tmp_path / "reports").exists()
