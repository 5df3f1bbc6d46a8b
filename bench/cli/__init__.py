"""The ``posbench`` command: triage a unit, run the virtual bench.

One module per command (``triage``, ``sim``, ``host``, ``check``, ``discover``, ``export``,
``history``, ``runs``, ``report``, ``calibrate``, ``udev_rules``); what they share is in
``common``. ``posbench.cli:main`` is the console script, ``python -m posbench.cli`` the same.

Exit statuses: 0 no fault found, 1 fault diagnosed, 2 bench error, 3 usage or config error.
"""
from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

import click

from posbench.cli import (calibrate, check, discover, export, history, host, report, runs, sim, triage,
                          udev_rules)
from posbench.cli.common import EXIT_BENCH, EXIT_USAGE, Group
from posbench.core.signals import STOPPED, acknowledge as acknowledge_stop, catch_stop_signals

__all__ = ["EXIT_BENCH", "EXIT_USAGE", "cli", "main", "version"]


def version() -> str:
    """The installed distribution's version, else the one in the source tree's pyproject.toml."""
    try:
        return metadata.version("posbench")
    except metadata.PackageNotFoundError:
        pass
    try:
        with open(Path(__file__).resolve().parents[2] / "pyproject.toml", "rb") as fh:
            return tomllib.load(fh)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"posbench {version()}")
        ctx.exit()


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")
def cli() -> None:
    """posbench: find out why a POS terminal shows response code 01.

    \b
    Exit status:
      0  no fault found
      1  a fault found, or inconclusive (the unit needs a closer look)
      2  bench error: the bench failed or the run was interrupted; the unit was not judged
      3  usage or config mistake, found before the bench starts
    """


for command in (triage.triage, sim.sim, host.host, check.check, discover.discover, export.export,
                history.history, runs.runs, report.report, calibrate.calibrate, udev_rules.udev_rules):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point; maps click's usage errors to exit status 3."""
    catch_stop_signals()
    try:
        cli.main(args=argv, prog_name="posbench", standalone_mode=False)
    except click.exceptions.Abort:
        if STOPPED.get("by"):  # a stop signal before the command could start or end its work
            acknowledge_stop()
            print(f"INTERRUPTED by {STOPPED['by']}", file=sys.stderr)
            sys.exit(EXIT_BENCH)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
