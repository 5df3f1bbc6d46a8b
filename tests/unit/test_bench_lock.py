"""One triage per bench: device locks, and serial ports opened exclusively."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from posbench.setup.config import parse_bench
from posbench.core.errors import PortUnavailable
from posbench.setup.lock import BenchInUse, BenchLock, bench_resources


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("POSBENCH_LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path / "locks"


HOLD = textwrap.dedent("""
    import sys, time
    from posbench.setup.lock import BenchLock
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


def test_two_virtual_readers_with_the_same_usb_ids_are_two_benches():
    """Two virtual ACR122U benches (each its own USB/IP server) are not one device: a device named
    by its USB ids is locked on its bench's USB backend."""
    def reader_bench(port: int) -> dict[str, str]:
        return bench_resources(parse_bench({"unit": {"profile": "acr122u"}, "nfc": {"path": "usb:072f:2200"},
                                            "usb": {"backend": f"usbip://127.0.0.1:{port}"},
                                            "power": {"driver": "usb-hub", "port": "2109:2817", "channel": 1}}))
    first, second = reader_bench(3240), reader_bench(3241)
    assert "usbip://127.0.0.1:3240 usb:072f:2200" in first and not set(first) & set(second)
    local = bench_resources(parse_bench({"unit": {"profile": "acr122u"}, "nfc": {"path": "usb:072f:2200"},
                                         "usb": {"backend": "libusb1"}}))
    assert local == {"usb:072f:2200": "NFC reader"}  # this host's bus: one such reader at a time


def test_a_second_writer_on_a_serial_port_is_refused():
    from posbench.drivers.serial.port import SerialBytePort
    master, slave = os.openpty()
    path = os.ttyname(slave)
    first, second = SerialBytePort(path), SerialBytePort(path)
    try:
        first.open()
        with pytest.raises(PortUnavailable, match="another program has it open: this process"):
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
    from posbench.setup.lock import resource_key
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        key = resource_key(path)
        assert key == f"{path}@{os.stat(path).st_ctime_ns}" and resource_key(path) == key
    finally:
        os.close(master)
        os.close(slave)
    assert resource_key(path) != key or not os.path.exists(path)


def test_a_new_lock_file_is_writable_by_every_user_whatever_the_umask(lock_dir):
    old = os.umask(0o022)
    try:
        with BenchLock({"/dev/ttyS7": "ECR link"}):
            (path,) = lock_dir.glob("*.lock")
            assert path.stat().st_mode & 0o777 == 0o666
    finally:
        os.umask(old)


def test_another_users_read_only_lock_file_still_locks(lock_dir, tmp_path):
    """A lock file another user made (an older posbench, a different umask) and this one cannot
    write: the device is locked all the same, only the holder's note is left out."""
    import shutil
    with BenchLock({"/dev/ttyS8": "ECR link"}):
        (path,) = lock_dir.glob("*.lock")
    wrap: list[str] = []
    if os.geteuid() == 0:  # root writes anything: another user's file, seen from a user namespace
        if not shutil.which("unshare"):
            pytest.skip("as root, a file root cannot write needs a user namespace and `unshare` is missing")
        wrap = ["unshare", "--user", "--map-root-user"]
        os.chown(path, 65534, 65534)
    os.chmod(path, 0o644 if wrap else 0o444)
    probe = subprocess.run([*wrap, sys.executable, "-c", f"open({str(path)!r}, 'r+b')"], capture_output=True, text=True)
    if "PermissionError" not in probe.stderr:
        pytest.skip(f"cannot make the lock file unwritable here: {probe.stderr.strip()[-200:]}")
    code = textwrap.dedent("""
        import sys
        from posbench.setup.lock import BenchLock
        with BenchLock({"/dev/ttyS8": "ECR link"}) as lock:
            print("held", len(lock.held))
    """)
    done = subprocess.run([*wrap, sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          env=os.environ.copy())
    assert done.stdout.strip() == "held 1", done.stdout + done.stderr


def test_a_lock_directory_nobody_may_write_is_a_bench_error(lock_dir, tmp_path, monkeypatch):
    """Not a traceback, not the unit's fault: the lock file cannot be made."""
    from posbench.core.errors import BenchError
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    monkeypatch.setenv("POSBENCH_LOCK_DIR", str(blocked / "locks"))
    with pytest.raises(BenchError, match="lock directory"):
        BenchLock({"/dev/ttyS9": "ECR link"}).acquire()


def test_a_port_held_by_another_program_names_it():
    """What a technician must close (a terminal program, another bench) is named by pid and name."""
    import subprocess
    import sys
    from posbench.drivers.serial.port import SerialBytePort
    master, slave = os.openpty()
    path = os.ttyname(slave)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({path!r}, os.O_RDWR | os.O_NOCTTY); fcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('held', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    port = SerialBytePort(path)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PortUnavailable, match=rf"another program has it open: pid {holder.pid} \(python"):
            port.open()
    finally:
        holder.kill()
        holder.wait(10)
        port.close()
        os.close(master)
        os.close(slave)


def test_a_driver_first_opened_after_the_emulator_died_refuses_the_strangers_pty():
    """Seen with tests in parallel: a triage whose virtual bench was killed opened its supply
    fixture afterwards, on a path the kernel had handed to another test's new pty, and locked that
    test's port. The bench's lock pins its ptys; until it is released, a new driver refuses them."""
    from posbench.drivers.nfc.reader import NfcReader
    from posbench.drivers.serial.port import PINNED_PTYS, SerialBytePort
    master, slave = os.openpty()
    path = os.ttyname(slave)
    lock = BenchLock({path: "terminal"}).acquire()
    others: list[tuple[int, int]] = []
    try:
        assert path in PINNED_PTYS
        os.close(master)
        os.close(slave)
        time.sleep(0.05)  # past the kernel's timestamp tick (pty_identity)
        others = [os.openpty() for _ in range(4)]
        if not any(os.ttyname(s) == path for _, s in others):
            pytest.skip(f"the kernel did not reuse {path} this time")
        with pytest.raises(PortUnavailable, match="different pseudo-terminal now has this path"):
            SerialBytePort(path).open()
        with pytest.raises(PortUnavailable, match="different pseudo-terminal now has this path"):
            NfcReader(path, timeout=1.0)
        lock.release()
        assert path not in PINNED_PTYS
        port = SerialBytePort(path)
        port.open()  # a later run on a bench that has this pty now
        port.close()
    finally:
        lock.release()
        for m, s in others:
            os.close(m)
            os.close(s)


def test_lock_files_nobody_holds_are_pruned_and_held_ones_kept(lock_dir):
    """A new pty is a new lock name each run: without pruning the directory grows for ever."""
    for n in range(40):  # what earlier runs left
        with BenchLock({f"/dev/pts/{n}@16{n:08d}": "ECR link"}):
            pass
    other = _holder("/dev/ttyPOSBENCH-HELD")
    try:
        with BenchLock({"/dev/ttyPOSBENCH-MINE": "supply"}) as mine:
            names = {p.name for p in lock_dir.iterdir()}
            assert len(names) == 3, names  # the other process's, mine, and the prune lock
            assert any("HELD" in n for n in names) and any("MINE" in n for n in names)
            with pytest.raises(BenchInUse):  # pruning took nothing from its holder
                BenchLock({"/dev/ttyPOSBENCH-HELD": "ECR link"}).acquire()
            assert mine.held
    finally:
        other.kill()
        other.wait()


def test_a_prune_never_makes_a_lock_taken_meanwhile_look_held_or_lets_two_hold_it(lock_dir):
    """Prunes in another process while this one takes and frees one device's lock over and over:
    never a false 'in use', and never a second holder (the prune lock keeps them apart)."""
    from posbench.setup.lock import prune
    pruner = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        from posbench.setup.lock import BenchLock, prune
        print("pruning", flush=True)
        while True:
            prune()
            with BenchLock({"/dev/ttyPOSBENCH-OTHER": "supply"}):
                pass
    """)], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert pruner.stdout.readline().strip() == "pruning"
        for _ in range(300):
            with BenchLock({"/dev/ttyPOSBENCH-RACE": "ECR link"}):
                with pytest.raises(BenchInUse):
                    BenchLock({"/dev/ttyPOSBENCH-RACE": "ECR link"}).acquire()
        assert pruner.poll() is None, "the pruning process died"
    finally:
        pruner.kill()
        pruner.wait()
    assert prune() >= 0
