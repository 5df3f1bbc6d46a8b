"""`posbench triage` end to end on the virtual bench: verdicts, exit statuses, reports."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from posbench.sim.launcher import sim_workdir

from .conftest import assert_no_card_data, causes_said, start_sim, stop_sim, triage, verdict_screen

SCHEMA_KEYS = {"schema", "unit", "verdict", "code01_origin", "causes", "measurements", "tests",
               "started", "duration_s"}


@pytest.mark.timeout(120)
def test_healthy_unit_passes_with_reports(run_triage):
    r = run_triage("--seed", "11")
    assert r.code == 0, r.out + r.err
    assert "no fault found" in r.out
    assert "Traceback" not in r.out + r.err
    doc = r.doc
    assert SCHEMA_KEYS <= doc.keys() and doc["schema"] == "posbench.verdict/1"
    assert doc["verdict"] == "pass" and doc["code01_origin"] == "none" and doc["causes"] == []
    assert doc["unit"]["model"] == "PT100" and doc["unit"]["serial"].startswith("PT100-")
    assert {t["outcome"] for t in doc["tests"]} <= {"passed", "skipped"} and len(doc["tests"]) >= 5
    skipped = {t["nodeid"] for t in doc["tests"] if t["outcome"] == "skipped"}
    assert skipped == {u["test"] for u in doc.get("unmeasured", []) if u["test"] in skipped}, \
        "a skipped test that is not listed as unmeasured"
    from posbench.core.netns import have_netns
    # the agent protocol reads no card in a sale; without root there is no network lab either
    skips = ("card_reads_in_sales",) + (() if have_netns()[0] else ("test_network.py::",))
    assert all(any(k in t for k in skips) for t in skipped), skipped
    assert all(m["passed"] for m in doc["measurements"])
    page = r.files["html"].read_text()
    assert 'id="posbench-verdict"' in page and "Verdict: no fault found" in page
    assert page.index('id="posbench-verdict"') < page.index('<div id="environment-header">'), \
        "the page must open with the verdict, pytest-html's environment table below it"
    assert page.count("data:image/png;base64,") >= 2  # the supply and boot plots
    screen = verdict_screen(r.out)
    assert screen[0].startswith("no fault found") and len(screen) <= 10, r.out
    assert f"no code 01 reproduced in {doc['code01_sales']} sales" in screen and doc["code01_sales"] >= 1
    assert "<testsuite" in r.files["xml"].read_text()
    assert_no_card_data(*(path.read_text() for path in r.files.values()))  # never in an artifact
    assert {"swipe", "tap", "chip"} <= r.doc["read_paths"].keys()
    for path in ("swipe", "tap", "chip"):
        reads = r.doc["read_paths"][path]
        assert reads["verdict"] == "healthy" and reads["trials"] >= 1 and len(reads["ci"]) == 2
        assert reads["alpha"] and reads["beta"]


FAULTS = [("application", 1), ("firmware_driver", 1), ("resources", 1), ("data_loss", 1),
          ("maintenance", 1), ("operator_error", 0), ("issuer_referral", 0), ("msr_head", 1),
          ("nfc_antenna", 1), ("chip_contacts", 1), ("power_supply", 1), ("pcb_intermittent", 1),
          ("ip_conflict", 1), ("firewall", 1), ("network_unstable", 1)]
NETWORK = {"ip_conflict", "firewall", "network_unstable"}


def _needs_lab(cause: str) -> None:
    from posbench.core.netns import have_netns
    ok, reason = have_netns()
    if cause in NETWORK and not ok:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the network lab: {reason}")
        pytest.skip(f"the network lab cannot run here: {reason}")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("cause,exit_code", FAULTS)
def test_each_fault_is_named_first(run_triage, cause, exit_code):
    _needs_lab(cause)
    r = run_triage("--fault", cause, "--seed", "5")
    assert r.code == exit_code, r.out + r.err
    assert r.doc["causes"] and r.doc["causes"][0]["id"] == cause, (r.doc["verdict"], r.doc["causes"], r.out)
    assert r.doc["verdict"] == ("fault" if exit_code else "pass")
    assert r.doc["causes"][0]["evidence"], "a cause without evidence"
    if cause == "issuer_referral":
        assert r.doc["code01_origin"] == "issuer"
    if cause == "firewall":  # severity 1: the lab's firewall drops
        assert "dropped" in r.doc["causes"][0]["evidence"][0]["note"]
    # card data never reaches an artifact or the output, faulty unit or not
    assert_no_card_data(r.out, r.err, *(path.read_text() for path in r.files.values()))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("cause", ["application", "resources", "data_loss", "operator_error",
                                   "issuer_referral", "firmware_driver", "maintenance", "msr_head",
                                   "nfc_antenna", "chip_contacts", "power_supply", "pcb_intermittent",
                                   "ip_conflict", "firewall", "network_unstable"])
def test_faults_found_at_low_severity(run_triage, cause):
    _needs_lab(cause)
    r = run_triage("--fault", f"{cause}=0.3", "--seed", "6")
    assert r.doc["causes"] and r.doc["causes"][0]["id"] == cause, (r.doc["verdict"], r.doc["causes"], r.out)
    if cause == "firewall":  # severity 0.3: the lab's firewall rejects
        assert "rejected" in r.doc["causes"][0]["evidence"][0]["note"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("first", range(100, 120, 4))
def test_healthy_unit_over_20_seeds_never_gets_a_fault(tmp_path, first):
    """Seeds 100..119, four per test, one after another, so that pytest-xdist spreads them over its
    workers (one test of twenty ran alone at the end of the suite for minutes) without running
    more triages at once than the suite's other tests do."""
    def one(seed: int):
        r = triage(tmp_path, "--seed", str(seed), name=f"seed{seed}")
        return seed, r.code, r.doc and r.doc["verdict"], r.doc and [c["id"] for c in r.doc["causes"]]
    results = [one(seed) for seed in range(first, first + 4)]  # pytest-xdist runs the five at once
    bad = [r for r in results if r[1] != 0 or r[2] != "pass" or r[3]]
    assert not bad, bad


@pytest.mark.timeout(60)
def test_malformed_bench_file_is_a_config_error(run_triage, tmp_path):
    bench = tmp_path / "bench.toml"
    bench.write_text('[terminal]\nport = "/dev/ttyUSB0"\nbaud_rate = 9600\n')
    r = run_triage("--bench", str(bench))
    assert r.code == 3, r.out + r.err
    assert "bench.toml: terminal.baud_rate" in r.err and "Traceback" not in r.err
    bench.write_text("[terminal\nport = 1")
    r = run_triage("--bench", str(bench))
    assert r.code == 3 and "not valid TOML" in r.err and "Traceback" not in r.err


@pytest.mark.timeout(60)
def test_missing_port_is_a_bench_error(run_triage, tmp_path):
    bench = tmp_path / "bench.toml"
    bench.write_text('[unit]\nmodel = "PT100"\n[terminal]\nport = "/dev/ttyPOSBENCH-NONE"\n')
    r = run_triage("--bench", str(bench))
    assert r.code == 2, r.out + r.err
    assert "/dev/ttyPOSBENCH-NONE" in r.out
    assert r.doc["verdict"] == "bench_error" and r.doc["causes"] == []
    assert any("/dev/ttyPOSBENCH-NONE" in e for e in r.doc["bench_errors"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args,needle", [
    (["--fault", "no_such_cause"], "unknown cause id"),
    (["--fault", "resources=1.5"], "(0, 1]"),
    (["--fault", "firewall=abc"], "not a number"),
    (["--bench", "x.toml", "--fault", "resources"], "virtual bench only"),
])
def test_usage_errors_exit_3(run_triage, args, needle):
    r = run_triage(*args)
    assert r.code == 3 and needle in r.err and "Traceback" not in r.err, r.err




@pytest.mark.timeout(120)
def test_a_fault_verdict_reads_as_a_technician_needs_it(run_triage):
    """The first screen: the cause by its name, the repair action, at most three findings in
    words, the code 01 sentence; statistics and test ids only with --verbose."""
    r = run_triage("--fault", "msr_head=0.3", "--seed", "42")
    assert r.code == 1, r.out + r.err
    screen = verdict_screen(r.out)
    text = "\n".join(screen)
    assert len(screen) <= 10, text
    assert screen[0].startswith("FAULT: Magstripe read head (") and "msr_head" not in text
    assert "repair: clean or replace the MSR read head" in text
    assert re.search(r"- \d+ of \d+ swipes failed: ", text), text
    assert sum(line.startswith("  - ") for line in screen) <= 3
    assert f"no code 01 reproduced in {r.doc['code01_sales']} sales" in text
    assert "SPRT" not in text and "test_swipe" not in text
    verbose = run_triage("--fault", "msr_head=0.3", "--seed", "42", "--verbose", name="verbose")
    assert "SPRT p0=" in verbose.out and "test_read_paths.py::test_swipe" in verbose.out
    assert verbose.out.index("SPRT p0=") < verbose.out.index("FAULT: Magstripe read head"), \
        "the details come first, the verdict's screen stays last"


@pytest.mark.timeout(120)
def test_sim_bench_file_gives_the_same_verdict(run_triage, tmp_path):
    virtual = run_triage("--fault", "data_loss=0.6", "--seed", "21", name="virtual")
    proc, bench = start_sim(tmp_path, "--fault", "data_loss=0.6", "--seed", "21")
    try:
        via_file = run_triage("--bench", str(bench), name="file")
    finally:
        stop_sim(proc)
    assert via_file.code == virtual.code == 1
    pick = lambda d: (d["verdict"], d["code01_origin"], [c["id"] for c in d["causes"]], d["unit"])
    assert pick(via_file.doc) == pick(virtual.doc), \
        f"via the file:\n{causes_said(via_file.doc)}\nvirtual:\n{causes_said(virtual.doc)}"


@pytest.mark.timeout(60)
def test_sim_cleans_up_on_sigterm(tmp_path):
    proc, bench = start_sim(tmp_path, "--seed", "3")
    text = bench.read_text()
    log_dir = Path(text.split('log = "')[1].split('"')[0]).parent
    port = text.split('port = "')[1].split('"')[0]
    assert log_dir.is_dir() and os.path.exists(port)
    out, _ = stop_sim(proc)
    assert proc.returncode == 0 and "stopped" in out
    assert not bench.exists() and not log_dir.exists()


@pytest.mark.timeout(120)
def test_emulator_crash_mid_run_is_a_bench_error(run_triage, tmp_path):
    proc, bench = start_sim(tmp_path, "--seed", "8")
    workdir = sim_workdir(bench)
    try:
        # 4 s: past the preflight (about 0.5 s once started) even on a busy machine, mid-run
        killer = subprocess.Popen(["sh", "-c", f"sleep 4; kill -9 {proc.pid}"])
        r = run_triage("--bench", str(bench))
        killer.wait(10)
    finally:
        stop_sim(proc)
        shutil.rmtree(workdir, ignore_errors=True)  # a killed sim cannot remove it itself
    assert r.code == 2, r.out + r.err
    assert r.doc is None or r.doc["verdict"] == "bench_error"
    assert "BENCH ERROR" in r.out
    if r.doc is not None and "preflight failed" in r.out:  # a very busy host: the kill beat the preflight
        assert "no test was run" in r.out and "FAIL" in r.out, r.out
    elif r.doc is not None:  # the first screen says what failed on the bench, without test ids
        screen = verdict_screen(r.out)
        assert screen[0].startswith("BENCH ERROR: the bench failed, the unit was not judged"), r.out
        assert len(screen) <= 10 and not any(".py::" in line for line in screen), r.out


@pytest.mark.timeout(60)
def test_a_different_unit_than_named_is_a_bench_error(run_triage, tmp_path):
    proc, bench = start_sim(tmp_path, "--seed", "4")  # on the virtual bench --unit sets the serial
    try:
        r = run_triage("--bench", str(bench), "--unit", "PT100-NOT-THIS-ONE")
    finally:
        stop_sim(proc)
    assert r.code == 2, r.out + r.err
    assert r.doc["verdict"] == "bench_error"
    assert any("PT100-NOT-THIS-ONE was expected" in e for e in r.doc["bench_errors"])
    # stored and reported under the serial of the unit that was on the bench, not the one named
    seen = r.doc["unit"]["serial"]
    assert seen.startswith("PT100-") and seen != "PT100-NOT-THIS-ONE", r.doc["unit"]
    assert "not the unit on the bench" in r.doc["unit"]["serial_from"]
    import sqlite3
    with sqlite3.connect(tmp_path / "reports" / "posbench.sqlite") as con:
        assert [s for (s,) in con.execute("select unit_serial from runs")] == [seen]


@pytest.mark.timeout(90)
def test_a_silent_unit_is_inconclusive_and_says_why(run_triage, tmp_path):
    from posbench.sim.control import ControlServer
    robot = ControlServer({}).start()  # an actuator that needs no person (nobody is at a test's terminal)
    master, slave = os.openpty()  # a port that exists but where no unit ever answers
    try:
        bench = tmp_path / "bench.toml"
        bench.write_text(f'[unit]\nmodel = "PT100"\n[terminal]\nport = "{os.ttyname(slave)}"\n'
                         "reply_timeout = 0.5\nboot_timeout = 1.0\n"
                         f'[actuator]\nkind = "virtual"\naddress = "{robot.address[0]}:{robot.address[1]}"\n')
        r = run_triage("--bench", str(bench))
    finally:
        os.close(master)
        os.close(slave)
        robot.stop()
    assert r.code == 1, r.out + r.err
    assert r.doc["verdict"] == "inconclusive" and r.doc["causes"] == []
    assert "no ACK to ENQ" in r.out and "INCONCLUSIVE" in r.out


@pytest.mark.timeout(60)
def test_launcher_removes_what_a_killed_sim_left_behind():
    from posbench.sim.launcher import VirtualBench
    vbench = VirtualBench(seed=2)
    bench = vbench.start()
    workdir = sim_workdir(bench)
    assert workdir is not None and workdir.is_dir()
    pid = vbench.proc.pid
    os.kill(pid, signal.SIGKILL)
    vbench.proc.wait(10)
    vbench.stop()
    assert not workdir.exists() and not bench.exists()
    assert not [ns for ns in _netns() if ns.startswith(f"pbl-{pid}-")], "its network lab outlived it"


def _netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


@pytest.mark.timeout(240)
def test_losing_the_bench_supply_link_is_a_bench_error(tmp_path):
    """The bench's own supply link dies mid-run (its USB cable pulled): bench error, exit 2."""
    import json as _json

    from posbench.setup.config import load_bench, split_host_port
    from posbench.drivers.actuator import virtual as control
    proc, bench = start_sim(tmp_path, "--seed", "23")
    try:
        address = split_host_port(load_bench(bench).sim.control)
        triage_proc = subprocess.Popen(
            [sys.executable, "-m", "posbench.cli", "triage", "--bench", str(bench), "--json", str(tmp_path / "v.json"),
             "--html", str(tmp_path / "v.html"), "--junit", str(tmp_path / "v.xml")],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        seen = ""
        while "test_chip" not in seen:  # the read paths are done: the power tests come next
            line = triage_proc.stdout.readline()
            if not line:
                break
            seen += line
        assert control.request(address, {"action": "unplug", "device": "supply"})["ok"]
        out = seen + triage_proc.communicate(timeout=180)[0]
    finally:
        stop_sim(proc)
    assert triage_proc.returncode == 2, out
    doc = _json.loads((tmp_path / "v.json").read_text())
    assert doc["verdict"] == "bench_error" and doc["causes"] == []
    assert any("supply" in e.lower() or "korad" in e.lower() or "/dev/pts" in e for e in doc["bench_errors"]), doc["bench_errors"]
    assert "BENCH ERROR" in out
