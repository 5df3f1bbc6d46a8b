"""The preflight's judgement and the config checks it relies on (no devices needed)."""
from __future__ import annotations

import pytest

from posbench.setup.config import parse_bench
from posbench.setup.device_checks import ABSENT, FAIL, OK, WARN, Check, local_node
from posbench.core.errors import ConfigError
from posbench.setup.preflight import _judge_absent, check_store_url, config_mistakes

READER = Check("magstripe reader", "0801:0002 on libusb1", ABSENT, "not on the bus")


@pytest.mark.parametrize("terminal,expected", [(OK, FAIL), (FAIL, FAIL), (WARN, WARN)])
def test_an_absent_reader_is_the_bench_unless_the_unit_may_be_off(terminal, expected):
    judged = _judge_absent(READER, Check("terminal", "/dev/ttyUSB0", terminal, ""))
    assert judged.state == expected


@pytest.mark.parametrize("path", ["usb:072f:2200", "usb:001:004", "usb", "tty:USB0:pn532", "tty:AMA0",
                                  "udp:localhost:54321", "/dev/pts/3"])
def test_nfcpy_paths_are_accepted(path):
    assert parse_bench({"terminal": {"port": "/dev/ttyUSB0"}, "nfc": {"path": path}}).nfc.path == path


@pytest.mark.parametrize("path", ["tty:pts/3:pn532", "usb:72f", "nfc0", "usb:072f:2200:x"])
def test_malformed_nfc_paths_name_the_key(path):
    with pytest.raises(ConfigError) as err:
        parse_bench({"terminal": {"port": "/dev/ttyUSB0"}, "nfc": {"path": path}}, "b.toml")
    assert err.value.key == "nfc.path" and err.value.file == "b.toml"


def test_an_unknown_model_is_the_bench_files_key():
    config = parse_bench({"terminal": {"port": "/dev/ttyUSB0"}, "unit": {"model": "PT200"}}, "b.toml")
    with pytest.raises(ConfigError) as err:
        config_mistakes(config)
    assert (err.value.file, err.value.key) == ("b.toml", "unit.model") and "pt100" in err.value.expected


@pytest.mark.parametrize("url,ok", [("sqlite:///r.sqlite", True), ("postgresql://u@h/db", True),
                                    ("notaurl", False), ("foo://bar", False), ("mysql://h/db", False)])
def test_store_urls(url, ok):
    if ok:
        check_store_url(url)
    else:
        with pytest.raises(ValueError):
            check_store_url(url)


def test_a_port_must_be_a_device_node(tmp_path):
    config = parse_bench({"terminal": {"port": str(tmp_path)}}, "b.toml")
    assert local_node(config, "terminal.port", str(tmp_path / "missing")) is None
    assert local_node(config, "terminal.port", "/dev/null") is not None
    for path in (tmp_path, tmp_path / "f"):
        (tmp_path / "f").write_text("x")
        with pytest.raises(ConfigError, match="terminal.port"):
            local_node(config, "terminal.port", str(path))
