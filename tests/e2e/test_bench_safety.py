"""Nothing the bench does is blamed on the unit, nothing is lost, nothing outside the reports is
touched: report targets, a wrong host address, unwritable reports, signals, a dying bench and two
triages on one bench, each through the real ``posbench`` command."""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import posbench, start_sim, stop_sim


def _need_root(why: str) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs as root and must run this: {why}")
        pytest.skip(f"needs root: {why}")


def _need_lab() -> None:
    from posbench.core.netns import have_netns
    ok, reason = have_netns()
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the network lab: {reason}")
        pytest.skip(f"the network lab cannot run here: {reason}")


def _outputs(tmp: Path, name: str = "run") -> tuple[list[str], dict[str, Path]]:
    files = {ext: tmp / f"{name}.{ext}" for ext in ("json", "html", "xml")}
    return ["--json", str(files["json"]), "--html", str(files["html"]), "--junit", str(files["xml"])], files


# -- 1. a report option never removes or replaces anything but a regular file ---------------------
@pytest.mark.timeout(60)
def test_report_targets_that_are_not_regular_files_are_refused(tmp_path):
    _need_root("mknod of a character device in the test's own temp directory")
    node = tmp_path / "full"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    for option, target, kind in (("--json", node, "a character device"), ("--html", fifo, "a FIFO"),
                                 ("--junit", folder, "a directory")):
        proc = posbench("triage", option, str(target), cwd=tmp_path, timeout=60)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert f"{option} {target}: it is {kind}" in proc.stderr and "Traceback" not in proc.stderr
        assert "starting the virtual bench" not in proc.stdout, "refused only after the bench started"
    st = os.lstat(node)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 7), "the device node was replaced"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and folder.is_dir() and not list(folder.iterdir())


# -- 2. a wrong [host] address is the bench description's mistake, not the site's firewall ---------
@pytest.mark.timeout(180)
def test_a_wrong_host_address_is_a_bench_error_not_a_firewall(tmp_path):
    _need_lab()
    proc, bench = start_sim(tmp_path, "--seed", "31")
    try:
        text = bench.read_text()
        wrong = tmp_path / "wrong-host.toml"
        # a closed port: nothing listens on the discard port in the bench's namespace
        wrong.write_text(re.sub(r'(\[host\]\naddress = ")[^"]+"', r'\g<1>127.0.0.1:9"', text))
        assert 'address = "127.0.0.1:9"' in wrong.read_text()
        args, files = _outputs(tmp_path)
        r = posbench("triage", "--bench", str(wrong), *args, cwd=tmp_path, timeout=170)
    finally:
        stop_sim(proc)
    doc = json.loads(files["json"].read_text())
    assert r.returncode == 2, r.stdout + r.stderr
    assert doc["verdict"] == "bench_error" and doc["causes"] == []
    assert any("[host] address" in e and "the unit reached its host" in e for e in doc["bench_errors"]), doc["bench_errors"]
    assert "firewall" not in r.stdout.lower().replace("[host] address", "")


# -- 3. a report that cannot be written ------------------------------------------------------------
@pytest.mark.timeout(60)
def test_unwritable_report_targets_are_usage_errors_before_the_bench_starts(tmp_path):
    proc = posbench("triage", "--html", "/proc/nope.html", cwd=tmp_path, timeout=60)
    assert proc.returncode == 3 and "--html /proc/nope.html: cannot write in /proc" in proc.stderr, proc.stderr
    assert "starting the virtual bench" not in proc.stdout and "Traceback" not in proc.stderr
    proc = posbench("triage", "--store", "notaurl", cwd=tmp_path, timeout=60)
    assert proc.returncode == 3 and "not a database URL" in proc.stderr, proc.stderr


@pytest.fixture
def small_mount(tmp_path):
    """A directory on a tmpfs of ``size`` that the test mounts (root) and always unmounts."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        _need_root("mounting a small tmpfs for a read-only or full report directory")
        path = tmp_path / name
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "posbench-test", str(path)], check=True, timeout=10)
        mounted.append(path)
        return path
    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], timeout=10)


@pytest.mark.timeout(60)
def test_a_read_only_reports_directory_is_a_usage_error(tmp_path, small_mount):
    ro = small_mount("ro", "ro,size=1m")
    proc = posbench("triage", "--json", str(ro / "run.json"), cwd=tmp_path, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Read-only file system" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.timeout(180)
def test_a_full_disk_after_the_run_keeps_the_stored_verdicts_status_with_a_warning(tmp_path, small_mount):
    full = small_mount("full", "size=48k")  # room for the JSON, not for the HTML page with its plots
    files = {"json": full / "run.json", "html": full / "run.html", "xml": tmp_path / "run.xml"}
    r = posbench("triage", "--seed", "12", "--json", str(files["json"]), "--html", str(files["html"]),
                 "--junit", str(files["xml"]), cwd=tmp_path, timeout=170)
    assert r.returncode == 0, r.stdout + r.stderr  # the verdict was printed and stored: it stands
    assert "no fault found" in r.stdout, "the verdict was not printed"
    assert "WARNING" in r.stdout and "No space left on device" in r.stdout and "BENCH ERROR" not in r.stdout
    run_id = json.loads(files["json"].read_text())["run_id"]
    assert f"posbench report {run_id}" in " ".join(r.stdout.split()), "no command to write the report again"
    assert "Traceback" not in r.stdout + r.stderr
    assert json.loads(files["json"].read_text())["verdict"] == "pass"
    assert not files["html"].exists(), "half a report was left in place"
    assert [p.name for p in full.iterdir()] == ["run.json"], "a staged file was left behind"
    history = posbench("history", json.loads(files["json"].read_text())["unit"]["serial"], cwd=tmp_path)
    assert history.returncode == 0 and "pass" in history.stdout, history.stdout + history.stderr


# -- 4. SIGTERM and SIGHUP end a triage like Ctrl-C --------------------------------------------
def _triage_until(tmp: Path, line_seen: str, sig: signal.Signals, delay_s: float):
    """Start a triage (private TMPDIR), send ``sig`` ``delay_s`` after ``line_seen`` was printed,
    and return (exit status, output, report files, TMPDIR)."""
    private = tmp / "tmp"
    private.mkdir()
    args, files = _outputs(tmp)
    proc = subprocess.Popen([sys.executable, "-m", "posbench.cli", "triage", "--seed", "14", *args], cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            env={**os.environ, "TMPDIR": str(private)})
    seen = ""
    try:
        while line_seen not in seen:
            line = proc.stdout.readline()
            assert line, f"the triage ended before {line_seen!r}: {seen}"
            seen += line
        time.sleep(delay_s)
        proc.send_signal(sig)
        out = seen + proc.communicate(timeout=90)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, files, private


@pytest.mark.timeout(150)
@pytest.mark.parametrize("sig,after,delay_s", [
    (signal.SIGTERM, "[6/", 0.0),                           # between tests, or in the next one
    (signal.SIGHUP, "[3/", 0.05),                           # the terminal window closed
    (signal.SIGTERM, "starting the virtual bench", 0.3),    # while the bench starts
    (signal.SIGTERM, "actuator ", 0.05),                    # while pytest collects the suite
], ids=["sigterm-mid-run", "sighup-mid-run", "sigterm-at-start", "sigterm-in-collection"])
def test_a_signal_ends_the_triage_with_reports_and_cleans_up(tmp_path, sig, after, delay_s):
    code, out, files, private = _triage_until(tmp_path, after, sig, delay_s)
    assert code == 2, out
    assert "Traceback" not in out and "INTERRUPTED" in out and sig.name in out
    assert "did not complete" not in out, out  # a stop is a stop, not a broken run
    left = sorted(p.name for p in private.iterdir() if p.name != "posbench-locks")
    assert left == [], f"temporary directories left behind: {left}"
    if not after.startswith("["):
        return  # stopped while the bench was starting: nothing was measured yet
    doc = json.loads(files["json"].read_text())
    assert doc["verdict"] == "bench_error"
    assert [t for t in doc["tests"] if t["outcome"] == "passed"], "the finished tests were not reported"
    assert not [t for t in doc["tests"] if t["outcome"] == "passed" and t["duration_s"] == 0], \
        "a test the signal cut short is reported as passed"
    assert "<testsuite" in files["xml"].read_text() and "posbench-verdict" in files["html"].read_text()
    stored = posbench("history", doc["unit"]["serial"], cwd=tmp_path)
    assert "interrupted" in stored.stdout, stored.stdout + stored.stderr


# -- 5. an instrument gone mid-run is a bench error, never a unit measurement -----------------------
@pytest.mark.timeout(200)
def test_a_bench_killed_mid_run_leaves_no_unit_finding(tmp_path):
    proc, bench = start_sim(tmp_path, "--seed", "33")
    args, files = _outputs(tmp_path)
    try:
        triage = subprocess.Popen([sys.executable, "-m", "posbench.cli", "triage", "--bench", str(bench), *args],
                                  cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, text=True)
        seen = ""
        while "test_chip" not in seen:  # the network and power tests are still to come
            line = triage.stdout.readline()
            assert line, seen
            seen += line
        proc.kill()
        out = seen + triage.communicate(timeout=180)[0]
    finally:
        from posbench.sim.launcher import sim_workdir
        workdir = sim_workdir(bench)
        stop_sim(proc)
        if workdir is not None:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
    assert triage.returncode == 2, out
    doc = json.loads(files["json"].read_text())
    assert doc["verdict"] == "bench_error" and doc["causes"] == []
    bad = [m for m in doc["measurements"] if not m["passed"]]
    assert bad == [], f"measurements of a dead bench were stored as the unit's: {bad}"
    assert any("virtual bench" in e or "/dev/pts" in e for e in doc["bench_errors"]), doc["bench_errors"]


# -- 6. one triage at a time on a bench -------------------------------------------------------------
@pytest.mark.timeout(200)
def test_two_triages_on_one_bench(tmp_path):
    proc, bench = start_sim(tmp_path, "--seed", "35")
    try:
        def one(name: str):
            args, files = _outputs(tmp_path, name)
            start = time.monotonic()
            r = posbench("triage", "--bench", str(bench), *args, cwd=tmp_path, timeout=180)
            return r, files, time.monotonic() - start
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(one, ["first", "second"]))
    finally:
        stop_sim(proc)
    codes = sorted(r.returncode for r, _, _ in results)
    assert codes == [0, 2], [(r.returncode, r.stdout[-2000:]) for r, _, _ in results]
    loser, files, _ = next(x for x in results if x[0].returncode == 2)
    winner, _, _ = next(x for x in results if x[0].returncode == 0)
    said = " ".join(loser.stdout.split())  # the message as one line, however the console wrapped it
    assert "the bench is in use" in said and re.search(r"held by process \d+", said), loser.stdout
    assert "since 20" in said and "Traceback" not in loser.stdout + loser.stderr
    # the preflight takes the bench for the whole run: the second triage stops before touching a device
    assert "[1/" not in loser.stdout and "preflight:" not in loser.stdout, "it went on after finding the bench in use"
    assert not files["json"].exists()
    assert "no fault found" in winner.stdout
