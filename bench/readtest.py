"""A read path's health as measurements and evidence: the SPRT's verdict, reads used, the rate."""
from __future__ import annotations

from bench.evidence import Recorder
from bench.limits import Limit
from bench.profile import SprtSpec
from bench.sprt import SprtResult, run_sprt


def decide_path(spec: SprtSpec, read_once) -> SprtResult:
    """Run reads (``read_once(n)`` -> failure reason or "" for a good read) until the SPRT decides."""
    counter = iter(range(1, spec.max_trials + 1))
    return run_sprt(lambda: read_once(next(counter)), p0=spec.p0, p1=spec.p1, alpha=spec.alpha,
                    beta=spec.beta, max_trials=spec.max_trials)


def record_path(record: Recorder, path: str, result: SprtResult, spec: SprtSpec, cause: str) -> None:
    """Measurements ``<path>_failure_rate`` and ``<path>_reads``; a faulty verdict is evidence.

    The failure-rate limit is the profile's p1 (the rate from which a path counts as faulty);
    the verdict itself comes from the SPRT, stated with its alpha and beta.
    """
    lo, hi = result.interval()
    note = result.summary()
    record.run.read_paths[path] = {**result.to_dict(), "test": record.test}
    strength = "strong" if result.truncated else "decisive"
    record.measure(f"{path}_sprt_verdict", result.verdict, "", Limit(equals="healthy"),
                   cause=cause if result.verdict == "faulty" else None, strength=strength, note=note)
    record.measure(f"{path}_failure_rate", round(result.failure_rate, 4), "ratio",
                   Limit(max=spec.p1), note=f"95% CI {lo:.3f}..{hi:.3f} over {result.trials} reads")
    record.measure(f"{path}_reads", result.trials, "count", Limit(max=spec.max_trials),
                   note=f"SPRT p0={spec.p0:g} p1={spec.p1:g} alpha={spec.alpha:g} beta={spec.beta:g}")
