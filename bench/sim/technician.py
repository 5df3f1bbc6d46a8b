"""The virtual bench's simulated technician: presents the cards the way a person does.

A prompt (a control-port action) returns at once; the card reaches the unit after a human delay
(seconds, drawn from the bench's seeded RNG). Now and then the technician is late (the card comes
only after the reader gave up: it is never presented during that read) or presents it the wrong
way (chip upside down, stripe facing away: the reader sees nothing). Asked after a read that saw
no card (``missed``), it answers truthfully: "retry" when it was late or wrong, "presented" when
the card was on the reader as it should have been, "refused" when its card was still on the way
and not late: the unit ended the read before a punctual technician could present it (a terminal
refusing at once). Punctual means within the unit's card wait: the virtual bench keeps the
technician's slowest presentation inside it (``SimBench.card_wait_s``).
"""
from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from posbench.drivers.actuator.base import Presentation


ANSWER: dict[str, Presentation] = {"presented": "presented", "pending": "refused"}
"""How a presentation went -> the technician's answer when asked about a read that saw no card
("late" and "wrong_way": "retry")."""


@dataclass(frozen=True)
class Habits:
    """How the technician presents. ``slowest_s``: the longest human delay, s (delays are drawn
    uniformly from a third of it to all of it: 0.8-2.5 s by default); ``late`` and ``wrong_way``: the
    share of presentations that come too late or the wrong way."""

    slowest_s: float = 2.5
    late: float = 0.04
    wrong_way: float = 0.03

    def __post_init__(self) -> None:
        if not self.slowest_s > 0:
            raise ValueError(f"the technician's slowest presentation must be > 0 s, got {self.slowest_s:g}")
        if not (0 <= self.late < 1 and 0 <= self.wrong_way < 1 and self.late + self.wrong_way < 1):
            raise ValueError("the technician's late and wrong-way shares must be in [0, 1) and sum below 1")


class Technician:
    """Carries out presentations (``present``) with a person's timing and mistakes."""

    def __init__(self, rng: random.Random, habits: Habits = Habits()):
        self.rng, self.habits = rng, habits
        self._lock = threading.Lock()
        self._pending: threading.Timer | None = None
        self._last: dict[str, str] = {}
        """kind -> how its last presentation went: "pending", "presented", "late", "wrong_way"."""

    def present(self, kind: str, action: Callable[[], object]) -> None:
        """Present a card for ``kind`` ("swipe", "tap", "insert"): ``action()`` puts it on the
        reader after a human delay, unless this time the technician is late or gets it wrong."""
        roll = self.rng.random()
        delay = self.rng.uniform(self.habits.slowest_s / 3, self.habits.slowest_s)
        with self._lock:
            self._cancel()
            if roll < self.habits.late:
                self._last[kind] = "late"
                return
            if roll < self.habits.late + self.habits.wrong_way:
                self._last[kind] = "wrong_way"
                return
            self._last[kind] = "pending"
            timer = threading.Timer(delay, self._do, (kind, action))
            timer.daemon = True
            self._pending = timer
            timer.start()

    def _do(self, kind: str, action: Callable[[], object]) -> None:
        with self._lock:
            if self._pending is not threading.current_thread():
                return  # taken back (removed, or asked about) before it was presented
            self._pending = None
            self._last[kind] = "presented"
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - a timer thread has nobody to raise to; the read sees no card
                print(f"simulated technician: presenting for a {kind} failed: {exc}", file=sys.stderr)

    def _cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def withdraw(self) -> None:
        """The card is taken away: a presentation still to come is not made."""
        with self._lock:
            self._cancel()

    def missed(self, kind: str) -> Presentation:
        """The reader saw no card after a ``kind``: "presented" when the card was on the reader as
        it should have been, "refused" when it was still on the way (the unit did not wait for
        it), else "retry"; a presentation still to come is taken back."""
        with self._lock:
            self._cancel()
            return ANSWER.get(self._last.get(kind, ""), "retry")
