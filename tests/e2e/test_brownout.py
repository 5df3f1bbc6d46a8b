"""The brownout test on a bench whose ECR link is slow (a labgrid exporter's ser2net): the supply's
drop reaches the unit after it has finished the sale but before its answer has left. The unit
did nothing wrong, and the verdict must say so (seen in CI: "FAULT: Payment application")."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from posbench.runner import HIL_DIR, PLUGINS_OFF

from .conftest import causes_said
from .test_triage import _start_sim, _stop

FINISHED_AT_ONCE = ("card_read_s=0", "print_s=0", "command_s=0", "jitter_s=0", "boot_s=0.3")
"""The sale is over within milliseconds of its request, long before the brownout's drop."""


@pytest.mark.timeout(120)
def test_a_sale_finished_before_the_power_went_is_not_the_units_fault(tmp_path):
    timings = [arg for t in (*FINISHED_AT_ONCE, "reply_s=0.5") for arg in ("--timing", t)]
    sim, bench = _start_sim(tmp_path, "--seed", "5", *timings)
    try:
        verdict = tmp_path / "verdict.json"
        run = subprocess.run([sys.executable, "-m", "pytest", str(HIL_DIR), "--bench", str(bench),
                              "--verdict-json", str(verdict), *PLUGINS_OFF, "-o", "addopts=",
                              "--rootdir", str(HIL_DIR), "-k", "test_brownout"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=100, stdin=subprocess.DEVNULL)
    finally:
        _stop(sim)
    assert verdict.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    doc = json.loads(verdict.read_text())
    assert run.returncode == 0 and doc["verdict"] == "pass", causes_said(doc) + run.stdout[-3000:]
    found = {m["name"]: m["value"] for m in doc["measurements"] if m["test"].endswith("test_brownout")}
    assert found["brownout_recovered"] == "yes" and found["unreversed_sales"] == 0, found
    assert found["brownout_records_added"] == 1, found  # the finished sale's own record, no POWER_FAIL
