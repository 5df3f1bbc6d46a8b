"""The verdict panel in HTML, from one Jinja2 template (``templates/verdict_panel.html.j2``), for
the live pytest-html report and for ``posbench report RUN``; and placing it first on a page."""
from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from functools import cache

import jinja2

from posbench.diagnosis import ranking as diagnosis
from posbench.spec import taxonomy

from posbench.diagnosis import findings
from posbench.core.masking import scrub

COLOURS = {"pass": "#1e7d32", "fault": "#b3261e", "inconclusive": "#a15c00", "bench_error": "#5b4a9e"}
Plot = tuple[str, str, bytes]
"""(test, title, PNG bytes) as ``Recorder.plot`` records it."""


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("posbench.render", "templates"), autoescape=True)
    return env.get_template("verdict_panel.html.j2")


def _scrubbed(obj):
    """Every text of a verdict JSON with card numbers masked (numbers stay numbers)."""
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, dict):
        return {k: _scrubbed(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrubbed(v) for v in obj]
    return obj


def _cause(cause: dict, doc: dict) -> dict:
    groups = findings.group(cause.get("evidence", []), doc.get("read_paths"))
    return {"id": cause["id"], "name": taxonomy.name(cause["id"]), "group": cause.get("group", ""),
            "confidence": cause.get("confidence", 0.0),
            "pct": max(0, min(100, round(float(cause.get("confidence", 0.0)) * 100))),
            "action": cause.get("action") or getattr(taxonomy.CAUSES.get(cause["id"]), "action", ""),
            "key": findings.key_findings(cause, doc), "groups": groups,
            "records": sum(f.count for f in groups), "seen_before": cause.get("seen_before", [])}


def panel(doc: dict, plots: Iterable[Plot] = ()) -> str:
    """The verdict panel of a verdict JSON, with ``plots`` embedded as PNGs (one self-contained page)."""
    doc = _scrubbed(doc)
    measurements = doc.get("measurements", [])
    return _template().render(
        colour=COLOURS.get(doc.get("verdict", ""), "#333"), headline=diagnosis.summary_line(doc),
        unit=doc.get("unit", {}), code01=findings.code01_sentence(doc),
        bench_errors=findings.bench_errors(doc), contradictions=doc.get("contradictions", []),
        causes=[_cause(c, doc) for c in doc.get("causes", [])],
        undecided=[(taxonomy.name(c), why) for c, why in doc.get("undecided", {}).items()],
        read_paths=list(doc.get("read_paths", {}).items()), code01_seen=doc.get("code01", []),
        measurements=measurements, failed=sum(not m.get("passed") for m in measurements),
        unmeasured=doc.get("unmeasured", []),
        plots=[{"test": scrub(test), "title": scrub(title), "png": base64.b64encode(png).decode()}
               for test, title, png in plots],
        started=doc.get("started", "?"), duration_s=float(doc.get("duration_s", 0.0)), run_id=doc.get("run_id", ""))


_TITLE = re.compile(r"<h1 id=\"title\">.*?</h1>", re.S)


def put_first(page: str, panel_html: str) -> str:
    """``page`` with the panel first in its body: after the page title, above pytest-html's
    environment table and summary."""
    if m := _TITLE.search(page):
        return page[:m.end()] + "\n" + panel_html + page[m.end():]
    return re.sub(r"<body[^>]*>", lambda b: b.group(0) + "\n" + panel_html, page, count=1)
