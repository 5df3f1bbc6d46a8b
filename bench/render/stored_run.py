"""``posbench report RUN``: regenerate a stored run's verdict JSON and a standalone HTML page.

The JSON is the verdict document exactly as ``finish_run`` stored it (for a run that never
finished: one rebuilt from its stored tests, verdict ``bench_error``). The HTML page opens with
the same verdict panel as the live report (``posbench.render.html``, with the stored plots) and
needs nothing but a browser: inline CSS and images, no scripts, every stored text escaped.
"""
from __future__ import annotations

import json
from html import escape
from pathlib import Path

from posbench.store.history import when
from posbench.store.store import Store, StoredRun
from posbench.render.html import COLOURS, panel

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;max-width:75em}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.4em 0} th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.fail{color:#b3261e;font-weight:bold} .banner{background:#fff3cd;border:1px solid #e0b000;padding:.6em;margin:1em 0}
small{color:#555} ul{margin:0;padding-left:1.2em} code{font-size:.95em}
"""


def json_text(doc: dict) -> str:
    """The verdict JSON as the pytest plugin writes it."""
    return json.dumps(doc, indent=2) + "\n"


def regenerate(store: Store, run_id: str, out_dir: Path) -> tuple[Path, Path, dict]:
    """Write ``run-<id>.html`` and ``run-<id>.json`` for a stored run into ``out_dir``.

    ``run_id`` may be an unambiguous prefix. Returns (html path, json path, verdict JSON).
    """
    run = store.run(run_id)
    doc = run.verdict_doc()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"run-{run.run_id}.json"
    html_path = out_dir / f"run-{run.run_id}.html"
    json_path.write_text(json_text(doc), encoding="utf-8")
    html_path.write_text(render_html(run, doc), encoding="utf-8")
    return html_path, json_path, doc


def render_html(run: StoredRun, doc: dict) -> str:
    """The standalone HTML page of a stored run."""
    colour = COLOURS.get(doc.get("verdict", ""), "#333")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>posbench run {escape(run.run_id[:8])}: {escape(doc.get('verdict', '?'))}</title>"
             f"<style>{_CSS}</style></head><body style='--c:{colour}'>",
             f"<h1>posbench run <code>{escape(run.run_id)}</code></h1>"]
    if run.status != "complete":
        parts.append(f"<div class='banner'><b>This run is {escape(run.status)}</b>"
                     + (f": {escape(run.reason)}" if run.reason else "")
                     + (". The verdict below was rebuilt from the tests stored before it stopped."
                        if run.doc is None else ".") + "</div>")
    parts.append(panel(doc, run.plots))  # first after the title, as in the live report
    parts.append(_run_facts(run, doc))
    parts.append(_tests(run, doc))
    parts.append("</body></html>\n")
    return "".join(parts)


def _run_facts(run: StoredRun, doc: dict) -> str:
    bench = doc.get("bench") or run.bench
    facts = [("status", run.status + (f" ({run.reason})" if run.reason else "")),
             ("bench", str(bench.get("name", run.bench_name) or "?")
              + (" (virtual)" if bench.get("virtual") else "")),
             ("seed", "" if bench.get("seed") is None else str(bench.get("seed"))),
             ("faults", ", ".join(str(f) for f in bench.get("faults") or [])),
             ("started", when(run.started)), ("finished", when(run.finished)),
             ("exit status", "" if run.exit_status is None else str(run.exit_status)),
             ("written by", f"posbench {run.version} on {run.host}, pid {run.pid}")]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts if v)
    return f"<h2>Run</h2><table>{rows}</table>"


def _tests(run: StoredRun, doc: dict) -> str:
    finished = {x.nodeid: x.finished_at for x in run.tests}
    items = doc.get("tests", [])
    rows = "".join(
        f"<tr><td><small>{escape(str(x.get('nodeid')))}</small></td>"
        f"<td{' class=fail' if x.get('outcome') in ('failed', 'error') else ''}>{escape(str(x.get('outcome')))}</td>"
        f"<td class='num'>{float(x.get('duration_s', 0.0)):.2f} s</td>"
        f"<td><small>{escape(when(finished.get(x.get('nodeid'))) if x.get('nodeid') in finished else '')}</small></td>"
        f"<td><small>{escape(str(x.get('message', '')))}</small></td></tr>" for x in items)
    head = f"<h2>Tests ({len(items)})</h2>"
    if not items:
        return head + "<p>No test finished.</p>"
    return (head + "<table><tr><th>test</th><th>outcome</th><th>duration</th><th>finished</th>"
            f"<th>message</th></tr>{rows}</table>")
