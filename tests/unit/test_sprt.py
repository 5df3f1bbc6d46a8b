"""Unit tests for the SPRT read-health test and the Wilson interval (bench/spec/sprt.py)."""
from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.core.errors import BenchError, PortLost, ProtocolError, UnitNotResponding
from posbench.spec.sprt import (Sprt, expected_trials, operating_characteristic,
                        wilson_interval)

pytestmark = pytest.mark.timeout(60)

# the profile's read-test plan (the benchmark uses the same)
PLAN = dict(p0=0.02, p1=0.25, alpha=0.01, beta=0.05)
FAIL_STEP = math.log(0.25 / 0.02)      # 2.526 per failed read
OK_STEP = math.log(0.75 / 0.98)        # -0.2675 per good read


def simulate(p: float, units: int, seed: int, max_trials: int = 50, **plan) -> list[Sprt]:
    rng = random.Random(seed)
    plan = plan or PLAN
    out = []
    for _ in range(units):
        test = Sprt(max_trials=max_trials, **plan)
        while test.update(rng.random() < p) == "continue":
            pass
        out.append(test)
    return out


# -- bounds and known decisions ---------------------------------------------------------------
def test_bounds_are_walds():
    a, b = Sprt(max_trials=50, **PLAN).bounds
    assert a == pytest.approx(math.log(0.95 / 0.01)) == pytest.approx(4.5539, abs=1e-4)
    assert b == pytest.approx(math.log(0.05 / 0.99)) == pytest.approx(-2.9857, abs=1e-4)


def test_twelve_good_reads_make_a_healthy_unit():
    # 11 good reads: LLR = -2.94, still above B = -2.99; the 12th crosses it
    test = Sprt(max_trials=50, **PLAN)
    assert [test.update(False) for _ in range(11)] == ["continue"] * 11
    assert test.llr == pytest.approx(11 * OK_STEP)
    assert test.update(False) == "healthy"
    assert (test.decision, test.trials, test.failures, test.truncated) == ("healthy", 12, 0, False)


def test_two_failed_reads_in_a_row_make_a_faulty_unit():
    test = Sprt(max_trials=50, **PLAN)
    assert test.update(True) == "continue"          # 2.53 < A = 4.55
    assert test.update(True) == "faulty"            # 5.05 >= A
    assert test.llr == pytest.approx(2 * FAIL_STEP)
    assert test.failure_rate() == 1.0


def test_one_early_failure_needs_many_good_reads_to_clear():
    # after one failure the LLR is 2.53; healthy needs LLR <= -2.99, i.e. 21 good reads
    test = Sprt(max_trials=50, **PLAN)
    test.update(True)
    goods = 0
    while test.update(False) == "continue":
        goods += 1
    assert test.decision == "healthy" and goods + 1 == 21
    assert FAIL_STEP + 20 * OK_STEP > test.bounds[1] >= FAIL_STEP + 21 * OK_STEP


def test_decision_is_final_and_later_reads_are_ignored():
    test = Sprt(max_trials=50, **PLAN)
    test.update(True)
    test.update(True)
    assert test.decision == "faulty"
    for _ in range(30):
        assert test.update(False) == "faulty"
    assert (test.trials, test.failures) == (2, 2)


def test_truncation_by_likelihood_and_undecided():
    # 1 failure then 4 good reads: LLR = 2.53 - 1.07 = 1.46 > 0, between the bounds at the cap
    for rule, verdict in (("likelihood", "faulty"), ("undecided", "undecided")):
        test = Sprt(max_trials=5, on_truncation=rule, **PLAN)
        outcomes = [test.update(f) for f in (True, False, False, False, False)]
        assert outcomes == ["continue"] * 4 + [verdict]
        assert test.truncated and test.result().truncated
        assert test.result().verdict == verdict
    # 5 good reads: LLR = -1.34 < 0, not below B: healthy by likelihood at the cap
    test = Sprt(max_trials=5, **PLAN)
    for _ in range(5):
        test.update(False)
    assert test.decision == "healthy" and test.truncated


def test_crossing_on_the_last_read_is_not_truncated():
    test = Sprt(max_trials=12, **PLAN)
    for _ in range(12):
        test.update(False)
    assert test.decision == "healthy" and not test.truncated


@pytest.mark.parametrize("kwargs", [
    dict(p0=0.3, p1=0.2, alpha=0.01, beta=0.05, max_trials=10),
    dict(p0=0.0, p1=0.2, alpha=0.01, beta=0.05, max_trials=10),
    dict(p0=0.1, p1=1.0, alpha=0.01, beta=0.05, max_trials=10),
    dict(p0=0.1, p1=0.2, alpha=0.0, beta=0.05, max_trials=10),
    dict(p0=0.1, p1=0.2, alpha=0.01, beta=0.6, max_trials=10),
    dict(p0=0.1, p1=0.2, alpha=0.01, beta=0.05, max_trials=0),
    dict(p0=0.1, p1=0.2, alpha=0.01, beta=0.05, max_trials=10, on_truncation="coin"),
])
def test_bad_plans_are_refused(kwargs):
    with pytest.raises(ValueError):
        Sprt(**kwargs)


# -- Wilson interval --------------------------------------------------------------------------
@pytest.mark.parametrize("failures, trials, lo, hi", [
    (0, 10, 0.0, 0.2775),        # the rule of thumb "0/10 -> up to 28 %"
    (5, 10, 0.2366, 0.7634),
    (81, 263, 0.2553, 0.3662),   # Newcombe (1998), Stat. Med. 17:857, table I
    (15, 148, 0.0624, 0.1605),   # idem
    (10, 10, 0.7225, 1.0),
])
def test_wilson_known_values(failures, trials, lo, hi):
    got = wilson_interval(failures, trials)
    assert got == pytest.approx((lo, hi), abs=1e-4)


def test_wilson_edges_and_confidence():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo90, hi90 = wilson_interval(3, 30, 0.90)
    lo99, hi99 = wilson_interval(3, 30, 0.99)
    assert lo99 < lo90 < 0.1 < hi90 < hi99
    for bad in ((-1, 10), (11, 10), (1, -1)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, 1.0)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.floats(0.5, 0.999))
def test_wilson_contains_the_observed_rate(ft, confidence):
    failures, trials = ft
    lo, hi = wilson_interval(failures, trials, confidence)
    rate = failures / trials if trials else 0.5
    assert 0.0 <= lo <= rate <= hi <= 1.0


# -- error rates: simulation, the exact operating characteristic and Wald's promise -----------
def test_exact_error_rates_meet_walds_inequalities():
    # Wald: alpha' <= alpha / (1 - beta), beta' <= beta / (1 - alpha) (truncation at 50 is
    # decided by likelihood, which moves these by well under 1e-3 for this plan)
    at_p0 = operating_characteristic(0.02, max_trials=50, **PLAN)
    at_p1 = operating_characteristic(0.25, max_trials=50, **PLAN)
    assert at_p0.p_faulty <= 0.01 / 0.95
    assert at_p1.p_healthy <= 0.05 / 0.99
    for oc in (at_p0, at_p1):
        assert oc.p_faulty + oc.p_healthy + oc.p_undecided == pytest.approx(1.0)
        assert sum(oc.trials_pmf) == pytest.approx(1.0)


@pytest.mark.parametrize("p, seed", [(0.02, 1), (0.25, 2), (0.1, 3)])
def test_simulated_verdicts_match_the_exact_operating_characteristic(p, seed):
    units = 4000
    tests = simulate(p, units, seed)
    oc = operating_characteristic(p, max_trials=50, **PLAN)
    faulty = sum(t.decision == "faulty" for t in tests) / units
    truncated = sum(t.truncated for t in tests) / units
    mean_trials = sum(t.trials for t in tests) / units
    # 4.5 standard errors: a false failure about once in 150 000 runs with a new seed
    se = math.sqrt(max(oc.p_faulty * (1 - oc.p_faulty), 1e-4) / units)
    assert abs(faulty - oc.p_faulty) < 4.5 * se
    se_t = math.sqrt(max(oc.p_truncated * (1 - oc.p_truncated), 1e-4) / units)
    assert abs(truncated - oc.p_truncated) < 4.5 * se_t
    var = sum((n - oc.mean_trials) ** 2 * q for n, q in enumerate(oc.trials_pmf))
    assert abs(mean_trials - oc.mean_trials) < 4.5 * math.sqrt(var / units)
    assert all(1 <= t.trials <= 50 for t in tests)


def test_simulated_error_rates_are_near_alpha_and_beta():
    units = 4000
    false_alarms = sum(t.decision == "faulty" for t in simulate(0.02, units, seed=11)) / units
    misses = sum(t.decision == "healthy" for t in simulate(0.25, units, seed=12)) / units
    # at most the designed rate (Wald's bounds are conservative) plus 4.5 binomial SE
    assert false_alarms <= 0.01 / 0.95 + 4.5 * math.sqrt(0.0105 * 0.9895 / units)
    assert misses <= 0.05 / 0.99 + 4.5 * math.sqrt(0.0505 * 0.9495 / units)
    # and not absurdly below them (a test that never calls anything faulty would pass above)
    assert misses > 0.01


# -- Wald's average sample number ------------------------------------------------------------
def test_asn_is_close_when_steps_are_small():
    plan = dict(p0=0.10, p1=0.15, alpha=0.05, beta=0.05)
    for p in (0.05, 0.10, 0.15, 0.2):
        exact = operating_characteristic(p, max_trials=5000, **plan).mean_trials
        assert expected_trials(p, **plan) == pytest.approx(exact, rel=0.07)


def test_asn_at_the_zero_drift_rate_and_extremes():
    plan = dict(p0=0.10, p1=0.15, alpha=0.05, beta=0.05)
    fs, os_ = math.log(0.15 / 0.10), math.log(0.85 / 0.90)
    p_star = -os_ / (fs - os_)                     # mean LLR step is zero here
    exact = operating_characteristic(p_star, max_trials=5000, **plan).mean_trials
    assert expected_trials(p_star, **plan) == pytest.approx(exact, rel=0.07)
    # the rate just beside it uses the other branch and must agree (continuity)
    assert expected_trials(p_star + 1e-6, **plan) == pytest.approx(expected_trials(p_star, **plan), rel=1e-3)
    assert expected_trials(0.0, **PLAN) == 12.0    # 12 good reads, as above
    assert expected_trials(1.0, **PLAN) == 2.0


def test_asn_underestimates_the_coarse_plan_by_its_overshoot_only():
    # the profile's plan has big steps (a failure is +2.5 against A = 4.6): Wald's ASN ignores
    # the overshoot of the bound and so comes out lower, but not by more than about a third
    for p in (0.005, 0.02, 0.1, 0.25, 0.4):
        exact = operating_characteristic(p, max_trials=2000, **PLAN).mean_trials
        assert 0.7 * exact <= expected_trials(p, **PLAN) <= exact


# -- the read loop: posbench.spec.readtest.decide_path --------------------------------------------
def scripted(items):
    """A read function that returns (or raises) the next of ``items``."""
    it = iter(items)

    def trial(n: int = 0):
        item = next(it)
        if isinstance(item, Exception):
            raise item
        return item
    return trial


def run_sprt(trial, max_trials: int, **plan):
    """``decide_path`` on a plan, the way a HIL read test runs it."""
    from posbench.setup.profile import SprtSpec
    from posbench.spec.readtest import decide_path
    result, interrupted, *_ = decide_path(SprtSpec(**plan, max_trials=max_trials, cards=["VISA-T1"]), trial)
    assert interrupted == 0
    return result


def test_run_sprt_counts_failure_reasons_and_unit_errors():
    trial = scripted(["lrc", "", UnitNotResponding("msr", "reading a swipe", "no data in 5 s"),
                      "parity"] + [""] * 100)
    res = run_sprt(trial, max_trials=50, **PLAN)
    assert res.verdict == "faulty" and res.trials == 3 and res.failures == 2
    assert res.reasons == {"lrc": 1, "timeout": 1}
    assert res.to_dict()["reasons"] == {"lrc": 1, "timeout": 1}
    assert "faulty after 3 reads" in res.summary() and "lrc 1" in res.summary()


def test_run_sprt_other_unit_errors_count_by_their_class():
    res = run_sprt(scripted([ProtocolError("bad LRC", device="msr"), "no_data", ""]),
                   max_trials=50, **PLAN)
    assert res.reasons == {"ProtocolError": 1, "no_data": 1} and res.verdict == "faulty"


def test_run_sprt_lets_bench_errors_through():
    calls = []

    def trial(n):
        calls.append(1)
        raise PortLost("msr reader", "reading a swipe")

    with pytest.raises(BenchError):
        run_sprt(trial, max_trials=50, **PLAN)
    assert len(calls) == 1


def test_run_sprt_healthy_report():
    res = run_sprt(lambda n: "", max_trials=50, **PLAN)
    assert (res.verdict, res.trials, res.failures, res.truncated) == ("healthy", 12, 0, False)
    assert res.interval() == pytest.approx((0.0, 0.2425), abs=1e-4)
    assert res.summary().startswith("healthy after 12 reads: 0/12 failed (0.0%, 95% CI 0.0%..24.2%)")


# -- properties ------------------------------------------------------------------------------
plans = st.tuples(st.floats(0.001, 0.5), st.floats(0.01, 0.99), st.floats(0.001, 0.2),
                  st.floats(0.001, 0.2), st.integers(1, 80)).filter(lambda t: t[0] < t[1] - 1e-3)


@settings(max_examples=150, deadline=None)
@given(plans, st.lists(st.booleans(), max_size=200), st.sampled_from(["likelihood", "undecided"]))
def test_trials_never_exceed_the_cap_and_decisions_are_stable(plan, reads, rule):
    p0, p1, alpha, beta, cap = plan
    test = Sprt(p0, p1, alpha, beta, cap, on_truncation=rule)
    first = None
    for failed in reads:
        d = test.update(failed)
        assert test.trials <= cap
        if first is not None:
            assert d == first
        elif d != "continue":
            first = d
            a, b = test.bounds
            assert test.truncated or test.llr >= a or test.llr <= b
            if not test.truncated:
                assert d == ("faulty" if test.llr >= a else "healthy")
    if len(reads) >= cap:
        assert test.done
    if test.done:
        assert test.result().verdict == test.decision
    assert 0 <= test.failures <= test.trials


@settings(max_examples=40, deadline=None)
@given(plans, st.floats(0.0, 1.0))
def test_operating_characteristic_is_a_distribution(plan, p):
    p0, p1, alpha, beta, cap = plan
    oc = operating_characteristic(p, p0, p1, alpha, beta, cap)
    assert oc.p_faulty + oc.p_healthy + oc.p_undecided == pytest.approx(1.0, abs=1e-9)
    assert sum(oc.trials_pmf) == pytest.approx(1.0, abs=1e-9)
    assert 1.0 - 1e-9 <= oc.mean_trials <= cap + 1e-9
    assert 1 <= oc.trials_quantile(0.95) <= cap
