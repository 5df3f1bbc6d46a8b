"""mypy over the installed `posbench` package (bench/, drivers/, fixtures/, tests/hil/) is clean.

It runs `tools/typecheck`, which shows mypy the package under its installed names (see there):
checked as `bench.x`, every `posbench.*` import would be unresolved and the check could not fail.
The first run builds .mypy_cache (~15 s); later ones recheck only what changed.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("bench", "drivers", "fixtures", "tests/hil")


def test_mypy_is_clean_over_the_package():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "typecheck")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, f"mypy is not clean (tools/typecheck):\n{output}"
    # every module of the package was checked, under the name it is imported by
    checked = re.search(r"Success: no issues found in (\d+) source files", output)
    assert checked, output
    sources = sum(1 for d in PACKAGE_DIRS for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)
    assert int(checked[1]) >= sources, output
