"""Helpers shared by the benchmark scripts: statistics, machine description, clean exits."""
from __future__ import annotations

import abc
import multiprocessing
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Protocol

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

from posbench.core.signals import catch_stop_signals  # noqa: E402
from posbench.core.stats import percentile  # noqa: E402


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


PEER_PLACES = ("process", "thread")
"""Where a round-trip benchmark's peer (the terminal's end of the pty) runs: a process of its
own (the default; a real terminal is never in the driver's process) or a thread of the
benchmark's own process (the method up to 2026-11-28: the peer's Python then competes with the
timed client's for the GIL)."""


class Peer(Protocol):
    """The terminal's end of a round-trip benchmark's pty."""

    path: str
    """The pty slave the timed clients open."""

    @property
    def served(self) -> int: ...
    def check(self) -> None: ...
    def state(self) -> str: ...
    def close(self) -> None: ...


class PeerProcess:
    """A ``Peer`` built by ``make()`` in a child process (forked, so ``make`` needs no pickling)
    and driven over a pipe: the timed client and the peer share no interpreter and no GIL, as
    with a real terminal. ``pid`` is the child's."""

    def __init__(self, make: Callable[[], Peer], start_timeout_s: float = 10.0):
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve_peer, args=(child, make), name="benchmark-peer", daemon=True)
        self._process.start()
        child.close()
        self.pid = self._process.pid
        try:
            self._status = self._ask(None, start_timeout_s)
        except BaseException:
            self.close()
            raise
        self.path: str = self._status["path"]

    def _ask(self, command: str | None, timeout_s: float = 10.0) -> dict:
        if command is not None:
            self._conn.send(command)
        if not self._conn.poll(timeout_s):
            raise RuntimeError(f"the peer process (pid {self.pid}) did not answer within {timeout_s:g} s")
        status = self._conn.recv()
        if status.get("failed"):
            raise RuntimeError(f"the peer process failed: {status['failed']}")
        return status

    @property
    def served(self) -> int:
        return self._ask("status")["served"]

    def check(self) -> None:
        problem = self._ask("status")["problem"]
        if problem:
            raise RuntimeError(problem)

    def state(self) -> str:
        try:
            return self._ask("status", 2.0)["state"]
        except (RuntimeError, OSError, EOFError) as exc:
            return f"peer process: {exc}"

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._ask("stop", 5.0)
            except (RuntimeError, OSError, EOFError):
                pass
        self._process.join(3.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(2.0)
        self._conn.close()


def _serve_peer(conn, make: Callable[[], Peer]) -> None:
    """The child of ``PeerProcess``: build the peer, answer each request with its status; "stop"
    closes the peer first."""
    peer = None
    closed = False

    def status() -> dict:
        try:
            peer.check()
            problem = ""
        except Exception as exc:
            problem = str(exc)
        return {"path": peer.path, "served": peer.served, "problem": problem, "state": peer.state()}

    try:
        peer = make()
        conn.send(status())
        while conn.recv() != "stop":
            conn.send(status())
        closed = True
        peer.close()
        conn.send(status())
    except BaseException as exc:  # reported to the parent (Ctrl-C included)
        try:
            conn.send({"failed": repr(exc)})
        except Exception:
            pass
    finally:
        if peer is not None and not closed:
            try:
                peer.close()
            except Exception:
                pass
        conn.close()


class InMemoryPort(abc.ABC):
    """A byte port that answers a driver at once from memory (no pty, no peer): the driver's own
    CPU per exchange, with no I/O. Subclasses append their answers to ``pending`` in ``write``."""

    reopens = 0

    def __init__(self) -> None:
        self.pending = bytearray()

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Take the driver's bytes and queue the peer's answer in ``pending``."""

    def read(self, size: int, timeout: float) -> bytes:
        chunk = bytes(self.pending[:size])
        del self.pending[:size]
        return chunk

    def discard_input(self) -> None:
        self.pending.clear()

    def close(self) -> None:
        self.pending.clear()


# -- child processes (a `posbench triage` and the virtual bench it starts) -----------------------
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
