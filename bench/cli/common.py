"""What the ``posbench`` commands share: exit statuses, option help texts, the usage error,
the command class, and the few steps more than one command takes.

Exit statuses: 0 no fault found, 1 fault diagnosed, 2 bench error, 3 usage or config error.
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from posbench.diagnosis.verdict import Verdict
from posbench.core.console import make_console, say
from posbench.core.errors import BenchError
from posbench.sim.unit.faults import INJECTABLE, NETWORK

EXIT_BENCH, EXIT_USAGE = 2, 3
"""Exit statuses of a bench failure and of a usage or config mistake (a verdict's own: diagnosis.EXIT_STATUS)."""

REPORTS = Path("reports")
"""Where reports and the default SQLite store go (read as ``common.REPORTS``: tests point it elsewhere)."""


store_option = click.option("--store", "store_url", metavar="URL", envvar="POSBENCH_STORE",
                            help="result store, an SQLAlchemy URL (default: SQLite in reports/)")


FAULT_HELP = (f"virtual bench: inject a fault, severity in (0, 1] (default 1); repeatable. IDs: "
              f"{', '.join(INJECTABLE)} ({', '.join(NETWORK)} need root)")

PROFILE_HELP = ("virtual bench: the DUT profile it is shaped like, a packaged one by name (pt100, zvt-generic, "
                "concert-generic, caisse-ap-generic) or a profile file: its unit, protocols, the readers the "
                "bench reaches, whose acquirer [default: pt100]")


class UsageFailure(click.ClickException):
    exit_code = EXIT_USAGE


class Command(click.Command):
    """A command whose description ``posbench --help`` shows whole (click cuts it at the
    width left beside the name)."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or " ".join(inspect.cleandoc(self.help or "").split("\n\n")[0].split())


class Group(click.Group):
    command_class = Command


def check_bench_profile(config):
    """The DUT profile a bench description names, checked against every measurement the HIL
    suite declares (``posbench.run.profile_check``); ``ConfigError`` naming file and key. None when
    it names no profile or model (the profile then follows the model the unit reports)."""
    from posbench.setup.preflight import config_mistakes
    from posbench.setup.profile import profile_for_bench
    from posbench.run.profile_check import check_profile
    config_mistakes(config)
    profile = profile_for_bench(config)
    return None if profile is None else (profile, check_profile(profile, config.terminal))


def print_verdict(console: Console, doc: Verdict, verbose: bool, *paths: Path) -> None:
    """The verdict's first screen (``posbench.render.screen``); ``--verbose`` puts every detail before it."""
    from posbench.render import screen as verdict_screen
    if verbose:
        for line in verdict_screen.details(doc):
            say(console, line)
        say(console, "reports: " + "  ".join(str(p) for p in paths))
    for line in verdict_screen.screen(doc, str(paths[0]), console.width):
        say(console, line)


def open_store(url: str | None):
    from posbench.store import Store
    try:
        return Store.open(url, REPORTS)
    except BenchError as exc:
        make_console(stderr=True).print(f"[bold magenta]BENCH ERROR[/]: {escape(str(exc))}")
        sys.exit(EXIT_BENCH)
