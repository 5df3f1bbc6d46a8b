"""From evidence to a verdict: ranked causes with confidence, the origin of code 01.

Model: each cause has a prior probability that it lies behind a unit sent in with code 01;
every piece of evidence multiplies the cause's odds by its likelihood ratio (naive Bayes, the
observations taken as independent given the cause). Confidence = posterior odds / (1 + odds).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from posbench.diagnosis import findings
from posbench.diagnosis.verdict import SCHEMA, Verdict

from posbench.spec import taxonomy
from posbench.spec.evidence import Evidence, RunRecord
from posbench.setup.device_checks import FAIL
from posbench.setup.preflight import PreflightFailed

PRIOR = 0.05
"""Prior probability of each cause before any test ran: a unit sent in for showing code 01 has
one of the 15 causes about half the time (issuer referrals included), spread over them.
Calibrated against ``posbench calibrate`` (docs/diagnosis.md): at 0.02 every cause reported was
right yet stated with 0.84 (one decisive finding), an under-confident diagnosis."""
REPORT_THRESHOLD = 0.5
"""Causes at or above this confidence are reported and decide the verdict."""
CONTRADICTION_RATIO = 15.0
"""Evidence at least this strong for a cause (ratio >= 15) and at least this strong against it
(ratio <= 1/15) contradicts itself: the cause is neither reported nor ruled out."""


@dataclass
class RankedCause:
    id: str
    group: str
    confidence: float
    action: str
    evidence: list[Evidence] = field(default_factory=list)

    kind: str = "terminal"
    """The unit's kind: a card reader's causes are named and acted on as a reader's."""

    def to_json(self) -> dict:
        return {"id": self.id, "name": taxonomy.name(self.id, self.kind), "group": self.group,
                "confidence": round(self.confidence, 3), "evidence": [e.to_json() for e in self.evidence],
                "action": self.action}


def rank(evidence: list[Evidence], prior: float = PRIOR, kind: str = "terminal") -> list[RankedCause]:
    """Every cause that has evidence, sorted by confidence (highest first); ``kind``: the unit's
    ("reader": a card reader that is itself the unit)."""
    by_cause: dict[str, list[Evidence]] = {}
    for item in evidence:
        by_cause.setdefault(item.cause, []).append(item)
    ranked = []
    for cause_id, items in by_cause.items():
        odds = prior / (1 - prior)
        for item in items:
            odds *= item.ratio
        cause = taxonomy.get(cause_id)
        ranked.append(RankedCause(cause_id, cause.group, odds / (1 + odds), taxonomy.action(cause_id, kind),
                                  sorted(items, key=lambda e: -e.ratio), kind))
    return sorted(ranked, key=lambda c: (-c.confidence, c.id))


def code01_origin(run: RunRecord) -> str:
    """``terminal`` if the unit showed a 01 the host never sent; ``issuer`` if only real 01s
    (told by the terminal's report of its acquirer's answer, or posbench's host log where the bench
    has one: ``tests/hil/test_code01.py``). ``none`` when no 01 was seen, and also when the origin
    of every 01 seen could not be told: the run then lists ``terminal_01_count`` unmeasured with
    why, and the first screen says so (``findings.code01_sentence``)."""
    origins = {obs.origin for obs in run.code01}
    if "terminal" in origins:
        return "terminal"
    return "issuer" if "issuer" in origins else "none"


def contradictions(evidence: list[Evidence]) -> list[str]:
    """Why the evidence contradicts itself: a cause both strongly supported and strongly refuted."""
    reasons = []
    for cause in rank(evidence):
        pro = [e for e in cause.evidence if e.ratio >= CONTRADICTION_RATIO]
        con = [e for e in cause.evidence if e.ratio <= 1 / CONTRADICTION_RATIO]
        if pro and con:
            reasons.append(f"{taxonomy.name(cause.id)}: {pro[0].note} — but {con[0].note}")
    return reasons


def decide(run: RunRecord) -> tuple[str, list[RankedCause]]:
    """Verdict word and the reported causes."""
    if run.bench_errors:
        return "bench_error", []
    if contradictions(run.evidence):
        return "inconclusive", []
    reported = [c for c in rank(run.evidence, kind=run.unit.get("kind", "terminal")) if c.confidence >= REPORT_THRESHOLD]
    if any(taxonomy.get(c.id).blames_unit for c in reported):
        return "fault", reported
    if reported:
        return "pass", reported
    unexplained = [t for t in run.tests if t.outcome in ("failed", "error")]
    if unexplained or not run.measurements:
        return "inconclusive", reported  # a unit nothing was measured on has not passed
    return "pass", reported


EXIT_STATUS = {"pass": 0, "fault": 1, "inconclusive": 1, "bench_error": 2}


def verdict(run: RunRecord, started: datetime, duration_s: float) -> Verdict:
    """The verdict of a run: the decision, its causes and everything the run recorded."""
    word, causes = decide(run)
    doc = {
        "schema": SCHEMA,
        "unit": {"serial": run.unit.get("serial", ""), "model": run.unit.get("model", ""),
                 "firmware": run.unit.get("firmware", ""),
                 **({"serial_from": run.unit["serial_from"]} if run.unit.get("serial_from") else {}),
                 **({"kind": run.unit["kind"]} if run.unit.get("kind", "terminal") != "terminal" else {})},
        "verdict": word,
        "code01_origin": code01_origin(run),
        **({"code01_sales": run.code01_sales} if run.code01_sales is not None else {}),
        "causes": [c.to_json() for c in causes],
        "measurements": [m.to_json() for m in run.measurements],
        "tests": [{"nodeid": t.nodeid, "outcome": t.outcome, "duration_s": round(t.duration_s, 3)}
                  | ({"message": " ".join(t.message.split())[:300]} if t.message.strip() else {})
                  for t in run.tests],
        "started": started.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 3),
    }
    if run.bench:
        doc["bench"] = run.bench
    if run.bench_errors:
        doc["bench_errors"] = run.bench_errors
    if run.read_paths:
        doc["read_paths"] = run.read_paths
    if run.unmeasured:
        doc["unmeasured"] = [u.to_json() for u in run.unmeasured]
        if undecided := undecided_causes(run):
            doc["undecided"] = undecided
    if reasons := contradictions(run.evidence):
        doc["contradictions"] = reasons
    if run.code01:
        doc["code01"] = [{"origin": o.origin, "stan": o.stan, "host_code": o.host_code,
                          "reason": o.reason} for o in run.code01]
    built = Verdict.model_validate(doc)
    built.code01_meaning = findings.code01_sentence(built)
    return built


def verdict_json(run: RunRecord, started: datetime, duration_s: float) -> dict:
    """The verdict JSON of a run (``verdict(...).wire()``), for writers."""
    return verdict(run, started, duration_s).wire()


def undecided_causes(run: RunRecord) -> dict[str, str]:
    """Causes the unmeasured tests bore on and nothing else in the run spoke to (no evidence,
    no measurement bearing on them): the protocol left them undecidable. Cause id -> why."""
    spoken = {e.cause for e in run.evidence} | {c for m in run.measurements for c in m.bears_on}
    found: dict[str, list[str]] = {}
    for item in run.unmeasured:
        for cause in item.causes:
            if cause not in spoken and item.why not in found.setdefault(cause, []):
                found[cause].append(item.why)
    return {cause: "; ".join(whys) for cause, whys in sorted(found.items())}


def summary_line(doc: Verdict) -> str:
    """The one line a technician reads first (the cause by its name)."""
    causes = doc.causes
    if doc.verdict == "bench_error":
        return "BENCH ERROR: the bench failed, the unit was not judged: " + "; ".join(doc.bench_errors)
    if doc.verdict == "fault":
        top = causes[0]
        return f"FAULT: {taxonomy.name(top.id, doc.unit.kind)} ({top.confidence:.0%} confidence): {top.action}"
    if doc.verdict == "inconclusive" and doc.contradictions:
        return "INCONCLUSIVE: the evidence contradicts itself: " + "; ".join(doc.contradictions)
    if doc.verdict == "inconclusive":
        first = next((t.message for t in doc.tests if t.message), "")
        why = ("nothing was measured on the unit" if not doc.measurements
               else "tests failed but no cause reached the reporting threshold")
        return f"INCONCLUSIVE: {why}" + (f" (first failure: {first})" if first else "")
    if causes:
        cause = taxonomy.CAUSES.get(causes[0].id)
        return (f"no fault found ({taxonomy.name(causes[0].id, doc.unit.kind)}: "
                f"{cause.meaning if cause else causes[0].id})")
    return "no fault found"


def now() -> datetime:
    return datetime.now(timezone.utc)


def failed_verdict(failed: PreflightFailed, started: datetime, duration_s: float) -> Verdict:
    """The verdict JSON of a run the preflight stopped: ``bench_error``, each device that failed
    with what to check, the unit as bench.toml names it; no test ran, nothing of the unit judged."""
    config = failed.config
    run = RunRecord(unit={"serial": config.unit.serial or "", "model": config.unit.model or ""} if config else {},
                    bench={"name": config.bench.name, "virtual": config.bench.virtual} if config else {})
    run.bench_errors = [f"preflight: {c.device} {c.where}: {c.said}" + (f" ({c.hint})" if c.hint else "")
                        for c in failed.checks if c.state == FAIL]
    return verdict(run, started, duration_s)
