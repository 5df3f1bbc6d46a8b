"""Schema versions of the result store and the steps between them.

``schema_version`` holds one row per applied step; the highest is the database's version.
``migrate`` applies every missing step, in order, in one transaction, while holding a lock that
keeps a second posbench opening the same database at the same moment out: PostgreSQL's
``pg_advisory_xact_lock``, SQLite's ``BEGIN IMMEDIATE`` (the write lock). If a step fails, the
transaction rolls back and the database stays at its previous version.

Hand-rolled rather than Alembic (a deliberate choice, not an oversight): the store has six
tables and a handful of steps, every step must run inside ``Store.open`` on a technician's
laptop or a CI runner with no ``alembic.ini``, no migration scripts directory on disk and no
separate command, and the lock that serialises two benches migrating one PostgreSQL database
at once is ours to take either way. Alembic's value (autogenerate, branches, downgrades) does
not pay for an extra dependency and a script tree here. Steps are plain functions of a
connection; each step is frozen once released: a later change is a new step, never an edit.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    text,
)

from posbench.store import schema

WRITE = "posbench_write"
"""Execution option that makes a SQLite transaction start with ``BEGIN IMMEDIATE``."""

_LOCK_KEY = 0x706F7362656E6368 & 0x7FFFFFFFFFFFFFFF
"""PostgreSQL advisory lock key ("posbench" in ASCII) held while migrating."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer posbench than this one."""


def _v1_initial(conn: Connection) -> None:
    """Version 1: runs, tests, measurements, evidence, code 01 observations, reported causes.

    Frozen: these are the tables as version 1 shipped them (no ``runs.reason``, ``runs.writer_id``,
    no history index).
    """
    md = MetaData()
    Table("runs", md,
          Column("id", Integer, primary_key=True),
          Column("run_id", String(36), nullable=False, unique=True),
          Column("bench_name", Text, nullable=False),
          Column("bench_json", Text, nullable=False),
          Column("seed", BigInteger),
          Column("faults_json", Text, nullable=False),
          Column("unit_serial", Text, nullable=False),
          Column("unit_model", Text, nullable=False),
          Column("unit_firmware", Text, nullable=False),
          Column("started", DateTime(timezone=True), nullable=False),
          Column("finished", DateTime(timezone=True)),
          Column("heartbeat", DateTime(timezone=True), nullable=False),
          Column("status", String(16), nullable=False),
          Column("verdict", String(16)),
          Column("code01_origin", String(16)),
          Column("exit_status", Integer),
          Column("verdict_json", Text),
          Column("posbench_version", String(40), nullable=False),
          Column("host", Text, nullable=False),
          Column("pid", Integer, nullable=False),
          Column("pid_start", BigInteger))
    run_fk = lambda: Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"),  # noqa: E731
                            nullable=False, index=True)
    test_fk = lambda: Column("test_pk", Integer, ForeignKey("tests.id", ondelete="CASCADE"),  # noqa: E731
                             index=True)
    Table("tests", md,
          Column("id", Integer, primary_key=True), run_fk(),
          Column("nodeid", Text, nullable=False),
          Column("outcome", String(16), nullable=False),
          Column("duration_s", Float, nullable=False),
          Column("message", Text, nullable=False),
          Column("bench_error", Boolean, nullable=False),
          Column("finished_at", DateTime(timezone=True), nullable=False))
    value_cols = lambda: [Column("value_kind", String(8), nullable=False),  # noqa: E731
                          Column("value_num", Float), Column("value_text", Text)]
    Table("measurements", md,
          Column("id", Integer, primary_key=True), run_fk(), test_fk(),
          Column("test", Text, nullable=False),
          Column("name", Text, nullable=False),
          *value_cols(),
          Column("unit", Text, nullable=False),
          Column("limit_spec", Text, nullable=False),
          Column("passed", Boolean, nullable=False))
    Table("evidence", md,
          Column("id", Integer, primary_key=True), run_fk(), test_fk(),
          Column("cause", String(40), nullable=False),
          Column("ratio", Float, nullable=False),
          Column("test", Text, nullable=False),
          Column("note", Text, nullable=False),
          Column("measurement", Text, nullable=False),
          *value_cols(),
          Column("limit_spec", Text, nullable=False))
    Table("code01", md,
          Column("id", Integer, primary_key=True), run_fk(), test_fk(),
          Column("origin", String(16), nullable=False),
          Column("stan", Text, nullable=False),
          Column("host_code", Text),
          Column("reason", Text, nullable=False),
          Column("test", Text, nullable=False))
    Table("run_causes", md,
          Column("id", Integer, primary_key=True), run_fk(),
          Column("rank", Integer, nullable=False),
          Column("cause_id", String(40), nullable=False),
          Column("cause_group", String(16), nullable=False),
          Column("confidence", Float, nullable=False))
    md.create_all(conn)


def _v2_reason_writer_history_index(conn: Connection) -> None:
    """Version 2: why a run is incomplete (``runs.reason``); which machine, boot and pid namespace
    wrote it (``runs.writer_id``: host names repeat across benches and containers); an index
    for ``posbench history``.
    """
    conn.execute(text("ALTER TABLE runs ADD COLUMN reason TEXT"))
    conn.execute(text("ALTER TABLE runs ADD COLUMN writer_id TEXT"))
    # A table of its own, not schema.runs: an Index attaches itself to the table it names, and
    # this step must never add a second copy to the declared schema.
    runs = Table("runs", MetaData(), Column("unit_serial", Text), Column("started", DateTime(timezone=True)))
    Index("ix_runs_unit_started", runs.c.unit_serial, runs.c.started).create(conn)


def _v3_plots(conn: Connection) -> None:
    """Version 3: the plots of each test (PNG), so ``posbench report`` regenerates them too."""
    md = MetaData()
    Table("runs", md, Column("id", Integer, primary_key=True))
    Table("tests", md, Column("id", Integer, primary_key=True))
    Table("plots", md,
          Column("id", Integer, primary_key=True),
          Column("run_pk", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
          Column("test_pk", Integer, ForeignKey("tests.id", ondelete="CASCADE"), index=True),
          Column("test", Text, nullable=False),
          Column("title", Text, nullable=False),
          Column("png", LargeBinary, nullable=False))
    md.tables["plots"].create(conn)


MIGRATIONS: list[Migration] = [
    Migration(1, "initial tables", _v1_initial),
    Migration(2, "runs.reason, runs.writer_id; index on runs (unit_serial, started)",
              _v2_reason_writer_history_index),
    Migration(3, "plots (PNG per test)", _v3_plots),
]
LATEST = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The database's schema version; 0 for a database posbench never wrote."""
    if not conn.dialect.has_table(conn, "schema_version"):
        return 0
    return int(conn.execute(select(func.coalesce(func.max(schema.schema_version.c.version), 0))).scalar_one())


def migrate(engine: Engine, target: int = LATEST) -> tuple[int, int]:
    """Bring the database up to ``target``; returns (version before, version after).

    Raises ``SchemaTooNew`` when the database is ahead of this posbench (never downgrades it).
    """
    if not 0 <= target <= LATEST:
        raise ValueError(f"schema version {target} unknown (this posbench knows 1..{LATEST})")
    with engine.execution_options(**{WRITE: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
        before = current_version(conn)
        if before > LATEST:
            raise SchemaTooNew(f"the store's schema is version {before}; this posbench knows up to "
                               f"{LATEST}: upgrade posbench")
        if before == 0:
            schema.schema_version.create(conn, checkfirst=True)
        for step in MIGRATIONS:
            if before < step.version <= target:
                step.apply(conn)
                conn.execute(schema.schema_version.insert().values(
                    version=step.version, description=step.description,
                    applied_at=datetime.now(timezone.utc)))
        return before, max(before, target)
