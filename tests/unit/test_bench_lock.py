"""One triage per bench: device locks, and serial ports opened exclusively."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from posbench.config import parse_bench
from posbench.errors import PortUnavailable
from posbench.lock import BenchInUse, BenchLock, bench_resources


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("POSBENCH_LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path / "locks"


HOLD = textwrap.dedent("""
    import sys, time
    from posbench.lock import BenchLock
    with BenchLock({sys.argv[1]: "ECR link"}):
        print("held", flush=True)
        time.sleep(60)
""")


def _holder(resource: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, resource], stdout=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_told_who_has_the_bench(lock_dir, tmp_path):
    port = str(tmp_path / "ttyFAKE")
    proc = _holder(port)
    try:
        with pytest.raises(BenchInUse) as info:
            BenchLock({port: "ECR link"}).acquire()
        text = str(info.value)
        assert f"process {proc.pid}" in text and "since 20" in text and port in text
        assert "the bench is in use" in text
    finally:
        proc.kill()
        proc.wait(10)
    with BenchLock({port: "ECR link"}):  # the kernel dropped a killed holder's lock
        pass


def test_all_or_nothing(lock_dir):
    with BenchLock({"/dev/ttyA": "ECR link"}):
        with pytest.raises(BenchInUse):
            BenchLock({"/dev/ttyB": "supply", "/dev/ttyA": "ECR link"}).acquire()
        with BenchLock({"/dev/ttyB": "supply"}):  # the failed attempt held nothing back
            pass


def test_two_names_of_one_device_are_one_device(lock_dir, tmp_path):
    real = tmp_path / "ttyREAL"
    real.touch()
    alias = tmp_path / "by-id"
    alias.symlink_to(real)
    with BenchLock({str(real): "ECR link"}):
        with pytest.raises(BenchInUse):
            BenchLock({str(alias): "ECR link"}).acquire()


def test_the_resources_of_a_bench_description():
    config = parse_bench({
        "terminal": {"port": "/dev/ttyUSB0"},
        "power": {"driver": "korad", "port": "rfc2217://bench:4001"},
        "nfc": {"path": "tty:USB1:pn532"},
        "usb": {"backend": "usbip://127.0.0.1:3240"},
        "actuator": {"kind": "virtual", "address": "127.0.0.1:9000"},
    })
    assert bench_resources(config) == {"/dev/ttyUSB0": "ECR link", "rfc2217://bench:4001": "power (korad)",
                                       "tty:USB1:pn532": "NFC reader", "usbip://127.0.0.1:3240": "USB backend",
                                       "127.0.0.1:9000": "actuator"}


def test_a_second_writer_on_a_serial_port_is_refused():
    from posbench.drivers.serial.port import SerialBytePort
    master, slave = os.openpty()
    path = os.ttyname(slave)
    first, second = SerialBytePort(path), SerialBytePort(path)
    try:
        first.open()
        with pytest.raises(PortUnavailable, match="another program has it open"):
            second.open()
        first.close()
        second.open()  # free again once the first closed it
    finally:
        first.close()
        second.close()
        os.close(master)
        os.close(slave)


def test_a_pty_path_handed_to_a_new_pty_is_another_device():
    """/dev/pts/N is reused as soon as its pty closes: the key carries the pty's creation time."""
    import os
    from posbench.lock import resource_key
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        key = resource_key(path)
        assert key == f"{path}@{os.stat(path).st_ctime_ns}" and resource_key(path) == key
    finally:
        os.close(master)
        os.close(slave)
    assert resource_key(path) != key or not os.path.exists(path)
