"""The supply watched for a whole session, so any failure can be checked against it.

Telling ``power_supply`` from ``pcb_intermittent`` is a matter of correlation: a unit that
resets or drops a device while its supply sags has a power problem; one that does so while the
supply holds steady has a board problem. Every interruption a test sees goes through
``attribute``, which looks up the supply readings around it and says which it was.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from posbench.spec.evidence import Evidence

if TYPE_CHECKING:
    from posbench.drivers.power.trace import Trace

MARGIN_S = 0.6
"""Seconds of readings looked at on either side of an interruption (sampling lags a dip)."""
DARK_A = 0.03
"""Amps under which a unit on a live supply is drawing nothing: it is off, not hung (a hung
application still draws idle current)."""


class SupplyWatch:
    """Samples ``meter`` every ``interval_s`` seconds from ``start()`` to ``stop()``.

    ``floor_v``: the unit's minimum input voltage; a reading below it is a sag.
    """

    def __init__(self, meter, interval_s: float, floor_v: float):
        from posbench.drivers.power.trace import monitor
        self._cm = monitor(meter, interval_s, name="supply")
        self.floor_v, self.interval_s = floor_v, interval_s
        self.trace: Trace | None = None
        self.switched_off: list[tuple[float, float]] = []
        """(off, on) monotonic seconds of the bench's own power-offs and brownouts: no sag of the
        unit's supply, whatever it read."""

    def start(self) -> "SupplyWatch":
        self.trace = self._cm.__enter__()
        return self

    def stop(self) -> None:
        """Ends sampling; raises the supply link's error if a reading failed (a bench error)."""
        self._cm.__exit__(None, None, None)

    def failure(self) -> str | None:
        """Why sampling stopped early (the supply link failed), or None while it runs."""
        if self.trace is not None and self.trace.errors:
            return f"its readings stopped: {self.trace.errors[0]}"
        return None

    def bench_switched(self, off: float, on: float) -> None:
        """The bench switched the unit off (or lowered its supply on purpose, a brownout test) at
        ``off`` and restored it at ``on`` (monotonic s): readings in between, and until the output
        is back above the floor, are the bench's doing, never a sag of the unit's supply."""
        self.switched_off.append((off, on))

    def brownout(self, supply, volts: float, seconds: float, nominal_v: float) -> tuple[float, float]:
        """Hold ``supply`` (``KoradSupply``) at ``volts`` for ``seconds``, then at ``nominal_v``
        again: on every exit path (a supply error, a stop signal's KeyboardInterrupt in the wait),
        so no run leaves the bench at brownout volts. The window is the bench's own
        (``bench_switched``). Returns the monotonic times of the drop and of the restore (s)."""
        t_drop = time.monotonic()
        try:
            supply.set_voltage(volts)
            time.sleep(seconds)
        finally:
            try:
                supply.set_voltage(nominal_v)
            finally:
                t_back = time.monotonic()
                self.bench_switched(t_drop, t_back)
        return t_drop, t_back

    POWER_UP_S = 1.0
    """Seconds after the bench switches the unit on during which readings below the floor are
    still the output coming up (a reading begun before "on" is stamped after it)."""

    def _readings(self, start: float, end: float) -> list:
        readings = self.trace.between(start, end) if self.trace else []
        if not self.switched_off:
            return readings
        spans = []
        for off, on in self.switched_off:
            after = self.trace.between(on, on + self.POWER_UP_S) if self.trace else []
            up = next((r.t for r in after if r.volts >= self.floor_v), on + self.POWER_UP_S)
            spans.append((off - 0.05, max(up - 0.001, on + self.interval_s)))
        return [r for r in readings if not any(lo <= r.t <= hi for lo, hi in spans)]

    def dark_for(self) -> float:
        """Seconds the unit has drawn no current (under ``DARK_A``) on a live supply (at or above
        ``floor_v``), from the newest reading back; 0.0 when the newest reading shows it drawing
        current, a supply below the floor (the bench switched it off, a sag) or no reading."""
        readings = self.trace.snapshot() if self.trace else []
        since = None
        for r in reversed(readings):
            if r.amps >= DARK_A or r.volts < self.floor_v:
                break
            since = r.t
        return readings[-1].t - since if since is not None else 0.0

    def lost_power_since(self, since: float) -> str | None:
        """Why the unit cannot be answering what it was asked at ``since`` (monotonic s): a
        reading since then shows it drawing no current (it was off, if only for a moment, and
        lost what it was doing), or None. The bench's own power-offs and brownouts are left out."""
        dark = next((r for r in self._readings(since, float("inf")) if r.amps < DARK_A), None)
        if dark is None:
            return None
        return (f"it lost power {dark.t - since:.1f} s after it was last heard from or asked (it drew "
                f"{dark.amps:.3f} A at {dark.volts:.2f} V): what it was doing is lost")

    def _window(self, t0: float, t1: float, since: float | None) -> list:
        """Readings from ``t0 - MARGIN_S`` (not before ``since``) to ``t1 + MARGIN_S``, the
        bench's own power-offs left out."""
        start = t0 - MARGIN_S if since is None else max(since, t0 - MARGIN_S)
        return self._readings(start, t1 + MARGIN_S)

    def lowest(self, t0: float, t1: float, since: float | None = None) -> float | None:
        """Lowest reading (volts) in ``_window``; None if none."""
        return min((r.volts for r in self._window(t0, t1, since)), default=None)

    def explain(self, what: str, t0: float, t1: float, steady_cause: str = "pcb_intermittent",
                since: float | None = None) -> Evidence | None:
        """The evidence an interruption between ``t0`` and ``t1`` (monotonic s) is, for the caller
        to record: a sag below ``floor_v``, or the unit going dark on a steady supply, points at
        ``power_supply``; a steady supply at ``steady_cause`` ("" for none). ``since`` clips the
        window (readings from a deliberate power-off are no sag). None when no reading covers the
        moment, or the supply held and there is no ``steady_cause``."""
        readings = self._window(t0, t1, since)
        if not readings:
            return None
        low = min(r.volts for r in readings)
        # dark at any moment of the window, not only at its end: a unit whose supply path
        # failed and that is booting again by the time it is judged was still switched off,
        # and a hung or restarting application never stops drawing its idle current
        dark = [r for r in readings if r.amps < DARK_A]
        if dark and low >= self.floor_v:
            return Evidence.of("power_supply", "moderate",
                               f"{what}: the unit went dark on a steady supply ({low:.2f} V, it drew "
                               f"no current: switched off, not hung)", measurement="supply_current_a",
                               value=round(min(r.amps for r in dark), 3), limit=f">= {DARK_A:g}")
        if low < self.floor_v:
            return Evidence.of("power_supply", "moderate",
                               f"{what} while the supply sagged to {low:.2f} V (unit minimum {self.floor_v:g} V)",
                               measurement="supply_min_v", value=round(low, 3), limit=f">= {self.floor_v:g}")
        if steady_cause:
            return Evidence.of(steady_cause, "moderate", f"{what} while the supply held steady (lowest {low:.2f} V)",
                               measurement="supply_min_v", value=round(low, 3), limit=f">= {self.floor_v:g}")
        return None

