"""A triage's reports: their names, the verdict JSON written again, the page of a bench whose
preflight failed, and reports that could not be written."""
from __future__ import annotations

import os
import re
import shlex
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from posbench.cli import common
from posbench.cli.common import EXIT_BENCH
from posbench.diagnosis.verdict import Verdict
from posbench.core.console import say


def name_by_serial(doc: Verdict, stamp: str, named_by_us: dict[str, bool], *paths: Path) -> tuple[Path, ...]:
    """Reports posbench named itself carry the serial the unit reported (``<serial>-<time>.*``),
    not ``triage-<time>``; a name the technician gave is kept."""
    serial = re.sub(r"[^A-Za-z0-9._-]", "_", doc.unit.serial or "")
    out = []
    for path in paths:
        target = common.REPORTS / f"{serial}-{stamp}{path.suffix}"
        if serial and named_by_us.get(path.suffix.lstrip(".")) and path != target and path.is_file():
            try:
                os.replace(path, target)
                path = target
            except OSError:
                pass  # the report stays under its first name, which is printed
        out.append(path)
    return tuple(out)


def rewrite(json_path: Path, doc: Verdict, errors: list[str]) -> None:
    from posbench.render.outputs import ReportWriteFailed, write_text
    try:
        write_text(json_path, doc.text(), "verdict JSON")
    except ReportWriteFailed as exc:
        errors.append(str(exc))


def store_failed_preflight(store_url: str | None, doc: Verdict, started: datetime, html_path: Path,
                           errors: list[str]) -> None:
    """A bench whose preflight failed is a run too: stored (``posbench runs`` then shows the broken
    bench or place) and given its HTML page, the stored run's page. Failures go into ``errors``."""
    from posbench.render.outputs import ReportWriteFailed, write_text
    from posbench.store import Store, StoreUnavailable
    from posbench.render.stored_run import render_html
    try:
        with Store.open(store_url, common.REPORTS, sweep=False) as store:
            run_id = store.begin_run(doc.bench, started, unit=doc.unit.model_dump(exclude_none=True))
            store.finish_run(run_id, doc, EXIT_BENCH)
            page = render_html(store.run(run_id), doc)
    except StoreUnavailable as exc:
        errors.append(str(exc))
        return
    try:
        write_text(html_path, page, "HTML report")
    except ReportWriteFailed as exc:
        errors.append(str(exc))


def unwritten_reports(console: Console, doc: Verdict, errors: list[str], store_url: str | None, status: int) -> int:
    """Reports that could not be written after the verdict was printed. A verdict the store kept
    (``run_id``) stands: a warning per report and the ``posbench report`` that writes them again,
    and the verdict's ``status``. A verdict kept nowhere but on the screen is a bench error (2)."""
    run_id = doc.run_id
    if not run_id:
        for error in errors:
            say(console, f"[bold magenta]BENCH ERROR[/]: {escape(error)} (the verdict was not stored either)")
        return EXIT_BENCH
    for error in errors:
        say(console, f"[bold yellow]WARNING[/]: {escape(error)}")
    store = f" --store {shlex.quote(store_url)}" if store_url else ""
    say(console, f"the verdict is stored as run {escape(run_id)}: [bold]posbench report {escape(run_id)}{escape(store)}"
                 f"[/] writes its HTML page and verdict JSON again (--out DIR)")
    return status
