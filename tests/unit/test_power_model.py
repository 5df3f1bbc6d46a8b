"""The virtual unit's power model (bench/sim/unit/power.py).

Most tests drive time by hand (``FakeClock``): the model visits every instant where something
changes, so the outcome is the same as with its background thread, only instant. The thread
itself (callbacks, stop deadline) is tested in real time with a 0.3 s boot.
"""
from __future__ import annotations

import random
import threading
import time

import pytest

from posbench.sim.unit.power import (ACTIVITY_MA, MAX_BOOT_ATTEMPTS, NOMINAL_V, R_PATH_OHM,
                                   RESET_HOLD_S, UnitPower, draw_load_sag, operating_point)

BOOT_S = 0.3
BROWNOUT_V = 10.5


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def powered(fault: float = 0.0, seed: int = 1, volts: float = NOMINAL_V,
            limit_a: float | None = 2.0) -> tuple[UnitPower, FakeClock]:
    """A model whose unit has booted (state on)."""
    clock = FakeClock()
    pw = UnitPower(BOOT_S, brownout_v=BROWNOUT_V, supply_fault=fault, rng=random.Random(seed),
                   source_v=volts, limit_a=limit_a, clock=clock)
    for _ in range(100):
        if pw.state == "on":
            return pw, clock
        clock.advance(0.5)
    raise AssertionError(f"unit never booted: {pw.events}")


def kinds(pw: UnitPower) -> list[str]:
    return [kind for _, kind, _ in pw.events]


def test_boots_after_boot_time():
    clock = FakeClock()
    pw = UnitPower(BOOT_S, clock=clock)
    assert pw.state == "off" and pw.voltage() == 0.0 and pw.current() == 0.0
    pw.set_source(12.0, 2.0)
    assert pw.state == "booting"
    assert pw.current() == pytest.approx(ACTIVITY_MA["booting"] / 1000, rel=0.02)
    clock.advance(BOOT_S - 0.01)
    assert pw.state == "booting"
    clock.advance(0.02)
    assert pw.state == "on" and pw.activity == "idle"
    (t_boot, *_), (t_ready, *_) = [e for e in pw.events if e[1] in ("boot_start", "ready")]
    assert t_ready - t_boot == pytest.approx(BOOT_S)


def test_power_off_and_back_on_reboots():
    pw, clock = powered()
    pw.set_source(0.0, 2.0)
    assert pw.state == "off" and kinds(pw)[-1] == "power_off"
    assert pw.voltage() == 0.0 and pw.current() == 0.0
    pw.set_source(12.0, 2.0)
    clock.advance(RESET_HOLD_S)
    assert pw.state == "booting"
    clock.advance(BOOT_S)
    assert pw.state == "on"


@pytest.mark.parametrize("activity", ["idle", "reading", "field", "printing", "booting"])
def test_current_follows_activity(activity):
    pw, _ = powered()
    pw.set_activity(activity)
    nominal_a = ACTIVITY_MA[activity] / 1000
    r_load = NOMINAL_V / nominal_a
    assert pw.current() == pytest.approx(12.0 / (r_load + R_PATH_OHM), rel=1e-6)
    assert pw.voltage() == pytest.approx(12.0 - pw.current() * R_PATH_OHM, rel=1e-6)
    assert pw.state == "on"


def test_documented_currents():
    assert ACTIVITY_MA["idle"] == pytest.approx(250, abs=30)
    assert ACTIVITY_MA["field"] == pytest.approx(450, abs=50)
    assert ACTIVITY_MA["printing"] == pytest.approx(1500, abs=100)


def test_current_limit_gives_constant_current():
    pw, _ = powered(limit_a=1.4)
    assert not pw.constant_current()
    pw.set_activity("printing")  # wants ~1.47 A
    assert pw.constant_current()
    assert pw.current() == pytest.approx(1.4)
    assert pw.voltage() == pytest.approx(1.4 * NOMINAL_V / 1.5)  # I_limit * R_load = 11.2 V
    assert pw.state == "on"


def test_current_limit_too_low_resets_the_unit():
    pw, clock = powered(limit_a=0.5)
    pw.set_activity("printing")  # CC at 0.5 A into 8 ohm: 4 V at the unit
    assert pw.state == "off"
    t, kind, volts = pw.events[-1]
    assert kind == "brownout" and volts == pytest.approx(4.0)
    clock.advance(RESET_HOLD_S + BOOT_S + 0.01)
    assert pw.state == "on"  # the boot current fits under the limit


def test_brownout_under_load_at_low_supply():
    pw, clock = powered(volts=12.0)
    pw.set_source(10.6, 2.0)  # idle: 10.6 V minus 37 mV, still above 10.5 V
    assert pw.state == "on"
    pw.set_activity("printing")  # 10.6 * 8 / 8.15 = 10.40 V
    assert pw.state == "off" and kinds(pw)[-1] == "brownout"
    assert pw.events[-1][2] < BROWNOUT_V
    clock.advance(1.0)
    assert pw.state == "off"  # 10.6 V is under the 11.0 V it needs to start
    pw.set_source(12.0, 2.0)
    clock.advance(BOOT_S + 0.01)
    assert pw.state == "on"


def test_unknown_activity_is_refused():
    pw, _ = powered()
    for bad in ("dancing", "off"):
        with pytest.raises(ValueError, match="unknown activity"):
            pw.set_activity(bad)


def test_severity_out_of_range_is_refused():
    with pytest.raises(ValueError):
        UnitPower(BOOT_S, supply_fault=1.5)


def run_operations(pw: UnitPower, clock: FakeClock, n: int) -> tuple[int, list[float]]:
    """``n`` loaded operations of 0.15 s each; returns (resets, lowest volts of each reset)."""
    resets, lows = 0, []
    loaded = ["reading", "field", "printing"]
    for i in range(n):
        pw.set_activity(loaded[i % 3])
        before = len(pw.events)
        lowest = pw.voltage()
        for _ in range(15):
            clock.advance(0.01)
            lowest = min(lowest, pw.voltage())
        if pw.state == "on":
            pw.set_activity("idle")
        new = pw.events[before:]
        if any(kind == "brownout" for _, kind, _ in new):
            resets += 1
            lows.append(lowest)
        for _ in range(400):
            if pw.state == "on":
                break
            clock.advance(0.05)
        clock.advance(0.5)  # let the dip end before the next operation
    return resets, lows


def test_healthy_unit_never_resets_under_load():
    pw, clock = powered(fault=0.0)
    rng_state = pw.rng.getstate()
    resets, _ = run_operations(pw, clock, 150)
    assert resets == 0
    assert not {"brownout", "sag", "boot_failed"} & set(kinds(pw))
    assert pw.rng.getstate() == rng_state  # a healthy unit makes no random choices


@pytest.mark.parametrize("seed", [3, 11, 2024])
def test_severity_0_3_resets_clearly_and_visibly(seed):
    pw, clock = powered(fault=0.3, seed=seed)
    resets, lows = run_operations(pw, clock, 90)
    assert resets >= 0.3 * 90
    assert all(v < BROWNOUT_V for v in lows)  # the voltage at the unit shows every reset's sag


def test_low_severity_sags_are_visible_without_resets():
    pw, clock = powered(fault=0.1, seed=5)
    resets, _ = run_operations(pw, clock, 60)
    assert resets == 0
    sags = [v for _, kind, v in pw.events if kind == "sag"]
    assert len(sags) == 60
    assert min(sags) < 11.4  # dips well below the ~11.9 V a healthy unit sees


def test_reset_rate_rises_with_severity():
    rates = []
    for severity in (0.1, 0.2, 0.3, 0.6, 1.0):
        rng = random.Random(7)
        r_path = R_PATH_OHM + severity * 0.5
        hits = 0
        for i in range(1000):
            dip = draw_load_sag(rng, severity, 0.0)
            load = ACTIVITY_MA[("reading", "field", "printing")[i % 3]]
            hits += operating_point(12.0 - dip.depth_v, 2.0, load, r_path)[0] < BROWNOUT_V
        rates.append(hits / 1000)
    assert rates == sorted(rates) and rates[0] == 0.0 and rates[2] >= 0.3 and rates[-1] >= 0.8


def test_faulty_boots_are_slow_and_sometimes_fail():
    clock = FakeClock()
    pw = UnitPower(BOOT_S, brownout_v=BROWNOUT_V, supply_fault=1.0, rng=random.Random(42),
                   clock=clock)
    boot_times, failed = [], 0
    for _ in range(40):
        pw.set_source(12.0, 2.0)
        start = clock()
        while pw.state != "on" and clock() - start < 20 and not pw.events[-1][1] == "boot_failed":
            clock.advance(0.01)
        if pw.state == "on":
            boot_times.append(clock() - start)
        else:
            failed += 1
            clock.advance(2.0)
            assert pw.state == "off"  # a failed boot stays failed while power stays applied
        pw.set_source(0.0, 2.0)
        clock.advance(0.5)
    assert failed >= 1
    assert sum(t > BOOT_S + 0.05 for t in boot_times) >= len(boot_times) / 3
    assert kinds(pw).count("boot_failed") == failed
    assert MAX_BOOT_ATTEMPTS >= 2


def test_healthy_boots_take_exactly_boot_time():
    pw, clock = powered()
    for _ in range(10):
        pw.set_source(0.0, 2.0)
        clock.advance(0.2)
        pw.set_source(12.0, 2.0)
        start = clock()
        while pw.state != "on":
            clock.advance(0.01)
        assert clock() - start == pytest.approx(BOOT_S, abs=0.011)


def test_same_seed_same_story():
    def story(seed: int) -> list:
        pw, clock = powered(fault=0.5, seed=seed)
        run_operations(pw, clock, 30)
        return [(round(t - 1000, 6), k, v) for t, k, v in pw.events]
    assert story(9) == story(9)
    assert story(9) != story(10)


def test_callbacks_run_on_the_background_thread_in_order():
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def listener(state: str) -> None:
        seen.append((state, threading.current_thread().name))
        if len(seen) == 5:
            done.set()

    def broken(state: str) -> None:
        raise RuntimeError("listener bug")

    pw = UnitPower(BOOT_S)
    pw.on_change(broken)
    pw.on_change(listener)
    with pw:
        pw.set_source(12.0, 2.0)
        assert pw.wait_state("on", 2.0)
        pw.set_source(0.0, 2.0)
        time.sleep(0.05)
        pw.set_source(12.0, 2.0)
        assert done.wait(3.0), seen
    assert [s for s, _ in seen] == ["booting", "on", "off", "booting", "on"]
    assert {name for _, name in seen} == {"unit-power"}
    assert len(pw.callback_errors) == 5 and "listener bug" in pw.callback_errors[0]


def test_stop_has_a_deadline():
    pw = UnitPower(BOOT_S).start()
    t = time.monotonic()
    pw.stop(timeout=1.0)
    assert time.monotonic() - t < 1.0
    assert not any(th.name == "unit-power" and th.is_alive() for th in threading.enumerate())
