"""The [terminal] section's protocol keys: agent (serial) by default, ZVT on serial or TCP."""
from __future__ import annotations

import pytest

from posbench.config import parse_bench
from posbench.errors import ConfigError


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


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":20007"])
def test_zvt_address_must_be_host_port(address):
    err = error_of(terminal(protocol="zvt", address=address))
    assert err.key == "terminal.address" and "<host>:<port>" in str(err)


@pytest.mark.parametrize("keys, key", [
    ({"protocol": "concert", "port": "/dev/ttyS0"}, "terminal.protocol"),
    ({"protocol": "zvt", "port": "/dev/ttyS0", "password": "12345"}, "terminal.password"),
    ({"protocol": "zvt", "port": "/dev/ttyS0", "password": "12345a"}, "terminal.password"),
    ({"protocol": "zvt", "port": "/dev/ttyS0", "currency": "EUR"}, "terminal.currency"),
    ({"protocol": "zvt", "port": "/dev/ttyS0", "currency": "0978"}, "terminal.currency"),
    ({"protocol": "zvt", "port": ""}, "terminal.port"),
])
def test_bad_values_are_named(keys, key):
    assert error_of(terminal(**keys)).key == key
