"""Helpers for end-to-end tests: run the real `posbench` command in a child process."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Triage:
    code: int
    out: str
    err: str
    doc: dict | None
    files: dict[str, Path]


def posbench(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def triage(tmp: Path, *args: str, name: str = "run", timeout: float = 180) -> Triage:
    files = {ext: tmp / f"{name}.{ext}" for ext in ("json", "html", "xml")}
    proc = posbench("triage", *args, "--json", str(files["json"]), "--html", str(files["html"]),
                    "--junit", str(files["xml"]), cwd=tmp, timeout=timeout)
    doc = json.loads(files["json"].read_text()) if files["json"].exists() else None
    return Triage(proc.returncode, proc.stdout, proc.stderr, doc, files)


@pytest.fixture
def run_triage(tmp_path: Path):
    return lambda *args, **kw: triage(tmp_path, *args, **kw)
