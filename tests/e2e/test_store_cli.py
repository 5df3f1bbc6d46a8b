"""The result store through the real command: a row per test as it finishes, history, report."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from .conftest import assert_no_card_data, posbench


def _runs(db):
    with sqlite3.connect(db) as con:
        return con.execute("select run_id, status, unit_serial from runs order by started").fetchall()


@pytest.mark.timeout(240)
def test_killed_triage_keeps_finished_tests_and_the_next_run_works(tmp_path):
    db = tmp_path / "reports" / "posbench.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "posbench.cli", "triage", "--seed", "2121"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 90
        seen = ""
        while "[3/" not in seen and time.monotonic() < deadline:  # two tests finished
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        assert "[3/" in seen, seen
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with sqlite3.connect(db) as con:
        stored = con.execute("select count(*) from tests").fetchone()[0]
    assert stored >= 2, "tests finished before the kill are in the store"
    assert [status for _, status, _ in _runs(db)] == ["running"]  # nobody has looked yet
    r = posbench("triage", "--seed", "2121", cwd=tmp_path, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = _runs(db)
    assert [status for _, status, _ in runs] == ["incomplete", "complete"]
    deadline = time.monotonic() + 10  # the killed triage's virtual bench noticed and left
    while _sims_with_seed("2121") and time.monotonic() < deadline:  # a seed no other test uses
        time.sleep(0.2)
    assert not _sims_with_seed("2121"), "the killed triage's virtual bench lives on"


def _sims_with_seed(seed: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"posbench.cli" in args and b"sim" in args and seed.encode() in args:
            found.append(int(pid))
    return found


@pytest.mark.timeout(240)
def test_history_and_report_of_stored_runs(tmp_path):
    first = posbench("triage", "--seed", "22", "--fault", "msr_head", cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    second = posbench("triage", "--seed", "22", "--fault", "msr_head", cwd=tmp_path)
    assert "seen on this unit before" in second.stdout and "Magstripe read head" in second.stdout
    (run_id, _, serial), (run2, _, _) = _runs(tmp_path / "reports" / "posbench.sqlite")
    hist = posbench("history", serial, cwd=tmp_path)
    assert hist.returncode == 0, hist.stderr
    assert hist.stdout.index(run2[:8]) < hist.stdout.index(run_id[:8])  # newest first
    assert "before / after" in hist.stdout
    rep = posbench("report", run_id[:8], "--out", "regen", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    doc = json.loads(next((tmp_path / "regen").glob("*.json")).read_text())
    assert doc["verdict"] == "fault" and doc["causes"][0]["id"] == "msr_head"
    page = next((tmp_path / "regen").glob("*.html")).read_text()
    assert "Magstripe read head" in page and rep.stdout.startswith("FAULT: Magstripe read head"), rep.stdout
    live = (tmp_path / "reports").glob(f"{serial}-*.html")
    first_live = min(live, key=lambda p: p.stat().st_mtime).read_text()
    panel = lambda text: re.search(r'<section id="posbench-verdict".*?</section>', text, re.S).group(0)
    same = lambda text: re.sub(r"Found on this unit before:.*?</p>|run [0-9a-f-]{36}", "", panel(text), flags=re.S)
    assert same(page) == same(first_live), "posbench report renders another panel than the live report"
    assert page.count("data:image/png;base64,") == first_live.count("data:image/png;base64,") >= 2  # the plots
    with open(tmp_path / "reports" / "posbench.sqlite", "rb") as f:  # nor in the store's bytes
        assert_no_card_data(f.read().decode("latin-1"), page)
    unknown = posbench("report", "ffffffff", cwd=tmp_path)
    assert unknown.returncode == 3 and "Traceback" not in unknown.stderr
    missing = posbench("history", "NO-SUCH-UNIT", cwd=tmp_path)
    assert missing.returncode == 3
    assert (missing.stdout + missing.stderr).count("NO-SUCH-UNIT") == 1, "said once"


@pytest.mark.timeout(300)
def test_a_rehearsed_repair_under_one_serial(tmp_path):
    """--unit on the virtual bench makes the unit report that serial; reports are named by it, and
    history shows the repair's before / after."""
    serial = "PT100-0042424"
    faulty = posbench("triage", "--unit", serial, "--seed", "31", "--fault", "msr_head", cwd=tmp_path)
    assert faulty.returncode == 1, faulty.stdout + faulty.stderr
    repaired = posbench("triage", "--unit", serial, "--seed", "32", cwd=tmp_path)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert len(list((tmp_path / "reports").glob(f"{serial}-*.json"))) == 2
    runs = _runs(tmp_path / "reports" / "posbench.sqlite")
    assert [s for _, _, s in runs] == [serial, serial]
    hist = posbench("history", serial, cwd=tmp_path)
    assert hist.returncode == 0 and f"before / after: {runs[0][0][:8]}" in hist.stdout, hist.stdout
    assert "FAIL -> pass" in hist.stdout


@pytest.mark.timeout(90)
def test_a_unit_that_never_identifies_is_filed_under_the_serial_named(tmp_path):
    from posbench.sim.control import ControlServer
    robot = ControlServer({}).start()  # an actuator that needs no person (nobody is at a test's terminal)
    master, slave = os.openpty()  # a port where no unit ever answers
    try:
        bench = tmp_path / "bench.toml"
        bench.write_text(f'[unit]\nmodel = "PT100"\n[terminal]\nport = "{os.ttyname(slave)}"\n'
                         "reply_timeout = 0.5\nboot_timeout = 1.0\n"
                         f'[actuator]\nkind = "virtual"\naddress = "{robot.address[0]}:{robot.address[1]}"\n')
        r = posbench("triage", "--bench", str(bench), "--unit", "PT100-0007777", "--json", "v.json", cwd=tmp_path)
    finally:
        os.close(master)
        os.close(slave)
        robot.stop()
    doc = json.loads((tmp_path / "v.json").read_text())
    assert doc["unit"]["serial"] == "PT100-0007777" and "never identified" in doc["unit"]["serial_from"], r.stdout
    assert [s for _, _, s in _runs(tmp_path / "reports" / "posbench.sqlite")] == ["PT100-0007777"]


@pytest.mark.timeout(60)
def test_unreachable_store_is_a_bench_error(tmp_path):
    r = posbench("history", "X", "--store", "postgresql://u:secret@127.0.0.1:1/db", cwd=tmp_path)
    assert r.returncode == 2 and "secret" not in r.stdout + r.stderr and "Traceback" not in r.stderr


@pytest.mark.timeout(300)
def test_two_triages_at_once_into_one_postgresql_store(tmp_path):
    import sqlalchemy as sa

    from posbench.store import Store
    from posbench.store.schema import runs
    from tests.pg_server import create_database, postgres_server
    with postgres_server() as socket_dir:
        url = create_database(socket_dir, "posbench_e2e")
        procs = [subprocess.Popen([sys.executable, "-m", "posbench.cli", "triage", "--seed", str(seed),
                                   "--store", url], cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
                 for seed in (31, 32)]
        outs = [p.communicate(timeout=240)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        with Store.open(url, tmp_path) as store, store.engine.connect() as con:
            rows = con.execute(sa.select(runs.c.unit_serial, runs.c.status)).all()
    assert sorted(status for _, status in rows) == ["complete", "complete"], rows
    assert len({serial for serial, _ in rows}) == 2  # two units, two benches
    assert not (tmp_path / "reports" / "posbench.sqlite").exists()  # the URL was used, not SQLite
