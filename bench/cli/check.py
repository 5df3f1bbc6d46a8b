"""``posbench check``: a bench checked without testing the unit."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape

from posbench.cli.common import EXIT_BENCH, Command, UsageFailure, check_bench_profile
from posbench.core.console import make_console, say
from posbench.core.errors import BenchError, ConfigError
from posbench.core.signals import STOPPED, acknowledge as acknowledge_stop


@click.command(cls=Command)
@click.option("--bench", "bench_path", required=True, type=click.Path(path_type=Path),
              help="bench description (bench.toml)")
def check(bench_path) -> None:
    """Check a bench without testing the unit: bench.toml, its DUT profile against the HIL suite,
    and every device, found and identified but sent nothing that changes its state (no sale, no
    power switching, no supply setting). Exit 0 ready, 2 a device missing or unusable, 3 a
    mistake in bench.toml or the profile."""
    from posbench.setup.config import load_bench
    from posbench.setup.preflight import FAIL, WARN, PreflightFailed, look
    console = make_console()
    try:
        config = load_bench(bench_path)
        profiled = check_bench_profile(config)
        lock, checks = look(bench_path, lambda text: say(console, text), read_only=True)
        lock.release()
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    except PreflightFailed as exc:
        bad = [c.device for c in exc.checks if c.state == FAIL]
        say(console, f"[bold magenta]bench not ready[/]: {len(bad)} of {len(exc.checks)} device(s) missing or "
                     f"unusable ({escape(', '.join(bad))}): see the lines above")
        sys.exit(EXIT_BENCH)
    except BenchError as exc:
        say(console, f"[bold magenta]BENCH ERROR[/]: {escape(str(exc))}")
        sys.exit(EXIT_BENCH)
    except KeyboardInterrupt:
        acknowledge_stop()
        say(console, f"[bold magenta]INTERRUPTED[/] ({STOPPED.get('by') or 'SIGINT'}): the bench was not "
                     "checked whole")
        sys.exit(EXIT_BENCH)
    warned = [c.device for c in checks if c.state == WARN]
    found = f"bench ok: {len(checks)} devices found" + (f" ({', '.join(warned)} with a warning above)" if warned else "")
    if profiled is None:
        said = "no profile named: the unit's reported model chooses it ([unit] profile or model sets one)"
    else:
        profile, result = profiled
        unset = len(result.not_judged) - len(result.cannot_tell)
        said = (f"profile {profile.model}: {len(result.judged)} measurements judged, {len(result.cannot_tell)} not "
                f"(the protocol cannot tell them)" + (f", {unset} without a limit in the profile" if unset else ""))
    say(console, escape(f"{found}; {said}"))
