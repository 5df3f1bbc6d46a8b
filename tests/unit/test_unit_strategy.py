"""The unit strategy's wait for a unit: a unit that stays dark on a live supply is not waited out."""
from __future__ import annotations

import pytest

from posbench.core.errors import UnitNotResponding
from posbench.fixtures import unit as unit_mod
from posbench.fixtures.unit import UnitStrategy

class SilentTerminal:
    """A unit that never answers; counts the seconds it was waited for."""

    boot_timeout = 3.0

    def __init__(self):
        self.waited = 0.0

    def wait_ready(self, timeout: float) -> float:
        self.waited += timeout
        raise UnitNotResponding("unit", "polling ST", f"no answer within {timeout:g} s")

class AnsweringTerminal(SilentTerminal):
    def __init__(self, after_calls: int):
        super().__init__()
        self.calls, self.after_calls = 0, after_calls

    def wait_ready(self, timeout: float) -> float:
        self.calls += 1
        if self.calls > self.after_calls:
            return 0.1
        return super().wait_ready(timeout)

class Watch:
    def __init__(self, dark_s: float):
        self.dark_s = dark_s

    def dark_for(self) -> float:
        return self.dark_s

class Config:
    power = object()  # the bench has power control: the watch is looked up

def _strategy(terminal, watch) -> UnitStrategy:
    return UnitStrategy(terminal, run=None, bench_config=Config(),
                        lookup=lambda name: watch if name == "supply_watch" else None)

@pytest.fixture(autouse=True)
def short_looks(monkeypatch):
    monkeypatch.setattr(unit_mod, "LOOK_S", 0.01)

def test_a_dark_unit_is_given_up_before_its_boot_timeout():
    terminal = SilentTerminal()
    with pytest.raises(UnitNotResponding, match="no current"):
        _strategy(terminal, Watch(dark_s=unit_mod.DARK_S)).wait_ready()
    assert terminal.waited < terminal.boot_timeout

def test_a_unit_drawing_current_is_waited_for_until_its_boot_timeout(monkeypatch):
    terminal = SilentTerminal()
    monkeypatch.setattr(SilentTerminal, "boot_timeout", 0.05)
    with pytest.raises(UnitNotResponding, match="no answer"):
        _strategy(terminal, Watch(dark_s=0.0)).wait_ready()
    assert terminal.waited > 0

def test_a_unit_that_answers_later_is_ready():
    terminal = AnsweringTerminal(after_calls=2)
    assert _strategy(terminal, Watch(dark_s=0.0)).wait_ready() >= 0
    assert terminal.calls == 3

def test_without_a_supply_watch_the_terminal_waits_itself():
    terminal = SilentTerminal()
    strategy = UnitStrategy(terminal, run=None, bench_config=type("C", (), {"power": None})(), lookup=lambda n: None)
    with pytest.raises(UnitNotResponding):
        strategy.wait_ready()
    assert terminal.waited == terminal.boot_timeout


class HeardTerminal(SilentTerminal):
    """A unit last heard from at ``heard`` (monotonic s); its link counts nothing (ZVT over TCP)."""

    def __init__(self, heard: float | None):
        super().__init__()
        self.heard = heard

    def last_heard(self) -> float | None:
        return self.heard

    def link_counters(self) -> dict[str, int]:
        return {}


@pytest.mark.parametrize("heard, cause", [(2.0, "power_supply"), (None, "application")])
def test_a_silence_after_the_unit_went_dark_since_it_last_answered_is_the_supplys(heard, cause):
    """Issue 21, finding 4: over ZVT/TCP the PT answered, lost power (dark at 3.0-3.4 s), and was
    asked while it booted again (at 6 s, on a steady supply): the PT hangs up at once. What
    happened since it last answered explains the silence; without knowing that, the window
    around the question alone shows a steady supply (application)."""
    from tests.unit.test_supply_watch import STEADY, _watch
    watch = _watch([(t, v, 0.0 if 3.0 <= t <= 3.4 else a) for t, v, a in STEADY])
    found = _strategy(HeardTerminal(heard), watch).silence("sale of 899: no reply (the PT closed the connection)",
                                                           6.0, 0)
    assert found.cause == cause
