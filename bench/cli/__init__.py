"""The ``posbench`` command: triage a unit, run the virtual bench.

Exit statuses: 0 no fault found, 1 fault diagnosed, 2 bench error, 3 usage or config error.
"""
from __future__ import annotations

import inspect
import json
import os
import re
import random
import shlex
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console
from rich.markup import escape

from posbench.drivers import registry
from posbench.diagnosis import ranking as diagnosis
from posbench.core.console import make_console, say
from posbench.core.signals import STOPPED, acknowledge as acknowledge_stop, catch_stop_signals
from posbench.sim import PROTOCOLS
from posbench.sim.faults import INJECTABLE, NETWORK
from posbench.core.errors import BenchError, ConfigError

T = TypeVar("T")
EXIT_BENCH, EXIT_USAGE = 2, 3
"""Exit statuses of a bench failure and of a usage or config mistake (a verdict's own: diagnosis.EXIT_STATUS)."""

REPORTS = Path("reports")


store_option = click.option("--store", "store_url", metavar="URL", envvar="POSBENCH_STORE",
                            help="result store, an SQLAlchemy URL (default: SQLite in reports/)")


FAULT_HELP = (f"virtual bench: inject a fault, severity in (0, 1] (default 1); repeatable. IDs: "
              f"{', '.join(INJECTABLE)} ({', '.join(NETWORK)} need root)")


class UsageFailure(click.ClickException):
    exit_code = EXIT_USAGE


class _Command(click.Command):
    """A command whose description ``posbench --help`` shows whole (click cuts it at the
    width left beside the name)."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or " ".join(inspect.cleandoc(self.help or "").split("\n\n")[0].split())


class _Group(click.Group):
    command_class = _Command


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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
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


PROFILE_HELP = ("virtual bench: the DUT profile it is shaped like, a packaged one by name (pt100, zvt-generic, "
                "concert-generic, caisse-ap-generic) or a profile file: its unit, protocols, the readers the "
                "bench reaches, whose acquirer [default: pt100]")


def _sim_shape(profile: str | None, protocol: str | None) -> str:
    """The protocol of a virtual bench shaped like ``profile``: ``protocol`` if the profile speaks
    it, else its first; a usage error (exit 3) for an unknown profile or a protocol it does not speak."""
    from posbench.sim.bench import DEFAULT_PROFILE, sim_profile, sim_protocol
    try:
        shape = sim_profile(profile or DEFAULT_PROFILE)
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None  # names --profile
    try:
        return sim_protocol(shape, protocol)
    except ValueError as exc:
        raise UsageFailure(f"--protocol: {exc}") from None


def _technician_fits(slowest_s: float, profile: str | None, protocol: str) -> None:
    """A usage error (exit 3) when the simulated technician could not present within the unit's
    card wait (``posbench.sim.bench.technician_fits``)."""
    from posbench.sim.bench import DEFAULT_PROFILE, sim_profile, technician_fits
    if (why := technician_fits(slowest_s, sim_profile(profile or DEFAULT_PROFILE), protocol)) is not None:
        raise UsageFailure(f"--technician-s: {why}")


def _faults(values: tuple[str, ...]) -> dict[str, float]:
    from posbench.sim.faults import FaultSpecError, parse_faults
    try:
        return parse_faults(values)
    except FaultSpecError as exc:
        raise UsageFailure(f"--fault: {exc}") from None


@cli.command()
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
def triage(bench_path, virtual, fault, seed, protocol, sim_profile, place, reserve, coordinator, wait_s, parallel,
           technician_s, unit, json_path, html_path, junit_path, store_url, soak, log_path, verbose) -> None:
    """Run the HIL suite against a unit and name the most likely cause of its code 01."""
    console = make_console()
    if sim_profile and (bench_path or place or reserve):
        raise UsageFailure("--profile shapes the virtual bench only (drop it: a bench file's [unit] profile, "
                           "or the place's, says what the unit is)")
    room = _room_request(bench_path, virtual, fault, seed, protocol, place, reserve, coordinator, parallel,
                         (json_path, html_path, junit_path, log_path))
    if parallel:
        from posbench.room.parallel import run_parallel
        sys.exit(run_parallel(parallel, sys.argv[1:], console))
    if bench_path and virtual:
        raise UsageFailure("--bench and --virtual exclude each other")
    if bench_path and (fault or seed is not None or protocol or technician_s is not None):
        raise UsageFailure("--fault, --seed, --protocol and --technician-s apply to the virtual bench only (drop "
                           "--bench; bench.toml's [terminal] protocol says what a real unit speaks)")
    faults = _faults(fault)
    if not bench_path and room is None:
        protocol = _sim_shape(sim_profile, protocol)
        if technician_s is not None:
            _technician_fits(technician_s, sim_profile, protocol)
    if unit and not bench_path and protocol in registry.sim_names() \
            and (problem := registry.virtual(protocol).serial_problem(unit)):
        raise UsageFailure(f"--unit {unit}: {problem}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{unit or 'triage'}-{stamp}"
    named_by_us = {"json": json_path is None, "html": html_path is None, "xml": junit_path is None}
    json_path = json_path or REPORTS / f"{stem}.json"
    html_path = html_path or REPORTS / f"{stem}.html"
    junit_path = junit_path or REPORTS / f"{stem}.xml"
    virtual_profile: str | None = None
    if not bench_path and room is None:  # the virtual bench's unit is of the profile it is shaped like
        from posbench.sim.bench import DEFAULT_PROFILE
        virtual_profile = sim_profile or DEFAULT_PROFILE
    _preflight(bench_path, store_url, {"--json": json_path, "--html": html_path, "--junit": junit_path,
                                       **({"--log": log_path} if log_path else {})}, virtual_profile)

    from posbench.run.runner import run_hil
    vbench = bench_lock = place_bench = None
    interrupted = STOPPED
    unlog = _debug_log(log_path) if log_path else None
    try:
        _check_store(store_url)
        if bench_path:
            bench_file = bench_path
        elif room is not None:
            from posbench.room.place_bench import PlaceBench
            place_bench = PlaceBench(room[0], place, room[1], wait_s, lambda text: say(console, escape(text)))
            bench_file = place_bench.start()
        else:
            from posbench.sim.launcher import VirtualBench
            seed = random.randrange(2**31) if seed is None else seed  # printed: a run can be repeated
            # --unit on the virtual bench: the virtual unit reports that serial (a repair can be
            # rehearsed: a fault, then none, same serial, and `history` shows before / after)
            vbench = VirtualBench(faults, seed, protocol=protocol, serial=unit, profile=sim_profile,
                                  technician_s=technician_s)
            say(console, "starting the virtual bench"
                          + (f" shaped like {sim_profile}" if sim_profile else "")
                          + (f" with faults {', '.join(fault)}" if fault else " (healthy unit)")
                          + f", seed {seed}" + (f", protocol {protocol}" if protocol != registry.DEFAULT else ""))
            bench_file = vbench.start()
        from posbench.diagnosis.ranking import failed_verdict
        from posbench.setup.preflight import PreflightFailed, preflight
        checked = datetime.now(timezone.utc), time.monotonic()
        try:  # every device checked at once, before any test
            bench_lock = preflight(bench_file, lambda text: say(console, text))
        except PreflightFailed as exc:  # the verdict JSON, the store and the HTML say so too
            errors: list[str] = []
            failed = failed_verdict(exc, checked[0], time.monotonic() - checked[1])
            _rewrite(json_path, failed, errors)
            _store_failed_preflight(store_url, failed, checked[0], html_path, errors)
            for error in errors:
                say(console, f"[bold magenta]BENCH ERROR[/]: {escape(error)}")
            if not errors:
                say(console, f"report: {escape(str(html_path))}")
            raise
        extra = ["--reports-dir", str(REPORTS)] + (["--store", store_url] if store_url else []) \
            + (["--soak", str(soak)] if soak else [])
        result = run_hil(bench_file, json_path, html_path, junit_path, unit, console, extra)
        if result.config_error:  # bench.toml or the DUT profile is wrong: a usage error
            raise UsageFailure(result.config_error)
        doc = result.doc
        if doc is not None and vbench is not None and not vbench.alive():
            doc.setdefault("bench_errors", []).append("the virtual bench process died during the run")
            doc["verdict"], doc["causes"] = "bench_error", []
            _rewrite(json_path, doc, result.write_errors)
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
        if place_bench is not None:
            place_bench.stop()
        if vbench is not None:
            vbench.stop()
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
    json_path, html_path, junit_path = _name_by_serial(doc, stamp, named_by_us, json_path, html_path, junit_path)
    _print_verdict(console, doc, verbose, html_path, json_path, junit_path)
    if interrupted.get("by"):
        acknowledge_stop()
        say(console, f"[bold magenta]INTERRUPTED[/] by {interrupted['by']}: the finished tests are "
                     "reported and stored; the unit was not judged")
        sys.exit(EXIT_BENCH)
    status = diagnosis.EXIT_STATUS.get(doc["verdict"], EXIT_BENCH)
    if result.write_errors:
        status = _unwritten_reports(console, doc, result.write_errors, store_url, status)
    sys.exit(status)


def _unwritten_reports(console: Console, doc: dict, errors: list[str], store_url: str | None, status: int) -> int:
    """Reports that could not be written after the verdict was printed. A verdict the store kept
    (``run_id``) stands: a warning per report and the ``posbench report`` that writes them again,
    and the verdict's ``status``. A verdict kept nowhere but on the screen is a bench error (2)."""
    run_id = doc.get("run_id")
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


def _room_request(bench_path, virtual, fault, seed, protocol, place, reserve, coordinator, parallel,
                  outputs) -> tuple[str, dict[str, str] | None] | None:
    """The coordinator and the tags of a bench-room triage (``--place`` / ``--reserve``), None
    for another bench; ``UsageFailure`` for options that do not go together."""
    if not (place or reserve):
        if parallel:
            raise UsageFailure("--parallel takes places by --reserve TAGS")
        return None
    if place and reserve:
        raise UsageFailure("--place and --reserve exclude each other")
    if bench_path or virtual or fault or seed is not None or protocol:
        raise UsageFailure("--place / --reserve take the bench from the place: drop --bench, --virtual, --fault, "
                           "--seed and --protocol")
    if parallel and not reserve:
        raise UsageFailure("--parallel takes places by --reserve TAGS (one place per unit)")
    if parallel and any(outputs):
        raise UsageFailure("--parallel: each run names its reports by its unit's serial; drop --json, --html, "
                           "--junit and --log")
    if not coordinator:
        raise UsageFailure("--place / --reserve need the labgrid coordinator: --coordinator HOST[:PORT] "
                           "or LG_COORDINATOR")
    try:
        import labgrid  # noqa: F401 - the optional extra
    except ImportError:
        raise UsageFailure("--place / --reserve need labgrid: pip install 'posbench[labgrid]'") from None
    from posbench.room.client import coordinator_address, parse_tags
    try:
        return coordinator_address(coordinator), parse_tags(reserve) if reserve else None
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None


def _name_by_serial(doc: dict, stamp: str, named_by_us: dict[str, bool], *paths: Path) -> tuple[Path, ...]:
    """Reports posbench named itself carry the serial the unit reported (``<serial>-<time>.*``),
    not ``triage-<time>``; a name the technician gave is kept."""
    serial = re.sub(r"[^A-Za-z0-9._-]", "_", doc["unit"].get("serial") or "")
    out = []
    for path in paths:
        target = REPORTS / f"{serial}-{stamp}{path.suffix}"
        if serial and named_by_us.get(path.suffix.lstrip(".")) and path != target and path.is_file():
            try:
                os.replace(path, target)
                path = target
            except OSError:
                pass  # the report stays under its first name, which is printed
        out.append(path)
    return tuple(out)


def _preflight(bench_path: Path | None, store_url: str | None, outputs: dict[str, Path],
               virtual_profile: str | None = None) -> None:
    """Usage and config mistakes, found before the bench starts (exit 3): the bench file and its
    DUT profile against the HIL suite (``virtual_profile``: the profile a virtual bench will be
    built from), the store URL, and report targets that are not regular files or cannot be
    written. Nothing is written and no device touched before these pass."""
    from posbench.render.outputs import check_target
    try:
        if bench_path:
            from posbench.setup.config import load_bench
            _check_profile(load_bench(bench_path))
        elif virtual_profile:
            from posbench.sim.bench import sim_profile
            from posbench.run.profile_check import check_profile
            check_profile(sim_profile(virtual_profile))
        for option, path in outputs.items():
            check_target(path, option)
        if store_url:
            from posbench.setup.preflight import check_store_url
            try:
                check_store_url(store_url)
            except ValueError as exc:
                raise UsageFailure(f"--store {store_url!r}: {exc}; e.g. "
                                   "sqlite:///reports/posbench.sqlite or postgresql://user@host/db") from None
        else:
            check_target(REPORTS / "posbench.sqlite", "the default result store (--store)")
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None


def _check_profile(config):
    """The DUT profile a bench description names, checked against every measurement the HIL
    suite declares (``posbench.run.profile_check``); ``ConfigError`` naming file and key. None when
    it names no profile or model (the profile then follows the model the unit reports)."""
    from posbench.setup.preflight import config_mistakes
    from posbench.setup.profile import profile_for_bench
    from posbench.run.profile_check import check_profile
    config_mistakes(config)
    profile = profile_for_bench(config)
    return None if profile is None else (profile, check_profile(profile, config.terminal))


def _store_failed_preflight(store_url: str | None, doc: dict, started: datetime, html_path: Path,
                            errors: list[str]) -> None:
    """A bench whose preflight failed is a run too: stored (``posbench runs`` then shows the broken
    bench or place) and given its HTML page, the stored run's page. Failures go into ``errors``."""
    from posbench.render.outputs import ReportWriteFailed, write_text
    from posbench.store import Store, StoreUnavailable
    from posbench.render.stored_run import render_html
    try:
        with Store.open(store_url, REPORTS, sweep=False) as store:
            run_id = store.begin_run(doc.get("bench"), started, unit=doc.get("unit"))
            store.finish_run(run_id, doc, EXIT_BENCH)
            page = render_html(store.run(run_id), doc)
    except StoreUnavailable as exc:
        errors.append(str(exc))
        return
    try:
        write_text(html_path, page, "HTML report")
    except ReportWriteFailed as exc:
        errors.append(str(exc))


def _check_store(store_url: str | None) -> None:
    """Open the result store once before any device is touched: one that cannot be reached (a
    server down, a wrong password) is a bench error now, not 19 errored tests after the bench
    started. ``StoreUnavailable`` (a ``BenchError``) names it."""
    from posbench.store import Store
    Store.open(store_url, REPORTS, sweep=False).close()


def _debug_log(path: Path):
    """Write the ``posbench`` loggers' DEBUG lines to ``path`` (only there: not into the reports'
    captured logs); returns the function that undoes it."""
    import logging
    logger = logging.getLogger("posbench")
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    def undo() -> None:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    return undo


def _rewrite(json_path: Path, doc: dict, errors: list[str]) -> None:
    from posbench.render.outputs import ReportWriteFailed, write_text
    try:
        write_text(json_path, json.dumps(doc, indent=2) + "\n", "verdict JSON")
    except ReportWriteFailed as exc:
        errors.append(str(exc))




def _print_verdict(console: Console, doc: dict, verbose: bool, *paths: Path) -> None:
    """The verdict's first screen (``posbench.render.screen``); ``--verbose`` puts every detail before it."""
    from posbench.render import screen as verdict_screen
    if verbose:
        for line in verdict_screen.details(doc):
            say(console, line)
        say(console, "reports: " + "  ".join(str(p) for p in paths))
    for line in verdict_screen.screen(doc, str(paths[0]), console.width):
        say(console, line)


@cli.command()
@click.option("--probe", is_flag=True, help="ask every serial port which protocol it speaks (terminals, "
                                            "supplies, PN532 readers) and every announced TCP endpoint")
@click.option("--port", "ports", multiple=True, metavar="PORT",
              help="also look at this port or URL (a pty, rfc2217://...); repeatable")
@click.option("--address", "addresses", multiple=True, metavar="HOST[:PORT]",
              help="try the TCP terminal protocols at HOST (ZVT on 20007), or all of them at PORT; repeatable")
@click.option("--usb", "usb_backends", multiple=True, metavar="usbip://HOST:PORT",
              help="also enumerate this USB/IP server (usbipd); repeatable")
@click.option("--write", "write_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="write a bench.toml of what was found (needs --probe; never overwrites)")
def discover(probe, ports, addresses, usb_backends, write_path) -> None:
    """Find the bench's devices (serial, TCP, USB, NFC), and with --write describe them in a bench.toml.

    \b
    Exit status 0 also when nothing was found; 3 for a usage mistake (--write to a file that
    exists, a malformed --usb).
    """
    from posbench.discover import report, survey, writer
    from posbench.render.outputs import check_target
    console = make_console()
    if write_path is not None:
        if not probe:
            raise UsageFailure("--write needs --probe: only a port that answered is written as a device")
        if os.path.lexists(write_path):
            raise UsageFailure(f"--write {write_path}: the file exists; discover never overwrites a bench "
                               "description (move it away or name another file)")
        try:
            check_target(write_path, "--write")
        except ConfigError as exc:
            raise UsageFailure(str(exc)) from None
    for spec in usb_backends:
        if not spec.startswith("usbip://"):
            raise UsageFailure(f"--usb {spec}: expected usbip://HOST:PORT (the local bus is always enumerated)")
    found = survey.survey(probe, ports, addresses, usb_backends)
    for line in report.lines(found):
        say(console, escape(line))
    if write_path is None:
        if probe:
            say(console, "(--write FILE describes what was found in a bench.toml)")
        return
    plan = writer.compose(found)
    if plan is None:
        say(console, escape(f"no terminal answered: {write_path} not written (a bench.toml needs its [terminal]). "
                            "Check the unit is on and its ECR cable in, or name its port (--port) or address "
                            "(--address)."))
        return
    try:
        writer.write(write_path, plan.text)
    except FileExistsError:
        raise UsageFailure(f"--write {write_path}: the file appeared meanwhile; not overwritten") from None
    except ConfigError as exc:  # discover composed something config refuses: discover's own fault
        say(console, f"[bold magenta]BENCH ERROR[/]: the composed bench.toml is not valid: {escape(str(exc))}")
        sys.exit(EXIT_BENCH)
    except OSError as exc:
        say(console, f"[bold magenta]BENCH ERROR[/]: cannot write {escape(str(write_path))}: {escape(str(exc))}")
        sys.exit(EXIT_BENCH)
    say(console, f"wrote {escape(str(write_path))}: " + escape("; ".join(plan.used)))
    if plan.left:
        say(console, escape("not used (comments in the file): " + "; ".join(plan.left)))
    say(console, "lines marked FILL IN are yours to complete; check it with "
                 f"`posbench check --bench {escape(str(write_path))}`")


@cli.command()
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
        profiled = _check_profile(config)
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


@cli.command("udev-rules")
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


def _stop_on_signal() -> threading.Event:
    """From now on SIGINT and SIGTERM set the returned event (a server's normal end) instead of
    interrupting whatever runs."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _until_signal(stop: threading.Event) -> None:
    """Block until ``stop`` is set, or (started by a triage) until that triage is gone.

    ``POSBENCH_PARENT_PID`` names the process that launched this virtual bench: if it dies
    without stopping us (SIGKILL), we are reparented and clean up instead of living on.
    """
    import os
    parent = os.environ.get("POSBENCH_PARENT_PID")
    while not stop.wait(0.5):
        if parent and os.getppid() != int(parent):
            return


@cli.command()
@click.option("--fault", multiple=True, metavar="ID[=SEVERITY]", help=FAULT_HELP.removeprefix("virtual bench: "))
@click.option("--seed", type=int, help="seed for every random choice")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=None,
              help="the ECR protocol the virtual unit speaks, one of the profile's (default: its first)")
@click.option("--profile", "sim_profile", metavar="NAME", help=PROFILE_HELP.removeprefix("virtual bench: "))
@click.option("--write-bench", "bench_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="write the bench description of the running virtual bench here")
@click.option("--timing", multiple=True, metavar="NAME=SECONDS",
              help="virtual unit step time, e.g. boot_s=5 or host_timeout_s=3 (repeatable)")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path),
              help="host simulator rules (TOML [[rule]] tables), applied before the faults' rules")
@click.option("--serial", metavar="SERIAL", help="the serial number the virtual unit reports (default: from the "
                                                 "seed; ZVT keeps its digits)")
@click.option("--announce/--no-announce", default=True, show_default=True,
              help="make the devices findable by `posbench discover --probe` (links in $POSBENCH_DEVICE_DIR, "
                   "see posbench.setup.device_dir)")
@click.option("--technician/--card-robot", default=None,
              help="who presents the cards: a simulated technician (after a human delay, now and then late or "
                   "the wrong way; the default for a real terminal's profile) or a card robot (at once; the "
                   "default for the PT100)")
@click.option("--technician-s", "technician_s", type=float, default=2.5, show_default=True, metavar="SECONDS",
              help="the simulated technician's slowest presentation (delays from a third of it to all of it); "
                   "small values make tests fast")
def sim(fault, seed, protocol, sim_profile, bench_path, timing, rules_path, serial, announce, technician,
        technician_s) -> None:
    """Run the virtual bench in the foreground until SIGINT/SIGTERM."""
    from posbench.sim.bench import DEFAULT_PROFILE, SimBench, sim_profile as load_shape
    from posbench.sim.terminal import TerminalTiming
    from posbench.drivers.host.rules import RuleSet
    from posbench.sim.technician import Habits
    faults = _faults(fault)
    sim_profile = sim_profile or DEFAULT_PROFILE
    protocol = _sim_shape(sim_profile, protocol)
    if technician is None:  # a real terminal's bench has a person presenting cards, not a robot
        technician = sim_profile != DEFAULT_PROFILE
    try:
        habits = Habits(slowest_s=technician_s)
    except ValueError as exc:
        raise UsageFailure(f"--technician-s: {exc}") from None
    if technician:
        _technician_fits(technician_s, sim_profile, protocol)
    try:
        steps = TerminalTiming.parse(timing, TerminalTiming.for_profile(load_shape(sim_profile)))
        rules = RuleSet.from_toml(rules_path) if rules_path else None
    except ValueError as exc:
        raise UsageFailure(f"--timing: {exc}") from None
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    def started(sim_bench) -> None:
        sim_bench.write_bench(bench_path)
        print(f"virtual bench running (seed {sim_bench.seed}); bench description: {bench_path}", flush=True)
        term = sim_bench.terminal
        where = ("{}:{}".format(*term.address) if getattr(term, "address", None) else term.port.path)
        print(f"  terminal ({protocol}) {where}  host {sim_bench.host.address[0]}:"
              f"{sim_bench.host.address[1]}"
              + ("" if sim_bench.profile.acquirer == "bench" else " (the unit's own acquirer, not in the bench file)")
              + f"  unit {sim_bench.profile.model} {sim_bench.serial}", flush=True)

    def make() -> SimBench:
        sim_bench = SimBench(faults, seed, serial=serial, timing=steps, host_rules=rules, protocol=protocol,
                             announce=announce, profile=sim_profile)
        if technician:
            import random
            from posbench.sim.technician import Technician
            sim_bench.technician = Technician(random.Random(sim_bench.seed + 23), habits)
        return sim_bench

    _in_foreground(make,
                   started, "the virtual bench", "virtual bench stopped; everything it created is removed")


def _in_foreground(make: Callable[[], ContextManager[T]], started: Callable[[T], None], what: str,
                   stopped: str) -> None:
    """Run the server ``make()`` returns until SIGINT/SIGTERM, ``started(server)`` once it is up,
    then say ``stopped``. A server that cannot start (a port in use, a tool missing, a bench
    device gone) is a bench failure: its message and exit 2, never a traceback."""
    try:
        with make() as server:
            # before it says where it is: whoever read that may stop it at once (seen: a SIGTERM
            # right after the bench file was written interrupted the start-up, exit 2)
            stop = _stop_on_signal()
            started(server)
            _until_signal(stop)
    except (OSError, BenchError) as exc:
        print(f"BENCH ERROR: {what} could not start: {exc}", file=sys.stderr)
        sys.exit(EXIT_BENCH)
    print(stopped, flush=True)


@cli.command()
@click.option("--listen", default="127.0.0.1:8583", show_default=True, metavar="HOST:PORT",
              help="address to listen on (the address the unit is pointed at)")
@click.option("--log", "log_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL message log (the [host] log of bench.toml)")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file of [[rule]] tables deciding field 39, delays and drops")
@click.option("--seed", type=int, help="seed for rules with a probability")
def host(listen, log_path, rules_path, seed) -> None:
    """Run the ISO 8583 acquirer host simulator in the foreground until SIGINT/SIGTERM."""
    from posbench.setup.config import split_host_port
    from posbench.render.outputs import check_target
    from posbench.drivers.host.rules import RuleSet
    from posbench.drivers.host.simulator import HostSimulator
    try:
        address = _listen_address(listen, *split_host_port(listen, allow_zero=True))
    except ValueError as exc:
        raise UsageFailure(f"--listen {listen!r}: {exc}") from None
    try:
        check_target(log_path, "--log")
        rules = RuleSet.from_toml(rules_path) if rules_path else RuleSet([])
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    _in_foreground(lambda: HostSimulator(address, rules, log_path=log_path, seed=seed),
                   lambda sim_host: print(f"host simulator listening on {sim_host.address[0]}:{sim_host.address[1]}; "
                                          f"log {log_path}", flush=True),
                   "the host simulator", "host simulator stopped")


def _listen_address(listen: str, host_name: str, port: int) -> tuple[str, int]:
    """The IPv4 address ``--listen`` names, if this machine can listen there (``UsageFailure``
    otherwise: an unknown name, an address of another machine, a port reserved for root).
    A port in use is left to the simulator's bind: it is a bench failure, not a usage error."""
    import errno
    import socket
    try:
        ip = str(socket.getaddrinfo(host_name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])  # AF_INET: a str
    except socket.gaierror as exc:
        raise UsageFailure(f"--listen {listen!r}: {host_name} has no IPv4 address ({exc.strerror}); the "
                           "host simulator listens on IPv4: name an address of this machine, e.g. "
                           "127.0.0.1, or 0.0.0.0 for all") from None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise UsageFailure(f"--listen {listen!r}: {ip} is not an address of this machine "
                                   "(`ip -brief address` lists them; 0.0.0.0 listens on all)") from None
            if exc.errno == errno.EACCES:
                raise UsageFailure(f"--listen {listen!r}: port {port} is reserved for root here; "
                                   "use a port from 1024 up and point the unit at it") from None
    return ip, port


def _open_store(url: str | None):
    from posbench.store import Store
    try:
        return Store.open(url, REPORTS)
    except BenchError as exc:
        make_console(stderr=True).print(f"[bold magenta]BENCH ERROR[/]: {escape(str(exc))}")
        sys.exit(EXIT_BENCH)


@cli.command()
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


@cli.command()
@store_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="how many runs")
@click.option("--bench", "bench_name", metavar="NAME", help="only this bench's or place's runs")
def runs(store_url, limit, bench_name) -> None:
    """The newest runs of every bench in the store (a bench room's: each place's): time, place, unit, verdict, causes."""
    from posbench.store.history import render_runs
    with _open_store(store_url) as store:
        if not render_runs(store, make_console(), limit, bench_name):
            raise UsageFailure(f"no runs stored in {store.url}" + (f" for {bench_name}" if bench_name else ""))


@cli.command()
@click.argument("serial")
@store_option
def history(serial, store_url) -> None:
    """A unit's runs, newest first, and what changed between its last two runs."""
    from posbench.store.history import render_history
    with _open_store(store_url) as store:
        if not render_history(store, serial, make_console()):
            raise UsageFailure(f"no runs stored for unit {serial} in {store.url}")


@cli.command()
@click.argument("run")
@store_option
@click.option("--out", "out_dir", default="reports", show_default=True, type=click.Path(path_type=Path),
              help="directory for the regenerated HTML and JSON")
@click.option("--verbose", "-v", is_flag=True, help="print every finding behind the verdict")
def report(run, store_url, out_dir, verbose) -> None:
    """Regenerate the HTML page and verdict JSON of a stored run (an id or its prefix)."""
    from posbench.store import UnknownRun
    from posbench.render.stored_run import regenerate
    with _open_store(store_url) as store:
        try:
            html_path, json_path, doc = regenerate(store, run, out_dir)
        except UnknownRun as exc:
            raise UsageFailure(str(exc)) from None
    _print_verdict(make_console(), doc, verbose, html_path, json_path)


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageFailure(f"{what}: expected numbers separated by commas, got {text!r}") from None
    if not values or not all(0 < v <= 1 for v in values):
        raise UsageFailure(f"{what}: every value must be in (0, 1]")
    return values


@cli.command()
@click.option("--severities", default="0.3,0.6,1.0", show_default=True, help="severities of each single fault")
@click.option("--seeds", default=2, show_default=True, type=click.IntRange(1, 100), help="seeds per fault and severity")
@click.option("--healthy", default=10, show_default=True, type=click.IntRange(0, 1000), help="healthy units")
@click.option("--pairs/--no-pairs", default=True, show_default=True, help="also pairs of faults at once")
@click.option("--cause", "causes", multiple=True, metavar="ID", help="only these causes (default: every injectable one)")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(1, 64), help="triages run at once")
@click.option("--out", "out_path", default="docs/diagnosis.md", show_default=True, type=click.Path(path_type=Path))
@click.option("--first-seed", default=9000, show_default=True, type=int, help="seeds are first-seed, first-seed+1, ...")
@click.option("--protocol", "protocols", multiple=True, type=click.Choice(PROTOCOLS),
              help="ECR protocol of the virtual unit, repeatable: a section each (default: agent; with "
                   "--profile, every protocol the profile speaks)")
@click.option("--profile", "sim_profile", metavar="NAME",
              help="calibrate the virtual bench shaped like this DUT profile (e.g. zvt-generic: a real terminal, "
                   "its readers inside it, its own acquirer) [default: pt100]")
def calibrate(severities, seeds, healthy, pairs, causes, jobs, out_path, first_seed, protocols, sim_profile) -> None:
    """Run the fault matrix on the virtual bench and write the diagnosis's scores: a section per
    shape (protocol, and profile if given) into --out, replacing those sections and keeping the others."""
    import shlex
    import time

    from posbench.run import calibrate as cal
    from posbench.sim.faults import INJECTABLE
    console = make_console()
    chosen = list(causes) or list(INJECTABLE)
    if unknown := [c for c in chosen if c not in INJECTABLE]:
        raise UsageFailure(f"--cause: cannot inject {', '.join(unknown)}; injectable: {', '.join(INJECTABLE)}")
    seed_list = [first_seed + i for i in range(seeds)]
    healthy_seeds = [first_seed + 500 + i for i in range(healthy)]
    if sim_profile:
        from posbench.sim.bench import sim_profile as load_shape
        protocols = [_sim_shape(sim_profile, p) for p in dict.fromkeys(protocols)] \
            or list(load_shape(sim_profile).protocols) or [registry.DEFAULT]
    protocols = list(dict.fromkeys(protocols)) or [registry.DEFAULT]
    cases = [case for protocol in protocols for case in cal.matrix(
        chosen, _floats(severities, "--severities"), seed_list, healthy_seeds,
        cal.default_pairs(chosen) if pairs else [], protocol, sim_profile)]
    shape = f"{sim_profile} over " if sim_profile else ""
    say(console, f"calibrating: {len(cases)} triage runs ({shape}{', '.join(protocols)}), {jobs} at a time")
    try:  # before the runs: a page that cannot be read must not cost a calibration
        existing: str | None = out_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageFailure(f"--out {out_path}: cannot be read to keep its other sections: {exc}") from None
    start = time.monotonic()

    def progress(o, done, total):
        say(console, f"  [{done}/{total}] {o.case.protocol:<7} {o.case.label:<38} seed {o.case.seed}: "
                     f"{o.verdict:<12} " + ", ".join(f"{c} {v:.2f}" for c, v in o.causes[:3]))

    outcomes = cal.run_matrix(cases, jobs, progress)
    command = ("posbench calibrate " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else "posbench calibrate").strip()
    wall_s = time.monotonic() - start
    sections = []
    for protocol in protocols:
        mine = [o for o in outcomes if o.case.protocol == protocol]
        scores = cal.score(mine)
        sections.append(cal.markdown(scores, mine, protocol, sim_profile,
                                     f"Produced by `{command}` ({len(outcomes)} triage runs, "
                                     f"{wall_s / 60:.1f} min wall time)."))
        say(console, f"{shape}{protocol}: top-1 accuracy {scores.top1:.3f} over {scores.top1_cases} single faults, "
                     f"false-fault rate {scores.false_fault_rate:.3f} over {scores.healthy_cases} healthy units")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    text = cal.page(sections, outcomes, command, wall_s) if existing is None else cal.merge(existing, sections)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out_path)  # the page is never left half written
    say(console, f"written to {out_path}" + ("" if existing is None else " (its other sections kept)"))


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
