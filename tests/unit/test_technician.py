"""The virtual bench's simulated technician, and who can be prompted at all (posbench.core.console)."""
import io
import random
import threading

import pytest

from posbench.core import console
from posbench.sim.technician import Habits, Technician

pytestmark = pytest.mark.timeout(30)


def presenter(technician: Technician, kind: str = "tap"):
    """Ask ``technician`` for one presentation; returns an event set once the card got there."""
    done = threading.Event()
    technician.present(kind, done.set)
    return done


def test_a_punctual_technician_presents_after_a_delay_and_says_so():
    tech = Technician(random.Random(1), Habits(slowest_s=0.05, late=0.0, wrong_way=0.0))
    done = presenter(tech)
    assert done.wait(5)
    assert tech.missed("tap") == "presented"  # it was there: the reader's miss is the unit's


def test_a_late_or_wrong_technician_never_presents_and_says_retry():
    for habits in (Habits(slowest_s=0.05, late=0.99, wrong_way=0.0), Habits(slowest_s=0.05, late=0.0, wrong_way=0.99)):
        tech = Technician(random.Random(2), habits)
        done = presenter(tech, "swipe")
        assert not done.wait(0.3)
        assert tech.missed("swipe") == "retry"


def test_a_presentation_still_to_come_is_taken_back_when_asked_or_removed():
    tech = Technician(random.Random(3), Habits(slowest_s=30.0, late=0.0, wrong_way=0.0))
    done = presenter(tech, "insert")
    # still on its way, not late: the unit ended before it (a terminal refusing at once)
    assert tech.missed("insert") == "refused"
    assert not done.wait(0.2)
    done = presenter(tech, "insert")
    tech.withdraw()
    assert not done.wait(0.2)


def test_habits_refuse_impossible_timing():
    for bad in (dict(slowest_s=0), dict(late=1.0), dict(late=0.6, wrong_way=0.5)):
        with pytest.raises(ValueError):
            Habits(**bad)


def test_nobody_to_prompt_when_the_input_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert "not a terminal" in console.no_terminal()


def test_nobody_to_prompt_without_a_controlling_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    def no_tty(path, flags):
        raise OSError(6, "No such device or address")

    monkeypatch.setattr("sys.stdin", Tty(""))
    monkeypatch.setattr(console.os, "open", no_tty)
    assert "no controlling terminal" in console.no_terminal()


def test_no_terminal_refuses_a_manual_actuator_without_say_and_ask(monkeypatch):
    from posbench.setup.config import ActuatorSection
    from posbench.setup.devices import open_actuator
    from posbench.drivers.actuator.base import ActuatorError
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(ActuatorError, match="nobody can be prompted"):
        open_actuator(ActuatorSection(kind="manual"))
    assert open_actuator(ActuatorSection(kind="manual"), say=print, ask=lambda t, s: "").name == "manual"


def test_a_technician_is_the_virtual_benchs_only():
    from pydantic import ValidationError

    from posbench.setup.config import ActuatorSection
    with pytest.raises(ValidationError, match="technician"):
        ActuatorSection(kind="manual", technician=True)
    assert ActuatorSection(kind="virtual", address="127.0.0.1:9", technician=True).technician
