"""What the result store gives back (runs, tests, causes, changed measurements) and what it
takes to store a verdict (``StorableVerdict``: read by attribute, so the store needs no diagnosis).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from posbench.spec.evidence import Code01Observation, Evidence, Measurement, RunRecord, TestOutcome


class VerdictUnit(Protocol):
    @property
    def serial(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def firmware(self) -> str: ...


class VerdictCause(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def confidence(self) -> float: ...


class StorableVerdict(Protocol):
    """A verdict as the store keeps it: its JSON in full, and the columns runs are listed by."""

    @property
    def verdict(self) -> str: ...
    @property
    def code01_origin(self) -> str: ...
    @property
    def unit(self) -> VerdictUnit: ...
    @property
    def bench(self) -> dict[str, Any]: ...
    @property
    def causes(self) -> Sequence[VerdictCause]: ...

    def wire(self) -> dict[str, Any]:
        """The verdict JSON."""


@dataclass(frozen=True)
class StoredCause:
    id: str
    group: str
    confidence: float


@dataclass
class StoredTest:
    nodeid: str
    outcome: str
    duration_s: float
    message: str
    bench_error: bool
    finished_at: datetime

    def outcome_record(self) -> TestOutcome:
        return TestOutcome(self.nodeid, self.outcome, self.duration_s, self.message, self.bench_error)


@dataclass
class RunSummary:
    """One run as ``posbench history`` lists it."""

    run_id: str
    bench_name: str
    unit: dict[str, str]
    started: datetime
    finished: datetime | None
    status: str
    """``running``, ``complete`` or ``incomplete``."""
    reason: str | None
    verdict: str | None
    code01_origin: str | None
    exit_status: int | None
    causes: list[StoredCause] = field(default_factory=list)


@dataclass
class StoredRun(RunSummary):
    """Everything stored about one run: enough to rebuild its verdict JSON and report."""

    bench: dict = field(default_factory=dict)
    doc: dict | None = None
    """The verdict JSON as stored by ``finish_run`` (None if the run never finished)."""
    version: str = ""
    host: str = ""
    pid: int = 0
    tests: list[StoredTest] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    code01: list[Code01Observation] = field(default_factory=list)
    plots: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(test, title, PNG) in the order recorded."""

    def record(self) -> RunRecord:
        """The run's rows as the ``RunRecord`` the plugin had built (for a run that never finished)."""
        return RunRecord(measurements=list(self.measurements), evidence=list(self.evidence),
                         code01=list(self.code01), tests=[x.outcome_record() for x in self.tests],
                         unit={k: v for k, v in self.unit.items() if v}, bench=dict(self.bench))

    def unfinished_record(self) -> RunRecord:
        """For a run without a stored verdict: its rows as a record with a bench error naming why
        it has none (the bench host failed during the run; the unit is not judged on half a run).
        Diagnosis turns it into the run's verdict."""
        record = self.record()
        if self.status == "running":
            record.bench_errors.append(f"the run has not finished yet; {len(self.tests)} tests stored so far")
        else:
            record.bench_errors.append(
                f"the run did not finish ({self.reason or self.status}); {len(self.tests)} tests were stored")
        return record

    def duration_s(self) -> float:
        """Seconds from its start to its end (or to its last stored test); 0 when nothing ended."""
        ends = [self.finished] if self.finished else [x.finished_at for x in self.tests]
        return max([(e - self.started).total_seconds() for e in ends if e] + [0.0])


class MeasurementChange(NamedTuple):
    name: str
    before: Any
    after: Any
    passed_before: bool | None
    """None: the measurement is not in the earlier run."""
    passed_after: bool | None
    """None: the measurement is not in the later run."""
