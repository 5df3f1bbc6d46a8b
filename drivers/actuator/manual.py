"""The technician presents the cards, prompted one action at a time."""
from __future__ import annotations

from typing import Callable

from .base import Skipped

Ask = Callable[[str, float], "str | None"]
"""Shows a prompt and returns the answer, or None when nobody answered within the seconds."""
Say = Callable[[str], None]


class ManualActuator:
    """Prompts like "Swipe VISA-T1 now (3 of 15)" while the reader waits for the card.

    The prompt does not block: the read that follows waits (with its own timeout) for the
    technician's swipe. When a read saw no card, ``missed`` asks whether to retry or skip;
    ``skip`` raises ``Skipped`` now and for every later action of that kind. ``answer_s``:
    seconds the technician has to answer that question (no answer = retry).
    """

    name = "manual"

    def __init__(self, say: Say, ask: Ask, answer_s: float = 60.0):
        self.say, self.ask, self.answer_s = say, ask, answer_s
        self._skipped: set[str] = set()

    def _prompt(self, kind: str, text: str) -> None:
        if kind in self._skipped:
            raise Skipped("technician", f"{kind} (skipped earlier)")
        self.say(text)

    def missed(self, kind: str) -> None:
        """The reader saw no card after a prompt: retry (Enter) or skip the remaining ones."""
        answer = self.ask(f"No card seen. Press Enter to try again, or type 'skip' to skip the "
                          f"remaining {kind}s", self.answer_s)
        if answer is not None and answer.strip().lower() == "skip":
            self._skipped.add(kind)
            raise Skipped("technician", f"{kind}", "skipped by the technician")

    def swipe(self, card: str, n: int = 1, total: int = 1) -> None:
        self._prompt("swipe", f"Swipe {card} now ({n} of {total})")

    def tap(self, card: str, n: int = 1, total: int = 1) -> None:
        self._prompt("tap", f"Hold {card} on the contactless reader ({n} of {total})")

    def insert(self, card: str, n: int = 1, total: int = 1) -> None:
        self._prompt("insert", f"Insert {card} into the chip slot ({n} of {total})")

    def remove(self) -> None:
        self.say("Remove the card")

    def close(self) -> None:
        """Nothing is held."""
