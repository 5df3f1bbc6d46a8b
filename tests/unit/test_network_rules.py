"""Network rules: echoes from the bench and through the unit judged together."""
from __future__ import annotations

from posbench.diagnosis.network import EchoPath, echo_paths, echoes_judged
from posbench.spec.evidence import Recorder, RunRecord
from posbench.core.limits import Limit

def _echo_recorder(run: RunRecord) -> Recorder:
    from posbench.spec.measures import Bound
    declared = {name: Bound(name, unit, limit, ("network_unstable",), ())
                for name, unit, limit in (("echo_loss_bench", "ratio", Limit(max=0.05)),
                                          ("echo_p95_s_bench", "s", Limit(max=0.25)))}
    return Recorder(run, "tests/hil/test_network.py::test_echo_series", declared)


def _judge(run: RunRecord, bench, unit) -> None:
    """The rule's evidence, recorded as the echo test records it."""
    record = _echo_recorder(run)
    record.add(echo_paths(bench, unit, record.limit("echo_loss_bench"), record.limit("echo_p95_s_bench")))


def test_the_benchs_echoes_alone_judge_the_path_when_the_unit_cannot_echo():
    for bench, strength in ((EchoPath("bench", 0.5, 0.9), 250.0), (EchoPath("bench", 0.0, 0.4), 60.0)):
        run = RunRecord()
        _judge(run, bench, None)
        assert [(e.cause, e.ratio) for e in run.evidence] == [("network_unstable", strength)]
        assert "cannot echo" in run.evidence[0].note
    run = RunRecord()
    _judge(run, EchoPath("bench", 0.0, 0.05), None)
    assert run.evidence == []


def test_a_lossy_bench_path_is_not_cleared_by_untimed_host_checks_that_passed():
    """ZVT's diagnosis runs over TCP: retransmissions hide the loss the bench's round trips see."""
    run = RunRecord()
    _judge(run, EchoPath("bench", 0.17, 0.01, what="TCP handshakes"),
                     EchoPath("unit", 0.0, 0.4, timed=False))
    assert [(e.cause, e.ratio) for e in run.evidence] == [("network_unstable", 60.0)]
    assert "TCP handshakes to the host lose 17%" in run.evidence[0].note
    run = RunRecord()  # one round trip in twelve lost: moderate
    _judge(run, EchoPath("bench", 0.083, 0.01), EchoPath("unit", 0.0, 0.4, timed=False))
    assert [(e.cause, e.ratio) for e in run.evidence] == [("network_unstable", 15.0)]
    run = RunRecord()  # timed echoes through the unit that pass do clear it: no rule names a cause
    _judge(run, EchoPath("bench", 0.17, 0.01), EchoPath("unit", 0.0, 0.01))
    assert run.evidence == []
    run = RunRecord()  # both fine: nothing
    _judge(run, EchoPath("bench", 0.0, 0.01), EchoPath("unit", 0.0, 0.4, timed=False))
    assert run.evidence == []


def test_an_answered_echo_proves_the_port_open_when_every_probe_was_lost():
    assert echoes_judged("open", 0) and echoes_judged("open", 12)
    assert echoes_judged("filtered", 3), "echoes the host answered were left unjudged after lost probes"
    assert not echoes_judged("filtered", 0) and not echoes_judged("refused", 0)  # the reachability test's


def test_the_rule_returns_its_evidence_and_records_nothing():
    found = echo_paths(EchoPath("bench", 0.5, 0.9), EchoPath("unit", 0.5, 0.9), Limit(max=0.05), Limit(max=0.25))
    assert [(e.cause, e.ratio, e.measurement, e.test) for e in found] == [
        ("network_unstable", 60.0, "echo_loss_bench", ""), ("network_unstable", 250.0, "echo_p95_s_bench", "")]
    assert found[0].note == "round trips lose 50% from the bench (echoes) and 50% from the unit: the path to the host drops packets"
    only_unit = echo_paths(EchoPath("bench", 0.0, 0.01), EchoPath("unit", 0.5, 0.01), Limit(max=0.05), Limit(max=0.25))
    assert [(e.cause, e.ratio) for e in only_unit] == [("ip_conflict", 4.0)]
