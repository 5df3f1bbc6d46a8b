"""The virtual bench shaped like a DUT profile (``SimBench(profile=...)``): the protocol it may
speak, the readers and the host it puts in the bench file, and every fault reaching the unit
model on a shape without bench readers. No test asserts a duration."""
from __future__ import annotations

import random
import tomllib

import pytest

from posbench.setup.cards import load_deck
from posbench.setup.config import load_bench
from posbench.drivers.actuator.virtual import request as control
from posbench.core.errors import ConfigError
from posbench.sim.bench import DEFAULT_PROFILE, SimBench, boot_timeout_s, sim_profile, sim_protocol
from posbench.sim.unit.faults import INJECTABLE, NETWORK
from posbench.sim.unit.records import VIRTUAL_BOOT_S, TerminalTiming

GENERIC = [("zvt-generic", "zvt"), ("zvt-generic", "zvt-tcp"), ("concert-generic", "concert"),
           ("caisse-ap-generic", "caisse-ap")]


def test_the_protocol_is_one_the_profile_speaks_and_defaults_to_its_first():
    zvt = sim_profile("zvt-generic")
    assert sim_protocol(zvt, None) == "zvt"
    assert sim_protocol(zvt, "zvt-tcp") == "zvt-tcp"
    with pytest.raises(ValueError, match="does not speak 'concert'; it speaks zvt, zvt-tcp"):
        sim_protocol(zvt, "concert")
    assert sim_protocol(sim_profile(DEFAULT_PROFILE), None) == "agent"  # today's default bench


def test_an_unknown_profile_names_the_known_ones():
    with pytest.raises(ConfigError, match="no packaged DUT profile .zvt.*zvt-generic"):
        sim_profile("zvt")
    with pytest.raises(ValueError, match="does not speak"):
        SimBench(profile="concert-generic", protocol="zvt")


def test_a_generic_profile_boots_the_virtual_unit_well_inside_its_limits():
    profile = sim_profile("zvt-generic")
    timing = TerminalTiming.for_profile(profile)
    assert timing.boot_s == VIRTUAL_BOOT_S < profile.boot_time_s
    assert timing.boot_s < profile.limit("cold_boot_s").max
    assert TerminalTiming.for_profile(sim_profile("pt100")).boot_s == sim_profile("pt100").boot_time_s
    assert boot_timeout_s(timing.boot_s) <= profile.limit("cold_boot_s").max


@pytest.mark.parametrize("name,protocol", GENERIC)
def test_a_generic_shape_has_no_bench_readers_and_no_host_log(tmp_path, name, protocol):
    with SimBench(seed=7, netlab=False, protocol=protocol, profile=name) as sim:
        assert sim.usb is None and sim.nfc is None and sim.reader is None and sim.dropper is None
        assert sim.host is not None  # the unit's own acquirer: it still authorizes the sales
        doc = tomllib.loads(sim.bench_toml())
        assert not {"usb", "nfc"} & set(doc), sorted(doc)
        # the acquirer's address, as the terminal's configuration names it; no log of it
        assert doc["host"] == {"address": "{}:{}".format(*sim.host.address)}, doc["host"]
        profile = sim_profile(name)
        assert doc["unit"]["model"] == profile.model and doc["unit"]["profile"] == name
        assert doc["terminal"]["protocol"] == protocol.removesuffix("-tcp")
        assert doc["sim"]["workdir"] == str(sim.workdir)
        assert sim.supply is not None and profile.power is not None
        assert (sim.supply.volts, sim.supply.amps) == (profile.power.nominal_v, profile.power.current_limit_a)
        config = load_bench(sim.write_bench(tmp_path / "bench.toml"))
        assert config.usb is None and config.nfc is None
        assert config.host is not None and config.host.log is None and not config.host.ours
        assert config.unit.model == profile.model


def test_the_pt100_shape_is_todays_bench():
    with SimBench(seed=7, netlab=False) as sim:
        doc = tomllib.loads(sim.bench_toml())
        assert {"usb", "nfc", "host"} <= set(doc)
        assert doc["unit"] == {"model": "PT100", "serial": sim.serial}
        assert "protocol" not in doc["terminal"]  # the agent protocol


UNIT_FAULTS = [f for f in INJECTABLE if f not in NETWORK]


@pytest.mark.parametrize("cause", UNIT_FAULTS)
def test_every_fault_reaches_the_unit_model_of_a_generic_shape(cause):
    with SimBench({cause: 1.0}, seed=11, netlab=False, protocol="zvt-tcp", profile="zvt-generic") as sim:
        assert sim.terminal is not None and sim.power is not None
        assert sim.terminal.unit.sev(cause) == 1.0
        if cause == "power_supply":
            assert sim.power.supply_fault == 1.0
        if cause == "issuer_referral":
            assert sim.host is not None and any(r.code == "01" for r in sim.host.rules.rules)


@pytest.mark.parametrize("technology,cause", [("magstripe", "msr_head"), ("chip", "chip_contacts"),
                                              ("contactless", "nfc_antenna")])
def test_a_reader_fault_fails_the_terminals_own_reads(technology, cause):
    """No bench reader to show it: the terminal's own head, contacts or antenna fails."""
    with SimBench({cause: 1.0}, seed=3, netlab=False, protocol="zvt", profile="zvt-generic") as sim:
        assert sim.terminal is not None
        unit = sim.terminal.unit
        unit.timing.card_read_s = 0.0
        card = load_deck()["VISA-T1"]
        reads = [unit.read_card(card.pan, "2912", technology) for _ in range(40)]
        assert sum(not r.ok for r in reads) >= 20
    with SimBench(seed=3, netlab=False, protocol="zvt", profile="zvt-generic") as healthy:
        assert healthy.terminal is not None
        healthy.terminal.unit.timing.card_read_s = 0.0
        assert all(healthy.terminal.unit.read_card(card.pan, "2912", technology).ok for _ in range(40))


def test_a_tap_on_a_bench_without_a_pn532_goes_to_the_terminals_antenna():
    with SimBench(seed=5, netlab=False, protocol="zvt", profile="zvt-generic") as sim:
        assert sim.control is not None and sim.terminal is not None and sim.power is not None
        assert sim.power.wait_state("on", 30.0)
        reply = control(sim.control.address, {"action": "tap", "card": "VISA-T1"})
        assert reply["ok"], reply
        presented = sim.terminal.card.take()
        assert presented is not None and presented[1] == "contactless"


def test_a_seeded_generic_unit_draws_the_same_serial():
    rng = random.Random(9)
    expected = f"{rng.randrange(10**7):07d}"
    with SimBench(seed=9, netlab=False, protocol="zvt", profile="zvt-generic") as sim:
        assert sim.serial == "0" + expected and len(sim.serial) % 2 == 0  # BCD: two digits a byte
