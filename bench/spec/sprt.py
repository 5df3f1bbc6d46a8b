"""Deciding a read path's health with few reads: Wald's sequential probability ratio test.

Each read is a Bernoulli trial that either succeeds or fails. Two hypotheses about the unit's
failure rate p (a fraction of reads, 0..1), both from the DUT profile:

- H0, healthy: p = ``p0`` (the failure rate a good unit still shows: dirty cards, bad swipes)
- H1, faulty:  p = ``p1`` (> p0, the rate at which the unit must be repaired)

Error rates the test is designed for (Wald's bounds hold them approximately, usually a little
below the stated values):

- ``alpha`` = P(call a healthy unit faulty), the false-alarm rate (a needless repair)
- ``beta``  = P(call a faulty unit healthy), the miss rate (a broken unit sent back)

After each read the log-likelihood ratio LLR = log P(reads | p1) / P(reads | p0) is compared
with A = log((1 - beta) / alpha) (at or above: faulty) and B = log(beta / (1 - alpha)) (at or
below: healthy). Between the two the test reads again, up to ``max_trials``.

Truncation rule: when ``max_trials`` reads end between the bounds, the default rule
(``on_truncation="likelihood"``) decides faulty if LLR > 0 and healthy otherwise, i.e. by
whichever hypothesis explains the reads better. Wald's bounds no longer apply there, so the
result is flagged ``truncated`` and a report must say that alpha/beta are not guaranteed for
it. Why not simply "undecided": a repair technician needs a verdict after the last swipe, and
the cases that reach the cap sit in the indifference zone between p0 and p1, where either
verdict is acceptable by the profile's own definition; the likelihood comparison picks the
nearer one. ``on_truncation="undecided"`` is there for callers that prefer an inconclusive
verdict instead.

Besides the test: the observed failure rate with a Wilson score interval, Wald's approximate
average sample number (``expected_trials``), and the exact operating characteristic of the
truncated test by dynamic programming (``operating_characteristic``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

Decision = Literal["continue", "healthy", "faulty"]
Verdict = Literal["healthy", "faulty", "undecided"]
Truncation = Literal["likelihood", "undecided"]


def wilson_interval(failures: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``failures / trials``.

    Chosen over the normal (Wald) interval because it stays inside [0, 1] and is still
    sensible at 0 or ``trials`` failures, the usual case for a short read test.
    ``trials == 0`` gives the uninformative (0.0, 1.0).
    """
    if trials < 0 or not 0 <= failures <= trials:
        raise ValueError(f"need 0 <= failures <= trials, got {failures}/{trials}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if trials == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    n, p = trials, failures / trials
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # exact 0 and 1 at the extremes instead of rounding noise (1e-17 below zero, say)
    lo = 0.0 if failures == 0 else max(0.0, centre - half)
    hi = 1.0 if failures == trials else min(1.0, centre + half)
    return lo, hi


def _check_plan(p0: float, p1: float, alpha: float, beta: float, max_trials: int) -> None:
    if not 0.0 < p0 < p1 < 1.0:
        raise ValueError(f"need 0 < p0 < p1 < 1, got p0={p0!r}, p1={p1!r}")
    if not (0.0 < alpha < 0.5 and 0.0 < beta < 0.5):
        raise ValueError(f"need 0 < alpha, beta < 0.5, got alpha={alpha!r}, beta={beta!r}")
    if not (isinstance(max_trials, int) and max_trials >= 1):
        raise ValueError(f"max_trials must be a positive int, got {max_trials!r}")


def _steps(p0: float, p1: float) -> tuple[float, float]:
    """LLR increment of a failed read and of a good read."""
    return math.log(p1 / p0), math.log((1 - p1) / (1 - p0))


def _bounds(alpha: float, beta: float) -> tuple[float, float]:
    return math.log((1 - beta) / alpha), math.log(beta / (1 - alpha))


@dataclass(frozen=True)
class SprtResult:
    """What a read test reports: the verdict, the reads it took, the observed rate."""

    verdict: Verdict
    trials: int
    failures: int
    truncated: bool
    llr: float
    p0: float
    p1: float
    alpha: float
    beta: float
    max_trials: int
    reasons: dict[str, int] = field(default_factory=dict)
    """Failed reads by reason (``lrc``, ``parity``, ``luhn``, ``timeout``, ...)."""

    @property
    def failure_rate(self) -> float:
        return self.failures / self.trials if self.trials else 0.0

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Wilson score interval of the failure rate."""
        return wilson_interval(self.failures, self.trials, confidence)

    def summary(self, confidence: float = 0.95) -> str:
        """One line for a report, e.g. ``healthy after 12 reads: 0/12 failed (0.0 %, 95 % CI ...)``."""
        lo, hi = self.interval(confidence)
        how = " (at the cap of max_trials: alpha/beta not guaranteed)" if self.truncated else ""
        why = ""
        if self.reasons:
            why = "; failures: " + ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items()))
        return (f"{self.verdict} after {self.trials} reads{how}: {self.failures}/{self.trials} failed "
                f"({self.failure_rate:.1%}, {confidence:.0%} CI {lo:.1%}..{hi:.1%}){why}; "
                f"SPRT p0={self.p0:g} p1={self.p1:g} alpha={self.alpha:g} beta={self.beta:g}")

    def to_dict(self, confidence: float = 0.95) -> dict:
        lo, hi = self.interval(confidence)
        return {"verdict": self.verdict, "trials": self.trials, "failures": self.failures,
                "failure_rate": self.failure_rate, "ci": [lo, hi], "ci_confidence": confidence,
                "truncated": self.truncated, "llr": self.llr, "reasons": dict(self.reasons),
                "p0": self.p0, "p1": self.p1, "alpha": self.alpha, "beta": self.beta,
                "max_trials": self.max_trials}


class Sprt:
    """Wald's SPRT on a failure rate: healthy p0 vs faulty p1 (0 < p0 < p1 < 1).

    ``alpha`` = P(call a healthy unit faulty), ``beta`` = P(call a faulty unit healthy);
    ``max_trials`` caps the reads (see the module docstring for the truncation rule).
    Feed it one read at a time with ``update(failed)``; once it has decided, further reads
    are ignored and the decision is returned unchanged.
    """

    def __init__(self, p0: float, p1: float, alpha: float, beta: float, max_trials: int,
                 on_truncation: Truncation = "likelihood"):
        _check_plan(p0, p1, alpha, beta, max_trials)
        if on_truncation not in ("likelihood", "undecided"):
            raise ValueError(f"on_truncation must be 'likelihood' or 'undecided', got {on_truncation!r}")
        self.p0, self.p1, self.alpha, self.beta = p0, p1, alpha, beta
        self.max_trials, self.on_truncation = max_trials, on_truncation
        self._fail_step, self._ok_step = _steps(p0, p1)
        self.trials = 0
        self.failures = 0
        self.truncated = False
        self._verdict: Verdict | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        """(A, B): faulty at LLR >= A = log((1-beta)/alpha), healthy at LLR <= B = log(beta/(1-alpha))."""
        return _bounds(self.alpha, self.beta)

    @property
    def llr(self) -> float:
        """Log-likelihood ratio log P(reads | p1) / P(reads | p0) of the reads so far."""
        # computed from the counts, not accumulated, so it is exactly reproducible
        return self.failures * self._fail_step + (self.trials - self.failures) * self._ok_step

    @property
    def decision(self) -> Decision | Literal["undecided"]:
        """``continue`` until decided, then ``healthy``, ``faulty`` or (truncated) ``undecided``."""
        return self._verdict or "continue"

    @property
    def done(self) -> bool:
        return self._verdict is not None

    def failure_rate(self) -> float:
        """Observed failed reads / reads (0.0 before the first read)."""
        return self.failures / self.trials if self.trials else 0.0

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        return wilson_interval(self.failures, self.trials, confidence)

    def update(self, failed: bool) -> Decision | Literal["undecided"]:
        """Record one read (``failed`` True when the read failed) and return the decision."""
        if self._verdict is not None:
            return self._verdict
        self.trials += 1
        self.failures += bool(failed)
        a, b = self.bounds
        llr = self.llr
        if llr >= a:
            self._verdict = "faulty"
        elif llr <= b:
            self._verdict = "healthy"
        elif self.trials >= self.max_trials:
            self.truncated = True
            if self.on_truncation == "undecided":
                self._verdict = "undecided"
            else:
                self._verdict = "faulty" if llr > 0 else "healthy"
        return self.decision

    def result(self, reasons: dict[str, int] | None = None) -> SprtResult:
        """The report of a finished (or abandoned) test; ``continue`` is reported as ``undecided``."""
        verdict: Verdict = self._verdict or "undecided"
        return SprtResult(verdict, self.trials, self.failures, self.truncated, self.llr, self.p0,
                          self.p1, self.alpha, self.beta, self.max_trials, dict(reasons or {}))

    def __repr__(self) -> str:
        return (f"Sprt(p0={self.p0:g}, p1={self.p1:g}, alpha={self.alpha:g}, beta={self.beta:g}, "
                f"max_trials={self.max_trials}, trials={self.trials}, failures={self.failures}, "
                f"decision={self.decision!r})")


def expected_trials(p: float, p0: float, p1: float, alpha: float, beta: float) -> float:
    """Wald's approximate average sample number of the untruncated SPRT at true failure rate p.

    ASN = (L*B + (1-L)*A) / E[z], with z the LLR step of one read, L the probability of
    deciding healthy, L = (e^{hA} - 1) / (e^{hA} - e^{hB}) and h != 0 the root of
    E[e^{hz}] = 1; at E[z] = 0 (h = 0) ASN = -A*B / E[z^2]. Ignores the overshoot of the
    bounds and the cap, so it is an approximation; ``operating_characteristic`` is exact.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    _check_plan(p0, p1, alpha, beta, 1)
    sf, so = _steps(p0, p1)
    a, b = _bounds(alpha, beta)
    mean = p * sf + (1 - p) * so
    if p in (0.0, 1.0):  # every step the same size: the number of steps to cross a bound
        return float(math.ceil(b / so) if p == 0.0 else math.ceil(a / sf))
    if abs(mean) < 1e-9:
        return -a * b / (p * sf * sf + (1 - p) * so * so)

    def g(h: float) -> float:  # E[e^{hz}] - 1, convex with roots 0 and h*
        return p * math.exp(h * sf) + (1 - p) * math.exp(h * so) - 1

    # h* has the opposite sign of the mean step; bracket it, then bisect (cheap: 200 steps)
    lo, hi = (0.0, 1.0) if mean < 0 else (-1.0, 0.0)
    while g(hi if mean < 0 else lo) <= 0:
        if mean < 0:
            hi *= 2
        else:
            lo *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if (g(mid) < 0) == (mean < 0):
            lo = mid
        else:
            hi = mid
    h = (lo + hi) / 2
    ea, eb = math.exp(h * a), math.exp(h * b)
    accept_h0 = (ea - 1) / (ea - eb)
    return (accept_h0 * b + (1 - accept_h0) * a) / mean


@dataclass(frozen=True)
class OperatingCharacteristic:
    """Exact behaviour of the truncated SPRT at a true failure rate ``p``."""

    p: float
    p_faulty: float
    p_healthy: float
    p_undecided: float
    p_truncated: float
    """Share of units that reach ``max_trials`` without crossing a bound (any verdict)."""
    mean_trials: float
    trials_pmf: tuple[float, ...]
    """P(test stops after exactly n reads), index n (0 unused)."""

    def trials_quantile(self, q: float) -> int:
        """Smallest n with P(trials <= n) >= q."""
        total = 0.0
        for n, prob in enumerate(self.trials_pmf):
            total += prob
            if total >= q - 1e-12:
                return n
        return len(self.trials_pmf) - 1


def operating_characteristic(p: float, p0: float, p1: float, alpha: float, beta: float,
                             max_trials: int, on_truncation: Truncation = "likelihood"
                             ) -> OperatingCharacteristic:
    """Exact verdict probabilities and trial-count distribution of ``Sprt`` at true rate ``p``.

    Dynamic programming over (reads, failures): the LLR depends on nothing else, so the
    probability mass of every still-running state is carried forward one read at a time,
    with the same comparisons ``Sprt.update`` makes. O(max_trials^2).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    probe = Sprt(p0, p1, alpha, beta, max_trials, on_truncation)
    a, b = probe.bounds
    sf, so = probe._fail_step, probe._ok_step
    running = {0: 1.0}  # failures -> probability, after n reads, still undecided
    faulty = healthy = undecided = truncated = 0.0
    pmf = [0.0] * (max_trials + 1)
    for n in range(1, max_trials + 1):
        nxt: dict[int, float] = {}
        for f, prob in running.items():
            for nf, q in ((f + 1, prob * p), (f, prob * (1 - p))):
                if q:
                    nxt[nf] = nxt.get(nf, 0.0) + q
        running = {}
        for f, prob in nxt.items():
            llr = f * sf + (n - f) * so
            if llr >= a:
                faulty += prob
            elif llr <= b:
                healthy += prob
            elif n >= max_trials:
                truncated += prob
                if on_truncation == "undecided":
                    undecided += prob
                elif llr > 0:
                    faulty += prob
                else:
                    healthy += prob
            else:
                running[f] = prob
                continue
            pmf[n] += prob
    mean = sum(n * q for n, q in enumerate(pmf))
    return OperatingCharacteristic(p, faulty, healthy, undecided, truncated, mean, tuple(pmf))
