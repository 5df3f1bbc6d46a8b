"""What the bench waits for, shown while it waits (posbench.core.progress, posbench.run.runner's display),
the per-test time with the unit's recovery in it, and output that is no terminal left unwrapped."""
from __future__ import annotations

import io
import threading

import pytest
from _pytest.reports import TestReport

from posbench.core import progress

from posbench.run import runner
from posbench.core.console import make_console


class Calls:
    def __init__(self):
        self.log: list[tuple[str, str]] = []

    def started(self, wait):
        self.log.append(("started", wait.what))

    def ended(self, wait):
        self.log.append(("ended", wait.what))


def test_waits_nest_count_steps_and_reach_listeners():
    calls = Calls()
    progress.listen(calls)
    try:
        with progress.waiting("the swipes to decide the path") as outer:
            progress.step("swipes", 7, 50)
            with progress.waiting("the unit to finish a sale", 5.0):
                assert [w.what for w in progress.current()] == ["the swipes to decide the path",
                                                               "the unit to finish a sale"]
            assert outer.step == "swipes: 7 of up to 50"
        assert progress.current() == []
    finally:
        progress.unlisten(calls)
    assert calls.log == [("started", "the swipes to decide the path"), ("started", "the unit to finish a sale"),
                         ("ended", "the unit to finish a sale"), ("ended", "the swipes to decide the path")]


def test_a_wait_ends_even_when_its_block_raises():
    with pytest.raises(RuntimeError):
        with progress.waiting("the unit to answer", 10):
            raise RuntimeError("silent")
    assert progress.current() == []


@pytest.fixture
def quick(monkeypatch):
    """The display's thresholds shrunk so a test waits a fraction of a second, not six."""
    monkeypatch.setattr(runner, "SHOW_AFTER_S", 0.05)
    monkeypatch.setattr(runner, "STILL_AFTER_S", 0.2)
    monkeypatch.setattr(runner, "TICK_S", 0.02)


def _pipe_console() -> tuple[object, io.StringIO]:
    out = io.StringIO()
    return make_console(file=out), out


def test_into_a_pipe_a_long_wait_is_said_while_it_lasts_and_when_it_ends(quick):
    console, out = _pipe_console()
    done = threading.Event()
    with runner.WaitDisplay(console):
        with progress.waiting("a silent unit to come back after a power cycle", 10.5):
            done.wait(0.5)
        with progress.waiting("the unit to answer", 10):
            pass  # at once: not worth a line
    lines = out.getvalue().splitlines()
    assert lines[0] == "      still waiting for a silent unit to come back after a power cycle (up to 10.5 s) ..."
    assert lines[1].startswith("      waited ") and lines[1].endswith(
        " s for a silent unit to come back after a power cycle (up to 10.5 s)")
    assert len(lines) == 2


def test_a_wait_that_outlasted_its_bound_says_by_how_much_not_up_to(quick, monkeypatch):
    monkeypatch.setattr(runner, "OVERRUN_SHOWN_S", 0.05)
    console, out = _pipe_console()
    with runner.WaitDisplay(console):
        with progress.waiting("the unit to boot after power-on", 0.05):
            threading.Event().wait(0.25)
    ended = out.getvalue().splitlines()[-1]
    assert ended.startswith("      waited ") and " s for the unit to boot after power-on (" in ended, ended
    assert ended.endswith(" s past its 0.05 s bound)") and "up to" not in ended, ended


def test_on_a_terminal_the_live_line_names_the_whole_wait_its_step_and_the_moment(quick):
    display = runner.WaitDisplay(make_console(file=io.StringIO()))
    done = threading.Event()
    with progress.waiting("the taps to decide the path"):
        progress.step("taps", 3, 50)
        with progress.waiting("the unit to answer", 10):
            done.wait(0.1)
            text = display.__rich__().plain
    assert text.strip().startswith("waiting for the taps to decide the path: 0 s, taps: 3 of up to 50")
    assert "· waiting for the unit to answer (up to 10 s): 0 s" in text


def _report(nodeid: str, when: str, outcome: str, duration: float) -> TestReport:
    return TestReport(nodeid, ("f.py", 1, "t"), {}, outcome, None, when, duration=duration)


def test_a_tests_time_counts_the_unit_brought_up_before_it():
    console, out = _pipe_console()
    live = runner.LiveProgress(console)
    live.total = 2
    for when, duration in (("setup", 12.0), ("call", 0.11), ("teardown", 0.01)):
        live.pytest_runtest_logreport(_report("test_power.py::test_cold_boot", when, "passed", duration))
    for when, duration in (("setup", 0.01), ("call", 0.5), ("teardown", 0.0)):
        live.pytest_runtest_logreport(_report("test_status.py::test_status", when, "passed", duration))
    first, second = out.getvalue().splitlines()
    assert "test_cold_boot" in first and "12.12 s" in first and "(12.0 s of it bringing the unit up first)" in first
    assert "test_status" in second and "0.51 s" in second and "bringing" not in second


def test_a_failing_teardown_marks_the_test():
    console, out = _pipe_console()
    live = runner.LiveProgress(console)
    live.total = 1
    live.pytest_runtest_logreport(_report("t.py::t", "setup", "passed", 0.0))
    live.pytest_runtest_logreport(_report("t.py::t", "call", "passed", 0.1))
    live.pytest_runtest_logreport(_report("t.py::t", "teardown", "failed", 0.0))
    assert "ERROR" in out.getvalue()


def test_output_into_a_pipe_is_not_wrapped_at_80_columns(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    console, out = _pipe_console()
    line = "unit PT100-0001234: " + "x" * 150
    console.print(line)
    assert out.getvalue() == line + "\n"
