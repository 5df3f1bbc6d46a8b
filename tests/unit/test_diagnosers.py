"""Network rules: echoes from the bench and through the unit judged together."""
from __future__ import annotations

from posbench.spec.evidence import Recorder, RunRecord
from posbench.core.limits import Limit

def _echo_recorder(run: RunRecord) -> Recorder:
    from posbench.spec.measures import Bound
    declared = {name: Bound(name, unit, limit, ("network_unstable",), ())
                for name, unit, limit in (("echo_loss_bench", "ratio", Limit(max=0.05)),
                                          ("echo_p95_s_bench", "s", Limit(max=0.25)))}
    return Recorder(run, "tests/hil/test_network.py::test_echo_series", declared)


def test_the_benchs_echoes_alone_judge_the_path_when_the_unit_cannot_echo():
    from posbench.diagnosis.rules import EchoPath, judge_echo_paths
    for bench, strength in ((EchoPath("bench", 0.5, 0.9), 250.0), (EchoPath("bench", 0.0, 0.4), 60.0)):
        run = RunRecord()
        judge_echo_paths(_echo_recorder(run), bench, None)
        assert [(e.cause, e.ratio) for e in run.evidence] == [("network_unstable", strength)]
        assert "cannot echo" in run.evidence[0].note
    run = RunRecord()
    judge_echo_paths(_echo_recorder(run), EchoPath("bench", 0.0, 0.05), None)
    assert run.evidence == []


def test_a_lossy_bench_path_is_not_cleared_by_untimed_host_checks_that_passed():
    """ZVT's diagnosis runs over TCP: retransmissions hide the loss the bench's round trips see."""
    from posbench.diagnosis.rules import EchoPath, judge_echo_paths
    run = RunRecord()
    judge_echo_paths(_echo_recorder(run), EchoPath("bench", 0.17, 0.01, what="TCP handshakes"),
                     EchoPath("unit", 0.0, 0.4, timed=False))
    assert [(e.cause, e.ratio) for e in run.evidence] == [("network_unstable", 60.0)]
    assert "TCP handshakes to the host lose 17%" in run.evidence[0].note
    run = RunRecord()  # one round trip in twelve lost: moderate
    judge_echo_paths(_echo_recorder(run), EchoPath("bench", 0.083, 0.01), EchoPath("unit", 0.0, 0.4, timed=False))
    assert [(e.cause, e.ratio) for e in run.evidence] == [("network_unstable", 15.0)]
    run = RunRecord()  # timed echoes through the unit that pass do clear it: no rule names a cause
    judge_echo_paths(_echo_recorder(run), EchoPath("bench", 0.17, 0.01), EchoPath("unit", 0.0, 0.01))
    assert run.evidence == []
    run = RunRecord()  # both fine: nothing
    judge_echo_paths(_echo_recorder(run), EchoPath("bench", 0.0, 0.01), EchoPath("unit", 0.0, 0.4, timed=False))
    assert run.evidence == []


def test_an_answered_echo_proves_the_port_open_when_every_probe_was_lost():
    from posbench.diagnosis.rules import echoes_judged
    assert echoes_judged("open", 0) and echoes_judged("open", 12)
    assert echoes_judged("filtered", 3), "echoes the host answered were left unjudged after lost probes"
    assert not echoes_judged("filtered", 0) and not echoes_judged("refused", 0)  # the reachability test's
