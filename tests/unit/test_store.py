"""The result store on SQLite: bench/store (store, migrations, history, report)."""
from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from sqlalchemy import inspect, text

from posbench.diagnosis import ranking as diagnosis
from posbench.core.errors import BenchError
from posbench.spec.evidence import Measurement, Recorder, RunRecord
from posbench.spec.evidence import TestOutcome as Outcome  # not collected as a test class
from posbench.core.limits import Limit
from posbench.core.masking import scrub
from posbench.store import AmbiguousRun, Store, StoreUnavailable, UnknownRun, Writer, migrations
from posbench.diagnosis.verdict import Verdict
from posbench.render.history import annotate_repeats, render_history, repeat_notes
from posbench.render.stored_run import regenerate, stored_verdict

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
NODES = [f"tests/hil/test_store_demo.py::test_{name}" for name in ("identity", "swipe", "echo", "firmware")]
PAN = "4111111111111111"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # binary, with NUL and every byte value


def play(store: Store, serial: str = "SN100", faulty: bool = False, tests: int = 4,
         on_recorded: Callable[[str, int], None] | None = None, message: str = "",
         latency_ms: float = 40.0) -> tuple[str, dict]:
    """Do what the plugin does for one triage: begin, record each test as it ends, finish."""
    bench = {"name": "virtual", "virtual": True, "seed": 7, "faults": ["msr_head=1.0"] if faulty else []}
    run = RunRecord()
    started = diagnosis.now()
    run_id = store.begin_run({}, started)
    run.bench = bench
    store.set_bench(run_id, bench)
    for i, node in enumerate(NODES[:tests]):
        rec = Recorder(run, node)
        m0, e0, c0, p0 = len(run.measurements), len(run.evidence), len(run.code01), len(run.plots)
        if i == 0:
            rec.unit(serial=serial, model="PT100", firmware="2.1.0")
            store.set_unit(run_id, serial, "PT100", "2.1.0")
            rec.measure("supply_voltage", 12.02, "V", Limit(min=11.4, max=12.6), cause="power_supply")
        elif i == 1:
            rec.measure("swipe_success_rate", 0.47 if faulty else 1.0, "", Limit(min=0.95),
                        cause="msr_head", strength="decisive")
            rec.measure("swipe_lrc_errors", 8 if faulty else 0, "", Limit(max=0), cause="msr_head")
        elif i == 2:
            rec.measure("echo_latency", latency_ms, "ms", Limit(max=500), cause="network_unstable")
            rec.code01("issuer", "000123", "01", "host answered 01")
            rec.plot("echo latency over time", PNG)
        else:
            rec.measure("firmware_version", "2.1.0", "", Limit(equals="2.1.0"), cause="firmware_driver")
        failed = bool(rec.failed())
        outcome = Outcome(node, "failed" if failed else "passed", 0.1 * (i + 1),
                          message if (message and i == 1) else ("limits failed" if failed else ""))
        run.tests.append(outcome)
        store.record_test(run_id, outcome, run.measurements[m0:], run.evidence[e0:], run.code01[c0:],
                          run.plots[p0:])
        if on_recorded:
            on_recorded(run_id, i + 1)
    verdict = diagnosis.verdict(run, started, 1.25)
    store.finish_run(run_id, verdict, diagnosis.EXIT_STATUS[verdict.verdict])
    return run_id, verdict.wire()


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(None, tmp_path / "reports") as s:
        yield s


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=140, highlight=False), out


# -- round trip --------------------------------------------------------------------------------
def test_round_trip_of_a_run(store: Store):
    run_id, doc = play(store, faulty=True)
    assert doc["verdict"] == "fault" and doc["causes"][0]["id"] == "msr_head"
    stored = store.run(run_id[:8])
    assert stored.run_id == run_id and re.fullmatch(r"[0-9a-f-]{36}", run_id)
    assert stored.status == "complete" and stored.reason is None and stored.finished is not None
    assert stored.doc == doc and stored_verdict(stored).wire() == doc
    assert (stored.verdict, stored.code01_origin, stored.exit_status) == ("fault", "issuer", 1)
    assert stored.unit == {"serial": "SN100", "model": "PT100", "firmware": "2.1.0"}
    assert stored.bench == {"name": "virtual", "virtual": True, "seed": 7, "faults": ["msr_head=1.0"]}
    assert [c.id for c in stored.causes] == [c["id"] for c in doc["causes"]]
    assert stored.causes[0].confidence == doc["causes"][0]["confidence"]
    assert [m.to_json() for m in stored.measurements] == doc["measurements"]
    assert [x.nodeid for x in stored.tests] == NODES
    assert [(x.outcome, round(x.duration_s, 3)) for x in stored.tests] == \
           [(t["outcome"], t["duration_s"]) for t in doc["tests"]]
    assert all(x.finished_at.tzinfo is not None for x in stored.tests)
    assert [e.to_json() for e in stored.evidence] == [e for c in doc["causes"] for e in c["evidence"]]
    assert [(o.origin, o.stan, o.host_code) for o in stored.code01] == [("issuer", "000123", "01")]
    assert stored.started.tzinfo is not None and stored.host == socket.gethostname() and stored.pid == os.getpid()
    # the verdict rebuilt from the stored rows alone matches the one stored
    rebuilt = diagnosis.verdict_json(stored.record(), stored.started, doc["duration_s"])
    assert {k: rebuilt[k] for k in ("verdict", "causes", "measurements", "code01_origin", "unit")} == \
           {k: doc[k] for k in ("verdict", "causes", "measurements", "code01_origin", "unit")}


def test_recording_a_test_again_replaces_it(store: Store):
    run_id = store.begin_run({"name": "b"}, diagnosis.now())
    m = Measurement("x", 1.0, "V", ">= 2", False, "n::a")
    store.record_test(run_id, Outcome("n::a", "failed", 0.2), [m, m])
    store.record_test(run_id, Outcome("n::a", "error", 0.3, "teardown broke"), [m])
    stored = store.run(run_id)
    assert [(x.outcome, x.message) for x in stored.tests] == [("error", "teardown broke")]
    assert len(stored.measurements) == 1


def test_finish_with_a_reason_keeps_the_verdict_and_marks_incomplete(store: Store):
    run_id = store.begin_run({}, diagnosis.now())
    doc = {"schema": diagnosis.SCHEMA, "unit": {"serial": "SN9", "model": "", "firmware": ""},
           "verdict": "bench_error", "code01_origin": "none", "causes": [], "measurements": [], "tests": [],
           "started": "2024-01-01T00:00:00+00:00", "duration_s": 0.5,
           "bench_errors": ["the run was interrupted before it finished"]}
    store.finish_run(run_id, Verdict.model_validate(doc), 2, incomplete_reason="interrupted (SIGINT)")
    stored = store.run(run_id)
    assert (stored.status, stored.reason, stored.doc, stored.unit["serial"]) == \
           ("incomplete", "interrupted (SIGINT)", doc, "SN9")
    assert store.mark_incomplete(run_id, "again") is False  # only a running run changes


# -- SQLite settings ---------------------------------------------------------------------------
def test_sqlite_default_is_wal_with_full_sync_in_reports(tmp_path: Path):
    reports = tmp_path / "deep" / "reports"
    with Store.open(None, reports) as store:
        play(store)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db = reports / "posbench.sqlite"
    with sqlite3.connect(db) as raw:  # WAL is a property of the file: another client sees it too
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT count(*) FROM tests").fetchone()[0] == 4


def test_each_test_is_committed_when_it_is_recorded(store: Store):
    """Another connection sees a test as soon as record_test returns (one transaction per test)."""
    db = Path(store.engine.url.database)
    seen = []

    def look(run_id: str, n: int) -> None:
        with sqlite3.connect(db) as raw:
            seen.append(raw.execute("SELECT count(*) FROM tests t JOIN runs r ON r.id = t.run_pk "
                                    "WHERE r.run_id = ?", (run_id,)).fetchone()[0])
    play(store, on_recorded=look)
    assert seen == [1, 2, 3, 4]


# -- crashes -----------------------------------------------------------------------------------
CHILD = """
import sys, time
from pathlib import Path
from posbench.store import Store
from tests.unit.test_store import play
url = sys.argv[1] or None
store = Store.open(url, Path(sys.argv[2]))
def hang(run_id, n):
    if n == 2:
        print(run_id, flush=True)
        time.sleep(60)  # "test 3 is running" until the parent kills us
play(store, serial=sys.argv[3], on_recorded=hang)
print("not killed", flush=True)
"""


def kill_after_two_tests(url: str | None, reports: Path, serial: str) -> tuple[str, int]:
    """Run a writer in a child process, SIGKILL it while its third test runs; (run id, pid)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, url or "", str(reports), serial], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the writer did not record two tests within 30 s"
        run_id = proc.stdout.readline().strip()
        assert re.fullmatch(r"[0-9a-f-]{36}", run_id), (run_id, proc.stderr.read() if proc.poll() is not None else "")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        return run_id, proc.pid
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def check_killed_run(store: Store, run_id: str, pid: int, serial: str) -> None:
    stored = store.run(run_id)
    assert stored.status == "incomplete"
    assert f"pid {pid}" in stored.reason and "died" in stored.reason
    assert [x.nodeid for x in stored.tests] == NODES[:2]
    assert [m.name for m in stored.measurements] == ["supply_voltage", "swipe_success_rate", "swipe_lrc_errors"]
    doc = stored_verdict(stored).wire()  # rebuilt from the two stored tests: the unit is not judged on half a run
    assert doc["verdict"] == "bench_error" and "did not finish" in doc["bench_errors"][0]
    assert doc["unit"]["serial"] == serial and len(doc["tests"]) == 2
    # the next triage works, and the history shows the killed run as incomplete
    next_id, next_doc = play(store, serial=serial)
    assert store.run(next_id).status == "complete" and next_doc["verdict"] == "pass"
    runs = store.runs_for_unit(serial)
    assert [(r.run_id, r.status) for r in runs] == [(next_id, "complete"), (run_id, "incomplete")]


def test_sigkilled_writer_leaves_finished_tests_and_an_incomplete_run(tmp_path: Path):
    reports = tmp_path / "reports"
    run_id, pid = kill_after_two_tests(None, reports, "SN-KILL")
    with Store.open(None, reports, sweep=False) as store:
        assert store.run(run_id).status == "running"  # nothing marked it yet
    with Store.open(None, reports) as store:  # opening sweeps
        check_killed_run(store, run_id, pid, "SN-KILL")
        console, out = plain_console()
        render_history(store, "SN-KILL", console)
        assert "INCOMPLETE" in out.getvalue() and f"pid {pid}" in out.getvalue()


WRITER = """
import sys, time
from pathlib import Path
from posbench.store import Store
from tests.unit.test_store import play
go = Path(sys.argv[3])
Path(sys.argv[3] + "." + sys.argv[4]).touch()  # imports done: ready
deadline = time.monotonic() + 30
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
store = Store.open(sys.argv[1] or None, Path(sys.argv[2]))  # both open a fresh store at once: both migrate
run_id, doc = play(store, serial=sys.argv[4], on_recorded=lambda run_id, n: time.sleep(0.1))
store.close()
print(run_id, doc["verdict"], flush=True)
"""
SERIALS = ("SN-BENCH-A", "SN-BENCH-B")


def two_writers_at_once(url: str | None, reports: Path) -> None:
    """Two processes write a run each into one store at the same time; both must land complete."""
    go = reports.parent / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url or "", str(reports), str(go), serial],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for serial in SERIALS]
    try:
        deadline = time.monotonic() + 30
        while not all(Path(f"{go}.{serial}").exists() for serial in SERIALS):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "writers did not start"
            time.sleep(0.01)
        go.touch()
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate(timeout=10)
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    run_ids = [out.split()[0] for out, _ in results]
    with Store.open(url, reports) as store:
        for run_id, serial in zip(run_ids, SERIALS):
            stored = store.run(run_id)
            assert (stored.status, stored.unit["serial"], len(stored.tests)) == ("complete", serial, 4)
            assert stored.doc["verdict"] == "pass"
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars().all() == [1, 2, 3]
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 2
            # the two runs overlapped in time: each started before the other finished
            spans = conn.execute(text("SELECT started, finished FROM runs")).all()
            assert spans[0].started < spans[1].finished and spans[1].started < spans[0].finished


def test_two_writers_on_one_sqlite_file_both_land_complete(tmp_path: Path):
    two_writers_at_once(None, tmp_path / "reports")


def test_sweep_spares_live_writers_and_fresh_runs_of_other_hosts(store: Store):
    me = store.writer
    assert me.identity and me.identity.count("/") == 2
    machine, boot, pidns = me.identity.split("/")
    mine = store.begin_run({}, diagnosis.now())
    other = store.begin_run({}, diagnosis.now(), writer=Writer("other-bench", 4242, 1, "0.1.0", "m/b/p"))
    # same host name, another machine (two benches both called "raspberrypi"), or another pid
    # namespace (a container sharing the host's name): their pids mean nothing here
    twin = store.begin_run({}, diagnosis.now(), writer=Writer(me.host, 2**22 + 7, None, "0.1.0", f"x{machine}/{boot}/{pidns}"))
    container = store.begin_run({}, diagnosis.now(), writer=Writer(me.host, 2**22 + 7, None, "0.1.0",
                                                                  f"{machine}/{boot}/pid:[1]"))
    rebooted = store.begin_run({}, diagnosis.now(), writer=Writer(me.host, os.getpid(), me.pid_start, "0.1.0",
                                                                 f"{machine}/another-boot/{pidns}"))
    reused = store.begin_run({}, diagnosis.now(), writer=Writer(me.host, me.pid, (me.pid_start or 0) + 1, "0.1.0",
                                                               me.identity))
    assert sorted(store.sweep_incomplete()) == sorted([rebooted, reused])  # reused: same pid, another start
    assert "died" in store.run(reused).reason and "restarted" in store.run(rebooted).reason
    assert all(store.run(r).status == "running" for r in (twin, container))
    assert store.run(mine).status == store.run(other).status == "running"
    later = diagnosis.now() + timedelta(hours=13)
    assert sorted(store.sweep_incomplete(stale_after_s=12 * 3600, now=later)) == sorted([other, twin, container])
    stale = store.run(other)
    assert stale.status == "incomplete" and "other-bench" in stale.reason and "stale after 12.0 h" in stale.reason
    assert store.run(mine).status == "running"
    assert store.mark_incomplete(mine[:6], "stopped by test") is True
    assert store.run(mine).reason == "stopped by test"


# -- migrations --------------------------------------------------------------------------------
V1_ROWS = [
    ("INSERT INTO runs (run_id, bench_name, bench_json, faults_json, unit_serial, unit_model, unit_firmware,"
     " started, heartbeat, status, posbench_version, host, pid) VALUES ('0badc0de-0000-4000-8000-000000000001',"
     " 'v1 bench', '{\"name\": \"v1 bench\"}', '[]', 'SN-OLD', 'PT100', '1.0', :t, :t, 'complete', '0.0.9',"
     " 'old-host', 1)"),
    ("INSERT INTO tests (run_pk, nodeid, outcome, duration_s, message, bench_error, finished_at)"
     " SELECT id, 'n::a', 'passed', 0.5, '', false, :t FROM runs"),
    ("INSERT INTO measurements (run_pk, test_pk, test, name, value_kind, value_num, value_text, unit,"
     " limit_spec, passed) SELECT run_pk, id, 'n::a', 'supply_voltage', 'float', 12.0, '12.0', 'V', '>= 11',"
     " true FROM tests"),
]


def write_v1_database(url: str | None, reports: Path) -> None:
    """A database as posbench with schema version 1 left it: tables of v1 and rows in them."""
    with Store.open(url, reports, sweep=False, migrate_to=1) as old, old.engine.begin() as conn:
        assert migrations.current_version(conn) == 1
        assert "reason" not in {c["name"] for c in inspect(conn).get_columns("runs")}
        for sql in V1_ROWS:
            conn.execute(text(sql), {"t": datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)})


def check_migrated(store: Store) -> None:
    with store.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST == 3
        assert conn.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars().all() == [1, 2, 3]
        assert inspect(conn).has_table("plots")
        assert "ix_runs_unit_started" in {i["name"] for i in inspect(conn).get_indexes("runs")}
    kept = store.run("0badc0de")
    assert (kept.bench_name, kept.unit["serial"], kept.status, kept.reason) == ("v1 bench", "SN-OLD", "complete", None)
    assert [(x.nodeid, x.outcome) for x in kept.tests] == [("n::a", "passed")]
    assert kept.measurements[0].value == 12.0 and kept.started == datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert kept.plots == []  # a run from before plots were stored
    new_id, _ = play(store, serial="SN-OLD")  # the new columns are in use
    assert [r.run_id for r in store.runs_for_unit("SN-OLD")] == [new_id, kept.run_id]
    assert store.run(new_id).plots == [(NODES[2], "echo latency over time", PNG)]


def test_migration_from_version_1_keeps_rows(tmp_path: Path):
    write_v1_database(None, tmp_path / "reports")
    with Store.open(None, tmp_path / "reports") as store:
        check_migrated(store)


def test_sweep_of_v1_runs_checks_the_pid_by_host_name(store: Store):
    me = store.writer
    legacy = store.begin_run({}, diagnosis.now(), writer=Writer(me.host, 2**22 + 7, None, "0.0.9", None))
    assert store.sweep_incomplete() == [legacy]


def test_a_failing_migration_step_rolls_back_entirely(store: Store, monkeypatch: pytest.MonkeyPatch):
    def broken(conn):
        conn.execute(text("CREATE TABLE half_done (x INTEGER)"))
        raise RuntimeError("step 4 failed halfway")
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, migrations.Migration(4, "broken", broken)])
    monkeypatch.setattr(migrations, "LATEST", 4)
    with pytest.raises(RuntimeError, match="halfway"):
        migrations.migrate(store.engine, 4)
    with store.engine.connect() as conn:
        assert migrations.current_version(conn) == 3
        assert not inspect(conn).has_table("half_done")  # DDL rolled back with the version row


def test_a_store_from_a_newer_posbench_is_refused(tmp_path: Path):
    with Store.open(None, tmp_path) as s, s.engine.begin() as conn:
        conn.execute(text("INSERT INTO schema_version VALUES (99, 'future', '2030-01-01 00:00:00')"))
    with pytest.raises(StoreUnavailable, match="version 99.*upgrade posbench"):
        Store.open(None, tmp_path)


# -- run ids and errors ------------------------------------------------------------------------
def test_run_id_prefixes_like_git(store: Store):
    a, _ = play(store, tests=1)
    b, _ = play(store, tests=1)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE runs SET run_id = :new WHERE run_id = :old"),
                     [{"new": "abcd1111-0000-4000-8000-000000000001", "old": a},
                      {"new": "abcd2222-0000-4000-8000-000000000002", "old": b}])
    assert store.resolve("ABCD1") == "abcd1111-0000-4000-8000-000000000001"
    assert store.run("abcd2").run_id.startswith("abcd2222")
    with pytest.raises(AmbiguousRun, match="abcd1111.*abcd2222|abcd2222.*abcd1111"):
        store.run("abcd")
    with pytest.raises(UnknownRun, match="no stored run 'ffff'"):
        store.run("ffff")
    with pytest.raises(UnknownRun, match="too short"):
        store.run("abc")
    with pytest.raises(UnknownRun, match="not a run id"):
        store.run("abcd%")
    with pytest.raises(UnknownRun):
        store.record_test("ffff0000", Outcome("n::x", "passed", 0.1))


@pytest.mark.parametrize("url, shown", [
    ("postgresql://bob:s3cret-pw@127.0.0.1:1/posbench", "postgresql+psycopg://bob:***@127.0.0.1:1/posbench"),
    ("postgresql+psycopg://bob:s3cret-pw@127.0.0.1:1/posbench?connect_timeout=2", "bob:***@127.0.0.1:1"),
    ("mysql://bob:s3cret-pw@127.0.0.1/posbench", "mysql://bob:***@127.0.0.1/posbench"),
    ("bob:s3cret-pw@nowhere", "bob:***@"),
    ("postgresql+psycopg2://bob:s3cret-pw@127.0.0.1:1/x", "bob:***@"),
])
def test_bad_store_urls_raise_store_unavailable_without_the_password(url: str, shown: str, tmp_path: Path):
    with pytest.raises(StoreUnavailable) as info:
        Store.open(url, tmp_path)
    assert isinstance(info.value, BenchError)
    message = str(info.value)
    assert shown in message and "s3cret" not in message and message.startswith("result store ")


def test_an_unwritable_reports_dir_is_store_unavailable(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable, match="creating its directory"):
        Store.open(None, blocker / "reports")


# -- masking -----------------------------------------------------------------------------------
def test_card_numbers_are_stored_masked(tmp_path: Path):
    reports = tmp_path / "reports"
    with Store.open(None, reports) as store:
        run_id, _ = play(store, serial="SN-MASK", faulty=True, message=f"card {PAN} declined")
        store.record_test(run_id, Outcome(f"n::t[{PAN}]", "failed", 0.1, f"track2 ;{PAN}=2512101?"),
                          [Measurement("pan_seen", PAN, "", "== x", False, "n::t"),
                           Measurement("pan_int", int(PAN), "", "", True, "n::t")])
        stored = store.run(run_id)
        assert stored.tests[1].message == "card 411111******1111 declined"
        assert stored.tests[-1].message == "track2 ;411111******1111=2512101?"
        assert [m.value for m in stored.measurements[-2:]] == ["411111******1111", "411111******1111"]
        doc = dict(store.run(run_id).doc)
        doc["tests"][1]["message"] = f"card {PAN}"
        store.finish_run(run_id, Verdict.model_validate(doc), 1)
        assert store.run(run_id).doc["tests"][1]["message"] == "card 411111******1111"
    raw = b"".join(p.read_bytes() for p in reports.glob("posbench.sqlite*"))
    assert PAN.encode() not in raw and b"411111******1111" in raw


# -- fuzz: values come back as they went in (masked where they look like a PAN) ---------------
VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
                   st.from_regex(r"[0-9 ]{10,30}", fullmatch=True))


def _expected(value):
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if scrub(str(value)) == str(value) else scrub(str(value))
    return scrub(value)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(VALUES, min_size=1, max_size=5),
       note=st.one_of(st.text(max_size=60), st.from_regex(r"[a-z ]{0,5}[0-9]{12,20}[a-z ]{0,5}", fullmatch=True)))
def test_values_round_trip(fuzz_dir: Path, values, note):
    with Store.open(None, fuzz_dir, sweep=False) as store:
        run_id = store.begin_run({}, diagnosis.now())
        ms = [Measurement(f"m{i}", v, "u", "lim", bool(i % 2), "n::f") for i, v in enumerate(values)]
        store.record_test(run_id, Outcome("n::f", "passed", 0.0, note), ms)
        stored = store.run(run_id)
    assert stored.tests[0].message == scrub(note)
    for value, m in zip(values, stored.measurements):
        want = _expected(value)
        if isinstance(want, float) and math.isnan(want):
            assert isinstance(m.value, float) and math.isnan(m.value)
        else:
            assert m.value == want and type(m.value) is type(want)


# -- queries, history, report ------------------------------------------------------------------
def test_changed_measurements_and_previous_causes(store: Store):
    first, _ = play(store, serial="SN7", faulty=True, latency_ms=40.0)
    second, _ = play(store, serial="SN7", faulty=True, latency_ms=41.0)
    third, _ = play(store, serial="SN7", faulty=False, latency_ms=80.0, tests=3)
    changes = store.changed_measurements(second, third)
    assert changes == [("swipe_success_rate", 0.47, 1.0, False, True), ("swipe_lrc_errors", 8, 0, False, True),
                       ("echo_latency", 41.0, 80.0, True, True), ("firmware_version", "2.1.0", None, True, None)]
    assert [c.name for c in store.changed_measurements(first, second)] == ["echo_latency"]
    assert store.changed_measurements(first, second, rel_tol=0.05) == []
    previous = store.previous_causes("SN7", exclude_run=second)
    assert [run for run, _ in previous["msr_head"]] == [first]
    assert [run for run, _ in store.previous_causes("SN7")["msr_head"]] == [second, first]
    notes = repeat_notes(previous, ["msr_head", "firewall"])
    assert len(notes) == 1 and notes[0].startswith("msr_head was found on this unit before: run " + first[:8])
    assert store.previous_causes("nobody") == {}
    verdict = Verdict.model_validate(store.run(second).doc)
    lines = annotate_repeats(verdict, previous)
    assert lines == notes[:1]
    doc = verdict.wire()
    assert doc["causes"][0]["seen_before"] == [{"run": first, "started": previous["msr_head"][0][1].isoformat(
        timespec="seconds")}]
    assert all("seen_before" not in c for c in doc["causes"][1:])


def test_history_is_newest_first_with_the_before_after_diff(store: Store):
    faulty, _ = play(store, serial="SN-H", faulty=True)
    broken = store.begin_run({}, diagnosis.now())
    store.set_unit(broken, "SN-H")
    store.mark_incomplete(broken, "power lost")
    repaired, _ = play(store, serial="SN-H", faulty=False)
    play(store, serial="SN-OTHER")
    console, out = plain_console()
    runs = render_history(store, "SN-H", console)
    assert [r.run_id for r in runs] == [repaired, broken, faulty]
    text_out = out.getvalue()
    assert "\x1b[" not in text_out and "─" not in text_out  # plain when not a terminal
    lines = text_out.splitlines()
    row = {rid: next(i for i, line in enumerate(lines) if rid[:8] in line) for rid in (repaired, broken, faulty)}
    assert row[repaired] < row[broken] < row[faulty]
    assert "INCOMPLETE" in lines[row[broken]] and "power lost" in text_out
    assert "msr_head 100%" in lines[row[faulty]] or "msr_head 99%" in lines[row[faulty]]
    assert f"before / after: {faulty[:8]}" in text_out and f"-> {repaired[:8]}" in text_out
    diff = next(line for line in lines if "swipe_success_rate" in line)
    assert "0.47" in diff and "FAIL -> pass" in diff
    assert not any("supply_voltage" in line for line in lines)  # unchanged: not listed
    tty = io.StringIO()
    render_history(store, "SN-H", Console(file=tty, force_terminal=True, width=140))
    assert "\x1b[" in tty.getvalue()
    console, out = plain_console()
    assert render_history(store, "SN-NONE", console) == [] and out.getvalue() == ""  # the CLI says it, once


def test_history_with_one_complete_run_says_there_is_nothing_to_compare(store: Store):
    play(store, serial="SN-1")
    console, out = plain_console()
    render_history(store, "SN-1", console)
    assert "nothing to compare" in out.getvalue()
    play(store, serial="SN-1")
    console, out = plain_console()
    render_history(store, "SN-1", console)
    assert "no measurement changed" in out.getvalue() and "before / after" in out.getvalue()


class _Tags(HTMLParser):
    VOID = {"meta", "br", "link", "img", "hr", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_report_regenerates_the_stored_verdict_and_a_standalone_page(store: Store, tmp_path: Path):
    run_id, doc = play(store, serial="SN-<b>R&D</b>", faulty=True, message="<script>alert(1)</script>")
    html_path, json_path, _ = regenerate(store, run_id[:10], tmp_path / "out")
    assert json.loads(json_path.read_text()) == doc == store.run(run_id).doc
    assert json_path.read_text() == json.dumps(doc, indent=2) + "\n"
    page = html_path.read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "SN-&lt;b&gt;R&amp;D&lt;/b&gt;" in page
    assert "clean or replace the MSR read head" in page and "swipe_success_rate" in page
    assert all(node in page for node in NODES) and "FAULT: Magstripe read head" in page
    assert "<link" not in page and "<style>" in page  # self-contained: the only sources are inline images
    assert re.findall(r"src=\"([^\"]*)\"", page) == ["data:image/png;base64," + base64.b64encode(PNG).decode()]
    parser = _Tags()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == [] and "table" in parser.tags


def test_report_of_a_run_that_never_finished(store: Store, tmp_path: Path):
    run_id, _ = play(store, tests=1)
    other = store.begin_run({"name": "b"}, diagnosis.now())
    store.record_test(other, Outcome(NODES[0], "passed", 0.3),
                      [Measurement("supply_voltage", 12.0, "V", ">= 11", True, NODES[0])])
    store.mark_incomplete(other, "bench host lost power")
    html_path, json_path, _ = regenerate(store, other, tmp_path)
    doc = json.loads(json_path.read_text())
    assert doc["verdict"] == "bench_error" and "bench host lost power" in doc["bench_errors"][0]
    assert doc["measurements"][0]["value"] == 12.0
    assert "This run is incomplete" in html_path.read_text()
    with pytest.raises(UnknownRun):
        regenerate(store, "0000000", tmp_path)


def _shape(engine) -> dict:
    """Tables, columns (type, nullable, default), primary and foreign keys, indexes and unique
    constraints of a database, as SQLAlchemy reflects them."""
    insp = inspect(engine)
    shape = {}
    for table in sorted(insp.get_table_names()):
        shape[table] = {
            "columns": {c["name"]: (str(c["type"]), c["nullable"]) for c in insp.get_columns(table)},
            "pk": tuple(insp.get_pk_constraint(table)["constrained_columns"]),
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]),
                           (f.get("options") or {}).get("ondelete")) for f in insp.get_foreign_keys(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table)),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
        }
    return shape


def test_a_database_migrated_from_version_1_equals_the_declared_schema(tmp_path: Path):
    """The migrations and ``schema.metadata`` describe one schema: a v1 database brought up to
    date has exactly the tables, columns, keys and indexes the store's queries are written against."""
    from sqlalchemy import create_engine
    from posbench.store import schema
    write_v1_database(None, tmp_path / "reports")
    with Store.open(None, tmp_path / "reports") as store:
        migrated = _shape(store.engine)
    declared_engine = create_engine(f"sqlite:///{tmp_path / 'declared.sqlite'}")
    try:
        schema.metadata.create_all(declared_engine)
        declared = _shape(declared_engine)
    finally:
        declared_engine.dispose()
    assert migrated.keys() == declared.keys()
    for table in declared:
        assert migrated[table] == declared[table], table


@pytest.mark.parametrize("garbage", [b"\x8f\x13 not a database" * 500, b"SQLite format 3\x00" + b"\xff" * 8000])
def test_a_damaged_store_file_names_the_remedy_and_is_left_as_it_is(tmp_path, garbage):
    """A store file of garbage bytes blocks every triage: the error says how to move it aside
    (to a name not yet taken) and start a new store; posbench itself moves and rewrites nothing."""
    store_file = tmp_path / "posbench.sqlite"
    store_file.write_bytes(garbage)
    (tmp_path / "posbench.sqlite.corrupt").write_bytes(b"an earlier damaged store")
    with pytest.raises(StoreUnavailable) as caught:
        Store.open(None, tmp_path)
    message = str(caught.value)
    assert f"mv {store_file} {tmp_path / 'posbench.sqlite.corrupt.1'}" in message, message
    assert "start a new store" in message and ".recover" in message
    assert store_file.read_bytes() == garbage, "the damaged file was changed"
    assert (tmp_path / "posbench.sqlite.corrupt").read_bytes() == b"an earlier damaged store"
    os.replace(store_file, tmp_path / "posbench.sqlite.corrupt.1")  # the remedy works
    Store.open(None, tmp_path).close()


def test_a_store_that_cannot_be_opened_for_another_reason_names_no_move(tmp_path):
    (tmp_path / "posbench.sqlite").mkdir()  # not a damaged file: nothing to move aside
    with pytest.raises(StoreUnavailable) as caught:
        Store.open(None, tmp_path)
    assert "mv " not in str(caught.value) and "damaged" not in str(caught.value)
