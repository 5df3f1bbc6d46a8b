"""`posbench triage` against a unit that speaks Caisse-AP (Concert V3 over TCP), end to end."""
from __future__ import annotations

import pytest

from .conftest import assert_no_card_data, start_sim, stop_sim


@pytest.mark.timeout(300)
def test_a_healthy_caisse_ap_unit_passes_and_says_what_went_unmeasured(run_triage):
    r = run_triage("--protocol", "caisse-ap", "--seed", "41")
    assert r.code == 0, r.out + r.err
    doc = r.doc
    assert doc["verdict"] == "pass" and doc["causes"] == []
    unmeasured = {(u["test"].split("::")[-1], u["measurement"]) for u in doc["unmeasured"]}
    assert {("test_identity", "firmware_version"), ("test_status", "free_memory_kib"),
            ("test_status", "terminal_status"), ("test_transaction_log", "log_sequence_gaps"),
            ("test_chip", "chip_sprt_verdict")} <= unmeasured
    asked_of_the_unit = ("test_identity", "test_status", "test_transaction_log", "test_chip")
    assert all("the caisse-ap protocol cannot" in u["why"] for u in doc["unmeasured"]
               if u["test"].split("::")[-1] in asked_of_the_unit)
    names = {m["name"] for m in doc["measurements"]}
    assert {"ecr_success_rate", "ecr_reply_p95_s", "sale_host_answered_rate", "terminal_01_count",
            "sale_swipe_sprt_verdict", "sale_insert_sprt_verdict", "sale_tap_sprt_verdict"} <= names
    # the first screen names what was not judged (if anything), never a count of unmeasured measurements
    assert "unmeasured:" not in r.out and ("not judged here: " in r.out) == bool(doc.get("undecided")), r.out
    assert_no_card_data(r.out, r.err, *(path.read_text() for path in r.files.values()))


@pytest.mark.timeout(300)
def test_a_caisse_ap_read_head_fault_at_low_severity_is_named_first(run_triage):
    r = run_triage("--protocol", "caisse-ap", "--fault", "msr_head=0.3", "--seed", "42")
    assert r.doc["causes"] and r.doc["causes"][0]["id"] == "msr_head", (r.doc["verdict"], r.doc["causes"], r.out)
    assert r.code == 1


@pytest.mark.timeout(300)
def test_a_caisse_ap_sim_bench_file_triages_the_issuers_01_as_no_fault(run_triage, tmp_path):
    proc, bench = start_sim(tmp_path, "--protocol", "caisse-ap", "--fault", "issuer_referral", "--seed", "43")
    try:
        text = bench.read_text()
        assert 'protocol = "caisse-ap"' in text and 'address = "127.0.0.1:' in text
        r = run_triage("--bench", str(bench))
    finally:
        stop_sim(proc)
    assert r.code == 0, r.out + r.err
    assert (r.doc["verdict"], r.doc["code01_origin"]) == ("pass", "issuer")
    assert [c["id"] for c in r.doc["causes"]] == ["issuer_referral"]
