"""The virtual unit's power: one model that the supply and relay emulators feed and the rest of
the virtual bench follows (the terminal's ECR port, its USB devices).

Electrical model (volts, amps, ohms; currents documented in milliamps):

- The source is what the bench applies: the Korad's setpoint while its output is on, or the
  12.0 V adapter while the relay is closed, with that source's current limit (``set_source``).
- The unit is a resistive load sized to draw ``load_ma[activity]`` at ``nominal_v`` (a terminal:
  ``ACTIVITY_MA`` at 12 V; a card reader: ``READER_LOAD_MA`` at 5 V), behind a supply
  path (cable, DC jack) of ``r_path_ohm``: ``I = V_src / (R_load + R_path)``,
  ``V_unit = V_src - I * R_path``. When ``I`` would exceed the limit the source goes constant
  current: ``I = limit``, ``V_unit = limit * R_load``.
- ``voltage()`` is the voltage at the unit's input (what a remote-sensing supply or a meter on
  the jack shows); the Korad emulator reports it for ``VOUT1?`` and ``current()`` for ``IOUT1?``.

States: ``off`` -> ``booting`` when the unloaded voltage reaches ``brownout_v + HYSTERESIS_V``
(and the unit has been off for ``RESET_HOLD_S``); ``booting`` -> ``on`` after ``boot_s``;
``booting``/``on`` -> ``off`` when the voltage at the unit falls below ``brownout_v`` (event
``power_off`` when the source itself is below it, ``brownout`` when the load pulled it there).

Fault ``power_supply`` (``supply_fault`` = severity s in [0, 1]): the unit's supply path degrades.
Its resistance grows by ``s * FAULT_R_OHM``, and every loaded operation (``set_activity`` changing
to reading / field / printing while on) makes the source dip by ``u * s * SAG_SCALE_V`` volts
(u uniform in [0, 1); ``SAG_SCALE_V`` scaled by ``nominal_v / 12``) for 0.25..0.5 s, starting 10..50 ms into the operation. A dip that takes the
unit below ``brownout_v`` resets it, and the adapter then folds back (hiccup) to ``FOLDBACK_V``
under brownout for the rest of the dip, so the sag shows in the readings even with the unit's
load gone; shallower dips only show in the readings. At 12 V a dip resets the unit when it
exceeds the ~1.1..1.4 V of headroom, so s = 0.3 resets ~40..55 % of loaded operations, s = 1
~90 %, s <= 0.1 none (dips still visible). Each boot attempt fails with probability
``BOOT_FAIL_PER_SEVERITY * s`` (an inrush dip below brownout part-way through: slow boots); after
``MAX_BOOT_ATTEMPTS`` failures in a row the boot has failed and the unit stays off until its
source is removed and applied again. Healthy (s = 0) never dips, never draws from ``rng`` and
never resets at nominal 12 V under any activity. Every random draw comes from ``rng`` in a fixed
order per call, so a run is repeatable for a given rng and sequence of calls.
"""
from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from posbench.sim.worker import Worker

NOMINAL_V = 12.0
"""Volts the unit is designed for (its load currents are given at this voltage)."""
ACTIVITY_MA: dict[str, float] = {
    "off": 0.0,
    "idle": 250.0,       # display and app idle
    "booting": 350.0,    # CPU at full speed, flash reads
    "reading": 320.0,    # MSR/chip reader powered
    "field": 450.0,      # contactless RF field on
    "printing": 1500.0,  # thermal print head
}
"""Milliamps the unit (a payment terminal) draws at 12 V in each activity."""
READER_LOAD_MA: dict[str, dict[str, float]] = {
    # a bus-powered HID swipe reader: its head amplifier and decoder wake up for a swipe
    "usb_magstripe": {"off": 0.0, "idle": 35.0, "booting": 50.0, "reading": 65.0, "field": 35.0,
                      "printing": 35.0},
    # a PN532 board: the RF field is most of its draw (NXP: ~150 mA with the field on)
    "nfc": {"off": 0.0, "idle": 45.0, "booting": 70.0, "reading": 45.0, "field": 150.0, "printing": 45.0},
}
"""Milliamps a card reader that is the unit draws at 5 V in each activity, by the kind of reader
(``posbench.setup.profile.Reader``)."""
LOADED = frozenset({"reading", "field", "printing"})
"""Activities that load the supply (the power_supply fault sags under them)."""
R_PATH_OHM = 0.15
"""Healthy supply path resistance (cable, DC jack), ohms."""
FAULT_R_OHM = 0.5
"""Extra supply path resistance at fault severity 1, ohms."""
SAG_SCALE_V = 8.0
"""Deepest load dip at fault severity 1, volts."""
BOOT_FAIL_PER_SEVERITY = 0.7
"""Probability that a boot attempt fails, per unit of fault severity."""
MAX_BOOT_ATTEMPTS = 4
"""Failed boot attempts in a row after which the unit gives up (failed boot)."""
FOLDBACK_V = 0.5
"""Volts under brownout a faulty adapter stays for the rest of a dip that reset the unit."""
HYSTERESIS_V = 0.5
"""Volts above ``brownout_v`` the unit needs to start booting."""
RESET_HOLD_S = 0.1
"""Seconds a unit stays off after losing power before it can boot (its rails discharge)."""
TICK_S = 0.01
"""Seconds between looks of ``wait_state`` at the state."""
IDLE_WAKE_S = 1.0
"""Most seconds the background thread sleeps when nothing is due (it wakes at once on an input,
a state change, or the next instant the model changes by itself)."""
STATES = ("off", "booting", "on")


@dataclass(frozen=True)
class Dip:
    """The source sags by ``depth_v`` volts from ``start`` to ``end`` (monotonic seconds)."""

    start: float
    end: float
    depth_v: float
    kind: str  # "load" (under an operation) or "inrush" (failed boot attempt)


def operating_point(source_v: float, limit_a: float | None, load_ma: float,
                    r_path_ohm: float = R_PATH_OHM, nominal_v: float = NOMINAL_V) -> tuple[float, float, bool]:
    """(volts at the unit, amps drawn, source in constant current) for a resistive load that
    draws ``load_ma`` at ``nominal_v``."""
    source_v = max(0.0, source_v)
    if load_ma <= 0 or source_v == 0.0:
        return source_v, 0.0, False
    r_load = nominal_v / (load_ma / 1000.0)
    amps = source_v / (r_load + r_path_ohm)
    if limit_a is not None and amps > limit_a:
        return limit_a * r_load, limit_a, True
    return source_v - amps * r_path_ohm, amps, False


def draw_load_sag(rng: random.Random, severity: float, now: float, scale_v: float = SAG_SCALE_V) -> Dip:
    """The dip one loaded operation causes at fault ``severity`` (three draws, always); its
    deepest, at severity 1, is ``scale_v`` volts."""
    depth_u, onset_u, length_u = rng.random(), rng.random(), rng.random()
    start = now + 0.01 + 0.04 * onset_u
    return Dip(start, start + 0.25 + 0.25 * length_u, depth_u * severity * scale_v, "load")


class UnitPower(Worker):
    """The virtual unit's power state. ``boot_s``: seconds from power-up to ready.

    Inputs: ``set_source(volts, limit_a)`` (from an emulator), ``set_activity(name)`` (from the
    terminal). Outputs: ``state``, ``voltage()``, ``current()``, ``constant_current()``,
    ``events`` [(t, kind, volts)], and ``on_change(callback)``: ``callback(state)`` is called from
    the background thread (``start()``) after each state change, in order.

    ``clock`` (default ``time.monotonic``) lets tests drive time by hand without the thread; any
    query advances the model to ``clock()``.
    """

    thread_name = "unit-power"

    def __init__(self, boot_s: float, *, brownout_v: float = 10.5, supply_fault: float = 0.0,
                 rng: random.Random | None = None, r_path_ohm: float = R_PATH_OHM,
                 source_v: float = 0.0, limit_a: float | None = None,
                 clock: Callable[[], float] = time.monotonic, nominal_v: float = NOMINAL_V,
                 load_ma: dict[str, float] | None = None):
        if not 0.0 <= supply_fault <= 1.0:
            raise ValueError(f"supply_fault must be in [0, 1], got {supply_fault!r}")
        if boot_s < 0:
            raise ValueError(f"boot_s must be >= 0, got {boot_s!r}")
        self.boot_s, self.brownout_v, self.supply_fault = boot_s, brownout_v, supply_fault
        self.nominal_v, self.load_ma = nominal_v, dict(load_ma or ACTIVITY_MA)
        if set(self.load_ma) != set(ACTIVITY_MA):
            raise ValueError(f"load_ma must give every activity: {', '.join(ACTIVITY_MA)}")
        self.sag_scale_v = SAG_SCALE_V * nominal_v / NOMINAL_V  # dips scale with the supply
        self.rng = rng or random.Random(0)
        self.r_path_ohm = r_path_ohm + supply_fault * FAULT_R_OHM
        self.clock = clock
        self.events: list[tuple[float, str, float]] = []
        """(monotonic s, kind, volts at the unit): power_off, brownout, boot_start, boot_failed,
        ready, sag (a load dip starts; volts = the lowest it will take the unit to)."""
        self._lock = threading.RLock()
        self._src_v, self._limit_a = max(0.0, source_v), limit_a
        self._state = "off"
        self._activity = "off"
        self._since = clock() - RESET_HOLD_S
        self._ready_at = 0.0
        self._failed_boots = 0
        self._boot_failed = False
        self._dips: list[Dip] = []
        self._callbacks: list[Callable[[str], None]] = []
        self._pending: deque[str] = deque()
        self.callback_errors: list[str] = []
        self._wake = threading.Event()
        self._init_thread()
        self._t = clock()
        self._step(self._t)

    # -- inputs -------------------------------------------------------------------------------------
    def set_source(self, volts: float, limit_a: float | None = None) -> None:
        """The bench applies ``volts`` (0 = switched off) with a current limit of ``limit_a`` A."""
        with self._lock:
            now = self.clock()
            self._step(now)  # up to now with the old source, then the change takes effect
            self._src_v, self._limit_a = max(0.0, float(volts)), limit_a
            self._step(now)
        self._wake.set()

    def set_activity(self, activity: str) -> None:
        """What the unit does now: idle, reading, field, printing, or booting (a software restart
        while powered: boot current, the power state stays on). Ignored unless the unit is on:
        off it draws nothing, and while powering up it draws the boot current."""
        if activity not in self.load_ma or activity == "off":
            raise ValueError(f"unknown activity {activity!r}; known: idle, reading, field, printing, booting")
        with self._lock:
            now = self.clock()
            self._step(now)
            if self._state != "on":
                return
            if activity in LOADED and activity != self._activity and self.supply_fault > 0:
                dip = draw_load_sag(self.rng, self.supply_fault, now, self.sag_scale_v)
                self._dips.append(dip)
                low, _, _ = operating_point(self._src_v - dip.depth_v, self._limit_a,
                                            self.load_ma[activity], self.r_path_ohm, self.nominal_v)
                self.events.append((dip.start, "sag", round(low, 3)))
            self._activity = activity
            self._step(now)
        self._wake.set()

    def on_change(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(state)`` from the background thread after each state change."""
        with self._lock:
            self._callbacks.append(callback)

    # -- outputs -------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            self._step(self.clock())
            return self._state

    @property
    def activity(self) -> str:
        with self._lock:
            self._step(self.clock())
            return self._activity

    @property
    def source_v(self) -> float:
        return self._src_v

    def _point(self, now: float) -> tuple[float, float, bool]:
        return operating_point(self._source_now(now), self._limit_a, self.load_ma[self._activity],
                               self.r_path_ohm, self.nominal_v)

    def voltage(self) -> float:
        """Volts at the unit's input now."""
        with self._lock:
            now = self.clock()
            self._step(now)
            return self._point(now)[0]

    def current(self) -> float:
        """Amps the unit draws now."""
        with self._lock:
            now = self.clock()
            self._step(now)
            return self._point(now)[1]

    def constant_current(self) -> bool:
        """True while the source is current limiting."""
        with self._lock:
            now = self.clock()
            self._step(now)
            return self._point(now)[2]

    def wait_state(self, state: str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``state``; True if reached."""
        deadline = time.monotonic() + timeout
        while True:
            if self.state == state:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(TICK_S)

    # -- the model ----------------------------------------------------------------------------------
    def _source_now(self, now: float) -> float:
        if self._src_v <= 0:
            return 0.0
        depth = max((d.depth_v for d in self._dips if d.start <= now < d.end), default=0.0)
        return max(0.0, self._src_v - depth)

    def _go(self, state: str, now: float, kind: str, volts: float) -> None:
        self._state, self._since = state, now
        self.events.append((now, kind, round(volts, 3)))
        self._pending.append(state)
        self._wake.set()  # a change another thread's query made: the background thread tells it now

    def _start_boot(self, now: float, volts: float) -> None:
        self._activity = "booting"
        self._ready_at = now + self.boot_s
        self._go("booting", now, "boot_start", volts)
        s = self.supply_fault
        if s > 0:
            fail_u, when_u, depth_u = self.rng.random(), self.rng.random(), self.rng.random()
            if fail_u < BOOT_FAIL_PER_SEVERITY * s:
                start = now + (0.2 + 0.6 * when_u) * self.boot_s
                booting_v, _, _ = operating_point(self._src_v, self._limit_a, self.load_ma["booting"],
                                                  self.r_path_ohm, self.nominal_v)
                depth = booting_v - self.brownout_v + 0.3 + 0.7 * depth_u
                # 0.3 s: long enough that a supply read every ~0.1 s sees the inrush sag
                self._dips.append(Dip(start, start + 0.3, depth, "inrush"))

    def _step(self, now: float) -> None:
        """Advance the state machine to ``now`` (under the lock), visiting every instant where
        something changes (a dip starts or ends, a boot completes, the reset hold ends) in
        order, so the outcome does not depend on how often the model is queried."""
        t = self._t
        while True:
            self._settle(t)
            t_next = self._next_instant(t, now)
            if t_next is None:
                break
            t = t_next
        if now > self._t:
            self._settle(now)
            self._t = now
        self._dips = [d for d in self._dips if d.end > now]

    def _fold_back(self, now: float) -> None:
        """A weak adapter pulled under brownout goes into hiccup: for the rest of its dip it stays
        ``FOLDBACK_V`` under brownout even with the unit's load gone, so the readings show it."""
        floor = self._src_v - self.brownout_v + FOLDBACK_V
        self._dips = [Dip(d.start, d.end, max(d.depth_v, floor), "foldback")
                      if d.start <= now < d.end and d.kind in ("load", "inrush") else d for d in self._dips]

    def _next_instant(self, after: float, until: float) -> float | None:
        times = [x for d in self._dips for x in (d.start, d.end)]
        if self._state == "booting":
            times.append(self._ready_at)
        if self._state == "off":
            times.append(self._since + RESET_HOLD_S)
        later = [x for x in times if after < x <= until]
        return min(later) if later else None

    def _settle(self, now: float) -> None:
        """Make the transitions due at instant ``now``."""
        for _ in range(4):  # at most a few transitions per instant (off -> booting -> on)
            volts, _, _ = self._point(now)
            if self._state in ("booting", "on") and volts < self.brownout_v:
                kind = "power_off" if self._src_v < self.brownout_v else "brownout"
                if kind == "brownout" and self._state == "booting":
                    self._failed_boots += 1
                self._activity = "off"
                self._go("off", now, kind, volts)
                if kind == "brownout":
                    self._fold_back(now)
                if self._failed_boots >= MAX_BOOT_ATTEMPTS:
                    self._boot_failed = True
                    self.events.append((now, "boot_failed", round(volts, 3)))
                continue
            if self._state == "booting" and now >= self._ready_at:
                self._failed_boots = 0
                self._activity = "idle"
                self._go("on", now, "ready", self._point(now)[0])
                continue
            if self._state == "off":
                if self._boot_failed:
                    if self._src_v < self.brownout_v:  # power removed: the unit may boot again
                        self._boot_failed, self._failed_boots = False, 0
                    return
                if self._src_v < self.brownout_v:
                    self._failed_boots = 0
                if volts >= self.brownout_v + HYSTERESIS_V and now >= self._since + RESET_HOLD_S:
                    self._start_boot(now, volts)
                    continue
            return

    # -- thread ---------------------------------------------------------------------------------------
    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread that advances the model and delivers ``on_change`` calls (``Worker``)."""
        self._wake.set()  # it sleeps on _wake: let it see _stop now
        super().stop(timeout)

    def _run(self) -> None:
        """Advance the model and deliver ``on_change`` calls. It sleeps until the next instant the
        model changes by itself (a dip starts or ends, a boot completes, the reset hold ends) or
        an input or another thread's query wakes it, instead of ticking: an idle bench costs no CPU."""
        while not self._stop.is_set():
            self._wake.clear()  # a wake-up from here on is seen by the wait below
            with self._lock:
                now = self.clock()
                self._step(now)
                pending = list(self._pending)
                self._pending.clear()
                callbacks = list(self._callbacks)
                due = self._next_instant(now, float("inf"))
            for state in pending:
                for callback in callbacks:
                    if self._stop.is_set():
                        return
                    try:
                        callback(state)
                    except Exception as exc:  # noqa: BLE001 - a faulty listener must not stop the model
                        self.callback_errors.append(f"{getattr(callback, '__name__', callback)}({state}): {exc!r}")
            if pending:
                continue  # the calls may have changed the model: look again before sleeping
            self._wake.wait(IDLE_WAKE_S if due is None else min(IDLE_WAKE_S, max(0.0, due - self.clock())))
