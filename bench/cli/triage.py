"""``posbench triage``: run the HIL suite against a unit and name the most likely cause of its code 01.

The options become one ``TriageRequest`` (``posbench.cli.request``); the bench comes from one
``BenchSource`` (``posbench.cli.source``)."""
from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.markup import escape

from posbench.cli import common
from posbench.cli import triage_checks as checks
from posbench.cli.common import EXIT_BENCH, FAULT_HELP, PROFILE_HELP, Command, UsageFailure, print_verdict, store_option
from posbench.cli.request import TriageRequest, check_usage
from posbench.cli.source import BenchSource, bench_source
from posbench.cli.triage_reports import name_by_serial, rewrite, store_failed_preflight, unwritten_reports
from posbench.core.console import make_console, say
from posbench.core.errors import BenchError, ConfigError
from posbench.core.signals import STOPPED, acknowledge as acknowledge_stop
from posbench.diagnosis import ranking as diagnosis
from posbench.sim import PROTOCOLS
@click.command(cls=Command)
@click.option("--bench", "bench_path", type=click.Path(path_type=Path), help="bench description (bench.toml)")
@click.option("--virtual", is_flag=True, help="use a freshly started virtual bench (default without --bench)")
@click.option("--fault", multiple=True, metavar="ID[=SEVERITY]", help=FAULT_HELP)
@click.option("--seed", type=int, help="virtual bench: seed for every random choice")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=None,
              help="virtual bench: the ECR protocol the unit speaks (default: the profile's first)")
@click.option("--profile", "sim_profile", metavar="NAME", help=PROFILE_HELP)
@click.option("--place", metavar="NAME", help="bench room: acquire this labgrid place and triage its unit")
@click.option("--reserve", metavar="TAGS", help="bench room: take any free place with these tags (e.g. model=PT100), "
                                                "waiting for one up to --wait seconds")
@click.option("--coordinator", metavar="HOST[:PORT]", envvar="LG_COORDINATOR",
              help="bench room: the labgrid coordinator (default: $LG_COORDINATOR)")
@click.option("--wait", "wait_s", type=click.FloatRange(0, 86400), default=600.0, show_default=True,
              metavar="SECONDS", help="bench room: how long --reserve waits for a free place")
@click.option("--parallel", type=click.IntRange(1, 64), metavar="N",
              help="bench room: triage N units at once with --reserve (a process and a place each), into one store")
@click.option("--technician-s", "technician_s", type=click.FloatRange(0.01, 60), metavar="SECONDS",
              help="virtual bench: the simulated technician's slowest presentation (default 2.5 s, a person's "
                   "pace; it must end 0.5 s inside the unit's card wait)")
@click.option("--unit", metavar="SERIAL", help="serial number of the unit under test")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="verdict JSON file")
@click.option("--html", "html_path", type=click.Path(path_type=Path), help="HTML report file")
@click.option("--junit", "junit_path", type=click.Path(path_type=Path), help="JUnit XML file")
@store_option
@click.option("--soak", type=click.IntRange(1, 1_000_000), metavar="N",
              help="power cycles of the soak test (default: the profile's short soak)")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="debug log of the drivers (posbench.* loggers): a line per ZVT message sent and "
                   "received, its command, result code and status, never card data")
@click.option("--verbose", "-v", is_flag=True, help="print every finding behind the verdict: evidence lines, "
                                                    "test ids, statistics, unmeasured measurements")
def triage(**options) -> None:
    """Run the HIL suite against a unit and name the most likely cause of its code 01."""
    run_triage(TriageRequest(**options))


def run_triage(request: TriageRequest) -> None:
    """The triage ``request`` asks for; ends by ``sys.exit`` with the verdict's status (0, 1),
    2 for a bench error or an interruption; ``UsageFailure`` (3) for a usage or config mistake."""
    console = make_console()
    checked = check_usage(request)
    req = checked.request
    if req.parallel:
        from posbench.room.parallel import run_parallel
        sys.exit(run_parallel(req.parallel, sys.argv[1:], console))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{req.unit or 'triage'}-{stamp}"
    named_by_us = {"json": req.json_path is None, "html": req.html_path is None, "xml": req.junit_path is None}
    json_path = req.json_path or common.REPORTS / f"{stem}.json"
    html_path = req.html_path or common.REPORTS / f"{stem}.html"
    junit_path = req.junit_path or common.REPORTS / f"{stem}.xml"
    log_path, store_url = req.log_path, req.store_url
    virtual_profile: str | None = None
    if req.on_virtual_bench:  # the virtual bench's unit is of the profile it is shaped like
        from posbench.sim.bench import DEFAULT_PROFILE
        virtual_profile = req.sim_profile or DEFAULT_PROFILE
    checks.preflight(req.bench_path, store_url, {"--json": json_path, "--html": html_path, "--junit": junit_path,
                                                 **({"--log": log_path} if log_path else {})}, virtual_profile)

    from posbench.run.runner import run_hil
    source: BenchSource | None = None
    bench_lock = None
    interrupted = STOPPED
    unlog = checks.debug_log(log_path) if log_path else None
    try:
        checks.check_store(store_url)
        source = bench_source(checked, console)
        bench_file = source.start()
        from posbench.diagnosis.ranking import failed_verdict
        from posbench.setup.preflight import PreflightFailed, preflight
        started = datetime.now(timezone.utc), time.monotonic()
        try:  # every device checked at once, before any test
            bench_lock = preflight(bench_file, lambda text: say(console, text))
        except PreflightFailed as exc:  # the verdict JSON, the store and the HTML say so too
            errors: list[str] = []
            failed = failed_verdict(exc, started[0], time.monotonic() - started[1])
            rewrite(json_path, failed, errors)
            store_failed_preflight(store_url, failed, started[0], html_path, errors)
            for error in errors:
                say(console, f"[bold magenta]BENCH ERROR[/]: {escape(error)}")
            if not errors:
                say(console, f"report: {escape(str(html_path))}")
            raise
        extra = ["--reports-dir", str(common.REPORTS)] + (["--store", store_url] if store_url else []) \
            + (["--soak", str(req.soak)] if req.soak else [])
        result = run_hil(bench_file, json_path, html_path, junit_path, req.unit, console, extra)
        if result.config_error:  # bench.toml or the DUT profile is wrong: a usage error
            raise UsageFailure(result.config_error)
        doc = result.doc
        if doc is not None and not source.alive():
            doc.add_bench_error("the virtual bench process died during the run")
            doc.verdict, doc.causes = "bench_error", []
            rewrite(json_path, doc, result.write_errors)
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    except BenchError as exc:
        say(console, f"[bold magenta]BENCH ERROR[/]: {escape(str(exc))}")
        sys.exit(EXIT_BENCH)
    except KeyboardInterrupt:  # before or after the suite: nothing to report yet
        acknowledge_stop()
        say(console, f"[bold magenta]INTERRUPTED[/] ({interrupted.get('by') or 'SIGINT'}): "
                     "the unit was not judged")
        sys.exit(EXIT_BENCH)
    finally:
        if bench_lock is not None:
            bench_lock.release()
        if source is not None:
            source.stop()
        if unlog is not None:
            unlog()
    if doc is None and interrupted.get("by"):  # stopped while pytest collected: no test had run
        acknowledge_stop()
        say(console, f"[bold magenta]INTERRUPTED[/] ({interrupted['by']}): before the first test; "
                     "the unit was not judged")
        sys.exit(EXIT_BENCH)
    if doc is None or result.code in (3, 4, 5) and not result.write_errors:  # internal error, usage, nothing ran
        say(console, f"[bold magenta]BENCH ERROR[/]: the HIL run did not complete (pytest exit {result.code})")
        sys.exit(EXIT_BENCH)
    json_path, html_path, junit_path = name_by_serial(doc, stamp, named_by_us, json_path, html_path, junit_path)
    print_verdict(console, doc, req.verbose, html_path, json_path, junit_path)
    if interrupted.get("by"):
        acknowledge_stop()
        say(console, f"[bold magenta]INTERRUPTED[/] by {interrupted['by']}: the finished tests are "
                     "reported and stored; the unit was not judged")
        sys.exit(EXIT_BENCH)
    status = diagnosis.EXIT_STATUS.get(doc.verdict, EXIT_BENCH)
    if result.write_errors:
        status = unwritten_reports(console, doc, result.write_errors, store_url, status)
    sys.exit(status)
