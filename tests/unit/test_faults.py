"""--fault ID[=SEVERITY] parsing of the virtual bench (bench/sim/faults.py)."""
from __future__ import annotations

import os

import pytest

from posbench.spec import taxonomy
from posbench.sim.unit.faults import INJECTABLE, NETWORK, FaultSpecError, format_faults, parse_fault, parse_faults

pytestmark = pytest.mark.timeout(30)


def test_injectable_ids_are_known_causes():
    assert INJECTABLE
    assert all(cause in taxonomy.CAUSES for cause in INJECTABLE)


@pytest.mark.parametrize("cause", INJECTABLE)
def test_default_severity_is_one(cause):
    """A network fault needs the network lab: where it cannot run (not root), asking for one is
    refused with the reason, never a lab half made."""
    from posbench.core.netns import have_netns
    lab, reason = have_netns()
    if cause in NETWORK and not lab:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the network lab: {reason}")
        with pytest.raises(FaultSpecError, match="network lab"):
            parse_fault(cause)
        return
    assert parse_fault(cause) == (cause, 1.0)


@pytest.mark.parametrize("text, expected", [
    ("resources=0.4", ("resources", 0.4)),
    ("data_loss=1", ("data_loss", 1.0)),
    ("maintenance=1.0", ("maintenance", 1.0)),
    ("application=1e-3", ("application", 0.001)),
    ("  operator_error=0.25\n", ("operator_error", 0.25)),
])
def test_parse_fault_with_severity(text, expected):
    cause, severity = parse_fault(text)
    assert cause == expected[0]
    assert severity == pytest.approx(expected[1])
    assert isinstance(severity, float)


@pytest.mark.parametrize("text, bad", [
    ("resources=0", "0"),
    ("resources=-0.5", "-0.5"),
    ("resources=1.01", "1.01"),
    ("resources=2", "2"),
    ("resources=inf", "inf"),
])
def test_severity_out_of_range_rejected(text, bad):
    with pytest.raises(FaultSpecError) as info:
        parse_fault(text)
    msg = str(info.value)
    assert "resources" in msg and "(0, 1]" in msg


def test_severity_nan_rejected():
    with pytest.raises(FaultSpecError, match=r"\(0, 1\]"):
        parse_fault("resources=nan")


@pytest.mark.parametrize("sev", ["x", "", "high", "0,5"])
def test_severity_not_a_number_rejected(sev):
    with pytest.raises(FaultSpecError) as info:
        parse_fault(f"resources={sev}")
    msg = str(info.value)
    assert f"{sev!r}" in msg and "resources" in msg and "not a number" in msg


@pytest.mark.parametrize("text", ["msr_haed", "nope=0.5", "", "RESOURCES", "=0.5"])
def test_unknown_cause_rejected(text):
    with pytest.raises(FaultSpecError) as info:
        parse_fault(text)
    msg = str(info.value)
    assert "unknown cause id" in msg
    assert repr(text.partition("=")[0]) in msg
    for cause in taxonomy.CAUSES:  # lists the ids that exist
        assert cause in msg


def test_every_cause_of_the_taxonomy_can_be_injected():
    assert set(INJECTABLE) == set(taxonomy.CAUSES)


def test_a_cause_the_bench_cannot_produce_is_refused(monkeypatch):
    from posbench.sim.unit import faults
    monkeypatch.setattr(faults, "INJECTABLE", ("resources",))
    with pytest.raises(FaultSpecError, match="cannot inject 'msr_head' yet"):
        parse_fault("msr_head")


def test_fault_spec_error_is_value_error():
    assert issubclass(FaultSpecError, ValueError)


def test_parse_faults():
    assert parse_faults([]) == {}
    assert parse_faults(("resources=0.5", "data_loss")) == {"resources": 0.5, "data_loss": 1.0}
    # the last one of a cause wins
    assert parse_faults(["resources=0.5", "resources=0.2"]) == {"resources": 0.2}
    with pytest.raises(FaultSpecError, match="no_such_cause"):
        parse_faults(["resources", "no_such_cause"])


def test_format_faults_round_trip():
    faults = {"resources": 0.5, "data_loss": 1.0, "application": 0.125}
    texts = format_faults(faults)
    assert texts == ["application=0.125", "data_loss=1", "resources=0.5"]
    assert parse_faults(texts) == faults
