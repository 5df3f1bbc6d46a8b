"""``posbench calibrate``: run the fault matrix on the virtual bench and measure the diagnosis.

Each case is one ``posbench triage`` on a fresh virtual bench (a child process, so cases run in
parallel and one crashing case cannot take the others with it). The results give the confusion
matrix, top-1 accuracy, the false-fault rate on healthy units and a reliability table (stated
confidence against how often a reported cause was really injected).
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from posbench.diagnosis.verdict import Verdict
from posbench.drivers import registry
from posbench.spec import taxonomy

NOT_A_FAULT = ("issuer_referral", "operator_error")
"""Causes that explain a 01 without blaming the unit: the verdict stays pass, the cause is listed."""
CASE_TIMEOUT_S = 600.0
"""Seconds one triage may take before the case is recorded as a bench error."""


@dataclass(frozen=True)
class Case:
    faults: tuple[tuple[str, float], ...]
    seed: int
    protocol: str | None = registry.DEFAULT
    """The ECR protocol the virtual unit speaks (``posbench triage --protocol``); None for a card
    reader that is the unit (a reader profile)."""
    profile: str | None = None
    """The DUT profile the virtual bench is shaped like (``posbench triage --profile``; None: the PT100)."""

    @property
    def truth(self) -> frozenset[str]:
        return frozenset(c for c, _ in self.faults)

    @property
    def label(self) -> str:
        return "+".join(f"{c}={s:g}" for c, s in self.faults) or "healthy"


@dataclass
class Outcome:
    case: Case
    exit_status: int
    verdict: str
    causes: list[tuple[str, float]] = field(default_factory=list)
    duration_s: float = 0.0
    undecided: dict[str, str] = field(default_factory=dict)
    """Causes the unit's protocol left undecidable in this run, with why."""

    @property
    def top(self) -> str:
        return self.causes[0][0] if self.causes else "(none)"


def matrix(causes: list[str], severities: list[float], seeds: list[int], healthy_seeds: list[int],
           pairs: list[tuple[str, str]], protocol: str | None = registry.DEFAULT, profile: str | None = None) -> list[Case]:
    """Every single fault at every severity and seed, healthy units, and pairs at severity 1."""
    cases = [Case(((c, s),), seed, protocol, profile) for c in causes for s in severities for seed in seeds]
    cases += [Case((), seed, protocol, profile) for seed in healthy_seeds]
    cases += [Case(((a, 1.0), (b, 1.0)), seed, protocol, profile) for a, b in pairs for seed in seeds[:1]]
    return cases


def default_pairs(causes: list[str]) -> list[tuple[str, str]]:
    """One pair for each two groups that both have injectable unit faults."""
    by_group: dict[str, list[str]] = defaultdict(list)
    for c in causes:
        if c not in NOT_A_FAULT:
            by_group[taxonomy.get(c).group].append(c)
    groups = sorted(by_group)
    return [(by_group[a][0], by_group[b][-1]) for a, b in itertools.combinations(groups, 2)]


TECHNICIAN_S = 0.5
"""Seconds of the simulated technician's slowest presentation in a calibration of a real terminal's
shape: a person's 3 s would make each triage minutes long; how often the technician is late or
presents a card the wrong way is drawn per presentation, not from the pace, so what the bench has
to tell apart is the same."""


def run_case(case: Case, workdir: Path) -> Outcome:
    """One triage on a fresh virtual bench; its verdict JSON is the outcome."""
    out = workdir / f"{case.profile or 'pt100'}-{case.protocol or 'reader'}-{case.label}-{case.seed}.json"
    cmd = [sys.executable, "-m", "posbench.cli", "triage", "--seed", str(case.seed), "--json", str(out),
           "--html", str(out.with_suffix(".html")), "--junit", str(out.with_suffix(".xml"))] \
        + (["--protocol", case.protocol] if case.protocol else []) \
        + (["--profile", case.profile, "--technician-s", f"{TECHNICIAN_S:g}"] if case.profile else [])
    for cause, sev in case.faults:
        cmd += ["--fault", f"{cause}={sev:g}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=CASE_TIMEOUT_S, text=True,
                              env={**os.environ, "NO_COLOR": "1"})
        status = proc.returncode
    except subprocess.TimeoutExpired:
        return Outcome(case, 2, "bench_error")
    try:
        doc = Verdict.model_validate_json(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # pydantic's ValidationError is a ValueError
        return Outcome(case, status, "bench_error")
    return Outcome(case, status, doc.verdict, [(c.id, float(c.confidence)) for c in doc.causes],
                   float(doc.duration_s), dict(doc.undecided))


def run_matrix(cases: list[Case], jobs: int, progress: Callable[[Outcome, int, int], None]) -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="posbench-calibrate-") as tmp:
        results: list[Outcome] = []
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for outcome in pool.map(lambda c: run_case(c, Path(tmp)), cases):
                results.append(outcome)
                progress(outcome, len(results), len(cases))
    return results


@dataclass
class Scores:
    top1: float
    top1_cases: int
    false_fault_rate: float
    healthy_cases: int
    pair_both: float
    pair_cases: int
    confusion: dict[str, Counter]
    reliability: list[tuple[float, float, int, float, float]]
    """(bin low, bin high, reported causes, mean stated confidence, observed accuracy)."""
    bench_errors: int


def score(outcomes: list[Outcome], min_severity: float = 0.3) -> Scores:
    singles = [o for o in outcomes if len(o.case.faults) == 1 and o.case.faults[0][1] >= min_severity]
    healthy = [o for o in outcomes if not o.case.faults]
    pairs = [o for o in outcomes if len(o.case.faults) == 2]
    confusion: dict[str, Counter] = defaultdict(Counter)
    for o in singles + healthy:
        truth = o.case.faults[0][0] if o.case.faults else "healthy"
        confusion[truth][o.top if o.verdict != "inconclusive" or o.causes else "(inconclusive)"] += 1
    correct = sum(1 for o in singles if o.top in o.case.truth)
    false_fault = sum(1 for o in healthy if o.verdict == "fault")
    both = sum(1 for o in pairs if o.case.truth <= {c for c, _ in o.causes})
    edges = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0001]
    bins: list[list[tuple[float, bool]]] = [[] for _ in edges[:-1]]
    for o in outcomes:
        for cause, conf in o.causes:
            for i in range(len(edges) - 1):
                if edges[i] <= conf < edges[i + 1]:
                    bins[i].append((conf, cause in o.case.truth))
    reliability = [(edges[i], min(edges[i + 1], 1.0), len(b),
                    sum(c for c, _ in b) / len(b) if b else 0.0,
                    sum(ok for _, ok in b) / len(b) if b else 0.0) for i, b in enumerate(bins)]
    return Scores(correct / len(singles) if singles else 0.0, len(singles),
                  false_fault / len(healthy) if healthy else 0.0, len(healthy),
                  both / len(pairs) if pairs else 0.0, len(pairs), dict(confusion), reliability,
                  sum(1 for o in outcomes if o.verdict == "bench_error"))


def page(sections: list[str], outcomes: list[Outcome], command: str, wall_s: float) -> str:
    """The ``docs/diagnosis.md`` page: one section per protocol."""
    return "\n".join(["# Diagnosis calibration", "",
                      f"Produced by `{command}` ({len(outcomes)} triage runs on the virtual bench, "
                      f"{wall_s / 60:.1f} min wall time). Re-run it to check these numbers.", ""]
                     + sections)


def heading(protocol: str | None, profile: str | None = None) -> str:
    """The heading of a shape's section: ``## Protocol `zvt``` for the PT100's bench, ``## Profile
    `zvt-generic` over `zvt-tcp``` for a bench shaped like another profile (a real terminal),
    ``## Profile `magtek-hid``` for a card reader (no protocol)."""
    if protocol is None:
        return f"## Profile `{profile}`"
    return f"## Profile `{profile}` over `{protocol}`" if profile else f"## Protocol `{protocol}`"


def merge(existing: str, sections: list[str]) -> str:
    """``existing`` (a ``docs/diagnosis.md``) with ``sections`` in it: each replaces the section
    with its heading, or is added at the end; the page's opening and other sections are kept."""
    def split(text: str) -> tuple[list[str], dict[str, str]]:
        head: list[str] = []
        parts: dict[str, list[str]] = {}
        current = head
        for line in text.splitlines():
            if line.startswith("## "):
                current = parts.setdefault(line, [])
            current.append(line)
        return head, {k: "\n".join(v).rstrip("\n") + "\n" for k, v in parts.items()}

    head, old = split(existing)
    for section in sections:
        old[section.splitlines()[0]] = section.rstrip("\n") + "\n"
    return "\n".join(head).rstrip("\n") + "\n\n" + "\n".join(old.values())


def markdown(scores: Scores, outcomes: list[Outcome], protocol: str | None = registry.DEFAULT,
             profile: str | None = None,
             produced_by: str = "") -> str:
    """One shape's section of ``docs/diagnosis.md`` (``produced_by``: a line saying how)."""
    lines = [heading(protocol, profile), ""] + ([produced_by, ""] if produced_by else []) + [
             "| measure | value | target |", "|---|---|---|",
             f"| top-1 accuracy, single faults at severity >= 0.3 | {scores.top1:.3f} "
             f"({scores.top1_cases} runs) | >= 0.95 |",
             f"| fault verdicts on healthy units | {scores.false_fault_rate:.3f} "
             f"({scores.healthy_cases} runs) | 0 |",
             f"| pairs of faults with both causes reported | {scores.pair_both:.3f} "
             f"({scores.pair_cases} runs) | |",
             f"| bench errors | {scores.bench_errors} | 0 |", ""]
    undecided: dict[str, set[str]] = defaultdict(set)
    for o in outcomes:
        for cause, why in o.undecided.items():
            undecided[cause].add(why)
    if undecided:
        lines += [f"Over `{protocol or profile}` these causes were left undecidable in some runs: the tests that "
                  "bear on them need answers the protocol cannot give, and no other measurement spoke to "
                  "them (absent, never counted as healthy):", "",
                  "| cause | why |", "|---|---|"]
        lines += [f"| {cause} | {'; '.join(sorted(whys))} |" for cause, whys in sorted(undecided.items())]
        lines.append("")
    if protocol and (limits := registry.cannot_tell_apart(protocol)):
        lines += [f"What `{protocol}` cannot tell apart: {limits}", ""]
    lines += ["### Confusion matrix (true cause → top-1 reported cause)", ""]
    predicted = sorted({p for row in scores.confusion.values() for p in row})
    lines.append("| true \\ reported | " + " | ".join(predicted) + " |")
    lines.append("|---" * (len(predicted) + 1) + "|")
    for truth in sorted(scores.confusion):
        row = scores.confusion[truth]
        lines.append(f"| {truth} | " + " | ".join(str(row.get(p, "")) for p in predicted) + " |")
    lines += ["", "### Reliability (every reported cause, all runs)", "",
              "Stated confidence against how often a cause reported with it was really injected.", "",
              "| confidence bin | causes reported | mean stated | observed accuracy | gap |",
              "|---|---|---|---|---|"]
    for lo, hi, n, stated, observed in scores.reliability:
        gap = f"{observed - stated:+.3f}" if n else ""
        lines.append(f"| {lo:.2f}–{hi:.2f} | {n} | {stated:.3f} | {observed:.3f} | {gap} |" if n
                     else f"| {lo:.2f}–{hi:.2f} | 0 | | | |")
    wrong = [o for o in outcomes if o.case.faults and o.case.faults[0][1] >= 0.3 and len(o.case.faults) == 1
             and o.top not in o.case.truth]
    wrong += [o for o in outcomes if not o.case.faults and o.verdict == "fault"]
    if wrong:
        lines += ["", "### Runs the diagnosis got wrong", "", "| case | seed | verdict | reported |", "|---|---|---|---|"]
        for o in wrong:
            lines.append(f"| {o.case.label} | {o.case.seed} | {o.verdict} | "
                         + ", ".join(f"{c} {v:.2f}" for c, v in o.causes) + " |")
    return "\n".join(lines) + "\n"
