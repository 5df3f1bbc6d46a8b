"""``posbench udev-rules``: udev rules for a non-root technician."""
from __future__ import annotations

from pathlib import Path

import click

from posbench.cli.common import Command, UsageFailure
from posbench.core.errors import ConfigError


@click.command("udev-rules", cls=Command)
@click.option("--bench", "bench_path", type=click.Path(path_type=Path),
              help="rules for the devices of this bench description (default: the known set)")
def udev_rules(bench_path) -> None:
    """Print udev rules that let a non-root technician open the bench's devices (docs/bench-setup.md)."""
    from posbench.setup.udev_rules import known_rules, rules_for_bench
    if not bench_path:
        click.echo(known_rules(), nl=False)
        return
    from posbench.setup.config import load_bench
    try:
        text, missing = rules_for_bench(load_bench(bench_path))
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    click.echo(text, nl=False)
    for port in missing:
        click.echo(f"# {port}: no USB adapter found there now (plug it in, or use the known set: "
                   "`posbench udev-rules`)")
