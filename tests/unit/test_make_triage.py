"""`make triage`: make exits 2 for any failed recipe, so the triage's own exit status is said.

make runs with a venv of stubs (a fake ``posbench`` exiting with the status under test), its
``deps`` and venv steps taken as done (``-o``): nothing is installed.
"""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def make_triage(tmp_path: Path, status: int) -> subprocess.CompletedProcess:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "posbench"
    fake.write_text(f"#!/bin/sh\necho \"posbench $*\"\nexit {status}\n")
    fake.chmod(0o755)
    stamp = venv / ".installed-stamp"
    stamp.touch()
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "-o", "deps", "-o", str(stamp),
                           "triage", f"VENV={venv}", "ARGS=--seed 4"],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("status", [1, 2, 3])
def test_a_failed_triage_says_its_own_exit_status(tmp_path, status):
    proc = make_triage(tmp_path, status)
    assert "posbench triage --seed 4" in proc.stdout
    assert proc.returncode == 2, "make's own status for a failed recipe"
    assert f"posbench triage: exit status {status} (1 fault diagnosed, 2 bench error" in proc.stderr, proc.stderr
    assert "bin/posbench triage" in proc.stderr.split("exit status")[-1], "how to get the status itself"


def test_a_clean_triage_is_exit_0_and_quiet(tmp_path):
    proc = make_triage(tmp_path, 0)
    assert proc.returncode == 0 and "exit status" not in proc.stderr, proc.stderr


def test_the_readme_says_what_make_triage_exits_with():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "`make triage` exits 2 whenever the triage does not exit 0" in readme
