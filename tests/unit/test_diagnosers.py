"""Rules across tests that tell a wrong bench description from a fault at the unit's site."""
from __future__ import annotations

from posbench.diagnosers import apply_bench_rules, wrong_host_address
from posbench.diagnosis import decide
from posbench.evidence import Recorder, RunRecord
from posbench.limits import Limit

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
