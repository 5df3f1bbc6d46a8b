"""Bench power drivers (drivers/power/) against their emulators over real pseudo-terminals,
each emulator feeding the virtual unit's power model (bench/sim/unit/power.py).

Every rig is a context manager that stops what it started, even when a test fails.
"""
from __future__ import annotations

import contextlib
import io
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import serial

from posbench.setup.config import parse_bench
from posbench.core.errors import BenchError, NoTerminal, PortLost, PortUnavailable, UnitError
from posbench.drivers.power.korad import COMMAND_GAP_S
from posbench.sim.devices.korad import KoradEmulator
from posbench.sim.devices.lcus_relay import LcusRelayEmulator
from posbench.sim.unit.power import UnitPower
from posbench.sim.devices.pty_port import PtyPort
from posbench.sim.devices.serial_bridge import SerialBridge
from posbench.drivers.power import (KoradSupply, LcusRelay, ManualPower, MonitorStuck, OperatorNotConfirmed,
                           OperatorSkipped, OperatorTimeout, PowerMonitor, PowerSwitch,
                           Reading, SupplyNotResponding, SupplyProtocolError, Trace, monitor, stdin_ask)
from posbench.setup.devices import open_power
from posbench.drivers.power import manual as manual_mod
from posbench.drivers.power.lcus_relay import frame

BOOT_S = 0.3


@dataclass
class KoradRig:
    power: UnitPower
    emu: KoradEmulator
    supply: KoradSupply


@contextlib.contextmanager
def korad_rig(fault: float = 0.0, seed: int = 1, emulator=KoradEmulator,
              reopen_s: float = 0.5) -> Iterator[KoradRig]:
    power = UnitPower(BOOT_S, supply_fault=fault, rng=random.Random(seed)).start()
    emu = supply = None
    try:
        emu = emulator(power).start()
        supply = KoradSupply(emu.path, timeout=0.3, reopen_s=reopen_s).open()
        yield KoradRig(power, emu, supply)
    finally:
        if supply is not None:
            supply.close()
        if emu is not None:
            emu.stop()
        power.stop()


@dataclass
class RelayRig:
    power: UnitPower
    emu: LcusRelayEmulator
    relay: LcusRelay


@contextlib.contextmanager
def relay_rig(channels: int = 1) -> Iterator[RelayRig]:
    power = UnitPower(BOOT_S).start()
    emu = relay = None
    try:
        emu = LcusRelayEmulator(power, channels=channels).start()
        relay = LcusRelay(emu.path, initially_on=True, reopen_s=0.5).open()
        yield RelayRig(power, emu, relay)
    finally:
        if relay is not None:
            relay.close()
        if emu is not None:
            emu.stop()
        power.stop()


# -- Korad --------------------------------------------------------------------------------------------


def test_korad_identifies_and_reads_setpoints():
    with korad_rig() as rig:
        ident = rig.supply.identify()
        assert (ident.maker, ident.model, ident.version, ident.serial) == \
            ("KORAD", "KA3005P", "V5.5", rig.emu.serial)
        assert rig.supply.voltage_setpoint() == 12.0
        assert rig.supply.current_limit() == 2.0
        rig.supply.set_voltage(13.5)
        rig.supply.set_current(1.25)
        assert (rig.supply.voltage_setpoint(), rig.supply.current_limit()) == (13.5, 1.25)
        assert (rig.emu.volts, rig.emu.amps) == (13.5, 1.25)
        assert rig.power.source_v == 13.5
        with pytest.raises(ValueError):
            rig.supply.set_voltage(31.0)


def test_korad_reads_the_unit_through_the_model():
    with korad_rig() as rig:
        assert rig.power.wait_state("on", 2.0)
        idle = rig.supply.read()
        assert isinstance(idle, Reading)
        assert idle.volts == pytest.approx(rig.power.voltage(), abs=0.01)
        assert idle.amps == pytest.approx(0.25, abs=0.01)
        rig.power.set_activity("field")
        assert rig.supply.amps() == pytest.approx(0.45, abs=0.01)
        rig.power.set_activity("printing")
        printing = rig.supply.read()
        assert printing.amps == pytest.approx(1.47, abs=0.02) and printing.volts < idle.volts


def test_korad_status_byte_output_and_cc():
    with korad_rig() as rig:
        assert rig.power.wait_state("on", 2.0)
        st = rig.supply.status()
        assert st.output and st.cv and st.mode == "CV" and st.raw & 0x41 == 0x41
        rig.supply.set_current(1.4)
        rig.power.set_activity("printing")  # wants 1.47 A: the supply limits it
        st = rig.supply.status()
        assert st.output and not st.cv and st.mode == "CC"
        assert rig.supply.amps() == pytest.approx(1.4)


def test_korad_off_on_and_cycle_drive_the_unit():
    with korad_rig() as rig:
        assert rig.power.wait_state("on", 2.0)
        rig.supply.off()
        assert not rig.supply.is_on()
        assert rig.power.state == "off"
        assert rig.supply.read().volts == 0.0
        rig.supply.on()
        assert rig.supply.is_on() and rig.power.state == "booting"
        assert rig.power.wait_state("on", 2.0)
        before = len(rig.power.events)
        rig.supply.cycle(0.2)
        kinds = [k for _, k, _ in rig.power.events[before:]]
        assert kinds[:2] == ["power_off", "boot_start"]
        off_t, on_t = (t for t, k, _ in rig.power.events[before:before + 2])
        assert on_t - off_t >= 0.2
        assert rig.power.wait_state("on", 2.0)


def test_korad_ocp_trips_the_output():
    with korad_rig() as rig:
        assert rig.power.wait_state("on", 2.0)
        rig.supply.set_current(1.4)
        rig.supply.set_ocp(True)
        rig.power.set_activity("printing")
        deadline = time.monotonic() + 1.0
        while rig.supply.is_on() and time.monotonic() < deadline:
            pass
        assert not rig.supply.is_on()
        assert rig.power.state == "off"


def test_korad_commands_are_spaced_50_ms():
    """The KA3005P loses a command that follows the last one within 50 ms. Checked where the driver
    controls it, at its writes: on the emulator's side of the pty the gaps also carry the
    scheduling delays of a loaded machine (seen: 49.9 ms between two parses of commands written
    55 ms apart). Every command must arrive whole and in order."""
    with korad_rig() as rig:
        sent: list[tuple[float, bytes]] = []
        write = rig.supply.link.write

        def stamped(data: bytes, doing: str = "") -> None:
            sent.append((time.monotonic(), bytes(data)))
            write(data, doing)

        rig.supply.link.write = stamped
        rig.supply.identify()
        for _ in range(3):
            rig.supply.read()
        rig.supply.set_voltage(12.5)
        rig.supply.status()
        with monitor(rig.supply, 0.01) as trace:  # a monitor thread competing for the port
            rig.supply.set_current(1.8)
            rig.supply.status()
        assert len(trace) >= 1
        assert len(sent) >= 14
        gaps = [b - a for (a, _), (b, _) in zip(sent, sent[1:])]
        assert min(gaps) >= COMMAND_GAP_S, gaps
        assert [text for _, text in rig.emu.commands] == [data.decode() for _, data in sent]
        assert rig.emu.parser.dropped == 0


def test_korad_garbage_answer_is_a_protocol_error():
    class Garbled(KoradEmulator):
        def _handle(self, cmd):
            answer = super()._handle(cmd)
            if cmd.name == "VOUT?":
                return b"1Z.0\x00"
            if cmd.name == "ISET?":
                return answer + b"7"  # one byte too many
            return answer

    with korad_rig(emulator=Garbled) as rig:
        with pytest.raises(SupplyProtocolError, match="NN.NN") as err:
            rig.supply.volts()
        assert isinstance(err.value, BenchError) and not isinstance(err.value, UnitError)
        with pytest.raises(SupplyProtocolError, match="unexpected byte"):
            rig.supply.current_limit()
        assert rig.supply.voltage_setpoint() == 12.0  # the link itself is fine


def test_korad_silent_port_is_a_bench_error_within_the_timeout():
    port = PtyPort()  # a port with nothing behind it
    supply = KoradSupply(port.path, timeout=0.3)
    try:
        t = time.monotonic()
        with pytest.raises(SupplyNotResponding, match=r"\*IDN\?") as err:
            supply.identify()
        assert time.monotonic() - t < 1.0
        assert isinstance(err.value, BenchError)
    finally:
        supply.close()
        port.close()


def test_korad_missing_port_is_a_bench_error():
    with pytest.raises(PortUnavailable, match="/dev/ttyKORAD-missing"):
        KoradSupply("/dev/ttyKORAD-missing").open()


def test_korad_vanished_port_is_port_lost_within_the_deadline():
    with korad_rig(reopen_s=0.5) as rig:
        rig.supply.identify()
        rig.emu.stop()  # the supply's USB cable is pulled: its pty disappears
        t = time.monotonic()
        # a pty never comes back (its number may already be another process's): PortLost at once
        with pytest.raises(PortLost) as err:
            rig.supply.read()
        assert time.monotonic() - t < 2.0
        assert "korad" in str(err.value) and "does not come back" in str(err.value)


def test_korad_lost_terminal_server_is_port_lost():
    with korad_rig() as rig:
        bridge = SerialBridge(rig.emu.path, raw=True).start()
        supply = KoradSupply(bridge.url, timeout=0.3, reopen_s=0.5)
        try:
            assert supply.is_on()
            bridge.stop()
            t = time.monotonic()
            with pytest.raises(PortLost, match="korad.*did not come back within 0.5 s"):
                supply.read()
            assert time.monotonic() - t < 2.0
        finally:
            supply.close()
            bridge.stop()


def test_korad_reopens_a_port_that_comes_back():
    with korad_rig() as rig:
        first = SerialBridge(rig.emu.path, raw=True).start()
        second: list[SerialBridge] = []
        supply = KoradSupply(first.url, timeout=0.5, reopen_s=3.0)
        restarter = None
        try:
            assert supply.identify().model == "KA3005P"
            first.stop()  # the terminal server reboots ...

            def come_back() -> None:
                time.sleep(0.3)  # ... and listens again on the same port
                second.append(SerialBridge(rig.emu.path, raw=True, port=first.address[1]).start())
            restarter = threading.Thread(target=come_back)
            restarter.start()
            assert supply.voltage_setpoint() == 12.0
            assert supply.link.reopens == 1
        finally:
            if restarter is not None:
                restarter.join(5.0)
            supply.close()
            first.stop()
            for bridge in second:
                bridge.stop()


# -- monitor --------------------------------------------------------------------------------------------


def test_monitor_samples_the_supply_while_the_body_runs():
    with korad_rig() as rig:
        assert rig.power.wait_state("on", 2.0)
        assert isinstance(rig.supply, PowerMonitor) and isinstance(rig.supply, PowerSwitch)
        with monitor(rig.supply, 0.1, name="vbus") as trace:
            rig.power.set_activity("printing")
            time.sleep(0.5)
            rig.power.set_activity("idle")
            time.sleep(0.3)
        assert len(trace) >= 4
        assert trace.max_amps() == pytest.approx(1.47, abs=0.02)
        assert trace.min_amps() == pytest.approx(0.25, abs=0.01)
        assert trace.min_volts() > 11.5
        d = trace.to_dict()
        assert d["name"] == "vbus" and len(d["t_s"]) == len(d["volts"]) == len(trace)
        assert d["t_s"] == sorted(d["t_s"]) and d["errors"] == []


def test_supply_fault_sag_shows_in_the_readings_when_the_unit_resets():
    with korad_rig(fault=1.0, seed=4) as rig:
        assert rig.power.wait_state("on", 2.0)
        with monitor(rig.supply, 0.05) as trace:
            for _ in range(8):
                rig.power.set_activity("field")
                time.sleep(0.6)
                if [r for r in trace.snapshot() if r.volts < 10.5]:
                    break
                rig.power.wait_state("on", 2.0)
                rig.power.set_activity("idle")
        resets = [t for t, kind, _ in rig.power.events if kind == "brownout"]
        assert resets, rig.power.events
        low = [r for r in trace.snapshot() if r.volts < 10.5]
        assert low, trace.to_dict()
        # The low reading comes from the dip that reset the unit (within its 0.5 s).
        assert any(abs(r.t - t) < 0.6 for r in low for t in resets)


def test_healthy_supply_readings_stay_up_under_load():
    with korad_rig(fault=0.0) as rig:
        assert rig.power.wait_state("on", 2.0)
        with monitor(rig.supply, 0.05) as trace:
            for activity in ("reading", "field", "printing", "idle"):
                rig.power.set_activity(activity)
                time.sleep(0.15)
        assert trace.min_volts() > 11.5
        assert not [k for _, k, _ in rig.power.events if k == "brownout"]


class FlakyMeter:
    def __init__(self, fail_after: int):
        self.reads, self.fail_after = 0, fail_after

    def read(self) -> Reading:
        self.reads += 1
        if self.reads > self.fail_after:
            raise SupplyNotResponding("korad", "measuring volts (VOUT1?)", "no answer")
        return Reading(12.0, 0.25, time.monotonic())


def test_monitor_raises_the_meters_bench_error_after_the_body():
    meter = FlakyMeter(2)
    with pytest.raises(SupplyNotResponding):
        with monitor(meter, 0.01) as trace:
            time.sleep(0.2)
    assert len(trace) == 2 and "no answer" in trace.errors[0]


def test_monitor_body_error_wins():
    with pytest.raises(KeyError):
        with monitor(FlakyMeter(0), 0.01):
            time.sleep(0.05)
            raise KeyError("body")


def test_monitor_with_a_stuck_meter_has_a_deadline():
    release = threading.Event()

    class Stuck:
        def read(self) -> Reading:
            release.wait(5.0)
            return Reading(0.0, 0.0, time.monotonic())

    t = time.monotonic()
    try:
        with pytest.raises(MonitorStuck, match="0.2 s"):
            with monitor(Stuck(), 0.05, stop_timeout_s=0.2):
                pass
        assert time.monotonic() - t < 1.0
    finally:
        release.set()


def test_trace_helpers():
    tr = Trace(name="x", interval_s=0.1, t0=100.0)
    assert tr.min_volts() is None and tr.mean_amps() is None
    for i, (v, a) in enumerate([(12.0, 0.25), (10.2, 1.5), (11.9, 0.3)]):
        tr.add(Reading(v, a, 100.0 + 0.1 * i))
    assert (tr.min_volts(), tr.max_volts()) == (10.2, 12.0)
    assert tr.mean_volts() == pytest.approx(34.1 / 3)
    assert (tr.min_amps(), tr.max_amps()) == (0.25, 1.5)
    assert tr.times == pytest.approx([0.0, 0.1, 0.2])
    assert [r.volts for r in tr.snapshot() if r.volts < 10.5] == [10.2]
    assert [r.volts for r in tr.between(100.05, 100.3)] == [10.2, 11.9]
    assert tr.to_dict()["min_volts"] == 10.2


# -- LCUS relay --------------------------------------------------------------------------------------------


def test_relay_frames():
    assert frame(1, True) == bytes.fromhex("A00101A2")
    assert frame(1, False) == bytes.fromhex("A00100A1")
    with pytest.raises(ValueError):
        frame(0, True)


def test_relay_switches_the_units_adapter():
    with relay_rig() as rig:
        assert rig.power.wait_state("on", 2.0) and rig.relay.is_on()
        rig.relay.off()
        deadline = time.monotonic() + 1.0
        while rig.emu.is_closed() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not rig.emu.is_closed() and not rig.relay.is_on()
        assert rig.power.state == "off" and rig.power.source_v == 0.0
        rig.relay.on()
        assert rig.power.wait_state("booting", 1.0)
        assert rig.power.source_v == 12.0
        assert rig.power.wait_state("on", 2.0)
        assert [f[1:] for f in rig.emu.frames] == [(1, 0), (1, 1)]
        assert rig.emu.parser.bad_checksums == 0


def test_relay_cycle_reboots_the_unit():
    with relay_rig() as rig:
        assert rig.power.wait_state("on", 2.0)
        before = len(rig.power.events)
        rig.relay.cycle(0.2)
        assert rig.power.wait_state("booting", 1.0)
        off_t, on_t = (t for t, k, _ in rig.power.events[before:] if k in ("power_off", "boot_start"))
        assert on_t - off_t >= 0.2
        assert rig.power.wait_state("on", 2.0)


def test_relay_board_ignores_other_channels_and_bad_checksums():
    with relay_rig() as rig:
        rig.relay.close()  # ports are opened exclusively: one opener at a time
        other = LcusRelay(rig.emu.path, channel=2)
        try:
            other.off()  # a one-relay board has no channel 2
        finally:
            other.close()
        with serial.serial_for_url(rig.emu.path, timeout=0.1) as raw:
            raw.write(bytes.fromhex("A00100A2"))  # relay 1 off, wrong checksum
            raw.flush()
        time.sleep(0.15)
        assert rig.emu.is_closed()
        assert rig.emu.ignored == 1 and rig.emu.parser.bad_checksums == 1
        assert rig.power.wait_state("on", 2.0)


def test_relay_vanished_port_is_port_lost():
    with relay_rig() as rig:
        bridge = SerialBridge(rig.emu.path, raw=True).start()  # the board behind a terminal server
        relay = LcusRelay(bridge.url, reopen_s=0.5)
        try:
            relay.off()
            assert rig.power.wait_state("off", 1.0)
            bridge.stop()  # ... which goes away
            t = time.monotonic()
            with pytest.raises(PortLost, match="lcus-relay.*did not come back within 0.5 s") as err:
                relay.on()
            assert time.monotonic() - t < 2.0 and isinstance(err.value, BenchError)
            assert rig.power.state == "off"
        finally:
            relay.close()
            bridge.stop()


def test_relay_missing_port():
    with pytest.raises(PortUnavailable):
        LcusRelay("/dev/ttyLCUS-missing").open()


def test_open_power_builds_the_configured_driver():
    from posbench.setup.config import PowerSection
    with relay_rig() as rig:
        rig.relay.close()  # ports are opened exclusively: one opener at a time
        relay = open_power(PowerSection(driver="lcus-relay", port=rig.emu.path))
        try:
            assert isinstance(relay, LcusRelay) and relay.name == "lcus-relay"
        finally:
            relay.close()
    assert isinstance(open_power(PowerSection(driver="manual"), ask=lambda p, t: ""), ManualPower)


def test_every_power_driver_bench_toml_allows_has_a_factory():
    """bench.toml's driver names and the registry's are one list."""
    from typing import get_args
    from posbench.setup.config import PowerSection
    from posbench.setup.devices import POWER_DRIVERS
    assert set(get_args(PowerSection.model_fields["driver"].annotation)) == set(POWER_DRIVERS)


# -- manual --------------------------------------------------------------------------------------------


class Script:
    def __init__(self, *answers):
        self.answers, self.prompts = list(answers), []

    def __call__(self, prompt: str, timeout_s: float):
        self.prompts.append((prompt, timeout_s))
        return self.answers.pop(0)


def test_manual_power_prompts_and_tracks_state():
    ask = Script("", "ok", "done", "y")
    power = ManualPower(ask, timeout_s=5.0)
    assert isinstance(power, PowerSwitch)
    power.off()
    assert not power.is_on()
    power.on()
    assert power.is_on()
    t = time.monotonic()
    power.cycle(0.1)
    assert time.monotonic() - t >= 0.1
    assert [p for p, _ in ask.prompts] == [
        "Switch the unit's power OFF and press Enter", "Switch the unit's power ON and press Enter",
        "Switch the unit's power OFF and press Enter", "Switch the unit's power ON and press Enter"]
    assert {t for _, t in ask.prompts} == {5.0}


def test_manual_power_timeout_and_skip_are_bench_errors():
    with pytest.raises(OperatorTimeout, match="within 5 s") as err:
        ManualPower(Script(None), timeout_s=5.0).off()
    assert isinstance(err.value, BenchError)
    with pytest.raises(OperatorSkipped, match="skip"):
        ManualPower(Script("  SKIP ")).on()
    with pytest.raises(OperatorNotConfirmed, match="3 prompts"):
        ManualPower(Script("what?", "huh", "eh")).on()


def test_manual_power_asks_when_state_unknown():
    ask = Script("maybe", "n")
    power = ManualPower(ask)
    assert power.is_on() is False
    assert power.is_on() is False  # remembered: no more prompts
    assert len(ask.prompts) == 2 and "y or n" in ask.prompts[0][0]
    with pytest.raises(OperatorTimeout):
        ManualPower(Script(None)).is_on()


def test_stdin_ask_reads_a_line_or_times_out(monkeypatch):
    r, w = os.pipe()
    with os.fdopen(r, "r") as reader, os.fdopen(w, "w") as writer:
        monkeypatch.setattr(manual_mod.sys, "stdin", reader)
        monkeypatch.setattr(manual_mod.sys, "stderr", io.StringIO())
        writer.write("done\n")
        writer.flush()
        assert stdin_ask("Switch it", 1.0) == "done"
        t = time.monotonic()
        assert stdin_ask("Switch it", 0.1) is None
        assert time.monotonic() - t < 0.5
        writer.close()
        with pytest.raises(NoTerminal, match="nobody could be asked"):  # end of input: nobody to confirm
            stdin_ask("Switch it", 1.0)


# -- what the bench changes, put back (issue 21, finding 3) ------------------------------------------
STOP_IN_S = 7.25
"""A wait of this many seconds is where the tests below raise a stop signal's KeyboardInterrupt."""


@pytest.fixture
def stop_in_the_wait(monkeypatch):
    """``time.sleep(STOP_IN_S)`` raises KeyboardInterrupt (what ``posbench.core.signals`` turns SIGTERM
    into, in the test thread); every other sleep sleeps."""
    real = time.sleep

    def sleep(seconds: float) -> None:
        if seconds == STOP_IN_S:
            raise KeyboardInterrupt("SIGTERM")
        real(seconds)
    monkeypatch.setattr(time, "sleep", sleep)


def test_a_brownout_stopped_half_way_leaves_the_supply_at_nominal(stop_in_the_wait):
    from posbench.spec.supply_watch import SupplyWatch
    with korad_rig() as rig:
        watch = SupplyWatch(rig.supply, 0.1, 10.5)  # not sampling: only its record of the bench's own drops
        with pytest.raises(KeyboardInterrupt):
            watch.brownout(rig.supply, 7.0, STOP_IN_S, 12.0)  # interrupted between the drop and the restore
        assert rig.emu.volts == 12.0 and rig.supply.voltage_setpoint() == 12.0
        assert len(watch.switched_off) == 1  # the drop is still the bench's, not a sag of the unit's supply
        assert [text for _, text in rig.emu.commands if text.startswith("VSET1:")] == ["VSET1:07.00", "VSET1:12.00"]


@pytest.mark.parametrize("how", ["driver", "strategy"])
def test_a_power_cycle_stopped_while_off_switches_the_unit_back_on(stop_in_the_wait, how):
    from posbench.fixtures.unit import UnitStrategy
    with korad_rig() as rig:
        with pytest.raises(KeyboardInterrupt):
            if how == "driver":
                rig.supply.cycle(STOP_IN_S)
            else:
                config = parse_bench({"terminal": {"port": "/dev/ttyUSB0"},
                                      "power": {"driver": "korad", "port": rig.emu.path}})
                strategy = UnitStrategy(None, None, config, {"power_switch": rig.supply, "supply_watch": None}.get)
                strategy.power_cycle(STOP_IN_S)
        assert rig.emu.output and rig.supply.is_on()


def test_restore_puts_back_volts_limit_and_output_and_says_what_it_changed():
    from posbench.drivers.power import Setpoint
    with korad_rig() as rig:
        nominal = Setpoint(12.0, 2.0, True)
        assert rig.supply.restore(nominal) == []  # already there: nothing sent but the reads
        rig.supply.set_voltage(7.0)
        rig.supply.set_current(0.5)
        rig.supply.off()
        assert rig.supply.setpoint() == Setpoint(7.0, 0.5, False)
        changed = rig.supply.restore(nominal)
        assert changed == ["0.500 A -> 2.000 A limit", "7.00 V -> 12.00 V", "output off -> on"]
        assert (rig.emu.volts, rig.emu.amps, rig.emu.output) == (12.0, 2.0, True)


def test_the_preflight_finds_a_supply_left_at_brownout_volts_and_restores_it():
    from posbench.setup.device_checks import WARN, OK, power
    with korad_rig() as rig:
        rig.supply.set_voltage(7.0)  # a run killed mid-brownout (SIGKILL: nothing of it ran)
        rig.supply.off()
        rig.supply.close()  # that run is gone; the preflight opens the port itself
        config = parse_bench({"terminal": {"port": "/dev/ttyUSB0"}, "unit": {"model": "PT100"},
                              "power": {"driver": "korad", "port": rig.emu.path}})
        check = power(config)
        assert check.state == WARN, check
        assert check.said.startswith("supply was left at 7.00 V (profile nominal 12 V), output off: restored"), check
        assert (rig.emu.volts, rig.emu.amps, rig.emu.output) == (12.0, 2.0, True)
        again = power(config)
        assert again.state == OK and "profile's 12 V" in again.said, again


def test_posbench_check_says_a_supply_left_at_brownout_volts_but_leaves_it():
    """``posbench check`` changes nothing on the bench: the supply's wrong setpoint is said only."""
    from posbench.setup.device_checks import WARN
    from posbench.setup.preflight import device_checks
    with korad_rig() as rig:
        rig.supply.set_voltage(7.0)
        rig.supply.close()
        config = parse_bench({"terminal": {"port": "/dev/ttyUSB0"}, "unit": {"model": "PT100"},
                              "power": {"driver": "korad", "port": rig.emu.path}})
        check = device_checks(config, read_only=True)["power"](config)
        assert check.state == WARN and "7.00 V (profile nominal 12 V)" in check.said, check
        assert "left as it is" in check.said, check
        assert (rig.emu.volts, rig.emu.output) == (7.0, True)
