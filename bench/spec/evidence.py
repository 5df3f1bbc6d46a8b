"""What HIL tests record: measurements against limits, and evidence for causes of code 01."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from posbench.spec import taxonomy
from posbench.core.limits import Limit

STRENGTH = {"weak": 4.0, "moderate": 15.0, "strong": 60.0, "decisive": 250.0}
"""Likelihood ratio P(observation | cause) / P(observation | no cause) for each strength word."""


@dataclass
class Measurement:
    name: str
    value: float | int | str | None
    unit: str
    limit: str
    passed: bool
    test: str = ""
    bears_on: tuple[str, ...] = ()
    """The causes this measurement speaks to, failed or not (not in the verdict JSON)."""

    def to_json(self) -> dict:
        return {"name": self.name, "value": self.value, "unit": self.unit, "limit": self.limit,
                "passed": self.passed, "test": self.test}


@dataclass
class Evidence:
    cause: str
    ratio: float
    """Likelihood ratio this observation gives the cause (> 1 supports it)."""
    test: str
    note: str
    measurement: str = ""
    value: float | int | str | None = None
    limit: str = ""

    def to_json(self) -> dict:
        return {"test": self.test, "measurement": self.measurement, "value": self.value,
                "limit": self.limit, "note": self.note, "ratio": round(self.ratio, 3)}

    @classmethod
    def of(cls, cause: str, strength: str | float, note: str, measurement: str = "",
           value: float | int | str | None = None, limit: str = "") -> Evidence:
        """Evidence a rule found, not yet the test's (``Recorder.add`` makes it so). ``strength``:
        a word of ``STRENGTH`` or a likelihood ratio. An unknown cause id fails here, loudly."""
        taxonomy.get(cause)
        ratio = STRENGTH[strength] if isinstance(strength, str) else float(strength)
        return cls(cause, ratio, "", note, measurement, value, limit)


@dataclass(frozen=True)
class Reading:
    """A declared measurement a rule read from a test's observations: its value, the note a
    failure gives, and where the declaration leaves the failure to the rule, the evidence it is
    (``if_failed``; None: none)."""

    name: str
    value: float | int | str | None
    note: str = ""
    if_failed: Evidence | None = None
    bears_on: tuple[str, ...] = ()
    """Causes it speaks to beyond its declaration's (they depend on the run)."""


@dataclass
class Found:
    """What a rule made of a test's observations, for ``Recorder.take``: readings, measurements it
    could not take (name -> why) and evidence, each in the order the rule found them."""

    readings: list[Reading] = field(default_factory=list)
    unmeasured: dict[str, str] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Code01Observation:
    """One time the unit displayed code 01, and whether the host really sent it."""

    origin: str  # "issuer" | "terminal"
    stan: str
    host_code: str | None
    reason: str
    test: str


@dataclass
class Unmeasured:
    """A measurement the unit's protocol (or the bench) could not take: absent, never healthy."""

    test: str
    measurement: str
    why: str
    causes: tuple[str, ...] = ()
    """Causes the measurement would have borne on."""

    def to_json(self) -> dict:
        return {"test": self.test, "measurement": self.measurement, "why": self.why,
                "causes": list(self.causes)}


@dataclass
class TestOutcome:
    nodeid: str
    outcome: str
    duration_s: float
    message: str = ""
    bench_error: bool = False


@dataclass
class RunRecord:
    """Everything one run recorded, in the order it happened."""

    measurements: list[Measurement] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    code01: list[Code01Observation] = field(default_factory=list)
    tests: list[TestOutcome] = field(default_factory=list)
    unit: dict[str, str] = field(default_factory=dict)
    bench_errors: list[str] = field(default_factory=list)
    bench: dict = field(default_factory=dict)
    """Which bench ran: name, virtual, and for a virtual bench its seed and faults."""
    plots: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(test, title, PNG) for the HTML report; never in the verdict JSON."""
    read_paths: dict[str, dict] = field(default_factory=dict)
    """Per read path ("swipe", "tap", "chip"): the SPRT's verdict, reads, rate and interval, and
    its operator events (cards not presented in time or the right way: the technician's, not evidence)."""
    unmeasured: list[Unmeasured] = field(default_factory=list)
    code01_sales: int | None = None
    """How many sales the code 01 check ran (None: it did not run)."""


class UndeclaredMeasurement(Exception):
    """A HIL test recorded a measurement it does not declare, or gave one a limit of its own."""


class Recorder:
    """The ``record`` fixture: bound to one test, writing into the run's ``RunRecord``.

    With ``declared`` (``posbench.spec.measures.bind``), the test's measurements take their unit, limit
    and causes from their declaration; those its unit cannot give are listed as unmeasured
    up front (``skipped``), and ``missing()`` names the ones it never accounted for.
    """

    def __init__(self, run: RunRecord, test: str, declared: dict | None = None):
        self.run, self.test = run, test
        self.declared = declared

    def measure(self, name: str, value: float | int | str | None, unit: str | None = None,
                limit: Limit | None = None, cause: str | None = None, strength: str = "strong",
                note: str = "", bears_on: str | tuple[str, ...] = (), if_failed: Evidence | None = None) -> bool:
        """Record ``value`` against its limit; True when it passed.

        A declared measurement takes unit, limit, the causes it bears on and the strength a failed
        limit gives its one cause from its declaration (``Measure``): the call names no cause.
        ``bears_on`` widens the causes it speaks to where they depend on the run (a protocol's sale
        causes). ``if_failed``: a rule's evidence (``Evidence.of``) for a measurement whose failure
        the declaration leaves to a rule, added when the limit fails. ``note`` words the evidence a
        failure gives. Undeclared (an ad-hoc ``Recorder``), the call gives unit, limit and ``cause``."""
        if self.declared is not None:
            bound = self.declared.get(name)
            if bound is None:
                raise UndeclaredMeasurement(f"{self.test} records {name}, which it does not declare (@measures)")
            if unit is not None or limit is not None:
                raise UndeclaredMeasurement(f"{self.test} gives {name} a unit or limit of its own: "
                                            "they come from its declaration and the DUT profile")
            if cause is not None or (if_failed is not None and bound.evidence):
                raise UndeclaredMeasurement(f"{self.test} names a cause for {name} at the call: it comes from its "
                                            "declaration (or, where a rule weighs it, from the rule)")
            if bound.limit is None:
                raise UndeclaredMeasurement(f"{self.test} records {name}, which cannot be taken here: "
                                            f"{bound.unjudged or 'its capability is missing'}")
            unit, limit = bound.unit, bound.limit
            bears_on = bears_on or bound.bears_on
            if bound.evidence:
                cause, strength = bound.bears_on[0], bound.evidence
        elif unit is None or limit is None:
            raise TypeError(f"measurement {name} needs a unit and a limit")
        passed = value is not None and limit.check(value)
        causes = (bears_on,) if isinstance(bears_on, str) else tuple(bears_on) or ((cause,) if cause else ())
        self.run.measurements.append(Measurement(name, value, unit, str(limit), passed, self.test, causes))
        if not passed and cause:
            self.evidence(cause, strength, note or f"{name} = {value} {unit}, limit {limit}",
                          measurement=name, value=value, limit=str(limit))
        elif not passed and if_failed is not None:
            self.add([replace(if_failed, measurement=name, value=value, limit=str(limit))])
        return passed

    def cause_of(self, name: str) -> str:
        """The one cause declared measurement ``name`` bears on (a rule's evidence names it from
        the declaration, not at the call); ``UndeclaredMeasurement`` when there is not exactly one."""
        bound = (self.declared or {}).get(name)
        if bound is None or len(bound.bears_on) != 1:
            raise UndeclaredMeasurement(f"{self.test}: {name} must be declared bearing on one cause "
                                        f"(it bears on {bound.bears_on if bound else 'nothing: undeclared'})")
        return bound.bears_on[0]

    def take(self, found: Found) -> None:
        """Record what a rule read from the test's observations: its readings (each judged
        against its declared limit), the measurements it could not take, then its evidence."""
        for reading in found.readings:
            self.measure(reading.name, reading.value, note=reading.note, bears_on=reading.bears_on,
                         if_failed=reading.if_failed)
        for name, why in found.unmeasured.items():
            self.unmeasured(name, why)
        self.add(found.evidence)

    def add(self, found: Evidence | list[Evidence] | None) -> None:
        """Evidence a rule returned (``Evidence.of``; one, a list, or None for none), recorded as
        this test's."""
        for e in [found] if isinstance(found, Evidence) else found or []:
            taxonomy.get(e.cause)
            self.run.evidence.append(replace(e, test=self.test))

    def limit(self, name: str) -> Limit:
        """The bound limit of a declared measurement (for rules that compare values against it)."""
        bound = (self.declared or {}).get(name)
        if bound is None or bound.limit is None:
            raise UndeclaredMeasurement(f"{self.test} has no bound limit for {name}")
        return bound.limit

    def wanted(self, name: str) -> bool:
        """Whether the declared measurement ``name`` can be taken here (not already unmeasured)."""
        return name in (self.declared or {}) and not any(
            u.measurement == name and u.test == self.test for u in self.run.unmeasured)

    def missing(self) -> list[str]:
        """Declared measurements this test neither recorded nor listed as unmeasured."""
        done = {m.name for m in self.run.measurements if m.test == self.test} | {
            u.measurement for u in self.run.unmeasured if u.test == self.test}
        return [name for name in (self.declared or {}) if name not in done]

    def evidence(self, cause: str, strength: str | float, note: str, measurement: str = "",
                 value: float | int | str | None = None, limit: str = "") -> None:
        self.add([Evidence.of(cause, strength, note, measurement, value, limit)])

    def code01(self, origin: str, stan: str, host_code: str | None, reason: str = "") -> None:
        if origin not in ("issuer", "terminal"):
            raise ValueError(f"origin must be issuer or terminal, not {origin!r}")
        self.run.code01.append(Code01Observation(origin, stan, host_code, reason, self.test))

    def code01_sales(self, count: int) -> None:
        """How many sales the code 01 check ran: what "no code 01 reproduced" rests on."""
        self.run.code01_sales = (self.run.code01_sales or 0) + count

    def unmeasured(self, measurement: str, why: str, causes: tuple[str, ...] | list[str] | None = None) -> None:
        """Note a measurement that cannot be taken here (the protocol cannot answer it, the unit
        gave too little to measure); ``causes`` defaults to those it is declared to bear on."""
        if causes is None:
            bound = (self.declared or {}).get(measurement)
            causes = bound.bears_on if bound is not None else ()
        if not self.wanted(measurement) and measurement in (self.declared or {}):
            return  # listed once
        for cause in causes:
            taxonomy.get(cause)
        self.run.unmeasured.append(Unmeasured(self.test, measurement, why, tuple(causes)))

    def plot(self, title: str, png: bytes) -> None:
        """Attach a PNG plot to the run's HTML report."""
        self.run.plots.append((self.test, title, png))

    def failed(self) -> list[Measurement]:
        return [m for m in self.run.measurements if m.test == self.test and not m.passed]

    def unit(self, **fields: str) -> None:
        self.run.unit.update({k: str(v) for k, v in fields.items()})

