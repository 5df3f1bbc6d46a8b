"""A terminal that answered and then fell silent while its supply failed is the unit's evidence,
not a wrong address (issue 21, finding 4): ZVT over TCP, end to end."""
from __future__ import annotations

import pytest

from .conftest import causes_said, verdict_screen

SEED = "477235"
"""The seed of the report: its run once ended 'BENCH ERROR ... connecting to the ZVT terminal ...
no answer within 5 s: the address is wrong or the PT is off' (exit 2) after three minutes."""


@pytest.mark.timeout(420)  # a whole triage of a unit that keeps resetting: about 3.5 minutes
@pytest.mark.parametrize("faults", [("power_supply=0.94",),
                                    # the same with the application failing too: make test-slow
                                    pytest.param(("power_supply=0.94", "application=0.5"), marks=pytest.mark.slow)])
def test_a_zvt_tcp_unit_whose_supply_fails_is_named_not_called_a_wrong_address(run_triage, faults):
    args = [arg for fault in faults for arg in ("--fault", fault)]
    r = run_triage("--protocol", "zvt-tcp", *args, "--seed", SEED, timeout=400)
    # (the preflight may say it of the unit while it boots: it has not answered yet then)
    assert not any("address is wrong" in line for line in verdict_screen(r.out)), r.out[-4000:]
    assert r.code == 1, r.out[-4000:] + r.err[-2000:]
    assert r.doc and r.doc["verdict"] == "fault" and not r.doc.get("bench_errors"), causes_said(r.doc)
    assert r.doc["causes"][0]["id"] == "power_supply", causes_said(r.doc)
