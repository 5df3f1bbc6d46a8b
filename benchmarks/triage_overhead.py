"""`posbench triage` wall time against the waits the virtual devices and the suite impose by design.

A healthy virtual unit makes the suite wait on purpose: its boots (``TerminalTiming.boot_s``),
``command_s`` + U(0, ``jitter_s``) per ECR command, ``card_read_s`` per card read or sale, and
the suite waits on purpose too (a baseline of supply readings, the USB watch window, a power
cycle's off time, a brownout's timing). Everything above that is the bench's own cost.

Three measurements:

1. one instrumented run, in a child process: the same suite (``posbench.run.runner.run_hil``) against
   an in-process ``SimBench`` with the same seed, logging every designed wait as an interval
   (``time.sleep`` called from the virtual unit's code or the suite's, every boot from
   ``UnitPower.events``) and every test's span, so each test's designed waits are the union of
   those within it; it also counts the commands the virtual terminal really served;
2. designed ECR waits by formula for the first five tests, from the code (the PT100 profile's
   ``[tests]``, ``TerminalTiming``, ``expected_commands``), checked against the count;
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, exit_cleanly_on_sigterm, machine, run_and_print, stop_child, table  # noqa: E402

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
    from posbench.setup.profile import profile_for_model
    from posbench.sim.bench import MODEL
    from posbench.sim.ecr.agent import TerminalTiming
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

    from posbench.run.runner import run_hil
    from posbench.sim.bench import SimBench
    from posbench.sim.ecr.agent import VirtualTerminal
    from posbench.drivers.ecr.agent.adapter import AgentTerminal

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
    waits: list[tuple[str, float, float]] = []
    spans: dict[str, list[float]] = {}
    _record_sleeps(waits)
    _record_windows(waits)
    _record_test_spans(spans)
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
            "pytest_exit": code, "verdict": doc and doc.verdict,
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
        assert sim.power is not None
        waits += boots(sim.power.events)
        result["designed_per_test"] = designed_per_test(waits, spans)
        first = min(t0 for t0, _ in spans.values())
        result["designed_before_tests_s"] = round(_union([(a, min(b, first)) for _, a, b in waits if a < first]), 3)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")


DEVICE_FILES = ("bench/sim/unit/model.py", "bench/sim/unit/host.py", "bench/sim/unit/front_end.py", "bench/sim/ecr/agent.py",
                "bench/sim/ecr/zvt/terminal.py", "bench/sim/ecr/zvt/wire.py")
"""Where the virtual unit waits on purpose: per-command latency, card reads, printing."""
SUITE_FILES = ("tests/hil/", "fixtures/unit.py", "drivers/host/echo.py")
"""Where the suite waits on purpose: baselines, observation windows, a power cycle's off time,
a brownout's timing, the pause between echoes (and short polls, which the union of intervals
absorbs into the waits they poll). The ARP probe's listening window (``arp_probe(timeout_s)``) is
logged by wrapping it."""


def _record_sleeps(waits: list[tuple[str, float, float]]) -> None:
    """Every ``time.sleep`` called from the virtual unit's or the suite's own code is logged as a
    designed wait (kind, start, end in ``time.time()`` seconds: pytest's clock for test spans)."""
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        code = sys._getframe(1).f_code
        caller = code.co_filename.replace(os.sep, "/") if code.co_name != "_run" else ""  # not an idle loop
        kind = "device" if caller.endswith(DEVICE_FILES) else "suite" if any(f in caller for f in SUITE_FILES) else ""
        if kind:
            t = time.time()
            waits.append((kind, t, t + seconds))
        real_sleep(seconds)
    time.sleep = sleep


def _record_windows(waits: list[tuple[str, float, float]]) -> None:
    """The suite's listening windows that are no sleep: the ARP probe listens ``timeout_s``."""
    from posbench.drivers.host import arp_probe as module
    original = module.arp_probe

    def arp_probe(*args, **kwargs):
        t = time.time()
        try:
            return original(*args, **kwargs)
        finally:
            waits.append(("suite", t, t + kwargs.get("timeout_s", 0.0)))
    module.arp_probe = arp_probe  # the HIL module imports the name when it is collected, after this


def _record_test_spans(spans: dict[str, list[float]]) -> None:
    """Each test's [start, stop] (``time.time()``), setup and teardown included, from its reports."""
    from posbench.run import runner
    original = runner.LiveProgress.pytest_runtest_logreport

    def logreport(self, report):
        name = report.nodeid.split("::")[-1]
        span = spans.setdefault(name, [report.start, report.stop])
        span[0], span[1] = min(span[0], report.start), max(span[1], report.stop)
        return original(self, report)
    runner.LiveProgress.pytest_runtest_logreport = logreport


def boots(events: list[tuple[float, str, float]]) -> list[tuple[str, float, float]]:
    """The unit's boots (``UnitPower.events`` boot_start -> ready, monotonic) as ``time.time()`` intervals."""
    offset = time.time() - time.monotonic()
    out, start = [], None
    for t, kind, _ in events:
        if kind == "boot_start":
            start = t
        elif kind == "ready" and start is not None:
            out.append(("boot", start + offset, t + offset))
            start = None
    return out


def designed_per_test(waits: list[tuple[str, float, float]], spans: dict[str, list[float]]) -> dict[str, dict]:
    """Per test: its seconds, and the union of the designed waits within its span (overlaps, such
    as a poll during a boot, count once), by kind."""
    out = {}
    for name, (t0, t1) in spans.items():
        inside = [(k, max(a, t0), min(b, t1)) for k, a, b in waits if b > t0 and a < t1]
        by_kind = {k: round(_union([(a, b) for kk, a, b in inside if kk == k]), 3) for k in ("device", "boot", "suite")}
        out[name] = {"test_s": round(t1 - t0, 3), "designed_s": round(_union([(a, b) for _, a, b in inside]), 3),
                     **by_kind}
    return out


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


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
    t_reports = when(lambda l: l.startswith(("report:", "reports:")))  # the last line: where the reports are
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
    suite_designed = sum(t["designed_s"] for t in counted["designed_per_test"].values()) \
        + counted["designed_before_tests_s"]
    return {
        "benchmark": "triage_overhead", "k": k, "seed": seed,
        "command": f"{POSBENCH.relative_to(ROOT)} triage --seed {seed} --json DIR/verdict.json "
                   "--html DIR/verdict.html --junit DIR/verdict.xml",
        "designed": design, "counted": counted, "designed_exact_s": exact,
        "vbench": vbench, "runs": runs,
        "wall": {"median": med(walls), "min": min(walls), "max": max(walls)},
        "designed_suite_s": suite_designed,
        "ratio": med(walls) / suite_designed,
        "machine": machine(),
    }


# -- report -------------------------------------------------------------------------------------------
def markdown(res: dict) -> str:
    d, c, runs = res["designed"], res["counted"], res["runs"]
    t = d["timing"]
    med = statistics.median
    s = lambda x: f"{x:.2f}"  # noqa: E731
    wall = res["wall"]
    total = res["designed_suite_s"]
    per_test = c["designed_per_test"]
    out = [f"`{res['command']}`, {res['k']} runs, healthy unit, seed {res['seed']}; every run "
           f"exited 0 with verdict `pass`. Times in seconds.\n"]
    out.append(table(
        ["", "median", "min", "max"],
        [["wall time of `posbench triage`", s(wall["median"]), s(wall["min"]), s(wall["max"])],
         ["designed waits of the whole suite (instrumented run)", s(total), "", ""],
         ["**overhead = wall / designed waits**", f"**{res['ratio']:.2f}x**",
          f"{wall['min'] / total:.2f}x", f"{wall['max'] / total:.2f}x"],
         ["time beyond the designed waits", s(wall["median"] - total),
          s(wall["min"] - total), s(wall["max"] - total)]]))
    kinds = {k: sum(v[k] for v in per_test.values()) for k in ("device", "boot", "suite")}
    out.append(
        f"\n**Designed waits**, measured in one instrumented run of the same suite and seed (an "
        f"in-process `SimBench`, `posbench.run.runner.run_hil`): every `time.sleep` the virtual unit takes "
        f"on purpose (`{'`, `'.join(DEVICE_FILES)}`: per-command latency, card reads, printing), "
        f"every boot of the unit (`UnitPower.events`, boot_start -> ready), and every `time.sleep` "
        f"the suite itself takes (`{'`, `'.join(SUITE_FILES)}`: baselines, observation windows, a "
        f"power cycle's off time, a brownout's timing), as intervals; per test the union of those "
        f"within its span (a poll during a boot counts once). Whole suite {total:.2f} s: unit "
        f"{kinds['device']:.2f} s, boots {kinds['boot']:.2f} s, the suite's own {kinds['suite']:.2f} s "
        f"(overlaps counted in each), {c['designed_before_tests_s']:.2f} s of it before the first test.\n")
    cmds = d["commands"]
    counted_cmds = c["commands"]
    agree = counted_cmds == cmds and c["frames_received"] == d["n_commands"]
    out.append(
        f"**ECR commands by formula** (the check kept from the five-test suite): boot_s + N_cmd x "
        f"(command_s + jitter_s/2) + N_sale x card_read_s = {t['boot_s']:g} + {d['n_commands']} x "
        f"({t['command_s']:g} + {t['jitter_s']:g}/2) + {cmds['SALE']} x {t['card_read_s']:g} = "
        f"{d['total']:.2f} s for the first five tests; N_cmd by command: "
        + ", ".join(f"{k} {v}" for k, v in cmds.items())
        + ". The instrumented run's terminal served " + ", ".join(f"{k} {v}" for k, v in counted_cmds.items())
        + f" = {c['frames_received']} frames in the whole suite"
        + (" (the formula's count)" if agree else " (the later tests send more)")
        + f"; its drawn delays sum to {c['command_delay_drawn_s']:.3f} s. The suite's first request came "
        f"{c['first_request_after_power_on_s']:.2f} s after the unit's power-on; the unit was ready at "
        f"{c['boot_s']:g} s and first acknowledged an ENQ at {c['first_enq_acked_after_power_on_s']:.2f} s "
        f"({c['driver_enq_retries']} ENQ retries by the driver while it booted).\n")
    split_names = [("cli_startup", "CLI start-up (interpreter, imports) to the first line"),
                   ("bench_and_pytest_startup", "virtual bench start-up, preflight, pytest start-up and collection"),
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
    formula = _designed_per_test(d)
    rows = []
    for n in names:
        got = med([r["tests"][n] for r in runs])
        dt = per_test.get(n)
        rows.append([n, s(got), s(dt["designed_s"]) if dt else "",
                     f"{got / dt['designed_s']:.2f}x" if dt and dt["designed_s"] > 0.05 else "",
                     f"{dt['device']:.2f} / {dt['boot']:.2f} / {dt['suite']:.2f}" if dt else "",
                     formula.get(n, "")])
    before = c["designed_before_tests_s"]
    rows.append(["before the first test (the unit's first boot, overlapping the start-up)", "", s(before), "",
                 "", ""])
    rows.append(["pytest session (verdict `duration_s`)", s(med([r["pytest_session_s"] for r in runs])),
                 s(total - before), f"{med([r['pytest_session_s'] for r in runs]) / (total - before):.2f}x", "", ""])
    out.append("**Per test** (verdict JSON `duration_s`: setup + call + teardown), against its designed waits:\n")
    out.append(table(["test", "median", "designed waits", "ratio", "unit / boots / suite", "ECR formula"], rows))
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
