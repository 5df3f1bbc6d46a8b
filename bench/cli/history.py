"""``posbench history``: a unit's stored runs."""
from __future__ import annotations

import click

from posbench.cli.common import Command, UsageFailure, open_store, store_option
from posbench.core.console import make_console


@click.command(cls=Command)
@click.argument("serial")
@store_option
def history(serial, store_url) -> None:
    """A unit's runs, newest first, and what changed between its last two runs."""
    from posbench.render.history import render_history
    with open_store(store_url) as store:
        if not render_history(store, serial, make_console()):
            raise UsageFailure(f"no runs stored for unit {serial} in {store.url}")
