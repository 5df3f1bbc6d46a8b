"""The result store's tables (SQLAlchemy Core), as of the latest schema version.

One row per run, per finished test, per measurement, per piece of evidence, per code 01 seen,
per reported cause and per plot (PNG, for ``posbench report``). Child rows point at ``runs.id`` (an integer) and, where they came from
a test, at ``tests.id``. Times are UTC. A measured value is kept twice: ``value_text`` is its
exact text (``repr`` for numbers, so it comes back bit for bit) and ``value_num`` a number for
queries; ``value_kind`` says which Python type to rebuild (null, bool, int, float, text).

The verdict JSON of a finished run is stored in full as text (``runs.verdict_json``): JSON
text, not a JSON column, so it comes back exactly as written on SQLite and PostgreSQL alike.

``posbench.store.migrations`` creates and upgrades these tables; this module only describes them.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", String(36), nullable=False, unique=True),
    Column("bench_name", Text, nullable=False, default=""),
    Column("bench_json", Text, nullable=False, default="{}"),
    Column("seed", BigInteger),
    Column("faults_json", Text, nullable=False, default="[]"),
    Column("unit_serial", Text, nullable=False, default=""),
    Column("unit_model", Text, nullable=False, default=""),
    Column("unit_firmware", Text, nullable=False, default=""),
    Column("started", DateTime(timezone=True), nullable=False),
    Column("finished", DateTime(timezone=True)),
    Column("heartbeat", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),  # running | complete | incomplete
    Column("verdict", String(16)),
    Column("code01_origin", String(16)),
    Column("exit_status", Integer),
    Column("verdict_json", Text),
    Column("posbench_version", String(40), nullable=False, default=""),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("pid_start", BigInteger),  # /proc/PID/stat start time (clock ticks): tells a reused pid apart
    Column("reason", Text),  # schema v2: why a run is incomplete
    Column("writer_id", Text),  # schema v2: "machine-id/boot-id/pid-namespace" of the writer
    Index("ix_runs_unit_started", "unit_serial", "started"),  # schema v2
)

tests = Table(
    "tests", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("nodeid", Text, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("bench_error", Boolean, nullable=False, default=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
)

measurements = Table(
    "measurements", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("test_pk", Integer, ForeignKey("tests.id", ondelete="CASCADE"), index=True),
    Column("test", Text, nullable=False, default=""),
    Column("name", Text, nullable=False),
    Column("value_kind", String(8), nullable=False),
    Column("value_num", Float),
    Column("value_text", Text),
    Column("unit", Text, nullable=False, default=""),
    Column("limit_spec", Text, nullable=False, default=""),
    Column("passed", Boolean, nullable=False),
)

evidence = Table(
    "evidence", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("test_pk", Integer, ForeignKey("tests.id", ondelete="CASCADE"), index=True),
    Column("cause", String(40), nullable=False),
    Column("ratio", Float, nullable=False),
    Column("test", Text, nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("measurement", Text, nullable=False, default=""),
    Column("value_kind", String(8), nullable=False),
    Column("value_num", Float),
    Column("value_text", Text),
    Column("limit_spec", Text, nullable=False, default=""),
)

code01 = Table(
    "code01", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("test_pk", Integer, ForeignKey("tests.id", ondelete="CASCADE"), index=True),
    Column("origin", String(16), nullable=False),
    Column("stan", Text, nullable=False, default=""),
    Column("host_code", Text),
    Column("reason", Text, nullable=False, default=""),
    Column("test", Text, nullable=False, default=""),
)

run_causes = Table(
    "run_causes", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("rank", Integer, nullable=False),
    Column("cause_id", String(40), nullable=False),
    Column("cause_group", String(16), nullable=False),
    Column("confidence", Float, nullable=False),
)

plots = Table(  # schema v3
    "plots", metadata,
    Column("id", Integer, primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("test_pk", Integer, ForeignKey("tests.id", ondelete="CASCADE"), index=True),
    Column("test", Text, nullable=False, default=""),
    Column("title", Text, nullable=False, default=""),
    Column("png", LargeBinary, nullable=False),
)
