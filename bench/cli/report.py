"""``posbench report``: a stored run's HTML page and verdict JSON written again."""
from __future__ import annotations

from pathlib import Path

import click

from posbench.cli.common import Command, UsageFailure, open_store, print_verdict, store_option
from posbench.core.console import make_console


@click.command(cls=Command)
@click.argument("run")
@store_option
@click.option("--out", "out_dir", default="reports", show_default=True, type=click.Path(path_type=Path),
              help="directory for the regenerated HTML and JSON")
@click.option("--verbose", "-v", is_flag=True, help="print every finding behind the verdict")
def report(run, store_url, out_dir, verbose) -> None:
    """Regenerate the HTML page and verdict JSON of a stored run (an id or its prefix)."""
    from posbench.store import UnknownRun
    from posbench.render.stored_run import regenerate
    with open_store(store_url) as store:
        try:
            html_path, json_path, doc = regenerate(store, run, out_dir)
        except UnknownRun as exc:
            raise UsageFailure(str(exc)) from None
    print_verdict(make_console(), doc, verbose, html_path, json_path)
