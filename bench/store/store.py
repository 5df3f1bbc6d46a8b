"""The result store: every run, test and measurement, written as each test completes.

A run is a row with status ``running`` from ``begin_run`` on; each ``record_test`` commits that
test's outcome, measurements, evidence and code 01 observations in one transaction, so a crash
or power loss of the bench host loses nothing already measured. ``finish_run`` stores the
verdict JSON and marks the run ``complete``. A run whose writer died is marked ``incomplete``
by the next ``Store.open`` (``sweep_incomplete``), never left silently ``running``.

Default: SQLite at ``reports/posbench.sqlite`` in WAL mode with ``synchronous=FULL`` (a commit
is on disk when it returns: power loss keeps it). ``Store.open(url)`` takes any SQLAlchemy URL;
``postgresql://`` URLs use psycopg 3, so several benches can share one PostgreSQL database.

Card data: every text written (messages, notes, values, unit fields, the verdict JSON) passes
``posbench.core.masking.scrub`` first; an integer value that looks like a PAN is stored masked, as text.
"""
from __future__ import annotations

import json
import math
import os
import re
import socket
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from posbench.spec.evidence import Code01Observation, Evidence, Measurement, TestOutcome
from posbench.core.masking import scrub
from posbench.core.procs import pid_alive, pid_start, process_identity
from posbench.store import migrations, schema as t
from posbench.store.encoding import (bench_columns, decode_value, encode_value, read_utc, scrub_obj, to_utc,
                                     utcnow)
from posbench.store.engine import corrupt_remedy, hide_password, make_engine, parse_url
from posbench.store.errors import AmbiguousRun, StoreUnavailable, UnknownRun
from posbench.store.records import (MeasurementChange, RunSummary, StorableVerdict, StoredCause, StoredRun,
                                    StoredTest)

DEFAULT_FILE = "posbench.sqlite"
STALE_AFTER_S = 12 * 3600.0
"""A ``running`` run of another host with no test recorded for this long (seconds) is abandoned.

Longer than any single HIL test may take (the runner stops a test after 600 s) by a wide margin,
so a slow soak on another bench is never swept while it is still writing.
"""
MIN_PREFIX = 4
"""Shortest run id prefix accepted (like git's abbreviated hashes)."""


@dataclass(frozen=True)
class Writer:
    """Who writes a run: host name, process id, the process's start time, posbench version.

    ``identity`` is ``machine-id/boot-id/pid-namespace``: host names repeat (every Raspberry Pi
    is "raspberrypi", containers share their host's name), so the sweep checks a writer's pid
    only when it ran on this very machine, boot and pid namespace.
    """

    host: str
    pid: int
    pid_start: int | None
    version: str
    identity: str | None = None

    @classmethod
    def current(cls) -> Writer:
        try:
            version = importlib_metadata.version("posbench")
        except importlib_metadata.PackageNotFoundError:
            version = "unknown"
        return cls(socket.gethostname(), os.getpid(), pid_start(os.getpid()), version, process_identity())


class Store:
    """A connection to the result store. Use ``Store.open``; close with ``close()`` (or ``with``)."""

    def __init__(self, engine: Engine, safe_url: str, writer: Writer):
        self.engine, self.url, self.writer = engine, safe_url, writer
        self._write_engine = engine.execution_options(**{migrations.WRITE: True})

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | None, reports_dir: Path | None, *, sweep: bool = True,
             stale_after_s: float = STALE_AFTER_S, migrate_to: int = migrations.LATEST) -> Store:
        """Open (creating and migrating as needed) the store at ``url``.

        ``url`` None: SQLite at ``reports_dir/posbench.sqlite``. ``sweep``: mark runs whose
        writer died as incomplete (see ``sweep_incomplete``). Raises ``StoreUnavailable``.
        """
        if url is None:
            reports_dir = Path(reports_dir if reports_dir is not None else "reports")
            try:
                reports_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(str(reports_dir / DEFAULT_FILE), "creating its directory",
                                       str(exc)) from None
            parsed = URL.create("sqlite", database=str(reports_dir.resolve() / DEFAULT_FILE))
        else:
            parsed = parse_url(url)
        safe = parsed.render_as_string(hide_password=True)
        engine = make_engine(parsed, safe)
        store = cls(engine, safe, Writer.current())
        try:
            with store._guard("opening"):
                try:
                    migrations.migrate(engine, migrate_to)
                except migrations.SchemaTooNew as exc:
                    raise StoreUnavailable(safe, "opening", str(exc)) from None
                if sweep:
                    store.sweep_incomplete(stale_after_s)
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn a database failure into ``StoreUnavailable`` naming the store and the action."""
        try:
            yield
        except (SQLAlchemyError, sqlite3.Error) as exc:
            detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
            detail = hide_password(scrub(detail), self.engine.url) + corrupt_remedy(exc, self.engine.url)
            raise StoreUnavailable(self.url, doing, detail) from None

    @contextmanager
    def _write(self, doing: str) -> Iterator[Connection]:
        """One write transaction (SQLite: ``BEGIN IMMEDIATE``), committed when the block ends."""
        with self._guard(doing), self._write_engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self, doing: str) -> Iterator[Connection]:
        with self._guard(doing), self.engine.connect() as conn:
            yield conn

    # -- writing a run ----------------------------------------------------------------------
    def begin_run(self, bench: dict | None, started: datetime, writer: Writer | None = None,
                  unit: dict[str, str] | None = None) -> str:
        """Store a new ``running`` run; returns its id (a UUID string)."""
        writer = writer or self.writer
        run_id = str(uuid.uuid4())
        bench = scrub_obj(dict(bench or {}))
        unit = unit or {}
        now = utcnow()
        with self._write("starting a run") as conn:
            conn.execute(t.runs.insert().values(
                run_id=run_id, **bench_columns(bench),
                unit_serial=scrub(str(unit.get("serial", ""))), unit_model=scrub(str(unit.get("model", ""))),
                unit_firmware=scrub(str(unit.get("firmware", ""))),
                started=to_utc(started), heartbeat=now, status="running",
                posbench_version=writer.version[:40], host=writer.host, pid=writer.pid,
                pid_start=writer.pid_start, writer_id=writer.identity))
        return run_id

    def set_unit(self, run_id: str, serial: str, model: str = "", firmware: str = "") -> None:
        """Fill in the unit once it identified itself (empty fields leave the stored value)."""
        values = {k: scrub(str(v)) for k, v in
                  (("unit_serial", serial), ("unit_model", model), ("unit_firmware", firmware)) if v}
        if values:
            with self._write("setting the unit of a run") as conn:
                conn.execute(update(t.runs).where(t.runs.c.id == self._pk(conn, run_id)).values(**values))

    def set_bench(self, run_id: str, bench: dict) -> None:
        """Fill in the bench description (name, virtual, seed, faults) once it is known."""
        with self._write("setting the bench of a run") as conn:
            conn.execute(update(t.runs).where(t.runs.c.id == self._pk(conn, run_id))
                         .values(**bench_columns(scrub_obj(dict(bench)))))

    def record_test(self, run_id: str, outcome: TestOutcome, measurements: Sequence[Measurement] = (),
                    evidence: Sequence[Evidence] = (), code01: Sequence[Code01Observation] = (),
                    plots: Sequence[tuple[str, str, bytes]] = ()) -> None:
        """Commit one finished test with what it recorded (``plots``: (test, title, PNG)), in a
        single transaction.

        Recording the same nodeid again replaces that test's row and everything recorded with it.
        """
        now = utcnow()
        with self._write(f"recording {scrub(outcome.nodeid)}") as conn:
            run_pk = self._pk(conn, run_id)
            test_row = dict(outcome=outcome.outcome, duration_s=float(outcome.duration_s),
                            message=scrub(outcome.message or ""), bench_error=bool(outcome.bench_error),
                            finished_at=now)
            nodeid = scrub(outcome.nodeid)
            test_pk = conn.execute(select(t.tests.c.id).where(
                t.tests.c.run_pk == run_pk, t.tests.c.nodeid == nodeid)).scalar()
            if test_pk is None:
                inserted = conn.execute(t.tests.insert().values(run_pk=run_pk, nodeid=nodeid, **test_row)
                                        ).inserted_primary_key
                assert inserted is not None  # set for a single-row INSERT
                test_pk = inserted[0]
            else:
                conn.execute(update(t.tests).where(t.tests.c.id == test_pk).values(**test_row))
                for table in (t.measurements, t.evidence, t.code01, t.plots):
                    conn.execute(delete(table).where(table.c.test_pk == test_pk))
            link = {"run_pk": run_pk, "test_pk": test_pk}
            if measurements:
                conn.execute(t.measurements.insert(), [
                    link | dict(test=scrub(m.test), name=scrub(m.name), **encode_value(m.value), unit=scrub(m.unit),
                                limit_spec=scrub(str(m.limit)), passed=bool(m.passed))
                    for m in measurements])
            if evidence:
                conn.execute(t.evidence.insert(), [
                    link | dict(cause=e.cause, ratio=float(e.ratio), test=scrub(e.test), note=scrub(e.note),
                                measurement=scrub(e.measurement), **encode_value(e.value),
                                limit_spec=scrub(str(e.limit)))
                    for e in evidence])
            if code01:
                conn.execute(t.code01.insert(), [
                    link | dict(origin=o.origin, stan=scrub(o.stan),
                                host_code=None if o.host_code is None else scrub(o.host_code),
                                reason=scrub(o.reason), test=scrub(o.test))
                    for o in code01])
            if plots:
                conn.execute(t.plots.insert(), [link | dict(test=scrub(test), title=scrub(title), png=bytes(png))
                                                for test, title, png in plots])
            conn.execute(update(t.runs).where(t.runs.c.id == run_pk).values(heartbeat=now))

    def finish_run(self, run_id: str, verdict: StorableVerdict, exit_status: int,
                   incomplete_reason: str | None = None) -> None:
        """Store the verdict JSON in full and mark the run complete.

        ``incomplete_reason``: the run ended early (interrupted) but still has a verdict: keep
        the verdict and mark the run ``incomplete`` with that reason.
        """
        doc = scrub_obj(verdict.wire())
        unit = verdict.unit
        values: dict[str, Any] = dict(
            finished=utcnow(), status="incomplete" if incomplete_reason else "complete",
            reason=scrub(incomplete_reason) if incomplete_reason else None,
            verdict=verdict.verdict, code01_origin=verdict.code01_origin, exit_status=int(exit_status),
            verdict_json=json.dumps(doc, ensure_ascii=False))
        values.update({f"unit_{k}": scrub(str(v)) for k, v in
                       (("serial", unit.serial), ("model", unit.model), ("firmware", unit.firmware)) if v})
        if verdict.bench:
            values.update(bench_columns(scrub_obj(dict(verdict.bench))))
        with self._write("storing the verdict") as conn:
            run_pk = self._pk(conn, run_id)
            conn.execute(update(t.runs).where(t.runs.c.id == run_pk).values(**values))
            conn.execute(delete(t.run_causes).where(t.run_causes.c.run_pk == run_pk))
            if verdict.causes:
                conn.execute(t.run_causes.insert(), [
                    dict(run_pk=run_pk, rank=i, cause_id=c.id, cause_group=c.group,
                         confidence=float(c.confidence)) for i, c in enumerate(verdict.causes)])

    def mark_incomplete(self, run_id: str, reason: str) -> bool:
        """Mark a ``running`` run incomplete; False if it had already ended."""
        with self._write("marking a run incomplete") as conn:
            return self._end_running(conn, self._pk(conn, run_id), reason)

    def sweep_incomplete(self, stale_after_s: float = STALE_AFTER_S, now: datetime | None = None) -> list[str]:
        """Mark runs left ``running`` by a writer that died as incomplete; returns their ids.

        A run written on this machine, boot and pid namespace is abandoned when its writer
        process is gone (or its pid now belongs to another process, told apart by the process
        start time); one written on this machine before it rebooted, at once. A run of another
        host, container or unknown origin (a shared PostgreSQL store) is only abandoned after
        ``stale_after_s`` seconds without a test recorded: its process cannot be checked here.
        """
        now = now or utcnow()
        with self._read("looking for abandoned runs") as conn:
            rows = conn.execute(select(t.runs.c.id, t.runs.c.run_id, t.runs.c.host, t.runs.c.pid,
                                       t.runs.c.pid_start, t.runs.c.heartbeat, t.runs.c.writer_id)
                                .where(t.runs.c.status == "running")).all()
        swept = []
        for row in rows:
            where = _where_written(row.host, row.writer_id, self.writer)
            if where == "here":
                if pid_alive(row.pid, row.pid_start):
                    continue
                reason = f"the writer (pid {row.pid} on {row.host}) died before the run finished"
            elif where == "before reboot":
                reason = f"the bench host {row.host} restarted during the run (writer pid {row.pid})"
            else:
                idle = (now - read_utc(row.heartbeat)).total_seconds()
                if idle < stale_after_s:
                    continue
                reason = (f"no test recorded for {idle / 3600:.1f} h (writer pid {row.pid} on "
                          f"{row.host}; stale after {stale_after_s / 3600:.1f} h)")
            with self._write("marking an abandoned run incomplete") as conn:
                if self._end_running(conn, row.id, reason):
                    swept.append(row.run_id)
        return swept

    def _end_running(self, conn: Connection, run_pk: int, reason: str) -> bool:
        result = conn.execute(update(t.runs).where(t.runs.c.id == run_pk, t.runs.c.status == "running")
                              .values(status="incomplete", reason=scrub(reason), finished=utcnow()))
        return result.rowcount == 1

    # -- reading ----------------------------------------------------------------------------
    def resolve(self, run_id: str) -> str:
        """The full id of the run ``run_id`` names (a full id or an unambiguous prefix)."""
        with self._read("looking up a run") as conn:
            return self._lookup(conn, run_id)[1]

    def _pk(self, conn: Connection, run_id: str) -> int:
        return self._lookup(conn, run_id)[0]

    def _lookup(self, conn: Connection, run_id: str) -> tuple[int, str]:
        prefix = str(run_id).strip().lower()
        if not re.fullmatch(r"[0-9a-f-]+", prefix):
            raise UnknownRun(f"{run_id!r} is not a run id (hex digits and dashes) in {self.url}")
        if len(prefix) < MIN_PREFIX:
            raise UnknownRun(f"run id {run_id!r} is too short: give at least {MIN_PREFIX} characters")
        rows = conn.execute(select(t.runs.c.id, t.runs.c.run_id)
                            .where(t.runs.c.run_id.startswith(prefix, autoescape=True))
                            .order_by(t.runs.c.started.desc()).limit(6)).all()
        exact = [r for r in rows if r.run_id == prefix]
        if exact:
            return exact[0].id, exact[0].run_id
        if not rows:
            raise UnknownRun(f"no stored run {run_id!r} in {self.url}")
        if len(rows) > 1:
            listed = ", ".join(r.run_id for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise AmbiguousRun(f"run id {run_id!r} is ambiguous in {self.url}: {listed}")
        return rows[0].id, rows[0].run_id

    def runs_for_unit(self, serial: str) -> list[RunSummary]:
        """The unit's runs, newest first (``serial`` is matched as stored: masked like every text)."""
        with self._read("reading a unit's history") as conn:
            rows = conn.execute(select(t.runs).where(t.runs.c.unit_serial == scrub(str(serial)))
                                .order_by(t.runs.c.started.desc(), t.runs.c.id.desc())).all()
            causes = self._causes(conn, [r.id for r in rows])
        return [_summary(r, causes.get(r.id, [])) for r in rows]

    def recent_runs(self, limit: int = 50, bench: str | None = None) -> list[RunSummary]:
        """The newest ``limit`` runs of every bench (or of the bench or place named ``bench``),
        newest first."""
        query = select(t.runs).order_by(t.runs.c.started.desc(), t.runs.c.id.desc()).limit(limit)
        if bench is not None:
            query = query.where(t.runs.c.bench_name == bench)
        with self._read("listing the stored runs") as conn:
            rows = conn.execute(query).all()
            causes = self._causes(conn, [r.id for r in rows])
        return [_summary(r, causes.get(r.id, [])) for r in rows]

    def run(self, run_id: str) -> StoredRun:
        """Everything stored about a run (full id or unambiguous prefix); ``UnknownRun`` if none."""
        with self._read("reading a run") as conn:
            pk, _ = self._lookup(conn, run_id)
            row = conn.execute(select(t.runs).where(t.runs.c.id == pk)).one()
            summary = _summary(row, self._causes(conn, [pk]).get(pk, []))
            tests = [StoredTest(r.nodeid, r.outcome, r.duration_s, r.message, bool(r.bench_error),
                                read_utc(r.finished_at))
                     for r in conn.execute(select(t.tests).where(t.tests.c.run_pk == pk).order_by(t.tests.c.id))]
            measurements = self._measurements(conn, pk)
            evidence = [Evidence(r.cause, r.ratio, r.test, r.note, r.measurement,
                                 decode_value(r.value_kind, r.value_text), r.limit_spec)
                        for r in conn.execute(select(t.evidence).where(t.evidence.c.run_pk == pk)
                                              .order_by(t.evidence.c.id))]
            code01 = [Code01Observation(r.origin, r.stan, r.host_code, r.reason, r.test)
                      for r in conn.execute(select(t.code01).where(t.code01.c.run_pk == pk)
                                            .order_by(t.code01.c.id))]
            plots = [(r.test, r.title, bytes(r.png)) for r in conn.execute(
                select(t.plots.c.test, t.plots.c.title, t.plots.c.png).where(t.plots.c.run_pk == pk)
                .order_by(t.plots.c.id))]
        return StoredRun(**vars(summary), bench=json.loads(row.bench_json or "{}"),
                         doc=json.loads(row.verdict_json) if row.verdict_json else None,
                         version=row.posbench_version, host=row.host, pid=row.pid, tests=tests,
                         measurements=measurements, evidence=evidence, code01=code01, plots=plots)

    def changed_measurements(self, run_a: str, run_b: str, rel_tol: float = 0.0) -> list[MeasurementChange]:
        """Measurements whose value or pass/fail differs from run ``run_a`` (before) to ``run_b``.

        A name measured several times in a run is compared occurrence by occurrence. Numbers
        within ``rel_tol`` (relative) count as unchanged unless pass/fail changed. Measurements
        in one run only are listed with None on the other side. Order: as measured in ``run_b``,
        then those only in ``run_a``.
        """
        with self._read("comparing two runs") as conn:
            before = _keyed(self._measurements(conn, self._pk(conn, run_a)))
            after = _keyed(self._measurements(conn, self._pk(conn, run_b)))
        changes = []
        for key, m in after.items():
            old = before.get(key)
            if old is None:
                changes.append(MeasurementChange(key[0], None, m.value, None, m.passed))
            elif old.passed != m.passed or not _same(old.value, m.value, rel_tol):
                changes.append(MeasurementChange(key[0], old.value, m.value, old.passed, m.passed))
        changes += [MeasurementChange(key[0], m.value, None, m.passed, None)
                    for key, m in before.items() if key not in after]
        return changes

    def previous_causes(self, serial: str, exclude_run: str | None = None) -> dict[str, list[tuple[str, datetime]]]:
        """Causes reported on the unit in earlier runs: cause id -> [(run id, started)], newest first."""
        with self._read("reading a unit's earlier causes") as conn:
            query = (select(t.run_causes.c.cause_id, t.runs.c.run_id, t.runs.c.started)
                     .join(t.runs, t.runs.c.id == t.run_causes.c.run_pk)
                     .where(t.runs.c.unit_serial == scrub(str(serial)))
                     .order_by(t.runs.c.started.desc(), t.runs.c.id.desc(), t.run_causes.c.rank))
            if exclude_run is not None:
                query = query.where(t.runs.c.id != self._pk(conn, exclude_run))
            rows = conn.execute(query).all()
        found: dict[str, list[tuple[str, datetime]]] = {}
        for r in rows:
            found.setdefault(r.cause_id, []).append((r.run_id, read_utc(r.started)))
        return found

    def _causes(self, conn: Connection, pks: list[int]) -> dict[int, list[StoredCause]]:
        found: dict[int, list[StoredCause]] = {}
        for chunk in (pks[i:i + 500] for i in range(0, len(pks), 500)):
            for r in conn.execute(select(t.run_causes).where(t.run_causes.c.run_pk.in_(chunk))
                                  .order_by(t.run_causes.c.run_pk, t.run_causes.c.rank)):
                found.setdefault(r.run_pk, []).append(StoredCause(r.cause_id, r.cause_group, r.confidence))
        return found

    def _measurements(self, conn: Connection, pk: int) -> list[Measurement]:
        return [Measurement(r.name, decode_value(r.value_kind, r.value_text), r.unit, r.limit_spec, bool(r.passed), r.test)
                for r in conn.execute(select(t.measurements).where(t.measurements.c.run_pk == pk)
                                      .order_by(t.measurements.c.id))]


def _keyed(items: list[Measurement]) -> dict[tuple[str, int], Measurement]:
    seen: dict[str, int] = {}
    keyed = {}
    for m in items:
        n = seen[m.name] = seen.get(m.name, 0) + 1
        keyed[(m.name, n)] = m
    return keyed


def _same(a: Any, b: Any, rel_tol: float) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return a == b or math.isclose(a, b, rel_tol=rel_tol) or (a != a and b != b)
    return a == b


def _summary(row: Any, causes: list[StoredCause]) -> RunSummary:
    return RunSummary(
        run_id=row.run_id, bench_name=row.bench_name,
        unit={"serial": row.unit_serial, "model": row.unit_model, "firmware": row.unit_firmware},
        started=read_utc(row.started), finished=read_utc(row.finished) if row.finished else None,
        status=row.status, reason=row.reason, verdict=row.verdict, code01_origin=row.code01_origin,
        exit_status=row.exit_status, causes=causes)


def _where_written(host: str, writer_id: str | None, me: Writer) -> str:
    """``here`` (this machine, boot and pid namespace: its pid can be checked), ``before reboot``
    (this machine, an earlier boot) or ``elsewhere`` (another host or container, or unknown)."""
    if host != me.host:
        return "elsewhere"
    if writer_id is None:
        return "here"  # written before schema v2 (or without procfs): the host name is all we know
    if me.identity is None:
        return "elsewhere"
    machine, boot, pidns = (writer_id.split("/", 2) + ["", ""])[:3]
    my_machine, my_boot, my_pidns = me.identity.split("/", 2)
    if machine == "-" or machine != my_machine:
        return "elsewhere"
    if boot != my_boot:
        return "before reboot"
    return "here" if pidns == my_pidns else "elsewhere"
