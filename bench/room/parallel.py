"""``posbench triage --reserve TAGS --parallel N``: N triages at once, a process and a place each.

Each child is an ordinary ``posbench triage --reserve TAGS`` (labgrid allows one client session
per process; each child reserves, acquires and releases its own place and writes its own verdict
into the shared ``--store``), so every unit's verdict stays whole whatever the others do. Their
lines are shown prefixed ``[k]``; a stop signal is passed on to each, which releases its place.
A child silent for longer than any step of a triage may take is stuck: it is stopped the same
way and counted as a bench error, so the batch never waits without end.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from posbench.core.console import say
from posbench.run.runner import TEST_TIMEOUT_S

STOP_WAIT_S = 60.0
"""Seconds the children get to end their runs and release their places after a stop signal."""
MEANING = {0: "no fault found", 1: "fault (or inconclusive)", 2: "bench error", 3: "usage or config error"}
SILENT_LIMIT_S = TEST_TIMEOUT_S + 120.0
"""Seconds a child may print nothing: a HIL test is stopped after ``TEST_TIMEOUT_S`` and a
reservation wait says how it goes every few seconds, so a child silent longer is stuck."""
POLL_S = 0.5
"""Seconds between looks at the children."""
WORST_FIRST = (3, 2, 1, 0)
"""The batch's exit status is the worst of its runs' in this order (a usage error first)."""


def child_args(argv: Sequence[str]) -> list[str]:
    """The command line of one child: ours without ``--parallel N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--parallel":
            skip = True
        elif not arg.startswith("--parallel="):
            out.append(arg)
    return out


def batch_status(codes: Sequence[int]) -> int:
    """The batch's exit status: the worst of the runs' (an unknown status counts as a bench error)."""
    codes = [c if c in MEANING else 2 for c in codes]
    return next(c for c in WORST_FIRST if c in codes)


def child_command(argv: Sequence[str]) -> list[str]:
    """The command line that runs one child of ``argv`` (``posbench`` arguments)."""
    return [sys.executable, "-m", "posbench.cli", *child_args(argv)]


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    """SIGTERM to each running child (it ends its run and releases its place), SIGKILL to one
    still running ``STOP_WAIT_S`` later."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5.0)


def run_parallel(n: int, argv: Sequence[str], console: Console, silent_limit_s: float = SILENT_LIMIT_S) -> int:
    """Run ``n`` children of ``argv`` (``posbench`` arguments) at once; their batch status.
    A child that prints nothing for ``silent_limit_s`` seconds is stopped and counts as exit 2."""
    cmd = child_command(argv)
    say(console, f"triaging {n} units at once, a place each: {escape(' '.join(child_args(argv)))}")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=env, text=True, errors="replace") for _ in range(n)]
    lock = threading.Lock()
    last_line = [time.monotonic()] * n

    def relay(k: int, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            last_line[k - 1] = time.monotonic()
            with lock:
                say(console, f"[dim]\\[{k}][/] {escape(line.rstrip())}")

    relays = [threading.Thread(target=relay, args=(k, p), name=f"triage-{k}", daemon=True)
              for k, p in enumerate(procs, 1)]
    for thread in relays:
        thread.start()
    stuck: set[int] = set()
    try:
        while any(p.poll() is None for p in procs):
            now = time.monotonic()
            for k, proc in enumerate(procs, 1):
                if k not in stuck and proc.poll() is None and now - last_line[k - 1] > silent_limit_s:
                    stuck.add(k)
                    with lock:
                        say(console, f"[{k}] printed nothing for {silent_limit_s:g} s: stuck, stopping it")
                    _stop([proc])
            time.sleep(POLL_S)
        codes = [2 if k in stuck else p.wait() for k, p in enumerate(procs, 1)]
    except KeyboardInterrupt:  # a stop signal (posbench.core.signals): each child releases its place
        _stop(procs)
        raise
    finally:
        for thread in relays:
            thread.join(5.0)
    for k, code in enumerate(codes, 1):
        say(console, f"[{k}] exit {code}: {MEANING.get(code, 'bench error (the run ended abnormally)')}"
                     + (" (stuck)" if k in stuck else ""))
    return batch_status(codes)
