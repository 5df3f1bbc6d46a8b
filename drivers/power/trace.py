"""Measurement traces: ``Trace`` (readings sampled over time) and ``monitor`` (sample a
``PowerMonitor`` in a background thread while something happens, after OpenHTF's monitors)."""
from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .errors import MonitorStuck
from .protocols import PowerMonitor, Reading


@dataclass
class Trace:
    """Readings sampled every ``interval_s`` seconds; ``t0`` (monotonic s) is when sampling began.

    The min/max/mean helpers return ``None`` for an empty trace. ``errors`` holds the message of
    a read that ended the sampling early (the error itself is raised when the monitor stops).
    """

    name: str = "supply"
    interval_s: float = 0.0
    t0: float = field(default_factory=time.monotonic)
    samples: list[Reading] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, reading: Reading) -> None:
        with self._lock:
            self.samples.append(reading)

    def snapshot(self) -> list[Reading]:
        with self._lock:
            return list(self.samples)

    def __len__(self) -> int:
        return len(self.snapshot())

    @property
    def times(self) -> list[float]:
        """Seconds since ``t0`` of each sample."""
        return [r.t - self.t0 for r in self.snapshot()]

    @property
    def volts(self) -> list[float]:
        return [r.volts for r in self.snapshot()]

    @property
    def amps(self) -> list[float]:
        return [r.amps for r in self.snapshot()]

    @staticmethod
    def _stat(values: list[float], fn: Callable[[list[float]], float]) -> float | None:
        return fn(values) if values else None

    def min_volts(self) -> float | None:
        return self._stat(self.volts, min)

    def max_volts(self) -> float | None:
        return self._stat(self.volts, max)

    def mean_volts(self) -> float | None:
        return self._stat(self.volts, statistics.fmean)

    def min_amps(self) -> float | None:
        return self._stat(self.amps, min)

    def max_amps(self) -> float | None:
        return self._stat(self.amps, max)

    def mean_amps(self) -> float | None:
        return self._stat(self.amps, statistics.fmean)

    def between(self, start: float, end: float) -> list[Reading]:
        """Samples taken from ``start`` to ``end`` (monotonic seconds), to correlate with events."""
        return [r for r in self.snapshot() if start <= r.t <= end]

    def to_dict(self) -> dict:
        """JSON-ready: times in seconds since ``t0``, volts, amps and the summary statistics."""
        samples = self.snapshot()
        return {"name": self.name, "interval_s": self.interval_s,
                "t_s": [round(r.t - self.t0, 4) for r in samples],
                "volts": [r.volts for r in samples], "amps": [r.amps for r in samples],
                "min_volts": self.min_volts(), "max_volts": self.max_volts(),
                "mean_volts": self.mean_volts(), "min_amps": self.min_amps(),
                "max_amps": self.max_amps(), "mean_amps": self.mean_amps(),
                "errors": list(self.errors)}


@contextlib.contextmanager
def monitor(meter: PowerMonitor, interval_s: float = 0.2, *, stop_timeout_s: float = 3.0,
            name: str = "supply") -> Iterator[Trace]:
    """Sample ``meter.read()`` every ``interval_s`` seconds in a background thread while the
    body runs; yields the growing ``Trace``.

    The first sample is taken at once. A read that raises ends the sampling; its error is raised
    when the body ends (unless the body raised first), so a lost supply link is a bench error,
    not a silently short trace. The thread gets ``stop_timeout_s`` seconds to finish its current
    read; if it does not, ``MonitorStuck`` is raised (the daemon thread is abandoned).
    """
    if interval_s <= 0:
        raise ValueError(f"monitor interval must be > 0 s, got {interval_s!r}")
    trace = Trace(name=name, interval_s=interval_s)
    stop = threading.Event()
    failure: list[BaseException] = []

    def sample() -> None:
        due = time.monotonic()
        while not stop.is_set():
            try:
                trace.add(meter.read())
            except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)
                trace.errors.append(str(exc))
                return
            due += interval_s
            stop.wait(max(0.0, due - time.monotonic()))

    thread = threading.Thread(target=sample, name=f"monitor-{name}", daemon=True)
    thread.start()
    try:
        yield trace
    finally:
        stop.set()
        thread.join(stop_timeout_s)
    if thread.is_alive():
        raise MonitorStuck(name, "sampling a measurement trace",
                           f"the sampler did not stop within {stop_timeout_s:g} s")
    if failure:
        raise failure[0]
