"""The bench room's own parts without a coordinator: the exporter config ``posbench export``
writes (read back by labgrid's own exporter config loader), the bench description built from an
acquired place's resources, the option parsing and ``--parallel``'s batch."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from posbench.setup.config import load_bench, parse_bench
from posbench.core.errors import ConfigError
from posbench.room import exported
from posbench.room.client import coordinator_address, parse_tags
from posbench.room import parallel  # noqa: I001
from posbench.room.parallel import batch_status, child_args

labgrid_config = pytest.importorskip("labgrid.remote.config", reason="labgrid is not installed (posbench[labgrid])")


@pytest.fixture
def ptys():
    """Three pseudo-terminals (paths under /dev/pts, as a virtual bench's), closed afterwards."""
    fds = [pty.openpty() for _ in range(3)]
    yield [os.ttyname(slave) for _, slave in fds]
    for master, slave in fds:
        os.close(master)
        os.close(slave)


def bench_file(tmp_path: Path, terminal: str, supply: str, nfc: str, name: str = "lab-1") -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(f'''[bench]
name = "{name}"
[unit]
model = "PT100"
serial = "SN-1"
[terminal]
port = "{terminal}"
baudrate = 115200
reply_timeout = 1.0
[host]
address = "127.0.0.1:8583"
log = "/var/log/host.jsonl"
[usb]
backend = "usbip://10.0.0.5:3240"
reader = "0801:0002"
[nfc]
path = "{nfc}"
[power]
driver = "korad"
port = "{supply}"
[actuator]
kind = "manual"
[sim]
pid = 4242
seed = 7
faults = ["msr_head=0.5", "resources"]
control = "127.0.0.1:9999"
''', encoding="utf-8")
    return path


def labgrid_reads(tmp_path: Path, text: str) -> dict:
    """The exporter config as labgrid's exporter loads it (a Jinja2 template, then YAML)."""
    path = tmp_path / "exporter.yaml"
    path.write_text(text, encoding="utf-8")
    return labgrid_config.ResourceConfig(str(path)).data


def test_the_exporter_config_serves_the_ports_and_carries_the_rest(tmp_path, ptys):
    config = load_bench(bench_file(tmp_path, *ptys))
    data = labgrid_reads(tmp_path, exported.exporter_config(config, "lab-1"))
    group = data["lab-1"]
    assert group["terminal"] == {"cls": "RawSerialPort", "port": ptys[0], "speed": 115200}
    assert group["supply"] == {"cls": "RawSerialPort", "port": ptys[1], "speed": 9600}
    assert group["nfc"] == {"cls": "RawSerialPort", "port": ptys[2], "speed": 115200}
    assert group["posbench-usb"] == {"cls": "PosbenchUsb", "backend": "usbip://10.0.0.5:3240", "reader": "0801:0002"}
    assert group["posbench-terminal"]["cls"] == "PosbenchTerminal" and "port" not in group["posbench-terminal"]
    assert group["posbench-power"] == {"cls": "PosbenchPower", "driver": "korad", "channel": 1}
    assert group["posbench-sim"]["faults"] == "msr_head=0.5,resources" and "pid" not in group["posbench-sim"]


def acquired(config_text: str, tmp_path: Path, place: str) -> dict:
    """The resources as the coordinator hands them to a client once the place is acquired: each
    RawSerialPort served as a NetworkSerialPort on a TCP port, the static entries as written."""
    resources = {}
    for k, (name, entry) in enumerate(labgrid_reads(tmp_path, config_text)[place].items()):
        if name == "location":
            continue
        params = {key: value for key, value in entry.items() if key != "cls"}
        cls = entry["cls"]
        if cls == "RawSerialPort":
            cls, params = "NetworkSerialPort", {"host": "127.0.0.1", "port": 40000 + k, "speed": params["speed"],
                                                "extra": {"path": params["port"]}}
        resources[name] = (cls, params, True)
    return resources


def test_the_place_gives_back_the_bench_with_its_served_ports(tmp_path, ptys):
    config = load_bench(bench_file(tmp_path, *ptys))
    resources = acquired(exported.exporter_config(config, "lab-1"), tmp_path, "lab-1")
    data, addresses = exported.bench_data("lab-1", resources)
    assert set(addresses) == {"terminal", "supply", "nfc"}
    assert all(url.startswith("rfc2217://127.0.0.1:4000") and url.endswith("?ign_set_control")
               for url in addresses.values())
    back = load_bench(exported.write_bench_toml(data, tmp_path / "back.toml"))
    assert back.terminal.port == addresses["terminal"] and back.power.port == addresses["supply"]
    assert back.nfc.path == addresses["nfc"]
    same = ("unit", "host", "usb", "actuator")
    assert {s: getattr(back, s) for s in same} == {s: getattr(config, s) for s in same}
    assert back.terminal.model_dump(exclude={"port"}) == config.terminal.model_dump(exclude={"port"})
    assert back.sim.faults == config.sim.faults and back.sim.pid is None  # a pid means nothing elsewhere
    assert back.bench.name == "lab-1"


def test_a_port_not_served_now_is_named(tmp_path, ptys):
    config = load_bench(bench_file(tmp_path, *ptys))
    resources = acquired(exported.exporter_config(config, "lab-1"), tmp_path, "lab-1")
    cls, params, _ = resources["supply"]
    resources["supply"] = (cls, {**params, "port": None}, True)
    with pytest.raises(ConfigError, match="supply: its NetworkSerialPort is not served now"):
        exported.bench_data("lab-1", resources)
    with pytest.raises(ConfigError, match="carries no posbench bench"):
        exported.bench_data("lab-1", {"terminal": resources["terminal"]})


def test_a_port_outside_dev_is_refused_and_a_url_stays_static(tmp_path, ptys):
    elsewhere = tmp_path / "ttyFAKE"
    elsewhere.symlink_to(ptys[0])  # a symlink outside /dev: labgrid would mark the resource broken
    with pytest.raises(ConfigError, match=r"terminal.port: '.*ttyFAKE' is not a device under /dev/.*name the "
                                          r"device it points to, /dev/pts/\d+") as exc:
        exported.exporter_config(load_bench(bench_file(tmp_path, str(elsewhere), *ptys[1:])), "lab-1")
    assert "rfc2217://" in str(exc.value)
    config = load_bench(bench_file(tmp_path, "rfc2217://10.0.0.9:4001", *ptys[1:]))
    group = labgrid_reads(tmp_path, exported.exporter_config(config, "lab-1"))["lab-1"]
    assert group["terminal"] == {"cls": "NetworkSerialPort", "host": "10.0.0.9", "port": 4001, "speed": 115200,
                                 "protocol": "rfc2217"}


def test_jinja_syntax_in_a_value_and_a_bad_place_name_are_config_errors(tmp_path, ptys):
    path = bench_file(tmp_path, *ptys)
    path.write_text(path.read_text().replace('serial = "SN-1"', 'serial = "SN-{{1}}"'))
    with pytest.raises(ConfigError, match="unit.serial: holds Jinja2 syntax"):
        exported.exporter_config(load_bench(path), "lab-1")
    with pytest.raises(ConfigError, match="cannot name a labgrid place"):
        exported.place_name(load_bench(path), "lab 1")


def test_the_place_is_tagged_from_the_unit_and_its_profile(tmp_path, ptys):
    config = load_bench(bench_file(tmp_path, *ptys))
    tags = exported.place_tags(config)
    assert tags["model"] == "PT100" and tags["protocol"] == "agent" and tags["bench"] == "lab-1"
    commands = exported.place_commands(config, "lab-1", "127.0.0.1:20408")
    assert commands[:2] == ["labgrid-client -x 127.0.0.1:20408 -p lab-1 create",
                            "labgrid-client -x 127.0.0.1:20408 -p lab-1 add-match '*/lab-1/*/*'"]
    assert "model=PT100" in commands[2]


def test_export_writes_once_and_refuses_to_overwrite(tmp_path, ptys):
    bench = bench_file(tmp_path, *ptys)
    run = lambda: subprocess.run([sys.executable, "-m", "posbench.cli", "export", "--bench", str(bench)],  # noqa: E731
                                 cwd=tmp_path, capture_output=True, text=True, timeout=60)
    first = run()
    assert first.returncode == 0 and (tmp_path / "lab-1.exporter.yaml").exists(), first.stderr
    assert "labgrid-exporter -c 127.0.0.1:20408" in first.stdout
    second = run()
    assert second.returncode == 3 and "never overwrites" in second.stderr


def test_option_parsing():
    assert parse_tags("model=PT100, protocol=agent") == {"model": "PT100", "protocol": "agent"}
    assert coordinator_address("lab-host") == "lab-host:20408"
    for bad in ("model", "=x", ""):
        with pytest.raises(ConfigError):
            parse_tags(bad)
    with pytest.raises(ConfigError):
        coordinator_address("host:port")


def test_parallel_children_and_the_batch_status():
    assert child_args(["triage", "--reserve", "model=PT100", "--parallel", "2", "--store", "x"]) == \
        ["triage", "--reserve", "model=PT100", "--store", "x"]
    assert child_args(["triage", "--parallel=3", "--reserve", "m=1"]) == ["triage", "--reserve", "m=1"]
    assert batch_status([0, 0]) == 0 and batch_status([0, 1]) == 1 and batch_status([1, 2]) == 2
    assert batch_status([2, 3]) == 3 and batch_status([0, -9]) == 2  # a child killed by a signal


@pytest.mark.parametrize("args,needle", [
    (["--place", "a", "--bench", "b.toml"], "take the bench from the place"),
    (["--place", "a", "--reserve", "m=1"], "exclude each other"),
    (["--parallel", "2"], "--parallel takes places by --reserve"),
    (["--place", "a", "--parallel", "2"], "--parallel takes places by --reserve"),
    (["--reserve", "model=PT100", "--parallel", "2", "--json", "x.json"], "drop --json"),
    (["--reserve", "model"], "expected KEY=VALUE"),
])
def test_bench_room_usage_errors_exit_3(tmp_path, args, needle):
    proc = subprocess.run([sys.executable, "-m", "posbench.cli", "triage", *args, "--coordinator", "127.0.0.1:1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_no_coordinator_named_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    proc = subprocess.run([sys.executable, "-m", "posbench.cli", "triage", "--place", "a"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and "need the labgrid coordinator" in proc.stderr, proc.stderr


def test_a_coordinator_that_is_not_there_is_a_bench_error(tmp_path):
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here
    proc = subprocess.run([sys.executable, "-m", "posbench.cli", "triage", "--place", "a", "--coordinator",
                           f"127.0.0.1:{port}"], cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 2 and "BENCH ERROR" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.timeout(60)
def test_parallel_stops_a_child_that_went_silent(monkeypatch, tmp_path):
    """A child that prints nothing for longer than any triage step may take is stuck: the batch
    stops it and counts it as a bench error instead of waiting for it without end."""
    marker = tmp_path / "first"
    script = ("import os, sys, time; print('started', flush=True)\n"
              "try:\n    os.close(os.open(sys.argv[1], os.O_CREAT | os.O_EXCL))\n"
              "except FileExistsError:\n    time.sleep(120)")  # the first child ends, the other hangs
    monkeypatch.setattr(parallel, "child_command", lambda argv: [sys.executable, "-c", script, str(marker)])
    console = Console(record=True, width=200)
    assert parallel.run_parallel(2, ["triage", "--parallel", "2"], console, silent_limit_s=1.0) == 2
    text = console.export_text()
    assert "exit 0: no fault found" in text, text
    assert "printed nothing for 1 s: stuck, stopping it" in text and "exit 2: bench error (stuck)" in text, text
