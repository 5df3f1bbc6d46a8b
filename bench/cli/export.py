"""``posbench export``: the labgrid exporter config serving this bench as a place of a bench room."""
from __future__ import annotations

from pathlib import Path

import click

from posbench.cli.common import Command, UsageFailure
from posbench.core.errors import ConfigError


@click.command(cls=Command)
@click.option("--bench", "bench_path", required=True, type=click.Path(path_type=Path),
              help="the bench description (bench.toml) of this bench host")
@click.option("--place", metavar="NAME", help="the place's name (default: the bench's [bench] name)")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="the exporter config to write (default: <place>.exporter.yaml); never overwritten")
@click.option("--coordinator", metavar="HOST[:PORT]", envvar="LG_COORDINATOR", default="127.0.0.1:20408",
              show_default=True, help="the coordinator named in the commands printed")
def export(bench_path, place, out_path, coordinator) -> None:
    """Write the labgrid exporter config that serves this bench as a place of a bench room."""
    from posbench.setup.config import load_bench
    from posbench.room.exported import exporter_config, place_commands, place_name
    try:
        config = load_bench(bench_path)
        name = place_name(config, place)
        text = exporter_config(config, name)
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    out_path = out_path or Path(f"{name}.exporter.yaml")
    try:
        with open(out_path, "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise UsageFailure(f"--out {out_path}: exists; posbench export never overwrites (remove it or "
                           "name another file)") from None
    except OSError as exc:
        raise UsageFailure(f"--out {out_path}: cannot be written: {exc.strerror or exc}") from None
    click.echo(f"wrote {out_path}: place {name}. On this bench host, serve it (ser2net installed):")
    click.echo(f"  labgrid-exporter -c {coordinator} -n $(hostname) {out_path}")
    click.echo("Create the place once, from any host:")
    for command in place_commands(config, name, coordinator):
        click.echo(f"  {command}")
