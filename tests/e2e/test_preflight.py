"""The preflight through the real `posbench triage`: every device checked before any test."""
from __future__ import annotations

import os
import pty
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .conftest import posbench, triage


def _closed_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_five_absent_devices_are_listed_in_one_run(tmp_path):
    gone = tmp_path / "gone"
    bench = _write(tmp_path / "bench.toml", f"""
[unit]
model = "PT100"
[terminal]
port = "{gone}-ttyUSB0"
[power]
driver = "korad"
port = "{gone}-ttyACM0"
[usb]
backend = "usbip://127.0.0.1:{_closed_port()}"
reader = "0801:0002"
[nfc]
path = "{gone}-ttyUSB1"
[host]
address = "127.0.0.1:{_closed_port()}"
log = "{gone}/host.jsonl"
""")
    r = triage(tmp_path, "--bench", str(bench), "--store", f"sqlite:///{tmp_path}/s.sqlite", timeout=60)
    out = r.out + r.err
    assert r.code == 2, out
    assert "Traceback" not in out and "HIL tests" not in out, out  # no test ran
    # the verdict JSON says it too, device by device, and judges nothing of the unit
    assert r.doc["verdict"] == "bench_error" and r.doc["causes"] == [] and r.doc["tests"] == []
    said = " ".join(r.doc["bench_errors"])
    for device in ("terminal", "supply", "magstripe reader", "nfc reader", "host"):
        assert f"preflight: {device} " in said, said
    fails = {line.split()[1:3][0] if line.split()[1] != "magstripe" else "magstripe"
             for line in out.splitlines() if line.strip().startswith("FAIL")}
    assert {"terminal", "supply", "magstripe", "nfc", "host"} <= fails, out
    assert f"no such port {gone}-ttyUSB0" in out and f"no such port {gone}-ttyACM0" in out
    assert "is the USB-serial cable plugged in?" in out and "`posbench discover` lists ports" in out
    assert "usbip list -r 127.0.0.1" in out  # what to check for the USB reader's backend
    assert "posbench host --listen" in out  # and for the host
    # a broken bench is a run too: stored (the bench room lists it) and given its HTML page
    page = r.files["html"].read_text()
    assert "bench_error" in page and f"no such port {gone}-ttyUSB0" in page, page[:2000]
    assert f"report: {r.files['html']}" in out
    runs = posbench("runs", "--store", f"sqlite:///{tmp_path}/s.sqlite", cwd=tmp_path)
    assert runs.returncode == 0 and "1 run(s)" in runs.stdout and "bench_" in runs.stdout, runs.stdout + runs.stderr


@pytest.mark.parametrize("key,edit", [
    ("terminal.port", lambda tmp, text: text.replace("@PORT@", str(tmp))),  # a directory
    ("power.port", lambda tmp, text: text.replace("@SUPPLY@", str(_write(tmp / "notes.txt", "x")))),
    ("unit.model", lambda tmp, text: text.replace('"PT100"', '"PT200"')),
    ("nfc.path", lambda tmp, text: text + '[nfc]\npath = "tty:pts/3:pn532"\n'),
])
def test_config_mistakes_are_exit_3_naming_file_and_key(tmp_path, key, edit):
    text = ('[unit]\nmodel = "PT100"\n[terminal]\nport = "@PORT@"\n'
            '[power]\ndriver = "korad"\nport = "@SUPPLY@"\n')
    text = edit(tmp_path, text).replace("@PORT@", "/dev/null-gone").replace("@SUPPLY@", "/dev/null-gone2")
    bench = _write(tmp_path / "bench.toml", text)
    r = triage(tmp_path, "--bench", str(bench), "--store", f"sqlite:///{tmp_path}/s.sqlite", timeout=60)
    out = r.out + r.err
    assert r.code == 3, out
    assert f"{bench}: {key}:" in out and "Traceback" not in out and "HIL tests" not in out, out
    if key == "unit.model":
        assert "pt100" in out and "zvt-generic" in out  # the known profiles are named


def test_unsupported_store_is_a_usage_error_before_the_bench_starts(tmp_path):
    r = triage(tmp_path, "--store", "foo://bar", timeout=60)
    assert r.code == 3, r.out + r.err
    assert "--store 'foo://bar'" in r.err and "starting the virtual bench" not in r.out


def test_an_unreachable_store_is_a_bench_error_before_the_bench_starts(tmp_path):
    url = f"postgresql://tech:secret@127.0.0.1:{_closed_port()}/posbench"
    r = triage(tmp_path, "--store", url, timeout=60)
    assert r.code == 2, r.out + r.err
    assert "BENCH ERROR" in r.out and "result store" in r.out and "opening failed" in r.out, r.out
    assert "starting the virtual bench" not in r.out and "secret" not in r.out + r.err, r.out + r.err


def test_permission_denied_names_dialout_and_udev():
    """As root, in a user namespace that maps only root: a node owned by nobody:dialout is as
    closed to it as /dev/ttyUSB0 to a technician outside `dialout` (no mock of the open)."""
    work = Path(tempfile.mkdtemp(prefix="posbench-perm-"))
    master, slave = pty.openpty()
    wrap: list[str] = []
    try:
        if os.geteuid() == 0:
            if not shutil.which("unshare"):
                pytest.skip("as root, EACCES needs a user namespace and `unshare` is missing")
            wrap = ["unshare", "--user", "--map-root-user"]
            node = work / "ttyUSB0"
            os.mknod(node, stat.S_IFCHR | 0o660, os.fstat(slave).st_rdev)
            os.chown(node, 65534, 20)  # nobody:dialout, neither mapped in the namespace
        else:  # our own pty, made unreadable to its owner
            node = Path(os.ttyname(slave))
            os.chmod(node, 0)
        probe = subprocess.run([*wrap, sys.executable, "-c", f"open({str(node)!r}, 'rb')"],
                               capture_output=True, text=True)
        if "PermissionError" not in probe.stderr:
            pytest.skip(f"cannot produce EACCES on a device node here: {probe.stderr.strip()[-200:]}")
        bench = _write(work / "bench.toml", f'[terminal]\nport = "{node}"\n')
        proc = subprocess.run([*wrap, sys.executable, "-m", "posbench.cli", "triage", "--bench", str(bench),
                               "--json", str(work / "r.json"), "--html", str(work / "r.html"),
                               "--junit", str(work / "r.xml"), "--store", f"sqlite:///{work}/s.sqlite"],
                              cwd=work, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2, out
        assert f"permission denied on {node}" in out and "`dialout` group" in out, out
        assert "posbench udev-rules" in out and "Traceback" not in out, out
    finally:
        os.close(master)
        os.close(slave)
        shutil.rmtree(work, ignore_errors=True)
