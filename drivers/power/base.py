"""What a test may ask of bench power: switch it (``PowerSwitch``), measure it (``PowerMonitor``),
and sample a measurement trace while something happens (``monitor``, after OpenHTF's monitors).

Also the serial transport the serial power drivers share (pyserial ``serial_for_url``, reopened
once when the port vanishes) and the typed errors of bench power. Every error here is a
``BenchError``: the bench's own power link failed, never the unit.
"""
from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import serial

try:
    from termios import error as _TermiosError  # tcflush on a vanished tty raises this, not OSError
except ImportError:  # not POSIX
    _TermiosError = OSError

from posbench.errors import BenchError, PortLost
from posbench.drivers.serial.port import SerialBytePort

# -- errors --------------------------------------------------------------------------------------


class SupplyNotResponding(BenchError):
    """The bench supply did not answer a query in time (its link is down, not the unit)."""


class SupplyProtocolError(BenchError):
    """The bench supply answered bytes that are not a valid answer to the command sent."""


class PowerSwitchFailed(BenchError):
    """A power device accepted a command but its read-back shows it did not act on it."""


class OperatorNotConfirmed(BenchError):
    """The technician did not confirm a manual power step (the bench cannot go on alone)."""


class OperatorTimeout(OperatorNotConfirmed):
    """No answer from the technician within the prompt's timeout."""


class OperatorSkipped(OperatorNotConfirmed):
    """The technician answered "skip" (or declined) instead of doing the power step."""


class MonitorStuck(BenchError):
    """A measurement monitor's sampling thread did not stop within its deadline."""


# -- protocols -------------------------------------------------------------------------------------


@runtime_checkable
class PowerSwitch(Protocol):
    """Switches the unit's power. ``name`` says which device does it (for messages and reports)."""

    name: str

    def on(self) -> None:
        """Apply power to the unit."""

    def off(self) -> None:
        """Remove power from the unit."""

    def is_on(self) -> bool:
        """True if the unit is powered (read back where the device can, else the last command)."""

    def cycle(self, off_s: float) -> None:
        """Power off, wait ``off_s`` seconds, power on."""


@dataclass(frozen=True)
class Reading:
    """One measurement: ``volts`` (V), ``amps`` (A), taken at ``t`` (``time.monotonic`` seconds)."""

    volts: float
    amps: float
    t: float


@runtime_checkable
class PowerMonitor(Protocol):
    """Measures the unit's supply."""

    def read(self) -> Reading:
        """Volts and amps delivered now."""


# -- traces ----------------------------------------------------------------------------------------


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


# -- serial transport --------------------------------------------------------------------------------

POLL_S = 0.02
"""pyserial read timeout in seconds; reads return as soon as a byte arrives."""
WRITE_TIMEOUT_S = 2.0
"""pyserial write timeout in seconds (where the transport supports one)."""
_IO_ERRORS = (serial.SerialException, OSError, _TermiosError)


class SerialLink(SerialBytePort):
    """A power device's port on ``serial.serial_for_url`` (tty, ``socket://``, ``rfc2217://``).

    Opening, closing and reopening come from ``posbench.drivers.serial.port.SerialBytePort`` (its
    messages then name the power device's port); an I/O error closes the port and reopens it for up to
    ``reopen_s`` seconds (a USB-serial adapter re-enumerating), retries the operation once, and
    raises ``PortLost`` if it does not come back. ``reopens`` counts successful reopens.
    """

    label = "port"
    poll_s = POLL_S  # short: the supply answers in ~10 ms and commands are 50 ms apart

    def __init__(self, url: str, device: str, baudrate: int = 9600, reopen_s: float = 2.0):
        super().__init__(url, baudrate, device, reopen_s)

    @property
    def is_open(self) -> bool:
        return self._serial is not None


    def _io(self, op: Callable[[serial.SerialBase], object], doing: str):
        if self._serial is None:
            self.open()
        try:
            return op(self._serial)
        except _IO_ERRORS as exc:
            self.reopen()
            try:
                return op(self._serial)
            except _IO_ERRORS as again:
                self.close()
                raise PortLost(self.device, doing, f"{exc}; after reopening: {again}") from None

    def write(self, data: bytes, doing: str) -> None:
        def op(ser: serial.SerialBase) -> None:
            ser.write(data)
            ser.flush()
        self._io(op, doing)

    def read(self, size: int, timeout: float, doing: str, quiet_s: float | None = None) -> bytes:
        """Up to ``size`` bytes within ``timeout`` seconds. With ``quiet_s``, also stop once bytes
        have arrived and the line then stays quiet for ``quiet_s`` seconds (answers without a
        terminator end by silence)."""
        def op(ser: serial.SerialBase) -> bytes:
            got = bytearray()
            deadline = time.monotonic() + max(0.0, timeout)
            last = time.monotonic()
            while len(got) < size:
                chunk = ser.read(max(1, min(size - len(got), ser.in_waiting)))
                now = time.monotonic()
                if chunk:
                    got += chunk
                    last = now
                elif got and quiet_s is not None and now - last >= quiet_s:
                    break
                if now >= deadline:
                    break
            return bytes(got)
        return self._io(op, doing)

    def discard_input(self, doing: str) -> None:
        if "://" not in self.url:
            self._io(lambda ser: ser.reset_input_buffer(), doing)
            return

        def drain(ser: serial.SerialBase) -> None:
            deadline = time.monotonic() + 0.5
            while (waiting := ser.in_waiting) and time.monotonic() < deadline:
                ser.read(waiting)
        self._io(drain, doing)


class SerialDevice:
    """Life cycle of a power device on a ``SerialLink`` (``self.link``, guarded by ``self._lock``)."""

    def open(self):
        with self._lock:
            self.link.open()
        return self

    def close(self) -> None:
        with self._lock:
            self.link.close()

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
