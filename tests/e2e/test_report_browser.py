"""The HTML report as a person sees it: rendered by headless Chromium (Debian's chromium)."""
import os
import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=3000"]


@pytest.fixture
def chromium(tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                              capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    return run


def test_verdict_panel_renders_with_the_right_verdict(run_triage, chromium, tmp_path):
    result = run_triage("--fault", "maintenance", "--seed", "11")
    assert result.code == 1, result.out
    page = result.files["html"].resolve().as_uri()
    dom = chromium("--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    panel = re.search(r'<section id="posbench-verdict".*?</section>', dom.stdout, re.S)
    assert panel, "the verdict panel is missing from the rendered page"
    assert dom.stdout.index('id="posbench-verdict"') < dom.stdout.index('id="environment"'), \
        "the page must open with the verdict panel"
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", panel.group(0), flags=re.S))
    assert "Verdict: FAULT: Overdue maintenance" in text
    assert re.search(r"\b\d{1,3}%", text), "no confidence bar"
    assert "perform scheduled maintenance" in text  # the repair action
    assert result.doc["unit"]["serial"] in text
    assert "no code 01 reproduced in" in text
    shot = tmp_path / "report.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1280,1600", page)
    assert done.returncode == 0 and shot.stat().st_size > 10_000  # a page, not a blank
