"""Power: load, USB stability, cold boot, a power-cycle soak and a brownout during a sale.

The bench owns the unit's power switch (OpenHTF #849: repeats across a power cycle belong to
the bench, not the test). Every failure is checked against the supply readings: a unit that
fails while its supply sags has a power problem, one that fails on a steady supply a board one.
"""
import threading
from collections.abc import Callable
from typing import NamedTuple
import time
from datetime import datetime, timezone

import pytest

from posbench.diagnosis import power

from posbench.render import plots

from posbench.core import progress
from posbench.core.errors import BenchError, PortLost, PortUnavailable, PosbenchError, UnitError, UnitNotResponding
from posbench.spec.measures import Measure, measures
from posbench.drivers.terminal import has
from posbench.fixtures.session import optional
from posbench.drivers.actuator.base import Skipped
from posbench.spec.readtest import sale_saw_no_card, until_presented


def _power_spec(profile):
    if profile.power is None:
        pytest.skip(f"the DUT profile of {profile.model} has no [power] section")
    return profile.power


def _needs_supply(supply_watch):
    if supply_watch is None:
        pytest.skip("needs a programmable bench supply ([power] driver = \"korad\") to read volts and amps")


def _window(watch, record, t0, t1, title, floor_v, marks=()):
    """The session's supply readings from ``t0`` to ``t1`` (monotonic s), plotted into the report.

    One sampler for the whole session: a second one would halve the rate of both on the
    supply's single serial link (about 55 ms per command).
    """
    readings = watch.trace.between(t0, t1)
    record.plot(title, plots.supply_trace([r.t - t0 for r in readings], [r.volts for r in readings],
                                          [r.amps for r in readings], title, floor_v,
                                          [(t - t0, label) for t, label in marks]))
    return readings


LOAD_S = 0.4
"""Seconds each kind of read is repeated for, so the supply sampler sees it several times."""
CHIP_POLL_S = 0.5
"""Seconds between chip diagnostics while waiting for the technician to insert the card."""


@measures(Measure("supply_sag_v", "V", "supply_sag_v", bears_on=("power_supply",), evidence="strong"),
          Measure("peak_current_a", "A", "peak_current_a", bears_on=("power_supply",), evidence="moderate"),
          readers=True)
def test_load(supply_watch, terminal, unit, actuator, profile, record, request):
    """Supply sag and peak current while the unit reads chip cards and contactless cards (a
    reader that is the unit: its own swipes or taps).

    Paced for a person: the card is inserted once and read again and again while it stays in,
    then removed; the same for the tap. A card not presented is asked about (``until_presented``).
    Reads go through the bench's contactless reader where it reaches the unit's, else (a PCI
    terminal, whose readers are inside it) through sales by tap; chip reads through the chip
    diagnostic where the protocol has one, else through sales with the card inserted.
    """
    _needs_supply(supply_watch)
    spec = _power_spec(profile)
    if profile.read_paths is None:
        pytest.skip(f"the DUT profile of {profile.model} names no read paths")
    nfc_reader = optional(request, "nfc_reader")
    paths = profile.read_paths
    start = time.monotonic()
    time.sleep(3 * spec.sample_interval_s)  # a baseline first
    marks: list[tuple[float, str]] = []
    if not profile.is_reader:
        marks.append((time.monotonic(), "chip reads"))
        _chip_load(terminal, actuator, profile)
    if nfc_reader is not None:
        marks.append((time.monotonic(), "taps"))
        tag = paths.tap.cards[0]
        if nfc_reader.lost:
            unit.open_reader(nfc_reader.reopen)

        def tag_in() -> bool:
            """Hold the tag on the reader; True once the reader sees it."""
            actuator.tap(tag)
            return nfc_reader.tap(paths.tap.timeout_s).reason != "no_card"

        _keep_reading(actuator, "tap", tag_in, lambda: nfc_reader.tap(paths.tap.timeout_s), (PortLost, PortUnavailable))
    elif profile.is_reader:  # a swipe reader: swipe after swipe
        marks.append((time.monotonic(), "swipes"))
        _swipe_load(request.getfixturevalue("mag_reader"), actuator, paths.swipe)
    else:
        marks.append((time.monotonic(), "taps"))
        _tap_sale_load(terminal, actuator, profile)
    time.sleep(3 * spec.sample_interval_s)
    readings = _window(supply_watch, record, start, time.monotonic(),
                       "supply during card reads", spec.min_input_v, marks)
    low = min((r.volts for r in readings), default=None)
    peak = max((r.amps for r in readings), default=None)
    sag = round(spec.nominal_v - low, 3) if low is not None else None
    record.measure("supply_sag_v", sag,
                   note=f"the supply fell to {low} V (nominal {spec.nominal_v:g} V) during card reads")
    record.measure("peak_current_a", peak, note=f"the unit drew up to {peak} A during card reads")
    if nfc_reader is None:
        return
    try:  # leave the unit and its reader answering for the next test
        unit.open_reader(nfc_reader.reopen)
    except (UnitError, PortLost, PortUnavailable):
        pass  # the next test that needs the reader finds it gone and says so


def _sale_seen(terminal, amount: int) -> bool:
    """One sale; True unless the terminal ended it for want of a card."""
    return not sale_saw_no_card(terminal.protocol, terminal.sale(amount))


def _chip_load(terminal, actuator, profile) -> None:
    """A chip card inserted once and read through the chip diagnostic (else sales) for ``LOAD_S``."""
    paths, amount = profile.read_paths, profile.tests.sale_amounts[0]
    card = paths.chip.cards[0]
    diagnostic = has(terminal, "chip_diagnostic")

    def chip_in() -> bool:
        """Insert the card; True once the unit sees it."""
        actuator.insert(card)
        if not diagnostic:
            return _sale_seen(terminal, amount)
        deadline = time.monotonic() + paths.chip.timeout_s
        while not terminal.chip().present:
            if time.monotonic() + CHIP_POLL_S > deadline:
                return False
            time.sleep(CHIP_POLL_S)
        return True

    _keep_reading(actuator, "insert", chip_in, lambda: terminal.chip() if diagnostic else terminal.sale(amount),
                  (UnitError,))


def _tap_sale_load(terminal, actuator, profile) -> None:
    """A payment card held on a PCI terminal's own antenna, read through sales for ``LOAD_S``."""
    paths, amount = profile.read_paths, profile.tests.sale_amounts[0]
    payment = [c for c in paths.tap.cards if c in paths.chip.cards + paths.swipe.cards] or [paths.chip.cards[0]]

    def card_on() -> bool:
        """Hold a payment card on the terminal's own antenna; True once its sale saw it."""
        actuator.tap(payment[0])
        return _sale_seen(terminal, amount)

    _keep_reading(actuator, "tap", card_on, lambda: terminal.sale(amount), (UnitError,))


def _swipe_load(mag_reader, actuator, swipe) -> None:
    """Swipes of a deck card for ``LOAD_S``: a swipe reader's head and decoder at work. A swipe
    cut off (the reader reset under the load) ends them: the supply trace tells why."""
    from posbench.drivers.usb.magstripe import SwipeTimeout
    from posbench.drivers.usb.reconnecting import UsbGone
    end = time.monotonic() + LOAD_S
    try:
        while time.monotonic() < end:
            actuator.swipe(swipe.cards[0])
            mag_reader.read_swipe(swipe.timeout_s)
    except (SwipeTimeout, UsbGone, PortLost):
        return
    except Skipped:
        pytest.skip("skipped by the technician (swipe)")


def _keep_reading(actuator, kind: str, present: Callable[[], bool], read: Callable[[], object],
                  cut_off: tuple[type[BaseException], ...]) -> None:
    """Present a card once (``present()``, asked about until it was: ``until_presented``), read it
    again and again for ``LOAD_S`` seconds while it stays, then take it away. A read ``cut_off``
    (the unit reset under the load) ends the reading: the supply trace tells why."""
    try:
        until_presented(actuator, kind, present)
        end = time.monotonic() + LOAD_S
        while time.monotonic() < end:
            read()
    except cut_off:
        pass
    except Skipped:
        pytest.skip(f"skipped by the technician ({kind})")
    finally:
        actuator.remove()


@measures(Measure("usb_drops", "count", "usb_drops", bears_on=("power_supply", "pcb_intermittent")), readers=True)
def test_usb_stable(usb_device, profile, record, supply_watch):
    """The unit's USB reader (or the unit, a USB reader itself) stays on the bus while watched;
    each drop is checked against the supply."""
    spec = _power_spec(profile)
    # A drop is seen as the reader gone, or as the reader back at another address (it
    # re-enumerated between two looks: on a busy bench host a look can take longer than a drop).
    seen_at, seen = time.monotonic(), usb_device.where()
    present = seen is not None
    drops, gone_at = (0, 0.0) if present else (1, seen_at)  # off the bus as the watch begins: a drop
    end = time.monotonic() + spec.usb_watch_s
    with progress.waiting("the USB reader to stay on the bus", spec.usb_watch_s):
        while time.monotonic() < end:
            now = usb_device.where()
            if present and now is None:
                drops += 1
                gone_at = time.monotonic()
            elif not present and now is not None and supply_watch is not None:
                record.add(supply_watch.explain(f"the USB reader dropped off the bus for "
                                                f"{time.monotonic() - gone_at:.1f} s", gone_at, time.monotonic()))
            elif present and now is not None and seen is not None and now != seen:
                drops += 1
                if supply_watch is not None:
                    record.add(supply_watch.explain("the USB reader dropped off the bus and re-enumerated "
                                                    f"(address {seen[1]} -> {now[1]})", seen_at, time.monotonic()))
            present = now is not None
            if now is not None:
                seen_at, seen = time.monotonic(), now
            time.sleep(0.05)
    if not present and supply_watch is not None:  # gone at the end of the watch: judged all the same
        record.add(supply_watch.explain(f"the USB reader dropped off the bus and was still gone after "
                                        f"{time.monotonic() - gone_at:.1f} s", gone_at, time.monotonic()))
    record.measure("usb_drops", drops, if_failed=power.usb_drops(drops, spec.usb_watch_s, supply_watch is not None))
    usb_device.close()  # its handle is stale after a drop; the next user reconnects


def _boot(unit, terminal, usb_device, spec) -> tuple[float | None, float | None, float]:
    """Power cycle; seconds from power-on until the unit answers (its ECR port, or a reader that is
    the unit on its interface) and its USB device enumerates, and the monotonic time of power-on."""
    with progress.waiting("the unit to boot after power-on", spec.off_s + terminal.boot_timeout):
        t0 = unit.power_cycle(spec.off_s)
        try:
            unit.wait_ready()  # up to boot_timeout; a unit that stays dark is not waited out
            ecr = time.monotonic() - t0
        except UnitNotResponding:
            return None, None, t0
        usb = None
        if usb_device is not None:
            while time.monotonic() - t0 < terminal.boot_timeout:
                if usb_device.where() is not None:
                    usb = time.monotonic() - t0
                    break
                time.sleep(0.05)
    return ecr, usb, t0


def _judge_boot(record, supply_watch, ok: bool, what: str, t_on: float, t1: float) -> None:
    """A slow or failed boot blames the supply only if the supply sagged after power-on (inrush
    pulling a weak adapter under); on a steady supply it says nothing about power."""
    if ok:
        return
    if supply_watch is None:
        record.evidence("power_supply", "moderate", f"{what} (no supply readings to check it against)")
    else:
        record.add(supply_watch.explain(what, t_on, t1, steady_cause="", since=t_on + 0.05))


@measures(Measure("cold_boot_s", "s", "cold_boot_s"), Measure("usb_enumerate_s", "s", "usb_enumerate_s"),
          readers=True)
def test_cold_boot(power_switch, unit, terminal, profile, record, supply_watch, request):
    spec = _power_spec(profile)
    usb_device = optional(request, "usb_device")  # a PCI terminal's readers are inside it
    ecr, usb, t_on = _boot(unit, terminal, usb_device, spec)
    ok = record.measure("cold_boot_s", None if ecr is None else round(ecr, 3),
                        note="power-on until the unit answered (a terminal its ECR port, a reader on its interface)"
                        + ("" if ecr is not None else f": it never answered (within {terminal.boot_timeout:g} s, or it "
                           "drew no current on a live supply)"))
    if record.wanted("usb_enumerate_s"):  # not a reader's on a serial port: it has no USB
        if usb_device is None:
            record.unmeasured("usb_enumerate_s", "the bench reaches no USB reader of this unit (no [usb] section)")
        else:
            record.measure("usb_enumerate_s", None if usb is None else round(usb, 3),
                           note="power-on until the USB reader enumerated")
    _judge_boot(record, supply_watch, ok, "a cold boot was slow or failed", t_on, time.monotonic())


def _snapshot(unit, record) -> tuple | None:
    """Configuration checksum and the newest journal records (None where the protocol keeps
    them to itself); None when the unit would not tell (its silence is already evidence)."""
    t = unit.terminal
    try:
        return (unit.ask(record, lambda: t.status().cfg_crc, "status") if record.wanted("config_lost") else None,
                unit.ask(record, lambda: [r.seq for r in t.transaction_log(5)], "transaction log")
                if record.wanted("log_corrupted") else None)
    except UnitError:
        return None


@measures(
    Measure("soak_cycles_missed", "count", "soak_cycles_missed"),
    Measure("failed_boots", "count", "failed_boots"),
    Measure("slow_boots", "count", "slow_boots"),
    Measure("config_lost", "count", "config_lost", bears_on=("power_supply",), evidence="strong",
            needs="config_checksum"),
    Measure("log_corrupted", "count", "log_corrupted", bears_on=("power_supply",), evidence="strong", needs="journal"),
    readers=True,
)
def test_cycle_soak(power_switch, unit, terminal, profile, record, pytestconfig, supply_watch):
    """N power cycles: failed boots, lost configuration, a journal that lost or repeated records."""
    spec = _power_spec(profile)
    cycles = pytestconfig.getoption("soak") or spec.soak_cycles
    boot_limit = profile.limit("cold_boot_s")  # a boot slower than a cold boot may take is slow
    boots: list[float | None] = []
    failed = config_lost = corrupted = compared = 0
    from posbench.core.console import announce
    before = _snapshot(unit, record)
    with progress.waiting(f"{cycles} power cycles of the unit", None):
        for n in range(1, cycles + 1):
            progress.step("power cycles", n, cycles)
            if cycles > spec.soak_cycles and (n == 1 or n % 10 == 0 or n == cycles):
                announce(f"soak: power cycle {n} of {cycles} ({failed} failed boots so far)")
            ecr, _, t_on = _boot(unit, terminal, None, spec)
            boots.append(ecr)
            _judge_boot(record, supply_watch, ecr is not None and boot_limit.check(ecr),
                        f"power cycle {n}: the boot was slow or failed", t_on, time.monotonic())
            if ecr is None:
                failed += 1
                unit.power_cycle(spec.off_s)  # a unit stuck in a boot loop needs the supply removed
                try:
                    unit.wait_ready()
                except UnitNotResponding:
                    break  # it stays dead: what was counted stands
                before = _snapshot(unit, record)
                continue
            after = _snapshot(unit, record)
            if before is not None and after is not None:
                config_lost += after[0] != before[0]
                corrupted += after[1] != before[1]
                compared += 1
            before = after
    record.plot(f"boot times over {cycles} power cycles",
                plots.boot_times(boots, boot_limit.max, f"boot time per power cycle ({cycles} cycles)"))
    record.measure("soak_cycles_missed", cycles - len(boots), note=f"{len(boots)} of {cycles} power cycles ran")
    record.measure("failed_boots", failed,
                   note=f"{failed} of {len(boots)} power cycles ended without the unit answering")
    slow = sum(1 for b in boots if b is not None and not boot_limit.check(b))
    record.measure("slow_boots", slow, note=f"{slow} boot(s) took longer than {boot_limit}")
    for name, count, note in (
            ("config_lost", config_lost, f"the configuration checksum changed after {config_lost} of {compared} "
                                         "power cycle(s)"),
            ("log_corrupted", corrupted, f"the journal changed across {corrupted} of {compared} idle power cycle(s)")):
        if not record.wanted(name):
            continue
        if compared:
            record.measure(name, count, note=note)
        else:
            record.unmeasured(name, "the unit never told its configuration and journal on both sides of a power cycle")


@measures(
    Measure("brownout_recovered", "", "brownout_recovered", bears_on=("power_supply",)),
    Measure("brownout_records_added", "records", "brownout_records_added", bears_on=("power_supply",),
            evidence="strong", needs="journal"),
    Measure("unreversed_sales", "count", "unreversed_sales", bears_on=("power_supply", "application")),
)
def test_brownout(supply, supply_watch, terminal, unit, profile, record, bench_config, actuator, request):
    """Drop the supply during a sale; the unit must recover, reverse or complete the sale, and
    keep its journal whole (one record for the sale, none lost, none repeated). Without the
    acquirer's log (a real terminal talks to its own acquirer) what the unit tells is judged."""
    _needs_supply(supply_watch)
    spec = _power_spec(profile)
    host_log = optional(request, "host_log")
    unit.revive()
    journal = record.wanted("brownout_records_added")
    seq_before = unit.ask(record, lambda: terminal.status().log_seq, "status") if journal else None
    card = profile.read_paths.chip.cards[0] if has(terminal, "card_sale") and profile.read_paths else None
    seen = _sale_under_brownout(supply, supply_watch, terminal, unit, actuator, card, spec, profile, record)
    record.measure("brownout_recovered", seen.recovered, if_failed=power.not_recovered(seen.garbled, terminal.boot_timeout))
    if seen.recovered != "yes":
        for name in ("brownout_records_added", "unreversed_sales"):
            record.unmeasured(name, "the unit did not come back after the brownout")
        return
    log = tuple(r for r in unit.ask(record, lambda: terminal.transaction_log(10), "transaction log")
                if r.seq > seq_before) if journal else None
    tid = bench_config.host.terminal_id if bench_config.host else None
    sale = power.BrownoutSale(seen.answered, log,
                              power.host_sales(host_log.records(), seen.since, tid) if host_log is not None else None)
    if power.reversal_pending(sale):  # a pending reversal also goes out before the next sale: give it that chance
        reached = _next_sale_reaches_host(terminal, actuator, card, profile.tests.sale_amounts[-1])
        sale = sale.after(power.host_sales(host_log.records(), seen.since, None).reversed, reached)
    record.take(power.judge_brownout_sale(sale))


class Brownout(NamedTuple):
    """What the bench saw of a sale under a brownout."""

    answered: bool
    """The unit answered the sale approved."""
    recovered: str
    """"yes": the unit answered again within its boot timeout on the restored supply, else "no"."""
    garbled: int
    """Frames its link damaged from the brownout until then."""
    since: str
    """When the sale began (ISO time, ms): the host log is read from there on."""


def _sale_under_brownout(supply, supply_watch, terminal, unit, actuator, card, spec, profile,
                         record) -> "Brownout":
    """A sale (``card`` inserted, None: none) with the supply dropped ``spec.brownout_at_s`` into
    it, the supply trace plotted into the report."""
    outcome: dict = {}

    def sale():  # a sale the brownout cuts off never answers: wait no longer than the brownout
        try:
            outcome["sale"] = terminal.sale(profile.tests.sale_amounts[0],
                                            timeout=spec.brownout_at_s + spec.brownout_s + 1.0)
        except PosbenchError as exc:  # the unit's silence, or the bench's: judged after the join
            outcome["error"] = exc

    if card:
        actuator.insert(card)  # the terminal reads it in the sale; taken out after the brownout
    since = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    with progress.waiting(f"a brownout to {spec.brownout_v:g} V during a sale", spec.brownout_at_s + spec.brownout_s + 3.0):
        seller = threading.Thread(target=sale, daemon=True)
        start = time.monotonic()
        seller.start()
        time.sleep(spec.brownout_at_s)
        t_drop, t_back = supply_watch.brownout(supply, spec.brownout_v, spec.brownout_s, spec.nominal_v)
        seller.join(spec.brownout_at_s + spec.brownout_s + 3.0)
    if card:
        actuator.remove()
    if isinstance(outcome.get("error"), BenchError):
        raise outcome["error"]
    garbles = unit.garbles()
    try:
        unit.wait_ready()  # up to boot_timeout; a unit that stays dark on the restored supply is not waited out
        recovered = "yes"
    except UnitNotResponding:
        recovered = "no"
    garbled = unit.garbles() - garbles
    _window(supply_watch, record, start, time.monotonic(),
            f"brownout to {spec.brownout_v:g} V for {spec.brownout_s:g} s during a sale",
            spec.min_input_v, [(t_drop, "drop"), (t_back, "restore")])
    return Brownout("sale" in outcome and outcome["sale"].display_code == "00", recovered, garbled, since)


def _next_sale_reaches_host(terminal, actuator, card, amount: int) -> bool:
    """Run one more sale (``card`` inserted, None: none): whether it reached the host."""
    if card:
        actuator.insert(card)
    try:
        return terminal.sale(amount).host_answered
    except UnitError:
        return False
    finally:
        if card:
            actuator.remove()
