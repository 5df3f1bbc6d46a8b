"""The session's supply watch: a sag is the supply's, the bench's own power-off is not."""
from __future__ import annotations

from posbench.evidence import Recorder, RunRecord
from posbench.supply_watch import SupplyWatch
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
    run = RunRecord()
    assert watch.attribute(Recorder(run, "t"), "a read was cut off", 4.2, 4.6) == "power_supply"


def test_the_bench_switching_the_unit_off_is_no_sag():
    watch = _watch([(t, 0.0 if 4.0 <= t <= 4.5 else v, 0.0 if 4.0 <= t <= 4.5 else a) for t, v, a in STEADY])
    watch.bench_switched(4.0, 4.5)
    run = RunRecord()
    assert watch.attribute(Recorder(run, "t"), "a read was cut off", 3.5, 6.0) == "pcb_intermittent"
    assert [e.cause for e in run.evidence] == ["pcb_intermittent"]
    assert watch.lowest(3.5, 6.0) == 12.0


def test_the_benchs_own_brownout_is_no_sag_for_what_follows():
    """A later silence looked up around a brownout the bench made must not blame the supply."""
    watch = _watch([(t, 8.0 if 4.0 <= t <= 4.5 else v, a) for t, v, a in STEADY])
    watch.bench_switched(4.0, 4.5)
    run = RunRecord()
    assert watch.attribute(Recorder(run, "t"), "the unit did not answer", 4.8, 5.2, steady_cause="") is None
    assert run.evidence == []
