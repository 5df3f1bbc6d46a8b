"""Run ``posbench sim`` as a child process and hand back its bench description."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import shutil
import tempfile
import time
import tomllib
from pathlib import Path

from posbench.core.errors import BenchError

from posbench.sim.bench import WORKDIR_PREFIX
from posbench.sim.unit.faults import format_faults


def sim_workdir(bench_file: Path) -> Path | None:
    """The work directory of the ``posbench sim`` that wrote ``bench_file`` (its ``[sim] workdir``,
    or where its ``[host] log`` is), if it is one of ours."""
    try:
        doc = tomllib.loads(bench_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    sim, host = doc.get("sim"), doc.get("host")
    if isinstance(sim, dict) and isinstance(sim.get("workdir"), str):
        workdir = Path(sim["workdir"])
    elif isinstance(host, dict) and isinstance(host.get("log"), str):
        workdir = Path(host["log"]).parent
    else:
        return None
    return workdir if workdir.name.startswith(WORKDIR_PREFIX) else None


class VirtualBench:
    """Context manager: a virtual bench in its own process, like devices on a real bench."""

    def __init__(self, faults: dict[str, float] | None = None, seed: int | None = None,
                 start_timeout: float = 20.0, stop_timeout: float = 5.0, protocol: str | None = None,
                 serial: str | None = None, profile: str | None = None, technician_s: float | None = None):
        """``profile``: the packaged DUT profile the bench is shaped like (``posbench sim
        --profile``; default the PT100's); ``protocol``: one of that profile's (default its first);
        ``technician_s``: the simulated technician's slowest presentation (s; default the sim's)."""
        self.faults, self.seed, self.protocol, self.serial = dict(faults or {}), seed, protocol, serial
        self.profile, self.technician_s = profile, technician_s
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="posbench-vbench-"))
        self.bench_file = self._dir / "bench.toml"
        self._stderr = self._dir / "sim.stderr"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Path:
        # a triage's own bench: not announced, `posbench discover` must not probe it mid-run
        cmd = [sys.executable, "-m", "posbench.cli", "sim", "--no-announce", "--write-bench", str(self.bench_file)]
        for fault in format_faults(self.faults):
            cmd += ["--fault", fault]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        if self.profile:
            cmd += ["--profile", self.profile]
        if self.protocol:
            cmd += ["--protocol", self.protocol]
        if self.serial:
            cmd += ["--serial", self.serial]
        if self.technician_s is not None:
            cmd += ["--technician-s", f"{self.technician_s:g}"]
        with open(self._stderr, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, start_new_session=True,
                                         env={**os.environ, "POSBENCH_PARENT_PID": str(os.getpid())})
        deadline = time.monotonic() + self.start_timeout
        while not self.bench_file.exists():
            if self.proc.poll() is not None:
                raise BenchError("virtual bench", "starting", f"exited with {self.proc.returncode}: "
                                 + self._stderr.read_text(errors="replace")[-800:])
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError("virtual bench", "starting",
                                 f"no bench description after {self.start_timeout:g} s")
            time.sleep(0.05)
        return self.bench_file

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout`` s: never hangs. What a killed bench
        could not remove itself (its work directory) is removed here."""
        workdir = sim_workdir(self.bench_file)
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(self.stop_timeout)
            except ProcessLookupError:
                pass
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        if self.proc is not None and os.geteuid() == 0:
            from posbench.sim.net.netlab import sweep_stale
            try:
                sweep_stale()  # a killed bench's network namespaces (its pid is gone now)
            except Exception:  # noqa: BLE001 - best effort; the next lab start sweeps again
                pass
        for path in (self.bench_file, self._stderr):
            path.unlink(missing_ok=True)
        try:
            self._dir.rmdir()
        except OSError:
            pass

    def __enter__(self) -> Path:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
