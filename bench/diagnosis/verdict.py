"""The verdict of one run as a typed model: what the verdict JSON (``posbench.verdict/1``) holds.

Diagnosis builds a ``Verdict`` (``ranking.verdict``); the first screen, the HTML panel, the
stored-run page, the result store and the CLI read it by attribute. ``Verdict.wire()`` is the
JSON written to files and the store: exactly the keys a verdict has always had. A key that is
optional on the wire (``bench``, ``read_paths``, ``code01_sales``, ...) is written only when it
was given or changed: a verdict read back and written again is the same JSON. Keys this model
does not know (a newer or older writer's) are kept as they came.

Units: ``confidence`` 0..1, ``ratio`` a likelihood ratio, ``duration_s`` seconds, ``started`` an
ISO-8601 UTC time; read path rates 0..1.
"""
from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

SCHEMA = "posbench.verdict/1"
SCHEMA_FILE = "verdict.schema.json"
"""The JSON Schema of ``Verdict``, shipped beside this module (``schema_document()`` makes it)."""

Number = int | float
"""A number as written: an integer stays one (``ratio`` 20 is not written 20.0)."""
Value = Any
"""A measured value as the test gave it: a number, a word, a yes/no, or nothing."""


class Wire(BaseModel):
    """A part of the verdict JSON. Not written: a field in ``OPTIONAL`` while it is empty (None,
    "", [] or {}), and any other field left at its default that was never given nor set."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()
    """Fields the wire carries only when they hold something."""

    @model_serializer(mode="wrap")
    def _written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name, info in type(self).model_fields.items():
            key = info.alias or name
            if key not in data or info.is_required():
                continue
            value = getattr(self, name)
            if name in self.OPTIONAL and value in (None, "", [], {}) or \
                    name not in self.model_fields_set and value == info.get_default(call_default_factory=True):
                del data[key]
        return data


class Unit(Wire):
    """The unit as it identified itself (or as the technician named it: ``serial_from`` says)."""

    serial: str = ""
    model: str = ""
    firmware: str = ""
    serial_from: str | None = None
    kind: str = "terminal"
    """"terminal" or "reader" (a card reader that is itself the unit); written only for a reader."""
    OPTIONAL = frozenset({"serial_from"})


class EvidenceItem(Wire):
    """One piece of evidence for or against a cause, as a test recorded it."""

    test: str = ""
    measurement: str = ""
    value: Value = None
    limit: str = ""
    note: str = ""
    ratio: Number = 1.0
    """Likelihood ratio: above 1 for the cause, below 1 against it."""


class SeenBefore(Wire):
    """An earlier run on the same unit that reported the same cause."""

    run: str
    started: str
    """ISO-8601 UTC."""


class Cause(Wire):
    """A reported cause: its confidence (0..1), the repair action, the evidence behind it."""

    id: str
    name: str = ""
    group: str = ""
    confidence: Number = 0.0
    evidence: list[EvidenceItem] = Field(default_factory=list)
    action: str = ""
    seen_before: list[SeenBefore] = Field(default_factory=list)
    """Newest first; set when the result store holds earlier runs of the unit."""
    OPTIONAL = frozenset({"seen_before"})


class VerdictMeasurement(Wire):
    """One measurement with its limit (``<= 25``, ``>= 0.98``, ``== true``, ``a .. b``)."""

    name: str
    value: Value = None
    unit: str = ""
    limit: str = ""
    passed: bool = True
    test: str = ""


class TestResult(Wire):
    """One test's outcome; ``message`` (at most 300 characters) only when it said something."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: str
    duration_s: Number = 0.0
    message: str = ""
    OPTIONAL = frozenset({"message"})


class ReadPath(Wire):
    """A read path's SPRT statistics: reads, failures, the 95% CI of the failure rate."""

    verdict: str = ""
    trials: int = 0
    failures: int = 0
    failure_rate: Number = 0.0
    ci: list[Number] = Field(default_factory=lambda: [0.0, 1.0])
    ci_confidence: Number = 0.95
    truncated: bool = False
    llr: Number = 0.0
    reasons: dict[str, int] = Field(default_factory=dict)
    p0: Number = 0.0
    p1: Number = 0.0
    alpha: Number = 0.0
    beta: Number = 0.0
    max_trials: int = 0
    interruptions: int = 0
    operator_events: int = 0
    """Cards not presented in time or the right way, read again (the technician's, not the unit's)."""
    refusals: int = 0
    """Sales the unit refused before the card could be presented (the unit's, not reads of the path)."""
    test: str = ""


class Unmeasured(Wire):
    """A declared measurement a test could not take, why, and the causes it would have spoken to."""

    test: str = ""
    measurement: str = ""
    why: str = ""
    causes: list[str] = Field(default_factory=list)


class Code01Seen(Wire):
    """One sale that showed code 01: ``origin`` terminal or issuer, the host's field 39."""

    origin: str
    stan: str = ""
    host_code: str | None = None
    reason: str = ""


class Verdict(Wire):
    """The verdict of one run (``posbench.verdict/1``)."""

    schema_: str = Field(SCHEMA, alias="schema")
    unit: Unit
    verdict: str
    """``pass``, ``fault``, ``inconclusive`` or ``bench_error``."""
    code01_origin: str
    """``terminal``, ``issuer`` or ``none``."""
    code01_sales: int | None = None
    causes: list[Cause]
    measurements: list[VerdictMeasurement]
    tests: list[TestResult]
    started: str
    """ISO-8601 UTC, seconds."""
    duration_s: Number
    bench: dict[str, Any] = Field(default_factory=dict)
    """The bench: name, virtual, seed, faults (a bench room's place)."""
    bench_errors: list[str] = Field(default_factory=list)
    read_paths: dict[str, ReadPath] = Field(default_factory=dict)
    unmeasured: list[Unmeasured] = Field(default_factory=list)
    undecided: dict[str, str] = Field(default_factory=dict)
    """Cause id -> why the run could not judge it."""
    contradictions: list[str] = Field(default_factory=list)
    code01: list[Code01Seen] = Field(default_factory=list)
    code01_meaning: str | None = None
    """``code01_origin`` in words (``findings.code01_sentence``)."""
    run_id: str | None = None
    """The stored run's id, once the result store kept it."""
    seen_before_notes: list[str] = Field(default_factory=list)
    OPTIONAL = frozenset({"code01_sales", "bench", "bench_errors", "read_paths", "unmeasured", "undecided",
                          "contradictions", "code01", "code01_meaning", "run_id", "seen_before_notes"})

    def wire(self) -> dict[str, Any]:
        """The verdict JSON as written to files and the result store."""
        return self.model_dump(mode="json", by_alias=True)

    def text(self) -> str:
        """The verdict JSON file's text (two-space indent, a final newline)."""
        return json.dumps(self.wire(), indent=2) + "\n"

    def add_bench_error(self, error: str) -> None:
        self.bench_errors = [*self.bench_errors, error]


def schema_document() -> dict[str, Any]:
    """The JSON Schema of a verdict JSON, as shipped in ``verdict.schema.json``."""
    doc = Verdict.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://posbench.invalid/{SCHEMA}", **doc}


@cache
def shipped_schema() -> dict[str, Any]:
    """The JSON Schema file shipped in the package."""
    return json.loads(resources.files("posbench.diagnosis").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


if __name__ == "__main__":  # python -m posbench.diagnosis.verdict FILE: write the schema file anew
    import sys
    from pathlib import Path

    Path(sys.argv[1]).write_text(json.dumps(schema_document(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
