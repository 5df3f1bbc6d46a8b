"""`posbench triage` against a unit that speaks Concert V2 (serial, on a pty), end to end."""
from __future__ import annotations

import pytest

from .conftest import assert_no_card_data


@pytest.mark.timeout(300)
def test_a_healthy_concert_unit_passes_and_says_what_went_unmeasured(run_triage):
    r = run_triage("--protocol", "concert", "--seed", "41")
    assert r.code == 0, r.out + r.err
    doc = r.doc
    assert doc["verdict"] == "pass" and doc["causes"] == []
    unmeasured = {(u["test"].split("::")[-1], u["measurement"]): u["why"] for u in doc["unmeasured"]}
    assert ("test_transaction_log", "log_sequence_gaps") in unmeasured
    assert "the concert protocol cannot report its status" in unmeasured[("test_status", "free_memory_kib")]
    assert "the concert protocol cannot" in unmeasured[("test_identity", "firmware_version")]
    names = {m["name"] for m in doc["measurements"]}
    assert {"sale_swipe_sprt_verdict", "sale_insert_sprt_verdict", "sale_tap_sprt_verdict",
            "sale_host_answered_rate", "terminal_01_count"} <= names
    # the first screen names what was not judged (if anything), never a count of unmeasured measurements
    assert "unmeasured:" not in r.out and ("not judged here: " in r.out) == bool(doc.get("undecided")), r.out
    assert_no_card_data(r.out, r.err, *(path.read_text() for path in r.files.values()))


@pytest.mark.timeout(300)
def test_a_concert_reader_fault_at_low_severity_is_named_first(run_triage):
    r = run_triage("--protocol", "concert", "--fault", "chip_contacts=0.3", "--seed", "42")
    assert r.doc["causes"] and r.doc["causes"][0]["id"] == "chip_contacts", (r.doc["verdict"], r.doc["causes"], r.out)
    assert r.code == 1
