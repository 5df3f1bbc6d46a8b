"""The session's supply watch: a sag is the supply's, the bench's own power-off is not."""
from __future__ import annotations

from posbench.spec.evidence import Recorder, RunRecord
from posbench.spec.supply_watch import SupplyWatch
from posbench.drivers.power.protocols import Reading
from posbench.drivers.power.trace import Trace


def _watch(points: list[tuple[float, float, float]]) -> SupplyWatch:
    watch = SupplyWatch.__new__(SupplyWatch)  # no sampler thread: the readings are given
    watch.floor_v, watch.interval_s, watch.switched_off = 10.5, 0.1, []
    watch.trace = Trace()
    for t, volts, amps in points:
        watch.trace.add(Reading(t=t, volts=volts, amps=amps))
    return watch


STEADY = [(t / 10, 12.0, 0.3) for t in range(0, 100)]


def test_a_sag_during_an_interruption_blames_the_supply():
    watch = _watch([(t, 8.0 if 4.0 <= t <= 4.5 else v, a) for t, v, a in STEADY])
    found = watch.explain("a read was cut off", 4.2, 4.6)
    assert found is not None and (found.cause, found.value) == ("power_supply", 8.0)


def test_the_bench_switching_the_unit_off_is_no_sag():
    watch = _watch([(t, 0.0 if 4.0 <= t <= 4.5 else v, 0.0 if 4.0 <= t <= 4.5 else a) for t, v, a in STEADY])
    watch.bench_switched(4.0, 4.5)
    found = watch.explain("a read was cut off", 3.5, 6.0)
    assert found is not None and found.cause == "pcb_intermittent"
    assert watch.lowest(3.5, 6.0) == 12.0


def test_the_benchs_own_brownout_is_no_sag_for_what_follows():
    """A later silence looked up around a brownout the bench made must not blame the supply."""
    watch = _watch([(t, 8.0 if 4.0 <= t <= 4.5 else v, a) for t, v, a in STEADY])
    watch.bench_switched(4.0, 4.5)
    assert watch.explain("the unit did not answer", 4.8, 5.2, steady_cause="") is None


def test_dark_for_counts_back_the_readings_with_no_current_on_a_live_supply():
    watch = _watch([(t, v, 0.0 if t >= 7.0 else a) for t, v, a in STEADY])
    assert abs(watch.dark_for() - 2.9) < 1e-9  # 7.0 .. 9.9


def test_a_unit_drawing_current_or_a_supply_switched_off_is_not_dark():
    assert _watch(STEADY).dark_for() == 0.0
    off = _watch([(t, 0.0 if t >= 7.0 else v, 0.0 if t >= 7.0 else a) for t, v, a in STEADY])
    assert off.dark_for() == 0.0  # the bench switched it off: no word on the unit
    assert _watch([]).dark_for() == 0.0


def test_lost_power_since_sees_a_moment_without_current_after_the_question():
    watch = _watch([(t, v, 0.0 if 5.0 <= t <= 5.3 else a) for t, v, a in STEADY])
    assert "lost power" in watch.lost_power_since(4.5)
    assert watch.lost_power_since(6.0) is None  # it was asked after it came back
    watch.bench_switched(4.9, 5.4)  # the bench's own power-off says nothing about the unit
    assert watch.lost_power_since(4.5) is None


def test_a_unit_dark_for_a_moment_on_a_steady_supply_is_the_supply_even_once_back():
    """The unit drew nothing for 0.3 s on a steady 12 V and was drawing again (booting) when its
    silence was judged: switched off by its own supply path, not a hung application (which keeps
    drawing its idle current)."""
    watch = _watch([(t, v, 0.0 if 5.0 <= t <= 5.3 else a) for t, v, a in STEADY])
    found = watch.explain("sale: no reply", 4.8, 7.0, steady_cause="")
    assert found is not None and (found.cause, found.value) == ("power_supply", 0.0)
    assert "went dark on a steady supply" in found.note
    assert _watch(STEADY).explain("sale: no reply", 4.8, 7.0, steady_cause="") is None


def test_what_the_watch_finds_is_the_callers_to_record():
    """The watch returns its evidence; recording it as a test's is the caller's (``Recorder.add``)."""
    watch = _watch([(t, 8.0 if 4.0 <= t <= 4.5 else v, a) for t, v, a in STEADY])
    run = RunRecord()
    record = Recorder(run, "t")
    record.add(watch.explain("a read was cut off", 4.2, 4.6))
    record.add(watch.explain("the unit did not answer", 7.0, 8.0, steady_cause=""))  # None: nothing
    assert [(e.cause, e.test, e.measurement) for e in run.evidence] == [("power_supply", "t", "supply_min_v")]
