"""The verdict on the terminal: a first screen a repair technician reads (the cause by its name,
the repair action, at most three key findings), and with ``--verbose`` every line behind it.

Lines are rich markup; every text taken from the verdict passes ``escape`` and ``scrub``.
"""
from __future__ import annotations

import re

from rich.cells import cell_len
from rich.markup import escape
from rich.text import Text

from posbench.diagnosis import ranking as diagnosis
from posbench.spec import taxonomy

from posbench.diagnosis import findings
from posbench.core.masking import scrub
from posbench.diagnosis.verdict import Cause, Verdict, VerdictMeasurement

SCREEN_LINES = 10
"""The first screen of a verdict, the reports line included, fits in this many lines."""

_COLOUR = {"pass": "green", "fault": "red", "bench_error": "magenta"}


def _t(text: object) -> str:
    return escape(scrub(str(text)))


def _pct(cause: Cause) -> str:
    return f"{float(cause.confidence):.0%}"


def _cause_lines(cause: Cause, doc: Verdict) -> list[str]:
    """The key findings of a cause and, if so, the earlier runs that found it too."""
    lines = [f"  - {_t(f.label)}" for f in findings.key_findings(cause, doc)]
    if earlier := cause.seen_before:
        runs = ", ".join(f"{e.run[:8]} ({e.started[:16].replace('T', ' ')})" for e in earlier[:2])
        lines.append(f"  seen on this unit before: run {_t(runs)}" + (" and more" if len(earlier) > 2 else ""))
    return lines


def _headline(doc: Verdict) -> str:
    verdict, causes = doc.verdict, doc.causes
    colour = _COLOUR.get(verdict, "yellow")
    if verdict == "fault":
        top = causes[0]
        return f"[bold {colour}]FAULT: {_t(taxonomy.name(top.id, doc.unit.kind))}[/] ({_pct(top)} confidence)"
    if verdict == "bench_error":
        return f"[bold {colour}]BENCH ERROR: the bench failed, the unit was not judged[/]"
    if verdict == "pass" and causes:
        top = causes[0]
        return f"[bold {colour}]no fault found[/]: {_t(taxonomy.name(top.id, doc.unit.kind))} ({_pct(top)} confidence)"
    if verdict == "inconclusive":
        return f"[bold {colour}]INCONCLUSIVE: {_t(_inconclusive(doc)[0])}[/]"
    return f"[bold {colour}]{_t(diagnosis.summary_line(doc))}[/]"


def code01_line(doc: Verdict) -> str:
    """The code 01 sentence. After "no fault found" with the code 01 left unchecked (no sale ran,
    or the origin of the 01s shown could not be told), worded so that the verdict does not read
    as a clean answer to the complaint the unit came in with."""
    sentence = findings.code01_sentence(doc)
    unchecked = "code 01 not checked: "
    if doc.verdict == "pass" and sentence.startswith(unchecked):
        return "but the code 01 the unit came in with was not checked: " + sentence[len(unchecked):]
    return sentence


_RAW = re.compile(r"\b([a-z][a-z0-9_]*) = (\S+) ?(\S*), limit (.+?)(?= — |$)")
"""A measurement as a test's note states it: ``name = value unit, limit L``."""


def _inconclusive(doc: Verdict) -> tuple[str, list[str], str]:
    """An inconclusive verdict in words: why, what was seen (measurements and failures, no raw
    metric names), and what to do next."""
    def plain(text: str) -> str:
        return _RAW.sub(lambda m: findings.measurement_sentence(VerdictMeasurement(
            name=m.group(1), value=m.group(2), unit=m.group(3), limit=m.group(4))), text)

    if doc.contradictions:
        return ("the evidence contradicts itself", [plain(c) for c in doc.contradictions],
                "run the triage again; evidence that contradicts itself is most often a loose cable or "
                "connector on the bench: if it comes back, reseat the unit's cables and check its supply")
    failed = [m for m in doc.measurements if not m.passed]
    seen = [findings.measurement_sentence(m) for m in failed]
    for t in doc.tests:
        if t.outcome in ("failed", "error") and t.message and t.nodeid not in {m.test for m in failed}:
            name = t.nodeid.split("::")[-1].removeprefix("test_").replace("_", " ")
            first = plain(t.message.strip().splitlines()[0])
            seen.append(f"{name} {'failed' if t.outcome == 'failed' else 'could not run'}: {first}")
    refused = sum(int(stats.refusals or 0) for stats in doc.read_paths.values())
    if refused:
        seen.insert(0, f"the unit refused {refused} sale(s) at once, before a card was presented (no reason given)")
    if not doc.measurements:
        return ("nothing could be measured on the unit", seen,
                "check the unit's power and its cable to the bench and the bench file "
                "(posbench check --bench FILE), then run the triage again")
    return ("tests failed, but not clearly enough to name a cause", seen,
            "run the triage again: too few failures to name a cause; if the same ones come back, "
            "the report's failed tests show where to look"
            + ("; the terminal's display says why it refuses" if refused else ""))


def _not_judged(doc: Verdict) -> str:
    """The causes this run could not judge, and whether that matters for the complaint (code 01)."""
    names = ", ".join(taxonomy.name(c, doc.unit.kind) for c in doc.undecided)
    if not names:
        return ""
    origin = doc.code01_origin
    if doc.unit.kind == "reader":
        why = "if the reader still fails in use, these causes are still open"
    elif origin == "issuer":
        why = "they do not change the answer to the code 01 complaint: the card issuer sent the 01"
    elif origin == "terminal":
        why = "any of them may be behind the unit's own code 01: check them by hand"
    else:
        why = "if the unit still shows code 01, these causes are still open"
    return f"not judged here: {_t(names)}; {_t(why)}"


def screen(doc: Verdict, reports: str, width: int = 80) -> list[str]:
    """The verdict's first screen: at most ``SCREEN_LINES`` lines on a terminal ``width`` wide.
    The top cause's findings come first; what does not fit is left to ``--verbose``."""
    def rows(lines: list[str]) -> int:
        return sum(max(1, -(-cell_len(Text.from_markup(line).plain) // max(width, 20))) for line in lines)

    causes = doc.causes
    serial = doc.unit.serial or "?"
    tail = [_t(code01_line(doc))]
    if not_judged := _not_judged(doc):  # what could not be measured, only with --verbose
        tail.append(not_judged)
    tail.append(f"report: {_t(reports)} · every detail: --verbose")
    body = [f"{_headline(doc)} · unit {_t(serial)}"]
    budget = SCREEN_LINES - rows(tail)

    def add(line: str, reserve: int = 0) -> bool:
        if rows([*body, line]) + reserve > budget:
            return False
        body.append(line)
        return True

    if doc.verdict == "bench_error":
        errors = findings.bench_errors(doc)
        for i, error in enumerate(errors):
            if not add(f"  - {_t(error)}", reserve=1 if i < len(errors) - 1 else 0):
                add(f"  and {len(errors) - i} more")
                break
    elif doc.verdict == "inconclusive":
        _, seen, action = _inconclusive(doc)
        for i, line in enumerate(seen):
            if not add(f"  - {_t(line)}", reserve=1 + (1 if i < len(seen) - 1 else 0)):
                add(f"  and {len(seen) - i} more: see --verbose", reserve=1)
                break
        add(f"  what to do: {_t(action)}")
    elif causes and doc.verdict in ("fault", "pass"):
        # every cause's name and repair action first, as many as fit; then their findings
        shown: list[tuple[list[str], list[str], list[str]]] = []  # (cause block, its lines, those that fit)
        used, more = rows(body), 0
        for i, cause in enumerate(causes):
            head = [f"also: {_t(taxonomy.name(cause.id, doc.unit.kind))} ({_pct(cause)} confidence)"] if i else []
            block = [*head, f"  repair: {_t(cause.action)}"]
            if used + rows(block) + (1 if i < len(causes) - 1 else 0) > budget:
                more = len(causes) - i
                break
            shown.append((block, _cause_lines(cause, doc), []))
            used += rows(block)
        for _, candidates, chosen in shown:
            for line in candidates:
                if used + rows([line]) + (1 if more else 0) > budget:
                    break
                chosen.append(line)
                used += rows([line])
        for block, _, chosen in shown:
            body += block + chosen
        if more:
            body.append(f"and {more} more cause(s): see --verbose")
    return body + tail


def details(doc: Verdict) -> list[str]:
    """Everything behind the verdict, for ``--verbose``: each cause's evidence with its test,
    measurement and likelihood ratio (grouped with counts), the read paths' SPRT statistics,
    code 01 observations, unmeasured measurements, undecided causes, bench errors, failed tests."""
    out = ["[bold]details[/]"]
    for cause in doc.causes:
        out.append(f"cause {_t(taxonomy.name(cause.id, doc.unit.kind))} [dim]({_t(cause.id)}, {_t(cause.group)})"
                   f"[/]: {_pct(cause)} confidence; repair: {_t(cause.action)}")
        for found in findings.group(cause.evidence, doc.read_paths):
            out.append(f"  - {_t(found.label)} [dim](likelihood ratio {found.ratio:g})[/]")
            for e in found.records:
                measured = f" · {e.measurement} = {e.value} (limit {e.limit})" if e.measurement else ""
                out.append(f"      [dim]{_t(e.test)}{_t(measured)} · ratio {e.ratio}: {_t(e.note)}[/]")
    for path, stats in doc.read_paths.items():
        lo, hi = (stats.ci or [0.0, 1.0])[:2]
        out.append(f"read path {_t(path)}: {_t(stats.verdict)} after {stats.trials} reads, "
                   f"{stats.failures} failed ({float(stats.failure_rate):.1%}, 95% CI {lo:.1%}.."
                   f"{hi:.1%}); SPRT p0={stats.p0} p1={stats.p1} alpha={stats.alpha} "
                   f"beta={stats.beta} max {stats.max_trials} reads"
                   + (f"; {stats.operator_events} operator event(s): cards not presented in time or the right "
                      "way, read again (not the unit's)" if stats.operator_events else "")
                   + (f"; {stats.refusals} sale(s) the unit refused before the card could be presented, "
                      "not reads of the path" if stats.refusals else "")
                   + f" [dim]({_t(stats.test)})[/]")
    out.append(f"code 01 origin: {_t(doc.code01_origin)}: {_t(findings.code01_sentence(doc))}")
    for o in doc.code01:
        out.append(f"  STAN {_t(o.stan)}: shown by the unit, host field 39 {_t(o.host_code)}, "
                   f"origin {_t(o.origin)}" + (f", reason {_t(o.reason)}" if o.reason else ""))
    for u in doc.unmeasured:
        out.append(f"unmeasured {_t(u.measurement)} [dim]({_t(u.test)})[/]: {_t(u.why)}")
    for cause_id, why in doc.undecided.items():
        out.append(f"not judged: {_t(taxonomy.name(cause_id, doc.unit.kind))} [dim]({_t(cause_id)})[/]: {_t(why)}")
    for error in doc.bench_errors:
        out.append(f"bench error: {_t(error)}")
    for reason in doc.contradictions:
        out.append(f"contradiction: {_t(reason)}")
    for t in doc.tests:
        if t.outcome in ("failed", "error"):
            out.append(f"{_t(t.outcome)} {_t(t.nodeid)}: {_t(t.message)}")
    return out
