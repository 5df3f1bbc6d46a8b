"""Evidence to verdict: bench/spec/evidence.py (Recorder), bench/diagnosis/ranking.py, bench/core/limits.py."""
from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from posbench.diagnosis import ranking as diagnosis
from posbench.spec import taxonomy
from posbench.diagnosis.ranking import (
    EXIT_STATUS,
    PRIOR,
    REPORT_THRESHOLD,
    SCHEMA,
    code01_origin,
    decide,
    rank,
    summary_line,
    verdict_json,
)
from posbench.diagnosis.verdict import Verdict
from posbench.spec.evidence import STRENGTH, Evidence, Measurement, Recorder, RunRecord
from posbench.spec.evidence import TestOutcome as Outcome  # not collected as a test class
from posbench.core.limits import Limit

pytestmark = pytest.mark.timeout(30)

NODE = "tests/hil/test_status.py::test_memory"


def ev(cause: str, strength: str | float = "strong", test: str = NODE, note: str = "n") -> Evidence:
    ratio = STRENGTH[strength] if isinstance(strength, str) else float(strength)
    return Evidence(cause, ratio, test, note)


def posterior(*ratios: float, prior: float = PRIOR) -> float:
    odds = prior / (1 - prior) * math.prod(ratios)
    return odds / (1 + odds)


def run_with(*evidence: Evidence, tests: list[Outcome] | None = None) -> RunRecord:
    """A run in which something was measured (one passing measurement) plus ``evidence``."""
    return RunRecord(evidence=list(evidence), tests=tests or [],
                     measurements=[Measurement("free_memory_kib", 20000, "KiB", ">= 8192", True, "t::a")])


# -- rank --------------------------------------------------------------------------------------
def test_strength_ratios_increase():
    assert STRENGTH["weak"] < STRENGTH["moderate"] < STRENGTH["strong"] < STRENGTH["decisive"]
    assert all(r > 1 for r in STRENGTH.values())
    assert 0 < PRIOR < REPORT_THRESHOLD < 1


def test_rank_empty():
    assert rank([]) == []


def test_rank_one_strong_confidence():
    (cause,) = rank([ev("msr_head", "strong")])
    assert cause.id == "msr_head" and cause.group == "hardware"
    assert cause.action == taxonomy.get("msr_head").action
    assert cause.confidence == pytest.approx(posterior(STRENGTH["strong"]))
    # 0.05 prior, LR 60: odds 60/19 -> 0.76
    assert cause.confidence == pytest.approx(60 / 79)
    assert cause.confidence >= REPORT_THRESHOLD


def test_rank_two_strong_beat_one():
    one = rank([ev("msr_head", "strong")])[0].confidence
    two = rank([ev("msr_head", "strong"), ev("msr_head", "strong")])[0].confidence
    assert two == pytest.approx(posterior(60.0, 60.0))
    assert two == pytest.approx(3600 / 3619)
    assert one < two < 1.0


def test_rank_single_weak_or_moderate_stays_below_threshold():
    for strength in ("weak", "moderate"):
        (cause,) = rank([ev("application", strength)])
        assert cause.confidence == pytest.approx(posterior(STRENGTH[strength]))
        assert cause.confidence < REPORT_THRESHOLD


def test_rank_ratio_below_one_lowers_confidence():
    (cause,) = rank([ev("resources", 0.5)])
    assert cause.confidence < PRIOR
    assert cause.confidence == pytest.approx(posterior(0.5))


def test_rank_prior_parameter():
    (default,) = rank([ev("firewall", "moderate")])
    (higher,) = rank([ev("firewall", "moderate")], prior=0.2)
    assert default.confidence == pytest.approx(posterior(15.0))
    assert higher.confidence == pytest.approx(posterior(15.0, prior=0.2))
    assert higher.confidence > default.confidence
    (neutral,) = rank([ev("firewall", 1.0)], prior=0.3)
    assert neutral.confidence == pytest.approx(0.3)


def test_rank_orders_by_confidence_then_id():
    evidence = [
        ev("application", "weak"),
        ev("msr_head", "decisive"),
        ev("resources", "strong"),
        ev("resources", "moderate"),
        ev("data_loss", "strong"),
        ev("chip_contacts", "strong"),
    ]
    ranked = rank(evidence)
    assert [c.id for c in ranked] == ["resources", "msr_head", "chip_contacts", "data_loss", "application"]
    confidences = [c.confidence for c in ranked]
    assert confidences == sorted(confidences, reverse=True)
    # evidence of a cause is listed strongest first, and only its own
    resources = ranked[0]
    assert [e.ratio for e in resources.evidence] == [60.0, 15.0]
    assert all(e.cause == "resources" for e in resources.evidence)


def test_rank_unknown_cause_raises():
    with pytest.raises(KeyError, match="unknown cause id 'nope'"):
        rank([Evidence("nope", 4.0, NODE, "x")])


def test_ranked_cause_json():
    (cause,) = rank([ev("msr_head", "strong", note="7/15 swipes failed LRC")])
    doc = cause.to_json()
    assert doc["id"] == "msr_head" and doc["name"] == "Magstripe read head" and doc["group"] == "hardware"
    assert doc["confidence"] == round(60 / 79, 3)
    assert doc["action"] == taxonomy.get("msr_head").action
    assert doc["evidence"][0]["note"] == "7/15 swipes failed LRC"
    assert doc["evidence"][0]["test"] == NODE


# -- decide ------------------------------------------------------------------------------------
def test_decide_healthy_is_pass_without_causes():
    run = run_with(tests=[Outcome("t::a", "passed", 0.1), Outcome("t::b", "skipped", 0.0)])
    assert decide(run) == ("pass", [])


def test_decide_nothing_measured_is_inconclusive():
    # e.g. a run interrupted before its first measurement: the unit has not passed anything
    assert decide(RunRecord()) == ("inconclusive", [])
    doc = verdict_json(RunRecord(), datetime.now(timezone.utc), 0.1)
    assert summary_line(Verdict.model_validate(doc)) == "INCONCLUSIVE: nothing was measured on the unit"


def test_decide_bench_error_wins():
    run = run_with(ev("msr_head", "decisive"), tests=[Outcome("t::a", "failed", 1.0)])
    run.bench_errors.append("tests/hil/test_status.py::test_x: terminal: opening ECR port failed")
    assert decide(run) == ("bench_error", [])
    assert EXIT_STATUS["bench_error"] == 2


@pytest.mark.parametrize("cause", ["issuer_referral", "operator_error"])
def test_decide_cause_that_does_not_blame_unit_is_pass(cause):
    run = run_with(ev(cause, "decisive"), tests=[Outcome("t::a", "failed", 0.2)])
    verdict, causes = decide(run)
    assert verdict == "pass"
    assert [c.id for c in causes] == [cause]  # still listed
    assert EXIT_STATUS[verdict] == 0


def test_decide_issuer_and_operator_together_is_pass():
    verdict, causes = decide(run_with(ev("issuer_referral", "decisive"), ev("operator_error", "decisive")))
    assert verdict == "pass"
    assert {c.id for c in causes} == {"issuer_referral", "operator_error"}


@pytest.mark.parametrize("cause", [c.id for c in taxonomy.CAUSES.values() if c.blames_unit])
def test_decide_any_unit_blaming_cause_is_fault(cause):
    verdict, causes = decide(run_with(ev(cause, "strong"), ev("issuer_referral", "decisive")))
    assert verdict == "fault"
    assert cause in [c.id for c in causes]
    assert EXIT_STATUS[verdict] == 1


def test_decide_blaming_cause_below_threshold_is_not_reported():
    # one moderate observation: confidence ~0.23, below the threshold
    run = run_with(ev("resources", "moderate"), ev("issuer_referral", "decisive"))
    verdict, causes = decide(run)
    assert verdict == "pass"
    assert [c.id for c in causes] == ["issuer_referral"]


def test_decide_threshold_boundary():
    # a ratio that puts the posterior exactly on the threshold
    ratio = (REPORT_THRESHOLD / (1 - REPORT_THRESHOLD)) / (PRIOR / (1 - PRIOR))
    (cause,) = rank([ev("resources", ratio)])
    assert cause.confidence == pytest.approx(REPORT_THRESHOLD)
    just_over = ratio * 1.0001
    assert decide(run_with(ev("resources", just_over)))[0] == "fault"
    assert decide(run_with(ev("resources", ratio * 0.999)))[0] == "pass"


@pytest.mark.parametrize("outcome", ["failed", "error"])
def test_decide_failed_tests_without_causes_is_inconclusive(outcome):
    run = run_with(ev("application", "weak"),
                   tests=[Outcome("t::a", "passed", 0.1), Outcome("t::b", outcome, 0.3)])
    verdict, causes = decide(run)
    assert verdict == "inconclusive"
    assert causes == []
    assert EXIT_STATUS[verdict] == 1


def test_decide_fault_lists_every_reported_cause_sorted():
    run = run_with(ev("msr_head", "strong"), ev("resources", "decisive"), ev("issuer_referral", "decisive"),
                   ev("firewall", "weak"))
    verdict, causes = decide(run)
    assert verdict == "fault"
    assert [c.id for c in causes] == ["issuer_referral", "resources", "msr_head"]
    assert all(c.confidence >= REPORT_THRESHOLD for c in causes)


# -- code01 origin -----------------------------------------------------------------------------
def test_code01_origin():
    run = RunRecord()
    rec = Recorder(run, "t::code01")
    assert code01_origin(run) == "none"
    rec.code01("issuer", "000101", "01")
    assert code01_origin(run) == "issuer"
    rec.code01("terminal", "000102", None, "no_keys")
    assert code01_origin(run) == "terminal"
    rec.code01("issuer", "000103", "01")
    assert code01_origin(run) == "terminal"  # one terminal-made 01 beats any number of issuer ones
    assert [o.stan for o in run.code01] == ["000101", "000102", "000103"]
    assert run.code01[1].reason == "no_keys" and run.code01[1].test == "t::code01"


def test_code01_bad_origin_rejected():
    with pytest.raises(ValueError, match="issuer or terminal"):
        Recorder(RunRecord(), "t").code01("host", "000001", "01")


# -- verdict JSON and summary ------------------------------------------------------------------
STARTED = datetime(2024, 5, 1, 14, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))


def full_run() -> RunRecord:
    run = RunRecord()
    rec = Recorder(run, "tests/hil/test_status.py::test_memory")
    rec.unit(serial="PT100-0000123", model="PT100", firmware="3.4.2")
    rec.measure("free_memory_kib", 2457, "KiB", Limit(min=8192), cause="resources")
    rec.measure("ecr_reply_p95_s", 0.05, "s", Limit(max=0.5), cause="resources")
    rec.evidence("resources", "moderate", "latency grows with every command")
    rec.code01("terminal", "000042", None, "no_keys")
    run.tests += [Outcome("tests/hil/test_status.py::test_memory", "failed", 0.12345),
                  Outcome("tests/hil/test_identity.py::test_identity", "passed", 0.5)]
    return run


def test_verdict_json_schema():
    doc = verdict_json(full_run(), STARTED, 12.34567)
    json.dumps(doc)  # serialisable as is
    assert doc["schema"] == SCHEMA == "posbench.verdict/1"
    for key in ("schema", "unit", "verdict", "code01_origin", "causes", "measurements", "tests",
                "started", "duration_s"):
        assert key in doc
    assert doc["unit"] == {"serial": "PT100-0000123", "model": "PT100", "firmware": "3.4.2"}
    assert doc["verdict"] in ("pass", "fault", "inconclusive", "bench_error")
    assert doc["verdict"] == "fault"
    assert doc["code01_origin"] in ("issuer", "terminal", "none")
    assert doc["code01_origin"] == "terminal"
    assert isinstance(doc["causes"], list) and len(doc["causes"]) == 1
    cause = doc["causes"][0]
    assert cause["id"] == "resources" and cause["group"] == "software"
    assert isinstance(cause["confidence"], float) and REPORT_THRESHOLD <= cause["confidence"] <= 1
    assert cause["confidence"] == round(posterior(60.0, 15.0), 3)
    assert isinstance(cause["action"], str) and cause["action"]
    assert len(cause["evidence"]) == 2
    for item in cause["evidence"]:
        for key, kind in (("test", str), ("measurement", str), ("limit", str), ("note", str)):
            assert isinstance(item[key], kind), key
        assert "value" in item
    first = cause["evidence"][0]  # strongest first: the failed measurement
    assert (first["measurement"], first["value"], first["limit"]) == ("free_memory_kib", 2457, ">= 8192")
    assert first["test"] == "tests/hil/test_status.py::test_memory"
    assert isinstance(doc["measurements"], list) and len(doc["measurements"]) == 2
    for m in doc["measurements"]:
        assert isinstance(m["name"], str) and isinstance(m["unit"], str)
        assert isinstance(m["limit"], str) and isinstance(m["passed"], bool)
        assert isinstance(m["value"], (int, float, str, type(None)))
    assert [m["passed"] for m in doc["measurements"]] == [False, True]
    assert doc["measurements"][1]["limit"] == "<= 0.5"
    assert doc["tests"] == [
        {"nodeid": "tests/hil/test_status.py::test_memory", "outcome": "failed", "duration_s": 0.123},
        {"nodeid": "tests/hil/test_identity.py::test_identity", "outcome": "passed", "duration_s": 0.5}]
    assert doc["started"] == "2024-05-01T12:30:05+00:00"
    assert datetime.fromisoformat(doc["started"]) == STARTED.replace(microsecond=0)
    assert doc["duration_s"] == 12.346 and isinstance(doc["duration_s"], float)
    assert doc["code01"] == [{"origin": "terminal", "stan": "000042", "host_code": None, "reason": "no_keys"}]
    assert "bench_errors" not in doc


def test_verdict_json_healthy():
    run = run_with(tests=[Outcome("t::a", "passed", 1.0)])
    doc = verdict_json(run, STARTED, 1.0)
    assert doc["verdict"] == "pass" and doc["causes"] == [] and doc["code01_origin"] == "none"
    assert doc["unit"] == {"serial": "", "model": "", "firmware": ""}
    assert "code01" not in doc and "bench_errors" not in doc
    assert summary_line(Verdict.model_validate(doc)) == "no fault found"


def test_verdict_json_bench_error():
    run = full_run()
    run.bench_errors += ["terminal: opening ECR port /dev/ttyUSB0 failed", "host simulator: gone"]
    doc = verdict_json(run, STARTED, 3.0)
    assert doc["verdict"] == "bench_error" and doc["causes"] == []
    assert doc["bench_errors"] == run.bench_errors
    assert summary_line(Verdict.model_validate(doc)) == ("BENCH ERROR: the bench failed, the unit was not judged: "
                                 "terminal: opening ECR port /dev/ttyUSB0 failed; host simulator: gone")


def test_summary_line_fault():
    doc = verdict_json(run_with(ev("msr_head", "strong"), ev("msr_head", "strong")), STARTED, 1.0)
    assert summary_line(Verdict.model_validate(doc)) == ("FAULT: Magstripe read head (100% confidence): "
                                 + taxonomy.get("msr_head").action)


def test_summary_line_fault_names_top_cause():
    doc = verdict_json(run_with(ev("application", "strong"), ev("resources", "decisive")), STARTED, 1.0)
    assert summary_line(Verdict.model_validate(doc)).startswith("FAULT: Memory or CPU exhausted (93% confidence): ")
    assert "resources" not in summary_line(Verdict.model_validate(doc))  # the name, not the id


def test_summary_line_inconclusive():
    doc = verdict_json(run_with(tests=[Outcome("t::a", "failed", 1.0)]), STARTED, 1.0)
    assert summary_line(Verdict.model_validate(doc)) == "INCONCLUSIVE: tests failed but no cause reached the reporting threshold"


def test_summary_line_issuer_referral():
    run = run_with(ev("issuer_referral", "decisive"))
    Recorder(run, "t").code01("issuer", "000007", "01")
    doc = verdict_json(run, STARTED, 1.0)
    assert doc["verdict"] == "pass" and doc["code01_origin"] == "issuer"
    assert summary_line(Verdict.model_validate(doc)) == f"no fault found (Issuer referral: {taxonomy.get('issuer_referral').meaning})"


def test_now_is_utc():
    assert diagnosis.now().tzinfo is not None
    assert diagnosis.now().utcoffset() == timedelta(0)


# -- Recorder.measure --------------------------------------------------------------------------
def test_measure_failed_limit_creates_evidence():
    run = RunRecord()
    rec = Recorder(run, NODE)
    assert rec.measure("free_memory_kib", 2000, "KiB", Limit(min=8192), cause="resources") is False
    (m,) = run.measurements
    assert (m.name, m.value, m.unit, m.limit, m.passed, m.test) == \
        ("free_memory_kib", 2000, "KiB", ">= 8192", False, NODE)
    (e,) = run.evidence
    assert e.cause == "resources" and e.ratio == STRENGTH["strong"]
    assert (e.measurement, e.value, e.limit, e.test) == ("free_memory_kib", 2000, ">= 8192", NODE)
    assert e.note == "free_memory_kib = 2000 KiB, limit >= 8192"
    assert rec.failed() == [m]


def test_measure_passed_limit_creates_no_evidence():
    run = RunRecord()
    rec = Recorder(run, NODE)
    assert rec.measure("free_memory_kib", 20000, "KiB", Limit(min=8192), cause="resources") is True
    assert run.measurements[0].passed is True
    assert run.evidence == []
    assert rec.failed() == []


def test_measure_strength_and_note():
    run = RunRecord()
    Recorder(run, NODE).measure("ecr_naks", 5, "count", Limit(max=2), cause="pcb_intermittent",
                                strength="weak", note="five NAKs")
    (e,) = run.evidence
    assert e.ratio == STRENGTH["weak"] and e.note == "five NAKs"


def test_measure_without_cause_records_no_evidence():
    run = RunRecord()
    assert Recorder(run, NODE).measure("x", 5, "", Limit(max=2)) is False
    assert len(run.measurements) == 1 and run.evidence == []


def test_measure_none_value_fails():
    run = RunRecord()
    assert Recorder(run, NODE).measure("x", None, "", Limit(max=2), cause="application") is False
    assert run.evidence[0].cause == "application"


def test_measure_unknown_cause_raises():
    run = RunRecord()
    with pytest.raises(KeyError, match="unknown cause id 'msr_haed'"):
        Recorder(run, NODE).measure("x", 5, "", Limit(max=2), cause="msr_haed")
    assert run.evidence == []


def test_evidence_unknown_cause_or_strength_raises():
    rec = Recorder(RunRecord(), NODE)
    with pytest.raises(KeyError, match="known: msr_head"):
        rec.evidence("not_a_cause", "strong", "x")
    with pytest.raises(KeyError):
        rec.evidence("msr_head", "overwhelming", "x")
    rec.evidence("msr_head", 7.5, "numeric ratio")
    assert rec.run.evidence[0].ratio == 7.5


def test_failed_is_per_test():
    run = RunRecord()
    a, b = Recorder(run, "t::a"), Recorder(run, "t::b")
    a.measure("m", 5, "", Limit(max=1))
    b.measure("m", 0, "", Limit(max=1))
    assert [m.test for m in a.failed()] == ["t::a"]
    assert b.failed() == []


def test_recorder_unit_fields_are_strings():
    run = RunRecord()
    Recorder(run, "t").unit(serial="X1", firmware=342)  # type: ignore[arg-type]
    assert run.unit == {"serial": "X1", "firmware": "342"}


# -- Limit -------------------------------------------------------------------------------------
def test_limit_min():
    lim = Limit(min=8192)
    assert str(lim) == ">= 8192"
    assert lim.check(8192) and lim.check(10_000) and lim.check(8192.0)
    assert not lim.check(8191) and not lim.check(-1)


def test_limit_max():
    lim = Limit(max=0.5)
    assert str(lim) == "<= 0.5"
    assert lim.check(0.5) and lim.check(0) and lim.check(-3)
    assert not lim.check(0.5001)


def test_limit_min_and_max():
    lim = Limit(min=1, max=2.5)
    assert str(lim) == "1 .. 2.5"
    assert lim.check(1) and lim.check(2.5) and lim.check(2)
    assert not lim.check(0.99) and not lim.check(2.51)
    assert str(Limit(min=3, max=3)) == "3 .. 3" and Limit(min=3, max=3).check(3)


def test_limit_equals():
    lim = Limit(equals="3.4.2")
    assert str(lim) == "== 3.4.2"
    assert lim.check("3.4.2")
    assert not lim.check("3.4.1") and not lim.check(None)
    num = Limit(equals=1)
    assert str(num) == "== 1.0"
    assert num.check(1) and num.check(1.0)
    assert not num.check(2)


def test_limit_non_numbers_fail_numeric_bounds():
    lim = Limit(min=0, max=10)
    assert not lim.check("5")
    assert not lim.check(None)
    assert not lim.check(float("nan"))
    assert not Limit(min=0.98).check(float("nan"))  # NaN must not slip past a min-only limit
    assert not Limit(max=1).check(float("nan"))
    assert not Limit(min=0).check(float("-inf")) and Limit(min=0).check(float("inf"))


def test_limit_validation():
    with pytest.raises(ValueError, match="min, max or equals"):
        Limit()
    with pytest.raises(ValueError, match="min is above max"):
        Limit(min=2, max=1)
    with pytest.raises(ValueError):
        Limit(min=1, typo=2)  # type: ignore[call-arg]


def test_two_faults_at_once_are_both_reported():
    run = RunRecord(evidence=[ev("msr_head", "decisive"), ev("nfc_antenna", "decisive"),
                              ev("application", "weak")],
                    measurements=[Measurement("x", 1, "", "<= 0", False, NODE)])
    verdict, causes = decide(run)
    assert verdict == "fault"
    assert {c.id for c in causes} == {"msr_head", "nfc_antenna"}


def test_self_contradicting_evidence_is_inconclusive_with_the_reason():
    run = RunRecord(evidence=[ev("power_supply", "strong", note="resets while the supply sagged"),
                              ev("power_supply", 1 / 60, note="the supply stayed steady at every failure")],
                    measurements=[Measurement("x", 1, "", "<= 0", False, NODE)])
    verdict, causes = decide(run)
    assert (verdict, causes) == ("inconclusive", [])
    doc = verdict_json(run, datetime.now(timezone.utc), 1.0)
    assert doc["contradictions"] and "Power supply" in doc["contradictions"][0]
    assert "contradicts itself" in summary_line(Verdict.model_validate(doc)) and "steady" in summary_line(Verdict.model_validate(doc))


def test_weak_evidence_against_does_not_count_as_a_contradiction():
    run = RunRecord(evidence=[ev("power_supply", "decisive"), ev("power_supply", 1 / 4)],
                    measurements=[Measurement("x", 1, "", "<= 0", False, NODE)])
    assert decide(run)[0] == "fault"
