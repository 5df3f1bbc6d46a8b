"""Run the HIL suite (tests/hil) through pytest with live progress, and collect the verdict."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from bench.console import say

HIL_DIR = Path(__file__).resolve().parent.parent / "tests" / "hil"

TEST_TIMEOUT_S = 600
"""A HIL test still running after this many seconds is stopped (a driver must never hang)."""

_MARK = {"passed": "[green]pass[/]", "failed": "[red]FAIL[/]", "skipped": "[yellow]skip[/]"}


class LiveProgress:
    """A short line per test as it finishes."""

    def __init__(self, console: Console):
        self.console, self.total, self.done = console, 0, 0

    def say(self, text: str) -> None:
        say(self.console, text)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)
        self.say(f"running {self.total} HIL tests")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.done += 1
            mark = _MARK.get(report.outcome, report.outcome)
            if report.when == "setup" and report.failed:
                mark = "[magenta]ERROR[/]"
            self.say(f"  [{self.done}/{self.total}] {mark}  {report.nodeid.split('::')[-1]:<28}"
                               f" {report.duration:6.2f} s")


def run_hil(bench_file: Path, json_path: Path, html_path: Path, junit_path: Path,
            unit: str | None, console: Console, extra: list[str] | None = None) -> tuple[int, dict | None]:
    """Run the suite; returns pytest's exit code and the verdict JSON (None if none was written)."""
    if not HIL_DIR.is_dir():
        raise FileNotFoundError(f"the HIL suite is missing: {HIL_DIR}")
    for path in (json_path, html_path, junit_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    json_path.unlink(missing_ok=True)
    args = [str(HIL_DIR), "--bench", str(bench_file), "--verdict-json", str(json_path),
            "--html", str(html_path), "--self-contained-html", "--junitxml", str(junit_path),
            "-p", "no:terminal", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir",
            str(HIL_DIR.parent.parent), "-o", "junit_family=xunit2", "--timeout", str(TEST_TIMEOUT_S)]
    if unit:
        args += ["--unit", unit]
    code = pytest.main(args + list(extra or []), plugins=[LiveProgress(console)])
    doc = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else None
    return int(code), doc
