"""Code 01's origin told from the terminal's own report on a bench without posbench's host log
(no ``[host]`` section: a real terminal talks to its own acquirer), end to end (issue 21,
finding 5: such a bench said "code 01 not checked: no sale could be run" although sales ran)."""
from __future__ import annotations

import re

import pytest

from .conftest import start_sim, stop_sim, verdict_screen


def _without_host(bench) -> None:
    text = bench.read_text()
    cut = re.sub(r"\[host\]\n(?:[^\[\n][^\n]*\n)*\n?", "", text)
    assert cut != text and "[host]" not in cut
    bench.write_text(cut)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("protocol", ["zvt", "caisse-ap", "concert"])
def test_an_issuers_01_is_told_from_the_terminals_report_without_a_host_log(run_triage, tmp_path, protocol):
    proc, bench = start_sim(tmp_path, "--protocol", protocol, "--fault", "issuer_referral", "--seed", "43")
    try:
        _without_host(bench)
        r = run_triage("--bench", str(bench))
    finally:
        stop_sim(proc)
    assert r.code == 0, r.out + r.err
    assert (r.doc["verdict"], r.doc["code01_origin"]) == ("pass", "issuer"), r.doc.get("code01")
    assert [c["id"] for c in r.doc["causes"]] == ["issuer_referral"]
    assert r.doc["code01"] and all(o["host_code"] == "01" for o in r.doc["code01"])
    assert "sale_host_answered_rate" in {m["name"] for m in r.doc["measurements"]}
    text = "\n".join(verdict_screen(r.out))
    assert "Issuer referral" in text and "code 01 came from the card issuer" in text, text


@pytest.mark.timeout(300)
def test_a_01_the_unit_made_itself_is_told_from_its_report_without_a_host_log(run_triage, tmp_path):
    # the agent's unit shows 01 for a sale it failed itself (no keys) and reports no host answer
    proc, bench = start_sim(tmp_path, "--fault", "data_loss", "--seed", "43")
    try:
        _without_host(bench)
        r = run_triage("--bench", str(bench))
    finally:
        stop_sim(proc)
    assert r.doc["code01_origin"] == "terminal", (r.doc.get("code01"), r.out)
    assert {o["reason"] for o in r.doc["code01"]} == {"no_keys"}
    assert r.doc["causes"][0]["id"] == "data_loss" and r.code == 1
