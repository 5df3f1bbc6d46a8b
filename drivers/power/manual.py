"""No switchable power on the bench: the technician switches the unit and confirms (labgrid's
ManualPowerDriver). ``ask(prompt, timeout_s)`` shows a prompt and returns the answer line, or
None when ``timeout_s`` seconds pass without one, and raises ``NoTerminal`` when nobody can be
asked; ``stdin_ask`` does that on a terminal.
"""
from __future__ import annotations

import select
import sys
import time
from collections.abc import Callable

from posbench.core.errors import NoTerminal

from .errors import OperatorNotConfirmed, OperatorSkipped, OperatorTimeout

Ask = Callable[[str, float], "str | None"]

CONFIRM = frozenset({"", "y", "yes", "ok", "done"})
DECLINE = frozenset({"skip", "s", "n", "no", "q", "quit"})
TRIES = 3
"""Prompts per step before an unreadable answer counts as not confirmed."""


def stdin_ask(prompt: str, timeout_s: float) -> str | None:
    """Print ``prompt`` and wait up to ``timeout_s`` seconds for a line on stdin (POSIX).

    End of input (stdin closed: nobody at the keyboard) is ``NoTerminal``: nobody could be asked.
    """
    print(f"{prompt} ", end="", file=sys.stderr, flush=True)
    ready, _, _ = select.select([sys.stdin], [], [], max(0.0, timeout_s))
    if not ready:
        print(file=sys.stderr)
        return None
    line = sys.stdin.readline()
    if not line:
        raise NoTerminal(prompt, "nobody could be asked: the input ended (stdin is closed or not a terminal)")
    return line.rstrip("\r\n")


class ManualPower:
    """``PowerSwitch`` by prompting the technician; each step must be confirmed in ``timeout_s``.

    Answers: Enter / y / yes / ok / done confirm; skip / n / no / q decline (``OperatorSkipped``);
    no answer in time is ``OperatorTimeout``; anything else is asked again, up to ``TRIES`` times.
    ``is_on()`` returns the last confirmed state, and asks when none is known yet.
    """

    name = "manual"

    def __init__(self, ask: Ask, timeout_s: float = 120.0, *, initially_on: bool | None = None):
        self.ask, self.timeout_s = ask, timeout_s
        self._on = initially_on

    def close(self) -> None:
        """Nothing to release: the technician stays."""

    def _prompt(self, prompt: str, doing: str) -> str:
        for _ in range(TRIES):
            answer = self.ask(prompt, self.timeout_s)
            if answer is None:
                raise OperatorTimeout("technician", doing, f"no confirmation within {self.timeout_s:g} s")
            word = answer.strip().lower()
            if word in DECLINE:
                raise OperatorSkipped("technician", doing, f"answered {word!r}")
            if word in CONFIRM:
                return word
            prompt = f"{prompt} (Enter to confirm, 'skip' to give up)"
        raise OperatorNotConfirmed("technician", doing, f"no usable answer after {TRIES} prompts")

    def on(self) -> None:
        self._prompt("Switch the unit's power ON and press Enter", "switching the unit's power on")
        self._on = True

    def off(self) -> None:
        self._prompt("Switch the unit's power OFF and press Enter", "switching the unit's power off")
        self._on = False

    def is_on(self) -> bool:
        if self._on is None:
            answer = None
            for _ in range(TRIES):
                got = self.ask("Is the unit's power ON? Answer y or n", self.timeout_s)
                if got is None:
                    raise OperatorTimeout("technician", "telling whether the unit is powered",
                                          f"no answer within {self.timeout_s:g} s")
                word = got.strip().lower()
                if word in ("y", "yes", "n", "no"):
                    answer = word.startswith("y")
                    break
            if answer is None:
                raise OperatorNotConfirmed("technician", "telling whether the unit is powered",
                                           f"no y/n answer after {TRIES} prompts")
            self._on = answer
        return self._on

    def cycle(self, off_s: float) -> None:
        """Off, keep it off for at least ``off_s`` seconds from the confirmation, then on."""
        self.off()
        time.sleep(max(0.0, off_s))
        self.on()
