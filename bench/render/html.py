"""The verdict panel in HTML, from the Jinja2 template family in ``templates/`` (the panel,
``verdict_panel.html.j2``, alone for the live pytest-html report and included by a stored run's
page), and placing it first on pytest-html's page."""
from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

import jinja2

from posbench.diagnosis import ranking as diagnosis
from posbench.spec import taxonomy

from posbench.diagnosis import findings
from posbench.core.masking import scrub
from posbench.diagnosis.verdict import Cause, Verdict

COLOURS = {"pass": "#1e7d32", "fault": "#b3261e", "inconclusive": "#a15c00", "bench_error": "#5b4a9e"}
Plot = tuple[str, str, bytes]
"""(test, title, PNG bytes) as ``Recorder.plot`` records it."""


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("posbench.render", "templates"), autoescape=True)


def template(name: str) -> jinja2.Template:
    """A template of the family in ``templates/``: ``verdict_panel.html.j2`` (the panel alone),
    ``stored_run.html.j2`` (a stored run's page: ``base.html.j2`` with the panel included)."""
    return _environment().get_template(name)


def _scrubbed(obj: Any) -> Any:
    """Every text of a verdict JSON with card numbers masked (numbers stay numbers)."""
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, dict):
        return {k: _scrubbed(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrubbed(v) for v in obj]
    return obj


def _cause(cause: Cause, doc: Verdict) -> dict[str, Any]:
    groups = findings.group(cause.evidence, doc.read_paths)
    return {"id": cause.id, "name": taxonomy.name(cause.id, doc.unit.kind), "group": cause.group,
            "confidence": cause.confidence,
            "pct": max(0, min(100, round(float(cause.confidence) * 100))),
            "action": cause.action or getattr(taxonomy.CAUSES.get(cause.id), "action", ""),
            "key": findings.key_findings(cause, doc), "groups": groups,
            "records": sum(f.count for f in groups), "seen_before": cause.seen_before}


def panel_context(doc: Verdict, plots: Iterable[Plot] = ()) -> dict[str, Any]:
    """What ``verdict_panel.html.j2`` shows of a verdict (every text scrubbed of card numbers),
    with ``plots`` embedded as PNGs."""
    doc = Verdict.model_validate(_scrubbed(doc.wire()))
    return dict(
        colour=COLOURS.get(doc.verdict, "#333"), headline=diagnosis.summary_line(doc),
        unit=doc.unit, code01=findings.code01_sentence(doc),
        bench_errors=findings.bench_errors(doc), contradictions=doc.contradictions,
        causes=[_cause(c, doc) for c in doc.causes],
        undecided=[(taxonomy.name(c, doc.unit.kind), why) for c, why in doc.undecided.items()],
        read_paths=list(doc.read_paths.items()), code01_seen=doc.code01,
        measurements=doc.measurements, failed=sum(not m.passed for m in doc.measurements),
        unmeasured=doc.unmeasured,
        plots=[{"test": scrub(test), "title": scrub(title), "png": base64.b64encode(png).decode()}
               for test, title, png in plots],
        started=doc.started or "?", duration_s=float(doc.duration_s), run_id=doc.run_id or "")


def panel(doc: Verdict, plots: Iterable[Plot] = ()) -> str:
    """The verdict panel of a verdict, with ``plots`` embedded as PNGs (one self-contained page)."""
    return template("verdict_panel.html.j2").render(**panel_context(doc, plots))


_TITLE = re.compile(r"<h1 id=\"title\">.*?</h1>", re.S)


def put_first(page: str, panel_html: str) -> str:
    """``page`` with the panel first in its body: after the page title, above pytest-html's
    environment table and summary."""
    if m := _TITLE.search(page):
        return page[:m.end()] + "\n" + panel_html + page[m.end():]
    return re.sub(r"<body[^>]*>", lambda b: b.group(0) + "\n" + panel_html, page, count=1)
