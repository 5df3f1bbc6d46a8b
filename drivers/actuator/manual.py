"""The technician presents the cards, prompted one action at a time."""
from __future__ import annotations

from typing import Callable

from .base import Presentation, Skipped, TechnicianGone

Ask = Callable[[str, float], "str | None"]
"""Shows a prompt and returns the answer, or None when nobody answered within the seconds."""
Say = Callable[[str], None]

PLURAL = {"swipe": "swipes", "tap": "taps", "insert": "chip card insertions"}
ASKS = 3
"""Times an answer that is none of the choices is asked again before it counts as no answer."""


class ManualActuator:
    """Prompts like "Swipe VISA-T1 now (3 of 15)" while the reader waits for the card.

    The prompt does not block: the read that follows waits (with its own timeout) for the
    technician's swipe. When a read saw no card, ``missed`` asks what happened: Enter = the card
    was not presented in time or not the right way ("retry": an operator event, asked again);
    ``r`` = it was on the reader and was not read ("presented": a failed read); ``e`` = the unit
    ended the read (the terminal refused the sale) before the card could be presented ("refused":
    the unit's refusal, no read of its reader); ``skip`` raises
    ``Skipped`` now and for every later action of that kind. ``answer_s``: seconds the technician
    has to answer; no answer raises ``TechnicianGone`` (a bench error, never the unit's).
    """

    name = "manual"

    def __init__(self, say: Say, ask: Ask, answer_s: float = 60.0):
        self.say, self.ask, self.answer_s = say, ask, answer_s
        self._skipped: set[str] = set()

    def _prompt(self, kind: str, text: str) -> None:
        if kind in self._skipped:
            raise Skipped("technician", f"{kind} (skipped earlier)", "skipped by the technician")
        self.say(text)

    def missed(self, kind: str) -> Presentation:
        """The reader saw no card after a prompt: ask the technician which it was."""
        question = (f"No card seen. Enter = present it again; 'r' = the card was on the reader and it did "
                    f"not read; 'e' = it ended before you could present the card; "
                    f"'skip' = skip the remaining {PLURAL.get(kind, kind + 's')}")
        for _ in range(ASKS):
            answer = self.ask(question, self.answer_s)
            if answer is None:
                raise TechnicianGone("technician", f"answering after a {kind} no card was seen",
                                     f"no answer within {self.answer_s:g} s: the technician did not come back")
            word = answer.strip().lower()
            if word == "":
                return "retry"
            if word == "r":
                return "presented"
            if word == "e":
                return "refused"
            if word == "skip":
                self._skipped.add(kind)
                raise Skipped("technician", kind, "skipped by the technician")
            question = f"'{answer.strip()[:20]}' is none of the choices. " + question.removeprefix("No card seen. ")
        raise TechnicianGone("technician", f"answering after a {kind} no card was seen",
                             f"{ASKS} answers that were none of the choices")

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
