"""Limits a measurement is judged against (from the DUT profile, never a literal in a test)."""
from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, model_validator


class Limit(BaseModel):
    """Inclusive bounds; ``equals`` for exact values such as a checksum or version."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float | None = None
    max: float | None = None
    equals: str | float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> "Limit":
        if self.min is None and self.max is None and self.equals is None:
            raise ValueError("a limit needs min, max or equals")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        return self

    def check(self, value: object) -> bool:
        if self.equals is not None:
            return value == self.equals or str(value) == str(self.equals)
        if not isinstance(value, (int, float)) or math.isnan(value):
            return False  # NaN compares false with everything: it would pass a min-only limit
        if self.min is not None and value < self.min:
            return False
        return self.max is None or value <= self.max

    def __str__(self) -> str:
        if self.equals is not None:
            return f"== {self.equals}"
        if self.min is not None and self.max is not None:
            return f"{self.min:g} .. {self.max:g}"
        if self.min is not None:
            return f">= {self.min:g}"
        return f"<= {self.max:g}"


HOLDS = Limit(equals=1)
"""The limit of a check that holds (1) or not (0): a component allowed, the firmware new enough."""
HEALTHY = Limit(equals="healthy")
"""The limit of a read path's SPRT verdict."""
