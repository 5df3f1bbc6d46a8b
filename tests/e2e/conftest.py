"""Helpers for end-to-end tests: run the real `posbench` command in a child process."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
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
    return subprocess.run([sys.executable, "-m", "posbench.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def triage(tmp: Path, *args: str, name: str = "run", timeout: float = 280) -> Triage:
    files = {ext: tmp / f"{name}.{ext}" for ext in ("json", "html", "xml")}
    proc = posbench("triage", *args, "--json", str(files["json"]), "--html", str(files["html"]),
                    "--junit", str(files["xml"]), cwd=tmp, timeout=timeout)
    doc = json.loads(files["json"].read_text()) if files["json"].exists() else None
    return Triage(proc.returncode, proc.stdout, proc.stderr, doc, files)


@pytest.fixture
def run_triage(tmp_path: Path):
    return lambda *args, **kw: triage(tmp_path, *args, **kw)


def causes_said(doc: dict | None) -> str:
    """The verdict's causes with their evidence, for an assertion message."""
    if doc is None:
        return "no verdict JSON"
    return "\n".join(f"{c['id']} {c['confidence']}: " + "; ".join(
        f"{e['test'].split('::')[-1]} {e['measurement']}={e['value']} ({e['note']})" for e in c["evidence"])
        for c in doc["causes"]) or "no causes"


def verdict_screen(out: str) -> list[str]:
    """What ``posbench triage`` prints after its last progress line (the verdict's first screen)."""
    lines = out.splitlines()
    last = max((i for i, line in enumerate(lines) if line.lstrip().startswith("[") and "/" in line.split()[0]),
               default=-1)
    return [line for line in lines[last + 1:] if line.strip()]


def card_secrets() -> list[str]:
    """Every full PAN and every track's text in the test deck (what must never leave a device)."""
    from posbench.setup.cards import load_deck
    secrets = []
    for card in load_deck().values():
        secrets += [card.pan, card.track1, card.track2, card.track2.split("=", 1)[1]]
    return secrets


def assert_no_card_data(*texts: str) -> None:
    """No full PAN or track data in ``texts`` (first 6 / last 4 of a PAN are allowed)."""
    for secret in card_secrets():
        for text in texts:
            assert secret not in text, "card data leaked into an artifact or the output"


def start_sim(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """``posbench sim ARGS`` in a child process, once it has written its bench file (20 s at most);
    stop it with ``stop_sim`` (in a ``finally``)."""
    bench = tmp_path / "sim-bench.toml"
    proc = subprocess.Popen([sys.executable, "-m", "posbench.cli", "sim", "--write-bench", str(bench), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not bench.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_sim(proc)
            pytest.fail(f"posbench sim wrote no bench file: {proc.communicate()}")
        time.sleep(0.05)
    return proc, bench


def stop_sim(proc: subprocess.Popen) -> tuple[str, str]:
    """SIGTERM, SIGKILL after 10 s; the sim's (stdout, stderr)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()
