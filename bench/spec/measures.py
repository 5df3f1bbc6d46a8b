"""What each HIL test measures, declared on the test (in the spirit of OpenHTF's ``@measures``).

A declaration names the measurement, its unit, where its limit comes from in the DUT profile,
the causes it bears on, how strongly a failed limit speaks to its one cause, and the terminal
capability it needs. The cause is named there only: the test records the value::

    @measures(Measure("free_memory_kib", "KiB", "free_memory_kib", bears_on=("resources",),
                      evidence="strong", needs="memory"), needs="status")
    def test_status(record, ...):
        if record.wanted("free_memory_kib"):
            record.measure("free_memory_kib", st.free_mem_kib, note="only ... KiB free")

A measurement bearing on several causes (or whose failure says nothing by itself) declares no
``evidence``: a rule of ``posbench.diagnosis`` weighs it and returns the evidence with its cause.

Limits are bound from the profile when the suite is collected (``bind``): a missing limit key is
a ``ConfigError`` naming the profile file and the key, before any device is touched. A test
records each declared measurement or says why it could not (``Recorder.unmeasured``); one it
never accounts for fails the test (``posbench.fixtures.outcomes``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from posbench.core.errors import ConfigError
from posbench.core.limits import Limit
from posbench.drivers.reader_unit import CAPABILITIES as READER_CAPABILITIES

LimitSource = str | Callable[..., "Limit | None"]
"""A key of the profile's ``[limits]``, or ``f(profile, **params) -> Limit | None`` for limits the
profile states elsewhere (a read path's p1, the expected firmware); None: the profile does not
judge this measurement (a generic profile names no firmware), so it is not taken."""


@dataclass(frozen=True)
class Measure:
    """One declared measurement. ``name`` and the causes in ``bears_on`` may hold ``{param}``
    fields of the test's parametrization and ``{each}``, expanded once per item of ``each(profile)``."""

    name: str
    unit: str
    limit: LimitSource
    bears_on: tuple[str, ...] = ()
    needs: str | tuple[str, ...] | None = None
    """The capability the unit's protocol must have (any of several, given a tuple)."""
    each: Callable[..., Iterable[str]] | None = None
    evidence: str | None = None
    """The strength (``posbench.spec.evidence.STRENGTH``) of the evidence a failed limit gives the
    one cause the measurement bears on; None: a failure is no evidence by itself."""

    def __post_init__(self) -> None:
        if self.evidence is not None and len(self.bears_on) != 1:
            raise ValueError(f"measurement {self.name}: a failed limit is evidence for one cause, and it bears "
                             f"on {len(self.bears_on)}; leave evidence None and let a rule weigh it")


@dataclass(frozen=True)
class Bound:
    """A declared measurement with its limit taken from the profile."""

    name: str
    unit: str
    limit: Limit | None
    bears_on: tuple[str, ...]
    needs: tuple[str, ...]
    """Capabilities the unit's protocol must have: the test's, and any one of the measurement's."""
    needs_any: tuple[str, ...] = ()
    unjudged: str = ""
    """Why the profile does not judge it (its limit source gave None)."""
    unknowable: bool = False
    """The profile says the model cannot tell it (``[unknown]``), rather than stating no limit."""
    evidence: str | None = None
    """The declaration's strength of the evidence a failed limit gives its one cause."""

    def why_not(self, lacks: Callable[[str], str | None]) -> str | None:
        """Why this measurement cannot be taken here (None: it can). ``lacks(capability)`` says
        why the unit's protocol cannot answer a capability, or None when it can."""
        for capability in self.needs:
            if why := lacks(capability):
                return why
        whys = [why for c in self.needs_any if (why := lacks(c))]
        if whys and len(whys) == len(self.needs_any):  # none of them can be answered
            return "; ".join(whys)
        return self.unjudged or None


@dataclass(frozen=True)
class Declaration:
    measures: tuple[Measure, ...]
    needs: str | None
    """A capability the whole test needs (a status enquiry, a journal read)."""
    readers: bool = False
    """The test applies to a card reader that is itself the unit too (its reads, its USB, its
    power); a test without it is a payment terminal's only and is not collected for a reader."""

    def applies_to(self, profile) -> bool:
        """Whether the test applies to the unit of ``profile`` (``posbench.setup.profile.Profile``)."""
        return self.readers or not profile.is_reader


def measures(*declared: Measure, needs: str | None = None, readers: bool = False):
    """Declare what a test measures (see the module docstring); ``readers``: it applies to a card
    reader that is itself the unit too."""
    def mark(fn):
        fn.posbench_measures = Declaration(tuple(declared), needs, readers)
        return fn
    return mark


def declaration(fn) -> Declaration | None:
    return getattr(fn, "posbench_measures", None)


def bind(decl: Declaration, profile, params: dict, test: str = "") -> dict[str, Bound]:
    """The test's measurements by name, limits taken from ``profile`` (``posbench.setup.profile.Profile``).
    A limit the profile declares unknown (``[unknown]``) gives a measurement that is not judged,
    with the profile's reason. Raises ``ConfigError`` naming the profile file and a key it has in
    neither table."""
    out: dict[str, Bound] = {}
    for m in decl.measures:
        if profile.is_reader and not _reader_takes(m, profile, params):
            continue  # what a reader cannot have (a journal, a firmware table it does not state): not its test
        needs = (decl.needs,) if decl.needs else ()
        for each in (m.each(profile, **params) if m.each else (None,)):
            name = m.name.format(**params, each=each)
            limit, unjudged = _limit(m.limit, profile, params, name, test)
            bears_on = tuple(cause.format(**params, each=each) for cause in m.bears_on)
            out[name] = Bound(name, m.unit, limit, bears_on, needs, _tuple(m.needs), unjudged,
                              isinstance(m.limit, str) and m.limit in profile.unknown, m.evidence)
    return out


def _reader_takes(m: Measure, profile, params: dict) -> bool:
    """Whether a reader that is the unit can give measurement ``m``: what it needs is something a
    reader tells (``posbench.drivers.reader_unit.CAPABILITIES``) and its profile judges it."""
    if any(need not in READER_CAPABILITIES for need in _tuple(m.needs)):
        return False
    if callable(m.limit):
        return m.limit(profile, **params) is not None
    return m.limit in profile.limits or m.limit in profile.unknown


def _limit(source: LimitSource, profile, params: dict, name: str, test: str) -> tuple[Limit | None, str]:
    """The limit and, when there is none, why the measurement is not judged."""
    if callable(source):
        try:
            limit = source(profile, **params)
        except ConfigError as exc:  # a key of [limits] it reads (Profile.limit): named as a key's absence is
            if not exc.key.startswith("limits."):
                raise
            raise _missing(profile, exc.key, name, test) from None
        return limit, "" if limit is not None else f"the DUT profile {profile.model} states no limit for it"
    if source in profile.limits:
        return profile.limits[source], ""
    if source in profile.unknown:
        return None, f"the DUT profile {profile.model} cannot know it: {profile.unknown[source]}"
    raise _missing(profile, f"limits.{source}", name, test)


def _missing(profile, key: str, name: str, test: str) -> ConfigError:
    return ConfigError(str(profile.source or f"the DUT profile of {profile.model}"), key,
                       f"is missing: {test or 'a HIL test'} judges its measurement {name} by it "
                       f"(give it a limit, or say in [unknown] why this model cannot tell it)")


def _tuple(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return () if value is None else (value,) if isinstance(value, str) else tuple(value)
