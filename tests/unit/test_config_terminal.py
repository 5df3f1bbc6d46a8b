"""The [terminal] section's protocol keys: agent (serial) by default, ZVT on serial or TCP, Concert
on serial (8N1 or 7E1)."""
from __future__ import annotations

import pytest

from posbench.setup.config import parse_bench
from posbench.core.errors import ConfigError


def terminal(**keys: object) -> dict:
    return {"terminal": keys}


def error_of(data: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_bench(data, "b.toml")
    return info.value


def test_agent_is_the_default_and_needs_a_port():
    cfg = parse_bench(terminal(port="/dev/ttyUSB0"))
    t = cfg.terminal
    assert (t.protocol, t.port, t.address) == ("agent", "/dev/ttyUSB0", None)
    assert (t.password, t.currency) == ("123456", "978")
    err = error_of(terminal(baudrate=9600))
    assert err.key == "terminal.port" and "required" in str(err)


def test_agent_refuses_an_address():
    err = error_of(terminal(port="/dev/ttyS0", address="127.0.0.1:20007"))
    assert err.key == "terminal.address" and "serial only" in str(err)


def test_zvt_on_serial():
    t = parse_bench(terminal(protocol="zvt", port="/dev/pts/4", baudrate=9600)).terminal
    assert (t.protocol, t.port, t.address, t.baudrate) == ("zvt", "/dev/pts/4", None, 9600)


def test_zvt_on_tcp_with_password_and_currency():
    t = parse_bench(terminal(protocol="zvt", address="127.0.0.1:20007", password="000000",
                             currency="756")).terminal
    assert (t.port, t.address, t.password, t.currency) == (None, "127.0.0.1:20007", "000000", "756")


def test_zvt_needs_port_or_address():
    err = error_of(terminal(protocol="zvt"))
    assert err.key == "terminal.address" and "port (serial) or address" in str(err)


def test_zvt_refuses_port_and_address_together():
    err = error_of(terminal(protocol="zvt", port="/dev/pts/4", address="127.0.0.1:20007"))
    assert err.key == "terminal.address" and "not both" in str(err)


@pytest.mark.parametrize("address", ["127.0.0.1:0", "127.0.0.1:70000", ":20007"])
def test_zvt_address_must_be_host_port(address):
    err = error_of(terminal(protocol="zvt", address=address))
    assert err.key == "terminal.address" and "<host>:<port>" in str(err)


@pytest.mark.parametrize("keys, key", [
    ({"protocol": "nexo", "port": "/dev/ttyS0"}, "terminal.protocol"),
    ({"protocol": "concert", "port": "/dev/ttyS0", "line": "8N2"}, "terminal.line"),
    ({"protocol": "concert", "port": "/dev/ttyS0", "delay_code": "A012"}, "terminal.delay_code"),
    ({"protocol": "concert", "port": "/dev/ttyS0", "pos_number": "1"}, "terminal.pos_number"),
    ({"protocol": "concert"}, "terminal.port"),
    ({"protocol": "zvt", "port": "/dev/ttyS0", "password": "12345"}, "terminal.password"),
    ({"protocol": "zvt", "port": "/dev/ttyS0", "password": "12345a"}, "terminal.password"),
    ({"protocol": "zvt", "port": "/dev/ttyS0", "currency": "EUR"}, "terminal.currency"),
    ({"protocol": "zvt", "port": "/dev/ttyS0", "currency": "0978"}, "terminal.currency"),
    ({"protocol": "zvt", "port": ""}, "terminal.port"),
])
def test_bad_values_are_named(keys, key):
    assert error_of(terminal(**keys)).key == key


def test_caisse_ap_is_tcp_only_and_port_8888_by_default():
    t = parse_bench(terminal(protocol="caisse-ap", address="192.0.2.7")).terminal
    assert (t.protocol, t.address, t.port) == ("caisse-ap", "192.0.2.7:8888", None)
    assert parse_bench(terminal(protocol="caisse-ap", address="192.0.2.7:9000")).terminal.address == "192.0.2.7:9000"
    assert parse_bench(terminal(protocol="caisse-ap", address="[::1]")).terminal.address == "[::1]:8888"
    err = error_of(terminal(protocol="caisse-ap"))
    assert err.key == "terminal.address" and "needs address" in str(err)
    err = error_of(terminal(protocol="caisse-ap", port="/dev/ttyS0"))
    assert err.key == "terminal.port" and "TCP only" in str(err)
    err = error_of(terminal(protocol="caisse-ap", address="192.0.2.7:x"))
    assert err.key == "terminal.address"


def test_concert_on_serial_with_its_line_settings():
    t = parse_bench(terminal(protocol="concert", port="rfc2217://bench:4001", line="7E1")).terminal
    assert (t.protocol, t.port, t.line, t.delay_code, t.pos_number) == ("concert", "rfc2217://bench:4001", "7E1",
                                                                        "A010", "01")
    assert parse_bench(terminal(protocol="concert", port="/dev/ttyS0")).terminal.line == "8N1"


def test_concert_is_serial_only():
    err = error_of(terminal(protocol="concert", address="127.0.0.1:8888"))
    assert err.key in ("terminal.port", "terminal.address")
    err = error_of(terminal(protocol="concert", port="/dev/ttyS0", address="127.0.0.1:8888"))
    assert err.key == "terminal.address" and 'protocol "concert" is serial only' in str(err)


def test_a_zvt_address_without_a_port_means_20007():
    """docs/bench-setup.md writes a PT on the LAN as address = "10.0.0.5": it listens on 20007."""
    t = parse_bench(terminal(protocol="zvt", address="10.0.0.5")).terminal
    assert (t.protocol, t.address) == ("zvt", "10.0.0.5:20007")
    assert parse_bench(terminal(protocol="zvt", address="10.0.0.5:5577")).terminal.address == "10.0.0.5:5577"
