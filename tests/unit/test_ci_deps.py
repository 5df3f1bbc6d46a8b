""".ci/deps (`make deps`): quiet when all is there, installs as root, prints the line otherwise.

Run with a PATH of stubs only: a fake ``id`` says who we are, a fake ``apt-get`` records its
calls, a fake ``ls`` decides whether PostgreSQL's initdb is found; nothing is installed.
"""
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPS = ROOT / ".ci" / "deps"
PRESENT = ("make", "usbip", "ip", "nft", "arping", "tshark", "chromium", "ser2net")


def stub(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def deps(tmp_path: Path, *args: str, uid: int, absent: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "apt-calls"
    for tool in PRESENT:
        if tool not in absent:
            stub(bin_dir / tool, "exit 0")
    stub(bin_dir / "id", f"echo {uid}")
    # ls looks for PostgreSQL's initdb and for libusb-1.0's shared library
    stub(bin_dir / "ls", f'case "$*" in *initdb*) exit {1 if "postgresql" in absent else 0};; '
                         f'*libusb*) exit {1 if "libusb-1.0-0" in absent else 0};; esac; exit 2')
    stub(bin_dir / "apt-get", f'echo "$*" >> {calls}')
    python = "/bin/false" if "python3-venv" in absent else "/bin/true"
    proc = subprocess.run(["/bin/bash", str(DEPS), *args], capture_output=True, text=True, timeout=30,
                          env={"PATH": str(bin_dir), "PYTHON": python})
    return proc, calls.read_text().splitlines() if calls.exists() else []


ABSENT = ("make", "python3-venv", "tshark", "postgresql", "chromium", "libusb-1.0-0")


@pytest.mark.parametrize("uid", [0, 1000])
def test_quiet_when_everything_is_there(tmp_path, uid):
    proc, calls = deps(tmp_path, uid=uid)
    assert (proc.returncode, proc.stdout, proc.stderr, calls) == (0, "", "", [])


def test_root_installs_only_what_is_missing(tmp_path):
    proc, calls = deps(tmp_path, uid=0, absent=ABSENT)
    assert calls == ["update -qq", "install -y -qq --no-install-recommends " + " ".join(ABSENT)]
    # the stub installed nothing: said so, and `make test` goes on (the tests skip)
    assert proc.returncode == 0 and "still missing after the install" in proc.stderr


def test_a_normal_user_gets_the_one_line_to_run(tmp_path):
    proc, calls = deps(tmp_path, uid=1000, absent=ABSENT)
    assert proc.returncode == 0 and calls == []
    lines = [line.strip() for line in proc.stderr.splitlines() if "apt-get" in line]
    assert lines == ["sudo apt-get install -y --no-install-recommends " + " ".join(ABSENT)]


@pytest.mark.parametrize("uid", [0, 1000])
def test_require_fails_while_something_is_missing(tmp_path, uid):
    proc, _ = deps(tmp_path, "--require", uid=uid, absent=("tshark",))
    assert proc.returncode == 1 and "tshark" in proc.stderr


def test_libusb_is_listed_when_its_library_is_missing(tmp_path):
    """pyusb's libusb1 backend (a real bench's USB readers and hub) needs libusb-1.0."""
    proc, calls = deps(tmp_path, uid=1000, absent=("libusb-1.0-0",))
    assert proc.returncode == 0 and "sudo apt-get install -y --no-install-recommends libusb-1.0-0" in proc.stderr


def test_the_bench_setup_names_libusb_and_the_check_command():
    text = " ".join((ROOT / "docs" / "bench-setup.md").read_text().split())
    assert "libusb-1.0-0" in text and "posbench check --bench bench.toml" in text
    assert "inside the unit" not in text  # a PCI terminal exposes no reader to wire
