"""The result store on a real PostgreSQL 15 server the tests start themselves (tests/pg_server.py)."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from posbench.diagnosis import ranking as diagnosis
from posbench.core.errors import BenchError
from posbench.spec.evidence import Measurement
from posbench.spec.evidence import TestOutcome as Outcome  # not collected as a test class
from posbench.store import Store, StoreUnavailable
from posbench.render.stored_run import regenerate
from tests import pg_server
from tests.pg_server import create_database, postgres_server
from tests.unit.test_store import (
    NODES,
    check_killed_run,
    check_migrated,
    kill_after_two_tests,
    play,
    two_writers_at_once,
    write_v1_database,
)

pytestmark = pytest.mark.timeout(90)

_names = itertools.count()


@pytest.fixture(scope="module")
def pg_socket():
    """One private server for this module: a unix socket only, stopped and removed afterwards."""
    with postgres_server() as socket_dir:
        yield socket_dir


@pytest.fixture
def pg_url(pg_socket: str) -> str:
    """A fresh, empty database per test."""
    return create_database(pg_socket, f"posbench_{next(_names)}")


def test_the_server_listens_on_its_private_socket_only(pg_socket: str):
    with psycopg.connect(host=pg_socket, user="postgres", dbname="postgres", connect_timeout=10) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == ""
        assert conn.execute("SELECT current_setting('server_version_num')::int").fetchone()[0] >= 150000
    assert list(Path(pg_socket).glob(".s.PGSQL.*"))


def test_round_trip_on_postgresql(pg_url: str, tmp_path: Path):
    with Store.open(pg_url, tmp_path) as store:
        assert store.engine.dialect.name == "postgresql" and store.engine.driver == "psycopg"
        first, _ = play(store, serial="SN-PG", faulty=True)
        run_id, doc = play(store, serial="SN-PG")
        stored = store.run(run_id[:8])
        assert stored.status == "complete" and stored.doc == doc
        assert [m.to_json() for m in stored.measurements] == doc["measurements"]
        assert [x.nodeid for x in stored.tests] == NODES
        assert [r.run_id for r in store.runs_for_unit("SN-PG")] == [run_id, first]
        assert [c.name for c in store.changed_measurements(first, run_id)] == ["swipe_success_rate", "swipe_lrc_errors"]
        assert [r for r, _ in store.previous_causes("SN-PG", exclude_run=run_id)["msr_head"]] == [first]
        _, json_path, _ = regenerate(store, run_id, tmp_path)
        assert store.run(run_id).plots and store.run(run_id).plots[0][2].startswith(b"\x89PNG")
        assert json.loads(json_path.read_text()) == doc


def test_masking_on_postgresql(pg_url: str, tmp_path: Path, pg_socket: str):
    pan = "5500000000000004"
    with Store.open(pg_url, tmp_path) as store:
        run_id = store.begin_run({}, diagnosis.now())
        store.record_test(run_id, Outcome("n::a", "failed", 0.1, f"pan {pan} rejected"),
                          [Measurement("pan", pan, "", "", False, "n::a")])
    with psycopg.connect(host=pg_socket, user="postgres", dbname=make_url(pg_url).database,
                         connect_timeout=10) as conn:
        message = conn.execute("SELECT message FROM tests").fetchone()[0]
        value = conn.execute("SELECT value_text FROM measurements").fetchone()[0]
    assert message == "pan 550000******0004 rejected" and value == "550000******0004"


def test_two_writers_at_once_both_land_complete(pg_url: str, tmp_path: Path):
    two_writers_at_once(pg_url, tmp_path / "reports")


def test_missing_server_binaries_skip_outside_ci_and_fail_in_ci(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(pg_server, "find_bindir", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
        pg_server.require_binaries()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        pg_server.require_binaries()


def test_sigkilled_writer_on_postgresql(pg_url: str, tmp_path: Path):
    run_id, pid = kill_after_two_tests(pg_url, tmp_path, "SN-PG-KILL")
    with Store.open(pg_url, tmp_path) as store:
        check_killed_run(store, run_id, pid, "SN-PG-KILL")


def test_migration_from_version_1_on_postgresql(pg_url: str, tmp_path: Path):
    write_v1_database(pg_url, tmp_path)
    with Store.open(pg_url, tmp_path) as store:
        check_migrated(store)


def test_a_missing_database_is_store_unavailable(pg_socket: str, tmp_path: Path):
    url = f"postgresql+psycopg://postgres:hunter2@/no_such_db?host={pg_socket}"
    with pytest.raises(StoreUnavailable) as info:
        Store.open(url, tmp_path)
    assert isinstance(info.value, BenchError)
    assert "no_such_db" in str(info.value) and "hunter2" not in str(info.value) and "***" in str(info.value)
