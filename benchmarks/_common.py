"""Helpers shared by the benchmark scripts: statistics, machine description, clean exits."""
from __future__ import annotations

import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

from bench.signals import catch_stop_signals  # noqa: E402
from bench.stats import percentile  # noqa: E402


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM (and SIGHUP) into KeyboardInterrupt so every ``finally`` runs, as on Ctrl-C."""
    catch_stop_signals()


def summary(samples: list[float]) -> dict[str, float]:
    """median, p95, mean, min, max of ``samples`` (seconds in, seconds out)."""
    s = sorted(samples)
    p95 = percentile(s, 95)
    return {"n": len(s), "median": statistics.median(s), "p95": p95, "mean": statistics.fmean(s),
            "min": s[0], "max": s[-1]}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    return {"nproc": str(os.cpu_count()), "cpu": cpu_model(),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "os": f"{platform.system()} {platform.release()}",
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def run_and_print(run, markdown, json_path: Path | None, interrupted: str) -> int:
    """Run a benchmark, print its markdown, optionally keep the raw results as JSON.

    Ctrl-C (or SIGTERM, see ``exit_cleanly_on_sigterm``) prints ``interrupted`` and returns 130.
    """
    import json
    try:
        res = run()
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    print(markdown(res))
    if json_path:
        json_path.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return 0
