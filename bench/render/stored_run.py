"""``posbench report RUN``: regenerate a stored run's verdict JSON and a standalone HTML page.

The JSON is the verdict document exactly as ``finish_run`` stored it (for a run that never
finished: one rebuilt from its stored tests, verdict ``bench_error``). The HTML page opens with
the same verdict panel as the live report (``posbench.render.html``, with the stored plots) and
needs nothing but a browser: inline CSS and images, no scripts, every stored text escaped. The
page is ``templates/stored_run.html.j2`` (``base.html.j2`` with the panel included).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from posbench.diagnosis import ranking as diagnosis
from posbench.diagnosis.verdict import Verdict
from posbench.render.history import when
from posbench.render.html import panel_context, template
from posbench.store import Store, StoredRun


def stored_verdict(run: StoredRun) -> Verdict:
    """The run's stored verdict; for a run that never finished, one rebuilt from its tests:
    ``bench_error`` naming why the run is incomplete (the unit is not judged on half a run)."""
    if run.doc is not None:
        return Verdict.model_validate(run.doc)
    return diagnosis.verdict(run.unfinished_record(), run.started, run.duration_s())


def regenerate(store: Store, run_id: str, out_dir: Path) -> tuple[Path, Path, Verdict]:
    """Write ``run-<id>.html`` and ``run-<id>.json`` for a stored run into ``out_dir``.

    ``run_id`` may be an unambiguous prefix. Returns (html path, json path, verdict).
    """
    run = store.run(run_id)
    doc = stored_verdict(run)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"run-{run.run_id}.json"
    html_path = out_dir / f"run-{run.run_id}.html"
    # the stored JSON as it was stored, key for key and in its order
    json_path.write_text(doc.text() if run.doc is None else json.dumps(run.doc, indent=2) + "\n", encoding="utf-8")
    html_path.write_text(render_html(run, doc), encoding="utf-8")
    return html_path, json_path, doc


def render_html(run: StoredRun, doc: Verdict) -> str:
    """The standalone HTML page of a stored run (``templates/stored_run.html.j2``)."""
    return template("stored_run.html.j2").render(**panel_context(doc, run.plots), page=_page(run, doc)) + "\n"


def _page(run: StoredRun, doc: Verdict) -> dict[str, Any]:
    bench = doc.bench or run.bench
    facts = [("status", run.status + (f" ({run.reason})" if run.reason else "")),
             ("bench", str(bench.get("name", run.bench_name) or "?")
              + (" (virtual)" if bench.get("virtual") else "")),
             ("seed", "" if bench.get("seed") is None else str(bench.get("seed"))),
             ("faults", ", ".join(str(f) for f in bench.get("faults") or [])),
             ("started", when(run.started)), ("finished", when(run.finished)),
             ("exit status", "" if run.exit_status is None else str(run.exit_status)),
             ("written by", f"posbench {run.version} on {run.host}, pid {run.pid}")]
    finished = {x.nodeid: x.finished_at for x in run.tests}
    tests = [{"nodeid": t.nodeid, "outcome": t.outcome, "duration_s": float(t.duration_s), "message": t.message,
              "finished": when(finished[t.nodeid]) if t.nodeid in finished else ""} for t in doc.tests]
    return {"run_id": run.run_id, "verdict": doc.verdict, "status": run.status, "reason": run.reason,
            "rebuilt": run.doc is None, "facts": [(k, v) for k, v in facts if v], "tests": tests}
