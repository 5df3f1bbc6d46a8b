"""Run the HIL suite (``posbench.hil``) through pytest with live progress, and collect the verdict."""
from __future__ import annotations

import gc
import os
import signal
import threading
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TextIO

import pytest
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from posbench.core import progress
from posbench.core.console import make_console, say
from posbench.render.outputs import ReportWriteFailed, commit, discard, staging_path
from posbench.core.signals import STOPPED
from posbench.diagnosis.verdict import Verdict

HIL_DIR = Path(str(files("posbench.hil")))
"""The HIL suite, installed with the package (the repository's ``tests/hil``)."""

PLUGINS_OFF = ("-p", "no:terminal", "-p", "no:cacheprovider", "-p", "no:labgrid", "-p", "no:unraisableexception")
"""pytest plugins the HIL run leaves out: its own live lines replace pytest's terminal output,
and labgrid's plugin (auto-loaded once ``posbench[labgrid]`` is installed) would restyle the
logging, read ``LG_ENV`` and ask for the terminal's options (it fails without them). pytest's
unraisable-exception plugin would take the place of ``posbench.core.signals``' hook for the whole run,
turning a stop signal that lands in a finalizer into a warning: the run would go on to its end."""

TEST_TIMEOUT_S = 600
"""A HIL test still running after this many seconds is stopped (a driver must never hang)."""

_MARK = {"passed": "[green]pass[/]", "failed": "[red]FAIL[/]", "skipped": "[yellow]skip[/]"}


SHOW_AFTER_S = 1.5
"""Seconds a wait of the bench lasts before it is shown (most waits for a ready unit end at once)."""
STILL_AFTER_S = 6.0
"""Seconds after which output that is no terminal says a wait is still going on (else it says
each wait once, when it ends)."""
TICK_S = 0.25
"""Seconds between looks at the bench's waits (and refreshes of the live line)."""
READYING_S = 1.0
"""Seconds of a test's setup worth a word on its line (the unit was brought back before it)."""
OVERRUN_SHOWN_S = 0.1
"""Seconds past its bound a finished wait lasted before its line says so, instead of "up to"."""


def _wait_text(wait: progress.Wait) -> str:
    bound = f" (up to {wait.up_to_s:g} s)" if wait.up_to_s else ""
    return f"waiting for {wait.what}{bound}"


class WaitDisplay:
    """Shows what the bench waits for (``posbench.core.progress``) once a wait lasts ``SHOW_AFTER_S``:
    on a terminal one live line with the time so far (rich), gone when the wait ends; elsewhere
    (a pipe, CI) a line when it ends, and one while it lasts if it passes ``STILL_AFTER_S``."""

    def __init__(self, console: Console):
        self.console = console
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wait-display", daemon=True)
        self._live: Live | None = None

    def __enter__(self) -> "WaitDisplay":
        progress.listen(self)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        progress.unlisten(self)
        self._stop.set()
        self._thread.join(2 * TICK_S + 1.0)
        self._show_live(False)

    # -- progress.Listener ---------------------------------------------------------------------
    def started(self, wait: progress.Wait) -> None:
        """Nothing yet: a wait is shown only once it lasts."""

    def ended(self, wait: progress.Wait) -> None:
        if not self.console.is_terminal and (took := wait.elapsed()) >= SHOW_AFTER_S:
            bound = f" (up to {wait.up_to_s:g} s)" if wait.up_to_s else ""
            if wait.up_to_s and took >= wait.up_to_s + OVERRUN_SHOWN_S:  # the wait's end took its own time
                bound = f" ({took - wait.up_to_s:.1f} s past its {wait.up_to_s:g} s bound)"
            say(self.console, f"      waited {took:.1f} s for {escape(wait.what)}{bound}")

    # -- display -------------------------------------------------------------------------------
    def __rich__(self) -> Text:
        waits = [w for w in progress.current() if w.elapsed() >= SHOW_AFTER_S]
        if not waits:
            return Text("")
        shown = [waits[0]] if len(waits) == 1 else [waits[0], waits[-1]]  # the whole, and the moment
        text = " · ".join(f"{_wait_text(w)}: {w.elapsed():.0f} s" + (f", {w.step}" if w.step else "") for w in shown)
        return Text(f"      {text}", style="cyan")

    def _show_live(self, on: bool) -> None:
        if on and self._live is None:
            self._live = Live(self, console=self.console, transient=True, refresh_per_second=1 / TICK_S)
            self._live.start()
        elif not on and self._live is not None:
            self._live.stop()
            self._live = None

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            waits = [w for w in progress.current() if w.elapsed() >= SHOW_AFTER_S]
            for wait in waits:
                if not wait.shown and not self.console.is_terminal and wait.elapsed() >= STILL_AFTER_S:
                    wait.shown = True
                    step = f" ({wait.step})" if wait.step else ""
                    say(self.console, f"      still {escape(_wait_text(wait))}{escape(step)} ...")
            if self.console.is_terminal and not self.console.quiet:
                try:
                    self._show_live(bool(waits))
                except OSError:  # the terminal went away: the run goes on without it
                    self.console.quiet = True


class LiveProgress:
    """A short line per test as it finishes: its outcome and its whole time (the unit brought
    back before it included)."""

    def __init__(self, console: Console):
        self.console, self.total, self.done, self.width = console, 0, 0, 28
        self._spent: dict[str, list[float]] = {}
        """Per test: seconds of setup and of the whole test so far."""
        self._outcome: dict[str, str] = {}
        self.doc: Verdict | None = None
        self.write_errors: list[str] = []
        self.config_error = ""
        """A mistake in the bench description or DUT profile the run found (exit 3)."""
        self.writer_failed = ""
        """Why pytest-html or JUnit failed to write (which one is unknown: the first failure
        stops the writers after it), or empty."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session):
        """Keep the verdict even when a report writer (pytest-html, JUnit) fails on a full disk:
        its error becomes a bench error of the run instead of a pytest internal error. A signal
        that arrives meanwhile waits until the reports are written (it is delivered after)."""
        stops = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        try:
            outcome = yield
            try:
                outcome.get_result()
            except OSError as exc:
                self.writer_failed = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
                outcome.force_result(None)
            from posbench.fixtures.keys import CONFIG_ERROR_KEY, WRITE_ERRORS_KEY
            from posbench.fixtures.report import session_verdict
            write_errors: list[str] = session.config.stash.get(WRITE_ERRORS_KEY, [])
            self.write_errors += write_errors
            self.config_error = session.config.stash.get(CONFIG_ERROR_KEY, "")
            self.doc = session_verdict(session)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def say(self, text: str) -> None:
        say(self.console, text)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from posbench.fixtures.keys import CONFIG_ERROR_KEY
        if CONFIG_ERROR_KEY in session.config.stash:  # collection stopped on a config mistake
            return
        if STOPPED.get("by"):  # a stop signal cut the collection short: no count to announce
            return
        self.total = len(session.items)
        self.width = max((len(item.nodeid.split("::")[-1]) for item in session.items), default=0)
        self.say(f"running {self.total} HIL tests")
        # What is alive now (modules, classes, pytest's collection) lives until the run ends: out
        # of the collector's sight, every collection during the tests (and pytest's five at the
        # end) scans only what the tests make. Saves about 0.7 CPU s per triage.
        gc.freeze()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        spent = self._spent.setdefault(report.nodeid, [0.0, 0.0])
        spent[1] += report.duration
        if report.when == "setup":
            spent[0] = report.duration
        if report.when == "call" or (report.when == "setup" and not report.passed):
            mark = _MARK.get(report.outcome, report.outcome)
            if report.when == "setup" and report.failed:
                mark = "[magenta]ERROR[/]"
            self._outcome[report.nodeid] = mark
        if report.when == "teardown" and report.failed:
            self._outcome[report.nodeid] = "[magenta]ERROR[/]"
        if report.when == "teardown":
            self._finished(report.nodeid)

    def _finished(self, nodeid: str) -> None:
        self.done += 1
        setup, whole = self._spent.pop(nodeid, [0.0, 0.0])
        mark = self._outcome.pop(nodeid, "[magenta]ERROR[/]")
        name = escape(f"{nodeid.split('::')[-1]:<{self.width}}")  # "[swipe]" is no markup
        readying = f"  ({setup:.1f} s of it bringing the unit up first)" if setup >= READYING_S else ""
        self.say(f"  [{self.done}/{self.total}] {mark}  {name} {whole:6.2f} s{readying}")


def _own_output(console: Console) -> tuple[Console, TextIO | None]:
    """A console on its own copy of ``console``'s file descriptor: pytest captures fd 1 while a
    test runs, and the bench's waits are shown during tests. Returns it and the file to close
    (None when ``console`` writes to no descriptor, e.g. a buffer: then ``console`` itself)."""
    try:
        fd = os.dup(console.file.fileno())
    except (AttributeError, OSError, ValueError):
        return console, None
    own = os.fdopen(fd, "w", buffering=1, encoding="utf-8", errors="replace")
    out = make_console(file=own)
    out.quiet = console.quiet
    return out, own


@dataclass
class HilRun:
    """What one run of the suite gave: pytest's exit code, the verdict (None if the suite never
    reached the unit), and the reports that could not be written."""

    code: int
    doc: Verdict | None
    write_errors: list[str] = field(default_factory=list)
    config_error: str = ""
    """A mistake in bench.toml or the DUT profile found by the run: a usage error (exit 3)."""


def run_hil(bench_file: Path, json_path: Path, html_path: Path, junit_path: Path,
            unit: str | None, console: Console, extra: list[str] | None = None) -> HilRun:
    """Run the suite. Each report goes to a staged file beside its target and replaces the target
    only when complete (``posbench.render.outputs``); targets were checked before the bench started."""
    if not HIL_DIR.is_dir():
        raise FileNotFoundError(f"the HIL suite is missing: {HIL_DIR}")
    targets = {"verdict JSON": json_path, "HTML report": html_path, "JUnit report": junit_path}
    staged = {what: staging_path(path) for what, path in targets.items()}
    args = [str(HIL_DIR), "--bench", str(bench_file), "--verdict-json", str(staged["verdict JSON"]),
            "--html", str(staged["HTML report"]), "--self-contained-html",
            "--junitxml", str(staged["JUnit report"]),
            *PLUGINS_OFF, "-o", "addopts=", "--rootdir",
            str(HIL_DIR), "-o", "junit_family=xunit2", "--timeout", str(TEST_TIMEOUT_S)]
    if unit:
        args += ["--unit", unit]
    out, own = _own_output(console)
    progress = LiveProgress(out)
    try:
        with WaitDisplay(out):
            code = pytest.main(args + list(extra or []), plugins=[progress])
    except KeyboardInterrupt:  # a signal held back while the reports were written: keep them
        code = pytest.ExitCode.INTERRUPTED
    except BaseException:
        discard(*staged.values())
        raise
    finally:
        if own is not None:
            own.close()
    if progress.config_error:  # collection stopped on a config mistake: no report of a run that never was
        discard(*staged.values())  # (an empty JUnit file would read as green to a CI)
        return HilRun(int(code), None, [], progress.config_error)
    errors = list(progress.write_errors)
    if progress.writer_failed:  # a staged page may be half written: keep neither third-party report
        for what in ("HTML report", "JUnit report"):
            discard(staged[what])
            errors.append(f"{what}: writing {targets[what]} failed: {progress.writer_failed}")
    for what, path in targets.items():
        try:
            commit(staged[what], path, what)
        except ReportWriteFailed as exc:
            errors.append(str(exc))
    discard(*staged.values())
    return HilRun(int(code), progress.doc, errors, progress.config_error)
