"""A bench room on loopback: a real labgrid coordinator, a real labgrid exporter per bench (ser2net
serving the benches' pseudo-terminals over RFC 2217), two virtual benches exported by
``posbench export`` as two places, and triages that reserve and acquire them.

Everything is started here and stopped on leaving, passed or failed. Needs labgrid (the dev
extra brings it) and Debian's ser2net (``.ci/deps``): skipped with the reason where they are
missing, failed instead in CI.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import causes_said, posbench, triage

pytestmark = pytest.mark.xdist_group("bench_room")  # one room for the module under --dist loadgroup

BIN = Path(sys.executable).parent
START_S = 30.0
"""Seconds a coordinator, an exporter or a virtual bench may take to come up."""
SIM_ARGS = ("--timing", "boot_s=1")
"""Short boots: the soak and cold-boot tests wait for them."""
BENCHES = {"bench-a": ("--seed", "7"), "bench-b": ("--seed", "8", "--fault", "msr_head")}
"""Two virtual benches: a healthy unit, and one with a worn magstripe head."""


def room_tools_missing() -> str:
    try:
        import labgrid  # noqa: F401
    except ImportError:
        return "labgrid is not installed (pip install 'posbench[labgrid]')"
    for tool in ("labgrid-coordinator", "labgrid-exporter", "labgrid-client"):
        if not (BIN / tool).exists():
            return f"{tool} is not in {BIN}"
    if not (shutil.which("ser2net") or os.path.exists("/usr/sbin/ser2net")):
        return "ser2net is not installed (apt-get install ser2net)"
    return ""


def need_room_tools() -> None:
    """Skip without labgrid or ser2net; in CI (.ci/deps installs ser2net) fail instead."""
    reason = room_tools_missing()
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI must run the bench room: {reason}")
    if reason:
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def started(cmd: list[str], log: Path, cwd: Path) -> Iterator[subprocess.Popen]:
    """``cmd`` in a session of its own (its ser2net children with it), its output in ``log``;
    its process group stopped on leaving (SIGTERM, then SIGKILL)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                start_new_session=True, env={**os.environ, "POSBENCH_PARENT_PID": str(os.getpid())})
    try:
        yield proc
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen) -> None:
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # what the leader left behind (a ser2net)
    except ProcessLookupError:
        pass


def wait_for(what: str, check, proc: subprocess.Popen, log: Path, within_s: float = START_S) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if proc.poll() is not None:
            pytest.fail(f"{what}: exited with {proc.returncode}: {log.read_text(errors='replace')[-1500:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not up within {within_s:g} s: {log.read_text(errors='replace')[-1500:]}")
        time.sleep(0.1)


def client(room: "Room", *args: str) -> str:
    proc = subprocess.run([str(BIN / "labgrid-client"), "-x", room.address, *args], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"labgrid-client {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


@dataclass
class Room:
    address: str
    tmp: Path
    benches: dict[str, Path] = field(default_factory=dict)
    exporters: dict[str, subprocess.Popen] = field(default_factory=dict)
    stack: ExitStack = field(default_factory=ExitStack)

    def start_exporter(self, place: str) -> None:
        log = self.tmp / f"exporter-{place}.log"
        cmd = [str(BIN / "labgrid-exporter"), "-c", self.address, "-n", f"host-{place}", "--hostname", "127.0.0.1",
               str(self.tmp / f"{place}.exporter.yaml")]
        proc = self.stack.enter_context(started(cmd, log, self.tmp))
        self.exporters[place] = proc
        wait_for(f"the exporter of {place}", lambda: f"host-{place}/{place}/NetworkSerialPort"
                 in client(self, "resources"), proc, log)


@pytest.fixture(scope="module")
def room(tmp_path_factory) -> Iterator[Room]:
    """The coordinator, the two virtual benches, their exporters and places."""
    need_room_tools()
    tmp = tmp_path_factory.mktemp("room")
    room = Room(f"127.0.0.1:{free_port()}", tmp)
    with room.stack:
        log = tmp / "coordinator.log"
        coordinator = room.stack.enter_context(started([str(BIN / "labgrid-coordinator"), "-l", room.address],
                                                       log, tmp))
        for place, args in BENCHES.items():
            bench = tmp / f"{place}.toml"
            sim_log = tmp / f"sim-{place}.log"
            sim = room.stack.enter_context(started([sys.executable, "-m", "posbench.cli", "sim", *SIM_ARGS, *args,
                                                    "--write-bench", str(bench)], sim_log, tmp))
            wait_for(f"posbench sim for {place}", bench.exists, sim, sim_log)
            room.benches[place] = bench
            out = posbench("export", "--bench", str(bench), "--place", place, "--coordinator", room.address, cwd=tmp)
            assert out.returncode == 0, out.stderr
            wait_for("the coordinator", lambda: _answers(room), coordinator, log)
            for line in out.stdout.splitlines():  # the commands it prints create and tag the place
                if line.strip().startswith("labgrid-client"):
                    client(room, *shlex.split(line)[3:])
            room.start_exporter(place)
        yield room


def _answers(room: Room) -> bool:
    proc = subprocess.run([str(BIN / "labgrid-client"), "-x", room.address, "places"], capture_output=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    return proc.returncode == 0


@pytest.fixture(scope="module")
def pg_url(room) -> Iterator[str]:
    from tests.pg_server import create_database, postgres_server
    with postgres_server() as socket_dir:
        yield create_database(socket_dir, "room")


@pytest.mark.timeout(400)
def test_two_places_triaged_at_once_into_one_store(room: Room, pg_url: str, monkeypatch) -> None:
    """``--reserve model=PT100 --parallel 2``: each child reserves, acquires and releases its own
    place; both verdicts are right (the healthy unit passes, the worn head is named) and both
    land whole in one PostgreSQL store, with the place and its resolved addresses."""
    proc = posbench("triage", "--reserve", "model=PT100", "--parallel", "2", "--coordinator", room.address,
                    "--store", pg_url, "--soak", "1", "--wait", "60", cwd=room.tmp, timeout=380)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # the batch's worst: one unit has a fault
    assert "[1] exit" in out and "[2] exit" in out, out
    from posbench.store import Store
    with Store.open(pg_url, None) as store:
        runs = {r.bench_name: r for r in store.recent_runs(10)}
        stored = {name: store.run(r.run_id) for name, r in runs.items()}
    assert set(runs) == set(BENCHES), out
    assert runs["bench-a"].status == runs["bench-b"].status == "complete"
    assert runs["bench-a"].verdict == "pass", causes_said(stored["bench-a"].doc)
    assert runs["bench-b"].verdict == "fault" and runs["bench-b"].causes[0].id == "msr_head", \
        causes_said(stored["bench-b"].doc)
    for name, run in stored.items():
        place = run.bench["place"]
        assert place["name"] == name and place["coordinator"] == room.address
        assert set(place["addresses"]) == {"terminal", "supply", "nfc"}
        assert all(url.startswith("rfc2217://127.0.0.1:") and url.endswith("?ign_set_control")
                   for url in place["addresses"].values()), place
        assert run.doc is not None and run.doc["bench"]["place"] == place
    for place in BENCHES:  # released by each child
        assert "acquired: None" in client(room, "-p", place, "show")
    monkeypatch.setenv("COLUMNS", "200")  # the listing's table, whole in a pipe
    listing = posbench("runs", "--store", pg_url, cwd=room.tmp)
    assert listing.returncode == 0 and "bench-a" in listing.stdout and "bench-b" in listing.stdout, listing.stderr


@pytest.mark.timeout(200)
def test_a_place_gives_the_same_verdict_as_its_bench_file(room: Room) -> None:
    """``posbench export`` + coordinator + exporter + ``triage --place`` against ``--bench`` on the
    same virtual bench and seed: the same verdict and causes."""
    by_place = triage(room.tmp, "--place", "bench-b", "--coordinator", room.address, "--soak", "1",
                      name="by-place", timeout=180)
    by_file = triage(room.tmp, "--bench", str(room.benches["bench-b"]), "--soak", "1", name="by-file", timeout=180)
    assert by_place.doc and by_file.doc, by_place.out + by_place.err + by_file.out + by_file.err
    assert by_place.code == by_file.code == 1, by_place.out + by_file.out
    assert by_place.doc["verdict"] == by_file.doc["verdict"] == "fault"
    assert [c["id"] for c in by_place.doc["causes"]] == [c["id"] for c in by_file.doc["causes"]], \
        causes_said(by_place.doc) + "\n--\n" + causes_said(by_file.doc)
    assert by_place.doc["bench"]["place"]["name"] == "bench-b" and "place" not in by_file.doc["bench"]


@contextmanager
def place_triage(room: Room, name: str, *args: str) -> Iterator[tuple[subprocess.Popen, Path]]:
    """``posbench triage --place bench-a ARGS`` in the background, its output in ``<name>.log``;
    killed on leaving if it still runs."""
    log = room.tmp / f"{name}.log"
    files = [a for ext in ("json", "html", "junit") for a in (f"--{ext}", str(room.tmp / f"{name}.{ext}"))]
    with open(log, "wb") as out:
        run = subprocess.Popen([sys.executable, "-m", "posbench.cli", "triage", "--place", "bench-a", "--coordinator",
                                room.address, "--soak", "1", *files, *args],
                               stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=room.tmp)
    try:
        yield run, log
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)


def started_testing(run: subprocess.Popen, log: Path, test: int = 1) -> None:
    wait_for(f"the triage's test {test}", lambda: f"[{test}/" in log.read_text(errors="replace"), run, log, 120)


@pytest.mark.timeout(120)
def test_reserve_waits_with_progress_then_names_the_holders(room: Room) -> None:
    """Every PT100 place held by someone else: ``--reserve`` says what it waits for, and after
    ``--wait`` ends as a bench error naming the holders."""
    alice = {**os.environ, "LG_USERNAME": "alice"}
    for place in BENCHES:
        subprocess.run([str(BIN / "labgrid-client"), "-x", room.address, "-p", place, "acquire"], env=alice,
                       check=True, capture_output=True, timeout=30)
    try:
        proc = posbench("triage", "--reserve", "model=PT100", "--wait", "7", "--coordinator", room.address,
                        cwd=room.tmp, timeout=60)
    finally:
        for place in BENCHES:
            subprocess.run([str(BIN / "labgrid-client"), "-x", room.address, "-p", place, "release"], env=alice,
                           check=True, capture_output=True, timeout=30)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert re.search(r"waiting for a free place \(model=PT100\), \d+ s of up to 7 s", out), out
    assert "none became free within 7 s: bench-a held by" in out and "/alice" in out, out


@pytest.mark.timeout(120)
def test_a_stopped_triage_releases_its_place(room: Room) -> None:
    with place_triage(room, "stopped") as (run, log):
        started_testing(run, log)
        run.send_signal(signal.SIGTERM)
        assert run.wait(60) == 2, log.read_text()
    assert "released place bench-a" in log.read_text()
    assert "acquired: None" in client(room, "-p", "bench-a", "show")


@pytest.mark.timeout(300)
def test_an_exporter_pulled_mid_run_is_never_the_units_fault(room: Room) -> None:
    """A triage killed with SIGKILL leaves its place acquired: the next one takes it over (and the
    killed run is stored as incomplete). Then the exporter of the healthy bench is killed mid-run
    and started again: its ports come back on new TCP ports, which the drivers look up again; the
    run passes, or ends as a bench error, never as the unit's fault."""
    store = f"sqlite:///{room.tmp / 'pulled.sqlite'}"
    with place_triage(room, "killed", "--store", store) as (run, log):
        started_testing(run, log)
        run.kill()
        run.wait(10)
    assert "acquired: None" not in client(room, "-p", "bench-a", "show")  # left acquired
    with place_triage(room, "pulled", "--store", store) as (run, log):
        started_testing(run, log, 3)
        stop_group(room.exporters.pop("bench-a"))
        time.sleep(1.0)
        room.start_exporter("bench-a")
        code = run.wait(240)
    text = log.read_text(errors="replace")
    assert "was left acquired by an earlier run of yours" in text and "taking it over" in text, text
    import json
    doc = json.loads((room.tmp / "pulled.json").read_text())
    assert code in (0, 2), text
    assert doc["verdict"] in ("pass", "bench_error") and not doc["causes"], causes_said(doc) + text
    assert "acquired: None" in client(room, "-p", "bench-a", "show")
    from posbench.store import Store
    with Store.open(store, None) as opened:
        statuses = sorted(r.status for r in opened.recent_runs(10))
    assert statuses == ["complete", "incomplete"], statuses
