"""``posbench runs``: the newest stored runs."""
from __future__ import annotations

import click

from posbench.cli.common import Command, UsageFailure, open_store, store_option
from posbench.core.console import make_console


@click.command(cls=Command)
@store_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="how many runs")
@click.option("--bench", "bench_name", metavar="NAME", help="only this bench's or place's runs")
def runs(store_url, limit, bench_name) -> None:
    """The newest runs of every bench in the store (a bench room's: each place's): time, place, unit, verdict, causes."""
    from posbench.render.history import render_runs
    with open_store(store_url) as store:
        if not render_runs(store, make_console(), limit, bench_name):
            raise UsageFailure(f"no runs stored in {store.url}" + (f" for {bench_name}" if bench_name else ""))
