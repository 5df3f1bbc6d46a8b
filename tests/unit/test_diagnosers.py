"""Rules across tests that tell a wrong bench description from a fault at the unit's site."""
from __future__ import annotations

from posbench.diagnosis.rules import apply_bench_rules, wrong_host_address
from posbench.diagnosis.ranking import decide
from posbench.spec.evidence import Recorder, RunRecord
from posbench.core.limits import Limit

PORT_TEST = "tests/hil/test_network.py::test_host_port"


def _run(state: str, answered: float | None, unit_echo_loss: float | None) -> RunRecord:
    run = RunRecord()
    record = Recorder(run, PORT_TEST)
    record.measure("host_port_state", state, "", Limit(equals="open"), cause="firewall", strength="decisive",
                   note=f"127.0.0.1:9 is {state}")
    if answered is not None:
        Recorder(run, "tests/hil/test_code01.py::test_code01_origin").measure(
            "sale_host_answered_rate", answered, "ratio", Limit(min=1))
    if unit_echo_loss is not None:
        Recorder(run, "tests/hil/test_network.py::test_echo_series").measure(
            "echo_loss_unit", unit_echo_loss, "ratio", Limit(max=0.05))
    return run


def test_a_host_the_unit_reaches_but_the_bench_does_not_is_a_wrong_description():
    run = _run("refused", answered=1.0, unit_echo_loss=0.0)
    apply_bench_rules(run)
    verdict, causes = decide(run)
    assert verdict == "bench_error" and causes == []
    assert "[host] address" in run.bench_errors[0] and "refused" in run.bench_errors[0]
    assert not [e for e in run.evidence if e.cause == "firewall"]
    assert not [m for m in run.measurements if m.name == "host_port_state"]


def test_the_unit_own_echoes_alone_show_it_reached_its_host():
    run = _run("filtered", answered=None, unit_echo_loss=0.5)
    assert wrong_host_address(run)


def test_a_host_nobody_reaches_is_still_the_firewall():
    run = _run("filtered", answered=0.0, unit_echo_loss=1.0)
    apply_bench_rules(run)
    verdict, causes = decide(run)
    assert run.bench_errors == [] and verdict == "fault" and causes[0].id == "firewall"


def test_an_open_port_is_no_finding():
    run = _run("open", answered=1.0, unit_echo_loss=0.0)
    assert wrong_host_address(run) == [] and run.bench_errors == []


# -- rules for protocols that say little (Concert) -----------------------------------------------
SALES_TEST = "tests/hil/test_read_paths.py::test_card_reads_in_sales[{}]"


def _read_path_evidence(*paths: str) -> RunRecord:
    run = RunRecord()
    causes = {"swipe": "msr_head", "insert": "chip_contacts", "tap": "nfc_antenna"}
    for path in paths:
        Recorder(run, SALES_TEST.format(path)).evidence(causes[path], "strong", f"sales by {path} refused unread")
    Recorder(run, "tests/hil/test_read_paths.py::test_swipe").evidence("msr_head", "moderate", "USB reader misreads")
    return run


def test_every_read_path_refused_alike_is_the_terminals_refusal_not_three_readers():
    run = _read_path_evidence("swipe", "insert", "tap")
    apply_bench_rules(run)
    assert run.bench_errors == []
    assert [(e.cause, e.test) for e in run.evidence] == [("msr_head", "tests/hil/test_read_paths.py::test_swipe")]


def test_one_or_two_failing_read_paths_keep_their_evidence():
    for paths in (("swipe",), ("insert", "tap")):
        run = _read_path_evidence(*paths)
        before = list(run.evidence)
        apply_bench_rules(run)
        assert run.evidence == before


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
