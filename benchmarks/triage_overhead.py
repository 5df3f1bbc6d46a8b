"""`posbench triage` wall time against the waits the virtual devices impose by design.

A healthy virtual unit makes the suite wait on purpose: ``TerminalTiming.boot_s`` once after
power-on, ``command_s`` + U(0, ``jitter_s``) per ECR command, ``card_read_s`` per sale (the host
simulator adds no delay for a healthy unit). Everything above that is the bench's own cost.

Three measurements:

1. designed waits by formula, from the code: the PT100 profile's test sizes (``[tests]``),
   ``TerminalTiming`` and the number of commands each HIL test sends (see ``expected_commands``);
2. one instrumented run, in a child process: the same suite (``posbench.runner.run_hil``) against an
   in-process ``SimBench`` with the same seed, counting the commands the virtual terminal
   really served (its own ``link.stats.frames_received``, per command code by wrapping its
   dispatcher) and summing the delays it really drew; this checks the formula;
3. ``K`` timed runs of the real command, ``.venv/bin/posbench triage --seed S --json --html
   --junit`` into a temporary directory, with the arrival time of every output line, so the
   wall time splits into CLI start-up, virtual-bench + pytest start-up, the tests, and the
   finish (reports + bench shutdown); plus ``K`` start/stop cycles of the virtual bench alone
   (``posbench.sim.launcher.VirtualBench``) to split the start-up further.

    .venv/bin/python benchmarks/triage_overhead.py [-k 3] [--seed 1] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, exit_cleanly_on_sigterm, machine, run_and_print, table  # noqa: E402

POSBENCH = ROOT / ".venv" / "bin" / "posbench"
LOG_PAGE = 20
"""Records per LOG request: ``AgentTerminal.transaction_log`` asks for ``max=20``."""


# -- 1. designed waits by formula ------------------------------------------------------------------
def expected_commands(profile) -> dict[str, int]:
    """ECR commands the HIL suite sends to a healthy unit, by command code.

    identity fixture: 1 ST (waiting for the unit to be ready) + 1 ID; test_ecr_link: ``link_commands`` alternating ST (even i) / ID (odd i);
    test_status: 1 ST; test_transaction_log: 1 ST (newest log_seq) + ceil(log_records / 20) LOG;
    test_code01: 1 SALE per ``sale_amounts`` entry. (A healthy log holds >= 200 records.)
    """
    t = profile.tests
    return {"ID": 1 + t.link_commands // 2,
            "ST": 1 + (t.link_commands + 1) // 2 + 1 + 1,
            "LOG": math.ceil(t.log_records / LOG_PAGE),
            "SALE": len(t.sale_amounts)}


def designed_waits() -> dict:
    from posbench.profile import profile_for_model
    from posbench.sim.bench import MODEL
    from posbench.sim.terminal import TerminalTiming
    profile = profile_for_model(MODEL)
    timing = TerminalTiming(boot_s=profile.boot_time_s)  # what VirtualTerminal uses
    cmds = expected_commands(profile)
    n = sum(cmds.values())
    per_cmd = timing.command_s + timing.jitter_s / 2
    parts = {"boot": timing.boot_s, "commands": n * per_cmd, "card_reads": cmds["SALE"] * timing.card_read_s}
    return {"commands": cmds, "n_commands": n, "timing": {
        "boot_s": timing.boot_s, "command_s": timing.command_s, "jitter_s": timing.jitter_s,
        "card_read_s": timing.card_read_s}, "parts": parts, "total": sum(parts.values())}


# -- 2. instrumented run (child process) ------------------------------------------------------------
def count_commands(seed: int, out: Path) -> None:
    """Run the suite against an in-process SimBench and write what the terminal really did."""
    import io
    from collections import Counter

    from rich.console import Console

    from posbench.runner import run_hil
    from posbench.sim.bench import SimBench
    from posbench.sim.terminal import VirtualTerminal
    from posbench.drivers.serial.agent import AgentTerminal

    counts: Counter[str] = Counter()
    drawn: list[float] = []
    marks: dict[str, float] = {}
    drivers: list[AgentTerminal] = []
    o_dispatch, o_latency = VirtualTerminal._dispatch, VirtualTerminal._latency
    o_serve, o_post, o_request = VirtualTerminal._serve_one, AgentTerminal.__post_init__, AgentTerminal.request

    def _dispatch(self, req):
        counts[req.command] += 1
        return o_dispatch(self, req)

    def _latency(self):
        delay = o_latency(self)
        drawn.append(delay)
        return delay

    def _serve_one(self):
        marks.setdefault("first_enq_acked", time.monotonic())
        return o_serve(self)

    def _post(self):
        drivers.append(self)
        return o_post(self)

    def _request(self, *a, **kw):
        marks.setdefault("first_request", time.monotonic())
        return o_request(self, *a, **kw)

    VirtualTerminal._dispatch, VirtualTerminal._latency = _dispatch, _latency
    VirtualTerminal._serve_one = _serve_one
    AgentTerminal.__post_init__, AgentTerminal.request = _post, _request
    out.parent.mkdir(parents=True, exist_ok=True)
    with SimBench(seed=seed) as sim:
        term = sim.terminal
        power_on = term.booted_at - term.timing.boot_s
        bench_file = sim.write_bench(out.parent / "bench.toml")
        t0 = time.monotonic()
        hil = run_hil(bench_file, out.parent / "v.json", out.parent / "r.html",
                      out.parent / "j.xml", None, Console(file=io.StringIO()))
        code, doc = hil.code, hil.doc
        suite_s = time.monotonic() - t0
        result = {
            "pytest_exit": code, "verdict": doc and doc["verdict"],
            "commands": dict(counts), "frames_received": term.link.stats.frames_received,
            "commands_since_boot": term.commands_since_boot, "restarts": term.restarts,
            "command_delay_drawn_s": sum(drawn), "command_delays_drawn": len(drawn),
            "card_read_s": term.timing.card_read_s, "boot_s": term.timing.boot_s,
            "first_request_after_power_on_s": marks.get("first_request", math.nan) - power_on,
            "first_enq_acked_after_power_on_s": marks.get("first_enq_acked", math.nan) - power_on,
            "driver_enq_retries": sum(d.link.stats.enq_retries for d in drivers),
            "driver_link_stats": [d.link.stats.snapshot() for d in drivers],
            "suite_s": suite_s, "sim_workdir": str(sim.workdir),
        }
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")


# -- child process handling ---------------------------------------------------------------------------
def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _descendants(pid: int) -> list[tuple[int, str | None]]:
    """(pid, start time) of every descendant, so a later kill hits only those very processes."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                kids = Path(f"/proc/{parent}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                found.append((kid, _start_time(kid)))
                todo.append(kid)
    return found


def stop_child(proc: subprocess.Popen, grace: float = 12.0) -> None:
    """SIGINT (posbench then stops its own virtual bench), SIGKILL after ``grace`` s; then any
    descendant still alive (a virtual bench orphaned by the kill) gets SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    kids = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid, st in kids if st is not None and _start_time(pid) == st]
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in alive if _start_time(pid) is not None]
            time.sleep(0.05)
        if not alive:
            break


def run_counted(seed: int, workdir: Path) -> dict:
    out = workdir / "count" / "count.json"
    err = workdir / "count.stderr"
    with open(err, "wb") as errf:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--count-commands",
                                 str(out), "--seed", str(seed)], cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=errf, stderr=errf, start_new_session=True,
                                env={**os.environ, "TMPDIR": str(workdir)})
        try:
            code = proc.wait(120)
        finally:
            stop_child(proc)
    if code != 0 or not out.exists():
        raise RuntimeError(f"instrumented run failed ({code}): {err.read_text(errors='replace')[-1500:]}")
    return json.loads(out.read_text())


# -- 3. timed runs of the real command --------------------------------------------------------------
_TEST_LINE = re.compile(r"^\s*\[(\d+)/(\d+)\]\s+(\S+)\s+(\S+)\s+([\d.]+) s")


def timed_triage(seed: int, workdir: Path, index: int) -> dict:
    run_dir = workdir / f"triage-{index}"
    run_dir.mkdir()
    paths = {k: run_dir / f"verdict.{k}" for k in ("json", "html", "xml")}
    cmd = [str(POSBENCH), "triage", "--seed", str(seed), "--json", str(paths["json"]),
           "--html", str(paths["html"]), "--junit", str(paths["xml"])]
    # TMPDIR: the virtual bench's own temporary files land in our directory, away from others'
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120", "TMPDIR": str(run_dir)}
    lines: list[tuple[float, str]] = []
    with open(run_dir / "stderr", "wb") as errf:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=errf, start_new_session=True)
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.append((time.monotonic() - t0, raw.decode(errors="replace").rstrip("\n")))
            code = proc.wait(60)
            wall = time.monotonic() - t0
        finally:
            if proc.stdout:
                proc.stdout.close()
            stop_child(proc)
    if code != 0:
        raise RuntimeError(f"posbench triage exited {code} for a healthy unit:\n"
                           + "\n".join(l for _, l in lines[-15:])
                           + (run_dir / "stderr").read_text(errors="replace")[-1500:])
    doc = json.loads(paths["json"].read_text())

    def when(pred) -> float:
        for t, line in lines:
            if pred(line):
                return t
        raise RuntimeError("unexpected output of posbench triage (a phase line is missing):\n"
                           + "\n".join(line for _, line in lines))
    t_banner = when(lambda l: l.startswith("starting the virtual bench"))
    t_running = when(lambda l: re.match(r"running \d+ HIL tests", l))
    tests = [(t, _TEST_LINE.match(l)) for t, l in lines if _TEST_LINE.match(l)]
    t_last_test = tests[-1][0]
    t_reports = when(lambda l: l.startswith("reports:"))
    return {
        "wall_s": wall, "exit": code, "verdict": doc["verdict"], "pytest_session_s": doc["duration_s"],
        "tests": {t["nodeid"].split("::")[-1]: t["duration_s"] for t in doc["tests"]},
        "split": {
            "cli_startup": t_banner,                        # interpreter, click, rich, imports
            "bench_and_pytest_startup": t_running - t_banner,  # sim process up + pytest configure/collect
            "tests": t_last_test - t_running,               # the five tests, fixtures included
            "finish": t_reports - t_last_test,              # verdict, HTML/JUnit/JSON, bench stop
            "exit": wall - t_reports,                       # interpreter shutdown
        },
        "lines": [[round(t, 4), l] for t, l in lines],
    }


def time_vbench(seed: int, k: int) -> list[dict]:
    """Start and stop the virtual bench alone (its own process, as under triage)."""
    from posbench.sim.launcher import VirtualBench
    out = []
    for _ in range(k):
        vb = VirtualBench(seed=seed)
        try:
            t0 = time.monotonic()
            vb.start()
            t1 = time.monotonic()
        finally:
            t2 = time.monotonic()
            vb.stop()
            t3 = time.monotonic()
        out.append({"start_s": t1 - t0, "stop_s": t3 - t2})
    return out


def run(k: int = 3, seed: int = 1) -> dict:
    with tempfile.TemporaryDirectory(prefix="posbench-bench-") as tmp:
        workdir = Path(tmp)
        design = designed_waits()
        counted = run_counted(seed, workdir)
        vbench = time_vbench(seed, k)
        runs = [timed_triage(seed, workdir, i) for i in range(k)]
    exact = counted["boot_s"] + counted["command_delay_drawn_s"] \
        + counted["commands"].get("SALE", 0) * counted["card_read_s"]
    walls = [r["wall_s"] for r in runs]
    med = statistics.median
    return {
        "benchmark": "triage_overhead", "k": k, "seed": seed,
        "command": f"{POSBENCH.relative_to(ROOT)} triage --seed {seed} --json DIR/verdict.json "
                   "--html DIR/verdict.html --junit DIR/verdict.xml",
        "designed": design, "counted": counted, "designed_exact_s": exact,
        "vbench": vbench, "runs": runs,
        "wall": {"median": med(walls), "min": min(walls), "max": max(walls)},
        "ratio": med(walls) / design["total"],
        "machine": machine(),
    }


# -- report -------------------------------------------------------------------------------------------
def markdown(res: dict) -> str:
    d, c, runs = res["designed"], res["counted"], res["runs"]
    t = d["timing"]
    med = statistics.median
    s = lambda x: f"{x:.2f}"  # noqa: E731
    wall = res["wall"]
    out = [f"`{res['command']}`, {res['k']} runs, healthy unit, seed {res['seed']}; every run "
           f"exited 0 with verdict `pass`. Times in seconds.\n"]
    out.append(table(
        ["", "median", "min", "max"],
        [["wall time of `posbench triage`", s(wall["median"]), s(wall["min"]), s(wall["max"])],
         ["designed waits (formula)", s(d["total"]), "", ""],
         ["**overhead = wall / designed waits**", f"**{res['ratio']:.2f}x**",
          f"{wall['min'] / d['total']:.2f}x", f"{wall['max'] / d['total']:.2f}x"],
         ["time beyond the designed waits", s(wall["median"] - d["total"]),
          s(wall["min"] - d["total"]), s(wall["max"] - d["total"])]]))
    cmds = d["commands"]
    counted_cmds = c["commands"]
    agree = counted_cmds == cmds and c["frames_received"] == d["n_commands"]
    out.append(
        f"\n**Designed waits** = boot_s + N_cmd x (command_s + jitter_s/2) + N_sale x card_read_s "
        f"= {t['boot_s']:g} + {d['n_commands']} x ({t['command_s']:g} + {t['jitter_s']:g}/2) + "
        f"{cmds['SALE']} x {t['card_read_s']:g} = {d['parts']['boot']:.2f} + {d['parts']['commands']:.2f} + "
        f"{d['parts']['card_reads']:.2f} = **{d['total']:.2f} s**. Values from `TerminalTiming` "
        f"(boot_s = the profile's `boot_time_s`) and `fixtures/profiles/pt100.toml` `[tests]`; "
        f"N_cmd by command: " + ", ".join(f"{k} {v}" for k, v in cmds.items())
        + " (1 ST + 1 ID in the identity fixture; link_commands alternating ST/ID; 1 ST in test_status; "
        f"1 ST + ceil(log_records/{LOG_PAGE}) LOG in test_transaction_log; one SALE per sale amount).\n")
    out.append(
        "**Check by instrumented run** (same suite, same seed, in-process SimBench): the virtual "
        "terminal served " + ", ".join(f"{k} {v}" for k, v in counted_cmds.items())
        + f" = {c['frames_received']} frames (its own `link.stats.frames_received`), "
        + ("matching the formula" if agree else "**not** matching the formula")
        + f"; the delays it actually drew sum to {c['command_delay_drawn_s']:.3f} s, so the exact "
        f"designed waits of this seed are {res['designed_exact_s']:.2f} s. The suite's first request "
        f"came {c['first_request_after_power_on_s']:.2f} s after the unit's power-on; the unit was "
        f"ready at {c['boot_s']:g} s but first acknowledged an ENQ at "
        f"{c['first_enq_acked_after_power_on_s']:.2f} s ({c['driver_enq_retries']} ENQ retries "
        f"by the driver while it booted).\n")
    split_names = [("cli_startup", "CLI start-up (interpreter, imports) to the first line"),
                   ("bench_and_pytest_startup", "virtual bench start-up + pytest start-up and collection"),
                   ("tests", "the HIL tests (fixtures included)"),
                   ("finish", "verdict, JSON/HTML/JUnit reports, virtual bench stop"),
                   ("exit", "interpreter exit")]
    rows = [[label, s(med([r["split"][key] for r in runs])),
             s(min(r["split"][key] for r in runs)), s(max(r["split"][key] for r in runs))]
            for key, label in split_names]
    out.append("**Split of the wall time**, from the arrival time of the CLI's output lines:\n")
    out.append(table(["phase", "median", "min", "max"], rows))
    vb = res["vbench"]
    out.append(
        f"\nThe virtual bench alone (`VirtualBench`, its own process, {len(vb)} cycles): start "
        f"{s(med([v['start_s'] for v in vb]))} s, stop {s(med([v['stop_s'] for v in vb]))} s (medians).\n")
    names = list(runs[0]["tests"])
    designed_per_test = _designed_per_test(d)
    rows = [[n, s(med([r["tests"][n] for r in runs])), designed_per_test.get(n, "")] for n in names]
    rows.append(["pytest session (verdict `duration_s`)", s(med([r["pytest_session_s"] for r in runs])),
                 s(d["total"])])
    out.append("**Per test** (verdict JSON `duration_s`: setup + call + teardown), against its designed waits:\n")
    out.append(table(["test", "median", "designed waits"], rows))
    return "\n".join(out) + "\n"


def _designed_per_test(d: dict) -> dict[str, str]:
    t, c = d["timing"], d["commands"]
    per = t["command_s"] + t["jitter_s"] / 2
    ids_st_link = c["ID"] - 1 + c["ST"] - 3
    return {
        "test_identity": f"{t['boot_s'] + 2 * per:.2f} (boot + 1 ST + 1 ID)",
        "test_link_health": f"{ids_st_link * per:.2f} ({ids_st_link} cmds)",
        "test_status": f"{per:.2f} (1 ST)",
        "test_transaction_log": f"{(1 + c['LOG']) * per:.2f} (1 ST + {c['LOG']} LOG)",
        "test_code01_origin": f"{c['SALE'] * (per + t['card_read_s']):.2f} ({c['SALE']} SALE)",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", type=int, default=3, help="timed triage runs (default 3)")
    ap.add_argument("--seed", type=int, default=1, help="virtual bench seed (default 1)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--count-commands", type=Path, help=argparse.SUPPRESS)  # the child of step 2
    args = ap.parse_args(argv)
    exit_cleanly_on_sigterm()
    if args.count_commands:
        count_commands(args.seed, args.count_commands)
        return 0
    return run_and_print(lambda: run(args.k, args.seed), markdown, args.json,
                         "interrupted; child processes stopped, temporary files removed")


if __name__ == "__main__":
    sys.exit(main())
