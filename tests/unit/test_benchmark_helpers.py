"""The triage benchmarks' own arithmetic: designed-wait intervals, revival counts, profile areas."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import parallel_triage  # noqa: E402
import triage_overhead  # noqa: E402


def test_overlapping_designed_waits_count_once():
    assert triage_overhead._union([(0.0, 1.0), (0.5, 2.0), (3.0, 4.0), (3.2, 3.5)]) == 3.0
    assert triage_overhead._union([]) == 0.0


def test_designed_waits_are_clipped_to_each_test_and_split_by_kind():
    waits = [("boot", 0.0, 2.0), ("suite", 1.5, 3.0), ("device", 5.0, 5.5)]
    per = triage_overhead.designed_per_test(waits, {"a": [1.0, 4.0], "b": [4.0, 6.0]})
    assert per["a"]["designed_s"] == 2.0 and per["a"]["boot"] == 1.0 and per["a"]["suite"] == 1.5
    assert per["b"]["designed_s"] == 0.5 and per["b"]["device"] == 0.5


def test_boots_pair_each_start_with_its_ready():
    events = [(1.0, "boot_start", 12.0), (1.2, "brownout", 9.0), (2.0, "boot_start", 12.0),
              (2.8, "ready", 12.0), (5.0, "power_off", 0.0)]
    (kind, start, end), = triage_overhead.boots(events)
    assert kind == "boot" and abs((end - start) - 0.8) < 1e-6  # time.time() offsets cost digits


def test_revivals_are_the_waits_the_triage_reports_after_a_power_cycle():
    out = ("      still waiting for a silent unit to come back after a power cycle (up to 10.5 s) ...\n"
           "      waited 2.4 s for a silent unit to come back after a power cycle (up to 10.5 s)\n"
           "      waited 10.0 s for the unit to answer (up to 10 s)\n")
    assert parallel_triage.count_revivals(out) == 1


def test_profile_areas():
    imp = ["<module> (posbench:8)", "main (bench/cli.py:575)", "_find_and_load (<frozen importlib._bootstrap>:1176)",
           "<module> (tests/hil/test_power.py:1)", "<module> (matplotlib/pyplot.py:1)"]
    assert parallel_triage.area(imp) == "imports: matplotlib"
    assert parallel_triage.area(["Thread._bootstrap (threading.py:1002)", "Thread.run (threading.py:982)",
                                 "KoradEmulator._run (bench/sim/devices/korad.py:171)"]) == "thread: KoradEmulator._run"
    assert parallel_triage.area([]) == "native code (no Python frame)"
