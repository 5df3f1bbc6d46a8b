"""bench.toml (bench/setup/config.py) and DUT profiles (bench/setup/profile.py): every problem is a
ConfigError that names the file, the key and what is expected."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from posbench.setup.config import BenchConfig, load_bench, parse_bench
from posbench.core.errors import ConfigError
from posbench.core.limits import Limit
from posbench.setup.profile import PROFILE_DIR, Profile, load_profile, profile_for_model, version_tuple

pytestmark = pytest.mark.timeout(30)


def write(tmp_path: Path, text: str, name: str = "bench.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_bench(path)
    return info.value


def assert_names(err: ConfigError, path: Path, key: str, *expected: str) -> None:
    """The error and its message name the file, the key and what is expected."""
    msg = str(err)
    assert err.file == str(path)
    assert err.key == key
    assert msg.startswith(f"{path}: {key}: " if key else f"{path}: "), msg
    for word in expected:
        assert word in msg, f"{word!r} not in {msg!r}"


# -- valid bench descriptions ------------------------------------------------------------------
def test_minimal_bench(tmp_path):
    path = write(tmp_path, """
        [terminal]
        port = "/dev/ttyUSB0"
    """)
    cfg = load_bench(path)
    assert isinstance(cfg, BenchConfig)
    assert cfg.terminal.port == "/dev/ttyUSB0"
    assert cfg.source == path
    # defaults
    assert cfg.terminal.baudrate == 9600
    assert cfg.terminal.reply_timeout == 3.0
    assert cfg.terminal.sale_timeout == 40.0
    assert cfg.terminal.boot_timeout == 30.0
    assert cfg.bench.name == "bench" and cfg.bench.virtual is False
    assert cfg.unit.model is None and cfg.unit.serial is None and cfg.unit.profile is None
    assert cfg.host is None and cfg.usb is None and cfg.nfc is None
    assert cfg.power is None and cfg.sim is None


def test_full_bench(tmp_path):
    path = write(tmp_path, """
        [bench]
        name = "bench-3"
        virtual = true

        [unit]
        model = "PT100"
        serial = "PT100-0000123"
        profile = "profiles/pt100.toml"

        [terminal]
        port = "rfc2217://10.0.0.5:4001"
        baudrate = 115200
        reply_timeout = 1.5
        sale_timeout = 60
        boot_timeout = 45

        [host]
        address = "127.0.0.1:8583"
        log = "/var/log/posbench/host.jsonl"
        terminal_id = "PT000123"

        [usb]
        backend = "usbip://10.0.0.9:3240"

        [nfc]
        path = "tty:USB0:pn532"

        [power]
        driver = "korad"
        port = "/dev/ttyACM0"
        channel = 2

        [sim]
        pid = 4242
        faults = ["resources=0.5"]
        seed = 7
    """)
    cfg = load_bench(path)
    assert cfg.bench.name == "bench-3" and cfg.bench.virtual is True
    assert cfg.unit.model == "PT100" and cfg.unit.serial == "PT100-0000123"
    assert cfg.unit.profile == "profiles/pt100.toml"
    assert cfg.terminal.port == "rfc2217://10.0.0.5:4001"
    assert cfg.terminal.baudrate == 115200
    assert (cfg.terminal.reply_timeout, cfg.terminal.sale_timeout, cfg.terminal.boot_timeout) == (1.5, 60, 45)
    assert cfg.host is not None
    assert cfg.host.address == "127.0.0.1:8583"
    assert cfg.host.host_port == ("127.0.0.1", 8583)
    assert cfg.host.log == Path("/var/log/posbench/host.jsonl")
    assert cfg.host.terminal_id == "PT000123"
    assert cfg.usb is not None and cfg.usb.backend == "usbip://10.0.0.9:3240"
    assert cfg.nfc is not None and cfg.nfc.path == "tty:USB0:pn532"
    assert cfg.power is not None
    assert (cfg.power.driver, cfg.power.port, cfg.power.channel) == ("korad", "/dev/ttyACM0", 2)
    assert cfg.sim is not None
    assert (cfg.sim.pid, cfg.sim.faults, cfg.sim.seed) == (4242, ["resources=0.5"], 7)


@pytest.mark.parametrize("driver", ["korad", "lcus-relay", "usb-hub", "manual"])
def test_every_power_driver_is_accepted(driver):
    port = {"korad": "/dev/ttyACM0", "lcus-relay": "/dev/ttyUSB1"}.get(driver)
    cfg = parse_bench({"terminal": {"port": "/dev/ttyS0"}, "power": {"driver": driver, **({"port": port} if port else {})}})
    assert cfg.power is not None and cfg.power.driver == driver


def test_ipv6_host_address():
    cfg = parse_bench({"terminal": {"port": "/dev/ttyS0"}, "host": {"address": "[::1]:8583"}})
    assert cfg.host is not None and cfg.host.host_port == ("::1", 8583)


def test_usb_libusb1_backend():
    cfg = parse_bench({"terminal": {"port": "/dev/ttyS0"}, "usb": {}})
    assert cfg.usb is not None and cfg.usb.backend == "libusb1"


def test_parse_bench_source_defaults():
    cfg = parse_bench({"terminal": {"port": "/dev/ttyS0"}})
    assert cfg.source == Path("<bench>")
    with pytest.raises(ConfigError) as info:
        parse_bench({})
    assert str(info.value).startswith("<bench>: terminal: is required but missing (it names no [unit] profile)")


# -- broken bench descriptions -------------------------------------------------------------------
def test_malformed_toml(tmp_path):
    path = write(tmp_path, """
        [terminal
        port = "/dev/ttyUSB0"
    """)
    err = config_error(path)
    assert_names(err, path, "", "not valid TOML")


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "bench.toml"
    err = config_error(path)
    assert_names(err, path, "", "file not found")


def test_not_utf8(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_bytes(b'[terminal]\nport = "\xff\xfe"\n')
    err = config_error(path)
    assert_names(err, path, "", "cannot be read")


def test_missing_terminal_section(tmp_path):
    path = write(tmp_path, """
        [host]
        address = "127.0.0.1:8583"
    """)
    assert_names(config_error(path), path, "terminal", "required", "missing")


def test_missing_terminal_port(tmp_path):
    path = write(tmp_path, """
        [terminal]
        baudrate = 9600
    """)
    assert_names(config_error(path), path, "terminal.port", "required", "missing")


def test_empty_terminal_port(tmp_path):
    path = write(tmp_path, """
        [terminal]
        port = ""
    """)
    assert_names(config_error(path), path, "terminal.port", "at least 1 character")


@pytest.mark.parametrize("text, key", [
    ('[terminal]\nport = "/dev/ttyS0"\nbaudrat = 9600\n', "terminal.baudrat"),
    ('[termnal]\nport = "/dev/ttyS0"\n[terminal]\nport = "/dev/ttyS0"\n', "termnal"),
    ('[terminal]\nport = "/dev/ttyS0"\n[host]\nadress = "127.0.0.1:1"\naddress = "127.0.0.1:1"\n',
     "host.adress"),
    ('[terminal]\nport = "/dev/ttyS0"\n[power]\ndriver = "manual"\nchanel = 1\n', "power.chanel"),
])
def test_unknown_key_is_named(tmp_path, text, key):
    path = write(tmp_path, text)
    assert_names(config_error(path), path, key, "not a known key", "spelling")


def test_only_first_problem_named_but_others_counted(tmp_path):
    path = write(tmp_path, """
        [terminal]
        port = "/dev/ttyS0"
        baudrat = 9600
        reply_timeot = 1
    """)
    err = config_error(path)
    assert err.key == "terminal.baudrat"
    assert "and 1 more problem" in str(err)


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1", "127.0.0.1:", ":8583", "host:http",
                                     "host:0", "host:65536", "host:-1"])
def test_bad_host_address(tmp_path, address):
    path = write(tmp_path, f'[terminal]\nport = "/dev/ttyS0"\n[host]\naddress = "{address}"\n')
    assert_names(config_error(path), path, "host.address", "<host>:<port>")


def test_host_address_missing(tmp_path):
    path = write(tmp_path, '[terminal]\nport = "/dev/ttyS0"\n[host]\nlog = "h.jsonl"\n')
    assert_names(config_error(path), path, "host.address", "required")


@pytest.mark.parametrize("backend", ["libusb0", "usbip", "LIBUSB1", "", "usb://10.0.0.9:3240"])
def test_bad_usb_backend(tmp_path, backend):
    path = write(tmp_path, f'[terminal]\nport = "/dev/ttyS0"\n[usb]\nbackend = "{backend}"\n')
    assert_names(config_error(path), path, "usb.backend", '"libusb1" or "usbip://<host>:<port>"')


@pytest.mark.parametrize("backend", ["usbip://", "usbip://10.0.0.9", "usbip://10.0.0.9:port"])
def test_usbip_backend_without_port(tmp_path, backend):
    path = write(tmp_path, f'[terminal]\nport = "/dev/ttyS0"\n[usb]\nbackend = "{backend}"\n')
    assert_names(config_error(path), path, "usb.backend", "<host>:<port>")


def test_power_driver_not_in_list(tmp_path):
    path = write(tmp_path, '[terminal]\nport = "/dev/ttyS0"\n[power]\ndriver = "apc-pdu"\n')
    err = config_error(path)
    assert_names(err, path, "power.driver", "korad", "lcus-relay", "usb-hub", "manual")


@pytest.mark.parametrize("text, key", [
    ('[terminal]\nport = "/dev/ttyS0"\nbaudrate = 0\n', "terminal.baudrate"),
    ('[terminal]\nport = "/dev/ttyS0"\nreply_timeout = -1\n', "terminal.reply_timeout"),
    ('[terminal]\nport = "/dev/ttyS0"\nsale_timeout = 601\n', "terminal.sale_timeout"),
    ('[terminal]\nport = "/dev/ttyS0"\n[power]\ndriver = "korad"\nchannel = 9\n', "power.channel"),
    ('[terminal]\nport = 5\n', "terminal.port"),
])
def test_out_of_range_values_are_named(tmp_path, text, key):
    path = write(tmp_path, text)
    err = config_error(path)
    assert err.file == str(path) and err.key == key
    assert str(err).startswith(f"{path}: {key}: ")
    assert len(err.expected) > 5  # says what it wants, not just "invalid"


def test_config_error_message_format():
    err = ConfigError("b.toml", "terminal.port", "is required but missing")
    assert str(err) == "b.toml: terminal.port: is required but missing"
    assert str(ConfigError("b.toml", "", "file not found")) == "b.toml: file not found"


def test_config_is_frozen(tmp_path):
    cfg = parse_bench({"terminal": {"port": "/dev/ttyS0"}})
    with pytest.raises(Exception):
        cfg.terminal.port = "/dev/ttyS1"  # type: ignore[misc]


# -- DUT profiles --------------------------------------------------------------------------------
PROFILE_TEXT = """
model = "PX9"
keys_required = ["TMK"]
boot_time_s = 2.0

[firmware]
expected = "2.0.0"
minimum = "1.8.0"

[components]
os = ["1.0"]

[limits]
free_memory_kib = {{ {limit} }}

[tests]
sale_amounts = [100]
"""


def test_packaged_pt100_profile_loads():
    profile = profile_for_model("PT100")
    assert isinstance(profile, Profile)
    assert profile.model == "PT100"
    assert profile.source == PROFILE_DIR / "pt100.toml"
    assert version_tuple(profile.firmware.minimum) <= version_tuple(profile.firmware.expected)
    assert profile.boot_time_s > 0
    assert profile.keys_required and all(profile.keys_required)
    assert profile.local_failure_code == "01"
    assert profile.tests.sale_amounts and all(a > 0 for a in profile.tests.sale_amounts)
    assert all(versions for versions in profile.components.values())
    assert all(isinstance(lim, Limit) for lim in profile.limits.values())
    assert profile.limit("free_memory_kib").min is not None
    # lower-case model names select the same file
    assert profile_for_model("pt100") == profile


def test_profile_limit_missing_names_key():
    profile = profile_for_model("PT100")
    with pytest.raises(ConfigError) as info:
        profile.limit("no_such_limit")
    assert info.value.key == "limits.no_such_limit"
    assert info.value.file == str(profile.source)
    assert "missing" in str(info.value)


def test_profile_with_good_limit(tmp_path):
    path = write(tmp_path, PROFILE_TEXT.format(limit="min = 100, max = 200"), "px9.toml")
    profile = load_profile(path)
    assert profile.limit("free_memory_kib") == Limit(min=100, max=200)
    assert profile.source == path
    assert profile.tests.link_commands == 24 and profile.tests.log_records == 60  # defaults


def test_profile_bad_limit_min_above_max(tmp_path):
    path = write(tmp_path, PROFILE_TEXT.format(limit="min = 9000, max = 100"), "px9.toml")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert_names(info.value, path, "limits.free_memory_kib", "min is above max")


def test_profile_limit_without_bound(tmp_path):
    path = write(tmp_path, PROFILE_TEXT.format(limit=""), "px9.toml")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert_names(info.value, path, "limits.free_memory_kib", "min, max or equals")


def test_profile_unknown_key(tmp_path):
    path = write(tmp_path, "boot_tme_s = 3\n" + PROFILE_TEXT.format(limit="min = 1"), "px9.toml")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert info.value.key == "boot_tme_s"
    assert str(info.value).startswith(f"{path}: boot_tme_s: ")


def test_profile_missing_and_malformed(tmp_path):
    missing = tmp_path / "gone.toml"
    with pytest.raises(ConfigError) as info:
        load_profile(missing)
    assert_names(info.value, missing, "", "not found")
    bad = write(tmp_path, "model = \n", "bad.toml")
    with pytest.raises(ConfigError) as info:
        load_profile(bad)
    assert_names(info.value, bad, "", "TOML")


def test_profile_for_unknown_model_lists_known_models():
    with pytest.raises(ConfigError) as info:
        profile_for_model("nope")
    err = info.value
    assert err.key == "unit.model"
    assert err.file == str(PROFILE_DIR / "nope.toml")
    msg = str(err)
    assert "'nope'" in msg
    known = sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))
    assert "pt100" in known
    assert f"known: {', '.join(known)}" in msg


@pytest.mark.parametrize("older, newer", [
    ("3.2.0", "3.4.2"),
    ("3.9.9", "3.10.0"),   # numeric, not lexical
    ("3.1.7", "3.2.0"),
    ("2.99", "3"),
    ("3.2", "3.2.1"),
    ("1.0.0", "10.0.0"),
])
def test_version_tuple_ordering(older, newer):
    assert version_tuple(older) < version_tuple(newer)
    assert version_tuple(newer) > version_tuple(older)


def test_version_tuple_values():
    assert version_tuple("3.10.2") == (3, 10, 2)
    assert version_tuple(" 3.4.2 \n") == (3, 4, 2)
    assert version_tuple("3.2.0rc1") == (3, 2)  # non-numeric parts count as 0, trailing zeros drop
    assert version_tuple("3.2") == version_tuple("3.2.0")
    assert version_tuple("3.x.1") == (3, 0, 1)
    assert version_tuple("3.4.2") == version_tuple("3.4.2")


@pytest.mark.parametrize("driver", ["korad", "lcus-relay"])
def test_a_serial_power_driver_without_a_port_is_named(driver):
    import tomllib
    with pytest.raises(ConfigError, match=f"the {driver} driver needs port"):
        parse_bench(tomllib.loads(f'[terminal]\nport = "/dev/ttyS0"\n[power]\ndriver = "{driver}"\n'), "b.toml")


def test_usb_ids_are_parsed_once_when_the_file_is_read():
    import tomllib
    config = parse_bench(tomllib.loads('[terminal]\nport = "/dev/ttyS0"\n[usb]\nreader = "0801:0002"\n'
                                       '[power]\ndriver = "usb-hub"\nport = "2109:2817"\nchannel = 3\n'), "b.toml")
    assert config.usb.reader == (0x0801, 0x0002) and str(config.usb.reader) == "0801:0002"
    assert config.power.hub == (0x2109, 0x2817)
    with pytest.raises(ConfigError, match="power.port"):
        parse_bench(tomllib.loads('[terminal]\nport = "/dev/ttyS0"\n[power]\ndriver = "usb-hub"\nport = "hub"\n'), "b.toml")


def test_a_virtual_actuator_takes_the_sims_control_address_or_is_named():
    cfg = parse_bench({"terminal": {"port": "/dev/ttyS0"}, "actuator": {"kind": "virtual"},
                       "sim": {"control": "127.0.0.1:5000"}})
    assert cfg.actuator.address == "127.0.0.1:5000"
    with pytest.raises(ConfigError, match="actuator: a virtual actuator needs address"):
        parse_bench({"terminal": {"port": "/dev/ttyS0"}, "actuator": {"kind": "virtual"}}, "b.toml")
