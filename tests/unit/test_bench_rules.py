"""Bench rules across tests that tell a wrong bench description from a fault at the unit's site;
they return what they found and leave the run as it was."""
from __future__ import annotations

from posbench.diagnosis.bench_rules import BenchCheck, check_bench, refusals_on_every_path, wrong_host_address
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
    check_bench(run).apply(run)
    verdict, causes = decide(run)
    assert verdict == "bench_error" and causes == []
    assert "[host] address" in run.bench_errors[0] and "refused" in run.bench_errors[0]
    assert not [e for e in run.evidence if e.cause == "firewall"]
    assert not [m for m in run.measurements if m.name == "host_port_state"]


def test_the_unit_own_echoes_alone_show_it_reached_its_host():
    run = _run("filtered", answered=None, unit_echo_loss=0.5)
    assert wrong_host_address(run).errors


def test_a_host_nobody_reaches_is_still_the_firewall():
    run = _run("filtered", answered=0.0, unit_echo_loss=1.0)
    check_bench(run).apply(run)
    verdict, causes = decide(run)
    assert run.bench_errors == [] and verdict == "fault" and causes[0].id == "firewall"


def test_an_open_port_is_no_finding():
    run = _run("open", answered=1.0, unit_echo_loss=0.0)
    assert not wrong_host_address(run) and run.bench_errors == []


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
    check_bench(run).apply(run)
    assert run.bench_errors == []
    assert [(e.cause, e.test) for e in run.evidence] == [("msr_head", "tests/hil/test_read_paths.py::test_swipe")]


def test_one_or_two_failing_read_paths_keep_their_evidence():
    for paths in (("swipe",), ("insert", "tap")):
        run = _read_path_evidence(*paths)
        before = list(run.evidence)
        check_bench(run).apply(run)
        assert run.evidence == before


def test_the_rules_return_what_they_found_and_leave_the_run_alone():
    run = _run("refused", answered=1.0, unit_echo_loss=0.0)
    measurements, evidence = list(run.measurements), list(run.evidence)
    found = wrong_host_address(run)
    assert (run.measurements, run.evidence, run.bench_errors) == (measurements, evidence, [])
    assert [m.name for m in found.withdrawn_measurements] == ["host_port_state"]
    assert [(e.cause, e.measurement) for e in found.withdrawn_evidence] == [("firewall", "host_port_state")]
    assert len(found.errors) == 1 and "[host] address" in found.errors[0]
    assert check_bench(run).errors == found.errors and run.evidence == evidence


def test_every_path_refused_withdraws_the_sales_evidence_only():
    run = _read_path_evidence("swipe", "insert", "tap")
    found = refusals_on_every_path(run)
    assert found.errors == [] and [e.test for e in found.withdrawn_evidence] == [
        SALES_TEST.format(p) for p in ("swipe", "insert", "tap")]
    assert not refusals_on_every_path(_read_path_evidence("swipe", "tap"))


def test_applying_twice_names_a_bench_error_once():
    run = _run("refused", answered=1.0, unit_echo_loss=0.0)
    found = check_bench(run)
    found.apply(run)
    found.apply(run)
    assert len(run.bench_errors) == 1
    assert not check_bench(run) and BenchCheck().errors == []
