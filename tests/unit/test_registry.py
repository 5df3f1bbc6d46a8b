"""The protocol registry: every protocol's package has each layer the bench asks for, and its
virtual terminal what the virtual bench asks for."""
from __future__ import annotations

import pytest

from posbench.drivers import registry
from posbench.drivers.ecr.section import EcrSection
from posbench.sim import ecr

PROTOCOLS = registry.names()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_package_has_every_layer(protocol):
    assert issubclass(registry.section_model(protocol), EcrSection)
    assert registry.section_model(protocol).LINK in ("serial", "tcp", "either")
    adapter = registry.layer(protocol, "adapter")
    assert callable(adapter.open_terminal) and callable(adapter.capabilities)
    assert isinstance(adapter.CANNOT_TELL_APART, str)
    codes = registry.codes(protocol)
    for name in ("sale_failure_cause", "sale_read_failure", "read_failure_words", "saw_no_card",
                 "status_cause", "lock_cause"):
        assert callable(getattr(codes, name)), name
    assert isinstance(codes.SALE_CAUSES, tuple) and isinstance(codes.STATUS_CAUSES, tuple)
    assert callable(registry.layer(protocol, "check").answer)
    probe = registry.layer(protocol, "probe")
    assert all(p.protocol == protocol for p in (*probe.SERIAL, *probe.TCP))


@pytest.mark.parametrize("name", registry.sim_names())
def test_a_virtual_terminal_has_what_the_virtual_bench_asks(name):
    virtual = registry.virtual(name)
    for hook in ("front_end", "terminal_toml"):
        assert callable(getattr(virtual, hook)), hook
    assert virtual.SALE_TIMEOUT_S > 0 and isinstance(virtual.TERMINAL_ID_PREFIX, str)


def test_names_and_variants():
    assert registry.sim_names() == ("agent", "zvt", "zvt-tcp", "concert", "caisse-ap")
    assert registry.protocol_of("zvt-tcp") == "zvt" and registry.protocol_of("agent") == "agent"
    with pytest.raises(KeyError):
        registry.protocol_of("nexo")
    assert registry.DEFAULT == "agent"
    assert registry.cannot_tell_apart("zvt-tcp") == "" and "Concert" in registry.cannot_tell_apart("concert")


def test_the_discover_table_keeps_its_order():
    assert [p.protocol for p in registry.serial_probes()] == ["agent", "zvt", "concert"]
    assert [(p.protocol, p.port) for p in registry.tcp_probes()] == [("zvt", 20007), ("caisse-ap", 8888)]


def test_a_zvt_serial_is_its_bcd_digits():
    zvt = registry.virtual("zvt")
    assert zvt.unit_serial("PT-1234567", given=False) == "01234567"
    assert zvt.unit_serial("PT-12", given=True) == "12"
    assert zvt.serial_problem("A1") and zvt.serial_problem("12") is None
    agent = registry.virtual("agent")
    assert ecr.unit_serial(agent, "PT100-1", given=False) == "PT100-1" and ecr.serial_problem(agent, "PT-1") is None
    assert ecr.unit_serial(zvt, "PT-12", given=True) == "12" and ecr.serial_problem(zvt, "A1")
