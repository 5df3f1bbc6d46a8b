"""Run the HIL suite (``posbench.hil``) through pytest with live progress, and collect the verdict."""
from __future__ import annotations

import signal
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import pytest
from rich.console import Console
from rich.markup import escape

from posbench.console import say
from posbench.outputs import ReportWriteFailed, commit, discard, staging_path

HIL_DIR = Path(str(files("posbench.hil")))
"""The HIL suite, installed with the package (the repository's ``tests/hil``)."""

TEST_TIMEOUT_S = 600
"""A HIL test still running after this many seconds is stopped (a driver must never hang)."""

_MARK = {"passed": "[green]pass[/]", "failed": "[red]FAIL[/]", "skipped": "[yellow]skip[/]"}


class LiveProgress:
    """A short line per test as it finishes."""

    def __init__(self, console: Console):
        self.console, self.total, self.done = console, 0, 0
        self.doc: dict | None = None
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
            from posbench.fixtures.plugin import CONFIG_ERROR_KEY, WRITE_ERRORS_KEY, session_verdict
            self.write_errors += session.config.stash.get(WRITE_ERRORS_KEY, [])
            self.config_error = session.config.stash.get(CONFIG_ERROR_KEY, "")
            self.doc = session_verdict(session)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def say(self, text: str) -> None:
        say(self.console, text)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from posbench.fixtures.plugin import CONFIG_ERROR_KEY
        if CONFIG_ERROR_KEY in session.config.stash:  # collection stopped on a config mistake
            return
        self.total = len(session.items)
        self.say(f"running {self.total} HIL tests")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.done += 1
            mark = _MARK.get(report.outcome, report.outcome)
            if report.when == "setup" and report.failed:
                mark = "[magenta]ERROR[/]"
            name = escape(f"{report.nodeid.split('::')[-1]:<28}")  # "[swipe]" is no markup
            self.say(f"  [{self.done}/{self.total}] {mark}  {name} {report.duration:6.2f} s")


@dataclass
class HilRun:
    """What one run of the suite gave: pytest's exit code, the verdict (None if the suite never
    reached the unit), and the reports that could not be written."""

    code: int
    doc: dict | None
    write_errors: list[str] = field(default_factory=list)
    config_error: str = ""
    """A mistake in bench.toml or the DUT profile found by the run: a usage error (exit 3)."""


def run_hil(bench_file: Path, json_path: Path, html_path: Path, junit_path: Path,
            unit: str | None, console: Console, extra: list[str] | None = None) -> HilRun:
    """Run the suite. Each report goes to a staged file beside its target and replaces the target
    only when complete (``posbench.outputs``); targets were checked before the bench started."""
    if not HIL_DIR.is_dir():
        raise FileNotFoundError(f"the HIL suite is missing: {HIL_DIR}")
    targets = {"verdict JSON": json_path, "HTML report": html_path, "JUnit report": junit_path}
    staged = {what: staging_path(path) for what, path in targets.items()}
    args = [str(HIL_DIR), "--bench", str(bench_file), "--verdict-json", str(staged["verdict JSON"]),
            "--html", str(staged["HTML report"]), "--self-contained-html",
            "--junitxml", str(staged["JUnit report"]),
            "-p", "no:terminal", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir",
            str(HIL_DIR), "-o", "junit_family=xunit2", "--timeout", str(TEST_TIMEOUT_S)]
    if unit:
        args += ["--unit", unit]
    progress = LiveProgress(console)
    try:
        code = pytest.main(args + list(extra or []), plugins=[progress])
    except KeyboardInterrupt:  # a signal held back while the reports were written: keep them
        code = pytest.ExitCode.INTERRUPTED
    except BaseException:
        discard(*staged.values())
        raise
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
