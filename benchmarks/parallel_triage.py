"""Triage cost: N virtual benches triaged at once, CPU per triage, where it goes, faulty units.

Three measurements, each with the real command (``.venv/bin/posbench triage --seed S``, every
run its own process starting its own virtual bench, as a technician's would):

1. **parallel**: for each N (default 1, 2, 4, 8), N triages started at once (seeds S .. S+N-1,
   healthy units, one result store for the batch): the batch's wall time relative to N = 1's,
   each triage's wall time and its CPU seconds, children included (``os.wait4``'s rusage of
   the triage: its own process, the virtual bench process it waits for, and their helpers);
2. **faulty units**: triages of injected faults, one at a time (default ``power_supply`` at
   three seeds and ``firmware_driver`` + ``power_supply`` at seed 193892): wall time and CPU,
   the verdict's top causes, against the goal: the healthy triage's wall time plus a power
   cycle for each time the bench had to bring the silent unit back;
3. **profile** (``--profile``, needs ``py-spy`` on PATH or in the venv): one healthy triage
   sampled with ``py-spy record --gil --subprocesses`` (only the thread holding a process's
   GIL, so samples follow Python's CPU), summed per process and per area (imports by package,
   plots, the result store, reports, each emulator's loop, ...).

    .venv/bin/python benchmarks/parallel_triage.py [--n 1 2 4 8] [--seed 1] [--fault-runs DEFAULT]
                                                  [--profile] [--quick] [--json FILE]

``--quick`` (what ``make bench`` runs): N = 1 and 4, one faulty unit, no profile. N = 1 runs
``ONE_REPEATS`` times and the median is the reference.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, exit_cleanly_on_sigterm, machine, run_and_print, stop_child, table  # noqa: E402

POSBENCH = ROOT / ".venv" / "bin" / "posbench"
BATCH_TIMEOUT_S = 600.0
"""A batch still running after this many seconds is stopped (a triage must never hang)."""
FAULT_RUNS = ["power_supply@1", "power_supply@2", "power_supply@3", "firmware_driver+power_supply@193892"]
"""Faulty units of measurement 2, as FAULT[+FAULT...]@SEED."""
QUICK_FAULT_RUNS = ["power_supply@1"]
OFF_S = 0.5
"""Seconds a silent unit stays off when the bench power cycles it (``posbench.fixtures.unit.OFF_S``)."""


# -- running triages ------------------------------------------------------------------------------
def _command(seed: int, faults: list[str], run_dir: Path) -> list[str]:
    cmd = [str(POSBENCH), "triage", "--seed", str(seed), "--json", str(run_dir / "verdict.json"),
           "--html", str(run_dir / "verdict.html"), "--junit", str(run_dir / "verdict.xml")]
    for fault in faults:
        cmd += ["--fault", fault]
    return cmd


def batch(specs: list[tuple[int, list[str]]], workdir: Path, name: str) -> dict:
    """Start one triage per (seed, faults) at once, wait for all; wall and CPU of each.

    Every triage runs in its own directory (its reports and its virtual bench's temporary files)
    with the batch's one result store (``reports/`` of the batch directory)."""
    batch_dir = workdir / name
    batch_dir.mkdir()
    procs: dict[int, tuple[int, subprocess.Popen, Path, float]] = {}
    results: list[dict | None] = [None] * len(specs)
    load_before = os.getloadavg()
    t0 = time.monotonic()
    try:
        for i, (seed, faults) in enumerate(specs):
            run_dir = batch_dir / f"run-{i}"
            run_dir.mkdir()
            env = {**os.environ, "COLUMNS": "120", "TMPDIR": str(run_dir)}
            with open(run_dir / "stdout", "wb") as out:
                proc = subprocess.Popen(_command(seed, faults, run_dir), cwd=batch_dir, env=env,
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            procs[proc.pid] = (i, proc, run_dir, time.monotonic())
        while procs:
            pid, status, usage = os.wait4(-1, os.WNOHANG)  # a triage's rusage includes its bench's
            if pid == 0:
                if time.monotonic() - t0 > BATCH_TIMEOUT_S:
                    raise RuntimeError(f"batch {name} still running after {BATCH_TIMEOUT_S:g} s")
                time.sleep(0.05)
                continue
            if pid not in procs:
                continue
            i, proc, run_dir, started = procs.pop(pid)
            proc.returncode = os.waitstatus_to_exitcode(status)
            seed, faults = specs[i]
            results[i] = _result(seed, faults, run_dir, proc.returncode, time.monotonic() - started,
                                 usage.ru_utime, usage.ru_stime)
    finally:
        for _, proc, _, _ in procs.values():
            stop_child(proc)
    wall = time.monotonic() - t0
    done = [r for r in results if r is not None]
    return {"n": len(specs), "wall_s": wall, "runs": done, "loadavg_before": list(load_before),
            "loadavg_after": list(os.getloadavg()),
            "cpu_s_per_triage": statistics.fmean(r["cpu_s"] for r in done)}


def _result(seed: int, faults: list[str], run_dir: Path, code: int, wall: float, user: float, system: float) -> dict:
    res = {"seed": seed, "faults": faults, "exit": code, "wall_s": wall, "cpu_s": user + system,
           "user_s": user, "system_s": system, "verdict": None, "causes": [], "tests": {}, "boots": 0,
           "boot_s": None}
    try:
        doc = json.loads((run_dir / "verdict.json").read_text())
    except (OSError, ValueError):
        res["output"] = (run_dir / "stdout").read_text(errors="replace")[-2000:]
        return res
    res.update(verdict=doc["verdict"], session_s=doc["duration_s"],
               causes=[(c["id"], round(c["confidence"], 2)) for c in doc["causes"]][:3],
               tests={t["nodeid"].split("::")[-1]: round(t["duration_s"], 2) for t in doc["tests"]})
    res["boots"] = count_revivals((run_dir / "stdout").read_text(errors="replace"))
    boot = [m["value"] for m in doc["measurements"] if m["name"] == "cold_boot_s" and m.get("value") is not None]
    res["boot_s"] = boot[0] if boot else None
    if code not in (0, 1):
        res["output"] = (run_dir / "stdout").read_text(errors="replace")[-2000:]
    return res


REVIVED = "for a silent unit to come back after a power cycle"
"""What ``posbench triage`` prints after each power cycle of a unit that stopped answering."""


def count_revivals(output: str) -> int:
    """Power cycles the bench made to bring back a silent unit (the lines the triage prints; each
    wait lasts longer than the 1.5 s after which a wait is shown). The unit's own resets are not
    counted: the goal built on this is the stricter for it."""
    return sum(1 for line in output.splitlines() if REVIVED in line and "waited" in line)


# -- profile ---------------------------------------------------------------------------------------
def _py_spy() -> str | None:
    here = ROOT / ".venv" / "bin" / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


_OWN = re.compile(r"\((bench|drivers|fixtures|tests)/([^:]+):\d+\)")
_MODULE = re.compile(r"<module> \(([^:]+):\d+\)")


def area(frames: list[str]) -> str:
    """What a sampled stack (root first) was doing, in a few words."""
    if not frames:
        return "native code (no Python frame)"
    joined = ";".join(frames)
    if "_find_and_load" in joined:
        mods = [m.group(1) for f in frames if (m := _MODULE.match(f)) and m.group(1) != "posbench"]  # not the script
        external = [m for m in mods if not re.match(r"(bench|drivers|fixtures|tests)/", m)]
        if not mods:
            return "imports: (no module frame yet)"
        return f"imports: {(external[0].split('/')[0] if external else mods[-1]).removesuffix('.py')}"
    rules = [("bench/render/plots.py", "plots (matplotlib)"), ("gc_collect_harder", "gc.collect (pytest)"),
             ("bench/store/", "result store"), ("pytest_html", "HTML report"), ("verdict_html", "HTML report"),
             ("junitxml", "JUnit report"), ("bench/setup/preflight.py", "preflight"),
             ("bench/spec/supply_watch.py", "supply watch"), ("bench/diagnos", "diagnosis")]
    for needle, label in rules:
        if needle in joined:
            return label
    if any("Thread._bootstrap" in f for f in frames[:2]):
        for f in frames:
            if (m := _OWN.search(f)) and not f.startswith("Worker."):
                return f"thread: {f.split(' (')[0]}"
        return "thread: other"
    for f in reversed(frames):
        if (m := _OWN.search(f)):
            return f"{m.group(1)}/{m.group(2)}"
    return "pytest and other"


def profile(seed: int, workdir: Path, rate: int = 250) -> dict:
    spy = _py_spy()
    if spy is None:
        return {"skipped": "py-spy is not installed (.venv/bin/pip install py-spy)"}
    run_dir = workdir / "profile"
    run_dir.mkdir()
    raw = run_dir / "profile.txt"
    cmd = [spy, "record", "--gil", "--subprocesses", "-r", str(rate), "-f", "raw", "-o", str(raw), "--",
           *_command(seed, [], run_dir)]
    with open(run_dir / "stdout", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=run_dir, env={**os.environ, "TMPDIR": str(run_dir)},
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code = proc.wait(BATCH_TIMEOUT_S)
        finally:
            stop_child(proc)
    if code != 0 or not raw.exists():
        return {"skipped": f"py-spy exited {code}: " + (run_dir / "stdout").read_text(errors="replace")[-800:]}
    per_process: Counter[str] = Counter()
    per_area: dict[str, Counter[str]] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        # root: the triage process; a frame naming another process is the virtual bench's
        sub = next((f for f in frames[1:] if f.startswith("process ")), None)
        who = "virtual bench (posbench sim)" if sub and " sim " in sub else "posbench triage"
        if sub:
            frames = frames[frames.index(sub) + 1:]
        else:
            frames = frames[1:]
        per_process[who] += int(count)
        per_area.setdefault(who, Counter())[area(frames)] += int(count)
    return {"rate_hz": rate, "per_process": dict(per_process),
            "per_area": {k: dict(v.most_common()) for k, v in per_area.items()},
            "command": "py-spy record --gil --subprocesses -r %d -f raw -- posbench triage --seed %d" % (rate, seed)}


# -- the whole benchmark ---------------------------------------------------------------------------
def _parse_fault_run(spec: str) -> tuple[int, list[str]]:
    faults, _, seed = spec.partition("@")
    return int(seed or 1), [f for f in faults.split("+") if f]


ONE_REPEATS = 3
"""Batches of N = 1 run this many times: the reference is their median (one run alone can catch a
burst of the machine's other work)."""


def run(ns: list[int], seed: int, fault_runs: list[str], with_profile: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="posbench-parallel-") as tmp:
        workdir = Path(tmp)
        batches = []
        for n in ns:
            for k in range(ONE_REPEATS if n == 1 else 1):
                batches.append(batch([(seed + i, []) for i in range(n)], workdir, f"parallel-{n}-{k}"))
        faulty = [batch([_parse_fault_run(spec)], workdir, f"fault-{k}")["runs"][0]
                  for k, spec in enumerate(fault_runs)]
        prof = profile(seed, workdir) if with_profile else None
    return {"benchmark": "parallel_triage", "seed": seed, "batches": batches, "faulty": faulty,
            "profile": prof, "machine": machine(),
            "command": f"{POSBENCH.relative_to(ROOT)} triage --seed S --json DIR/verdict.json "
                       "--html DIR/verdict.html --junit DIR/verdict.xml"}


def check(res: dict) -> list[str]:
    """What went wrong: a healthy unit not passed, a faulty unit passed, a bench error."""
    problems = []
    for b in res["batches"]:
        for r in b["runs"]:
            if r["exit"] != 0 or r["verdict"] != "pass":
                problems.append(f"healthy seed {r['seed']} (batch of {b['n']}): exit {r['exit']}, "
                                f"verdict {r['verdict']} {r.get('output', '')[-400:]}")
    for r in res["faulty"]:
        if r["exit"] != 1 or r["verdict"] != "fault":
            problems.append(f"faults {'+'.join(r['faults'])} seed {r['seed']}: exit {r['exit']}, "
                            f"verdict {r['verdict']} {r.get('output', '')[-400:]}")
    return problems


def markdown(res: dict) -> str:
    s = lambda x: f"{x:.1f}"  # noqa: E731
    batches = res["batches"]
    ones = [b["wall_s"] for b in batches if b["n"] == 1]
    ref = statistics.median(ones) if ones else batches[0]["wall_s"] if batches else None
    healthy = statistics.median(r["wall_s"] for b in batches if b["n"] == 1 for r in b["runs"]) if ones else None
    boot = next((r["boot_s"] for b in batches for r in b["runs"] if r["boot_s"]), None) or 0.0
    out = [f"`{res['command']}` started N times at once (seeds {res['seed']} .. {res['seed']}+N-1, "
           "healthy units, each its own process and virtual bench). CPU = user + system seconds of "
           "the triage and its children (the virtual bench), from `os.wait4`. Times in seconds.\n"]
    rows = []
    for b in batches:
        walls = [r["wall_s"] for r in b["runs"]]
        verdicts = Counter(r["verdict"] for r in b["runs"])
        rows.append([str(b["n"]), s(b["wall_s"]), f"**{b['wall_s'] / ref:.2f}x**",
                     f"{s(min(walls))} / {s(statistics.median(walls))} / {s(max(walls))}",
                     f"{b['cpu_s_per_triage']:.2f}",
                     f"{sum(r['cpu_s'] for r in b['runs']) / b['wall_s']:.2f}",
                     ", ".join(f"{v} {k}" for k, v in verdicts.items()),
                     f"{b['loadavg_before'][0]:.2f}"])
    if batches:
        out.append(table(["N", "batch wall", "vs N=1 (median of its runs)", "triage wall min / median / max",
                          "CPU s per triage", "CPUs busy (batch CPU / wall)", "verdicts", "load (1 min) before"],
                         rows))
    if res["faulty"]:
        cycle = OFF_S + boot
        out.append(f"\n**Faulty units**, one at a time (`--fault ID ... --seed S`). Goal: no more than a "
                   f"healthy triage ({s(healthy) if healthy else '?'} s, the median of N = 1 above) plus its boots; counted here are the "
                   f"power cycles the bench made to bring back a silent unit (the lines 'waited ... {REVIVED}'), "
                   f"{cycle:.2f} s each ({OFF_S:g} s off + the healthy unit's `cold_boot_s`). The unit's own "
                   "resets are not counted, so the goal is the stricter for it.\n")
        rows = []
        for r in res["faulty"]:
            goal = (healthy or float("nan")) + r["boots"] * cycle
            slow = sorted(r["tests"].items(), key=lambda kv: -kv[1])[:3]
            rows.append(["+".join(r["faults"]), str(r["seed"]), s(r["wall_s"]), f"{r['cpu_s']:.2f}",
                         f"{r['verdict']} ({', '.join(f'{c} {p}' for c, p in r['causes'][:2])})",
                         str(r["boots"]), s(goal), f"{r['wall_s'] / goal:.2f}x",
                         ", ".join(f"{k} {v:.1f}" for k, v in slow)])
        out.append(table(["faults", "seed", "wall", "CPU s", "verdict (top causes)", "power cycles",
                          "goal", "wall / goal", "slowest tests (s)"], rows))
    prof = res.get("profile")
    if prof and "skipped" not in prof:
        rate = prof["rate_hz"]
        out.append(f"\n**Where the CPU goes** (`{prof['command']}`; samples of the thread holding each "
                   f"process's GIL, {rate} Hz, in seconds):\n")
        for who, areas in prof["per_area"].items():
            total = prof["per_process"][who] / rate
            top = list(areas.items())[:12]
            out.append(f"- {who}: {total:.2f} s sampled; " + ", ".join(f"{a} {n / rate:.2f}" for a, n in top))
    elif prof:
        out.append(f"\nProfile skipped: {prof['skipped']}")
    problems = check(res)
    if problems:
        out.append("\n**Wrong verdicts or bench errors:**\n" + "\n".join(f"- {p}" for p in problems))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="*", default=[1, 2, 4, 8],
                    help=f"batch sizes (default 1 2 4 8; N = 1 runs {ONE_REPEATS} times); none: skip")
    ap.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    ap.add_argument("--fault-runs", nargs="*", default=FAULT_RUNS, metavar="FAULT[+FAULT]@SEED",
                    help=f"faulty units, one at a time (default {' '.join(FAULT_RUNS)}); none: skip")
    ap.add_argument("--profile", action="store_true", help="also profile one healthy triage with py-spy")
    ap.add_argument("--quick", action="store_true", help="N = 1 and 4, one faulty unit, no profile")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    exit_cleanly_on_sigterm()
    if args.quick:
        args.n, args.fault_runs, args.profile = [1, 4], QUICK_FAULT_RUNS, False
    return run_and_print(lambda: run(args.n, args.seed, args.fault_runs, args.profile), markdown, args.json,
                         "interrupted; child processes stopped, temporary files removed")


if __name__ == "__main__":
    sys.exit(main())
