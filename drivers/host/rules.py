"""Decision rules of the host simulator: which response code, after what delay, or no answer.

A rules file holds ``[[rule]]`` tables, first match wins::

    default_code = "00"          # optional
    [[rule]]
    name = "referral over 100.00"
    code = "01"
    min_amount = 10001           # minor units, inclusive
    pan_prefix = "4111"

Amounts are field 4 read as an integer (minor units); delays are seconds.
"""
from __future__ import annotations

import math
import random
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from posbench.core.errors import ConfigError

_CODE_RE = re.compile(r"[0-9A-Z]{2}")
_MTI_RE = re.compile(r"[0-9]{4}")
_DIGITS_RE = re.compile(r"[0-9]{1,19}")


class InvalidRule(ValueError):
    """A rule value out of range; ``key`` names the rule key, ``expected`` what it must be."""

    def __init__(self, key: str, expected: str):
        self.key, self.expected = key, expected
        super().__init__(f"{key}: {expected}")


@dataclass
class Rule:
    """One rule. Unset criteria match anything; all set criteria must hold.

    ``min_amount``/``max_amount``: inclusive bounds in minor units (field 4).
    ``pan_prefix``: leading digits of the PAN (field 2, else the PAN in track 2, field 35).
    ``delay_s``: seconds before answering. ``drop``: never answer.
    ``probability``: chance in [0, 1] that a rule whose criteria hold applies.
    """

    code: str = "00"
    min_amount: int | None = None
    max_amount: int | None = None
    pan_prefix: str | None = None
    mti: str = "0200"
    delay_s: float = 0.0
    drop: bool = False
    probability: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        if not _CODE_RE.fullmatch(self.code):
            raise InvalidRule("code", f"2 characters 0-9/A-Z, got {self.code!r}")
        if not _MTI_RE.fullmatch(self.mti):
            raise InvalidRule("mti", f"4 digits, got {self.mti!r}")
        if self.pan_prefix is not None and not _DIGITS_RE.fullmatch(self.pan_prefix):
            raise InvalidRule("pan_prefix", "1 to 19 digits")
        for key in ("min_amount", "max_amount"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise InvalidRule(key, f"an amount >= 0 in minor units, got {value}")
        if (self.min_amount is not None and self.max_amount is not None
                and self.min_amount > self.max_amount):
            raise InvalidRule("max_amount", f">= min_amount ({self.min_amount}), got {self.max_amount}")
        if not (math.isfinite(self.delay_s) and self.delay_s >= 0):
            raise InvalidRule("delay_s", f"a finite number of seconds >= 0, got {self.delay_s}")
        if not 0.0 <= self.probability <= 1.0:
            raise InvalidRule("probability", f"a number in [0, 1], got {self.probability}")

    def criteria_hold(self, doc: dict[str, Any]) -> bool:
        """True when MTI, amount and PAN criteria hold for ``doc`` (probability not applied)."""
        if doc.get("t") != self.mti:
            return False
        if self.min_amount is not None or self.max_amount is not None:
            amount = amount_of(doc)
            if amount is None:
                return False
            if self.min_amount is not None and amount < self.min_amount:
                return False
            if self.max_amount is not None and amount > self.max_amount:
                return False
        if self.pan_prefix is not None:
            pan = pan_of(doc)
            if pan is None or not pan.startswith(self.pan_prefix):
                return False
        return True


@dataclass(frozen=True)
class Decision:
    """What the host does with one request. ``rule_name`` is "" when no rule matched."""

    code: str
    delay_s: float = 0.0
    drop: bool = False
    rule_name: str = ""


@dataclass
class RuleSet:
    """An ordered list of rules; ``default_code`` answers requests no rule matches."""

    rules: list[Rule] = field(default_factory=list)
    default_code: str = "00"

    def decide(self, doc: dict[str, Any], rng: random.Random) -> Decision:
        """First matching rule wins; ``rng`` is drawn only for rules with probability < 1."""
        for index, rule in enumerate(self.rules):
            if not rule.criteria_hold(doc):
                continue
            if rule.probability < 1.0 and not rng.random() < rule.probability:
                continue
            return Decision(rule.code, rule.delay_s, rule.drop, rule.name or f"rule[{index}]")
        return Decision(self.default_code)

    @classmethod
    def from_toml(cls, path: str | Path) -> RuleSet:
        """Load a rules file; a bad file, key or value raises ``ConfigError``."""
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(str(path), "", f"a readable rules file ({exc.strerror})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), "", f"valid TOML in UTF-8 ({exc})") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<rules>") -> RuleSet:
        """Build from ``{"default_code": "00", "rule": [{...}, ...]}``; ``source`` names it in errors."""
        if not isinstance(d, dict):
            raise ConfigError(source, "", "a table with 'rule' and 'default_code' keys")
        for key in d:
            if key not in ("rule", "default_code"):
                raise ConfigError(source, key, "no such key; allowed: rule, default_code")
        default_code = d.get("default_code", "00")
        if not isinstance(default_code, str) or not _CODE_RE.fullmatch(default_code):
            raise ConfigError(source, "default_code", "a 2-character response code such as \"00\"")
        tables = d.get("rule", [])
        if not isinstance(tables, list):
            raise ConfigError(source, "rule", "an array of [[rule]] tables")
        return cls([_rule_from_table(source, i, t) for i, t in enumerate(tables)], default_code)


_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "code": ((str,), "a 2-character response code such as \"01\""),
    "min_amount": ((int,), "an integer amount in minor units"),
    "max_amount": ((int,), "an integer amount in minor units"),
    "pan_prefix": ((str,), "a string of digits"),
    "mti": ((str,), "a 4-digit MTI such as \"0200\""),
    "delay_s": ((int, float), "a number of seconds >= 0"),
    "drop": ((bool,), "true or false"),
    "probability": ((int, float), "a number in [0, 1]"),
    "name": ((str,), "a string"),
}
assert set(_FIELD_TYPES) == {f.name for f in fields(Rule)}


def _rule_from_table(source: str, index: int, table: Any) -> Rule:
    prefix = f"rule[{index}]"
    if not isinstance(table, dict):
        raise ConfigError(source, prefix, "a table of rule keys")
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _FIELD_TYPES:
            raise ConfigError(source, f"{prefix}.{key}",
                              f"no such key; allowed: {', '.join(_FIELD_TYPES)}")
        types, expected = _FIELD_TYPES[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise ConfigError(source, f"{prefix}.{key}", f"{expected}, got {type(value).__name__}")
        if float in types and isinstance(value, (int, float)):  # a number, as checked just above
            value = float(value)
        kwargs[key] = value
    try:
        return Rule(**kwargs)
    except InvalidRule as exc:
        raise ConfigError(source, f"{prefix}.{exc.key}", exc.expected) from None


def amount_of(doc: dict[str, Any]) -> int | None:
    """Field 4 as an integer in minor units, or None when absent or not numeric."""
    value = doc.get("4")
    return int(value) if isinstance(value, str) and _DIGITS_RE.fullmatch(value) else None


def pan_of(doc: dict[str, Any]) -> str | None:
    """The PAN: field 2, else the digits before the separator of track 2 (field 35)."""
    pan = doc.get("2")
    if isinstance(pan, str) and pan:
        return pan
    track2 = doc.get("35")
    if isinstance(track2, str) and track2:
        head = re.split(r"[=D]", track2.lstrip(";"), maxsplit=1)[0]
        return head if _DIGITS_RE.fullmatch(head) else None
    return None
