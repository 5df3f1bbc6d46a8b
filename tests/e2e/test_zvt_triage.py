"""`posbench triage` against a unit that speaks ZVT (serial on a pty, and TCP), end to end."""
from __future__ import annotations

import os

import pytest

from .conftest import assert_no_card_data, causes_said, start_sim, stop_sim


@pytest.mark.timeout(300)
@pytest.mark.parametrize("protocol", ["zvt", "zvt-tcp"])
def test_a_healthy_zvt_unit_passes_and_says_what_went_unmeasured(run_triage, protocol):
    r = run_triage("--protocol", protocol, "--seed", "41")
    assert r.code == 0, r.out + r.err
    doc = r.doc
    assert doc["verdict"] == "pass" and doc["causes"] == []
    unmeasured = {(u["test"].split("::")[-1], u["measurement"]) for u in doc["unmeasured"]}
    assert ("test_transaction_log", "log_sequence_gaps") in unmeasured
    assert ("test_status", "free_memory_kib") in unmeasured
    # what the protocol cannot tell; and, as a normal user, the network lab the virtual bench
    # builds only as root (namespaces): the bench's own limit, named as such
    bench_limits = () if os.geteuid() == 0 else ("has no [network] section",)
    assert all("the zvt protocol cannot" in u["why"] or any(b in u["why"] for b in bench_limits)
               for u in doc["unmeasured"] if not u["measurement"].startswith("component_")), doc["unmeasured"]
    names = {m["name"] for m in doc["measurements"]}
    assert {"terminal_status", "locks", "sale_swipe_sprt_verdict", "sale_insert_sprt_verdict",
            "sale_tap_sprt_verdict", "sale_host_answered_rate"} <= names
    # the first screen names what was not judged (if anything), never a count of unmeasured measurements
    assert "unmeasured:" not in r.out and ("not judged here: " in r.out) == bool(doc.get("undecided")), r.out
    assert_no_card_data(r.out, r.err, *(path.read_text() for path in r.files.values()))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("protocol,cause", [("zvt", "msr_head"), ("zvt-tcp", "msr_head"), ("zvt", "data_loss"),
                                            ("zvt-tcp", "nfc_antenna")])
def test_a_zvt_fault_at_low_severity_is_named_first(run_triage, protocol, cause):
    r = run_triage("--protocol", protocol, "--fault", f"{cause}=0.3", "--seed", "42")
    assert r.doc["causes"] and r.doc["causes"][0]["id"] == cause, (r.doc["verdict"], r.doc["causes"], r.out)
    assert r.code == 1


@pytest.mark.timeout(300)
@pytest.mark.parametrize("protocol", ["zvt", "zvt-tcp"])
def test_a_zvt_sim_bench_file_gives_the_same_verdict(run_triage, tmp_path, protocol):
    virtual = run_triage("--protocol", protocol, "--fault", "chip_contacts=0.6", "--seed", "43", name="virtual")
    proc, bench = start_sim(tmp_path, "--protocol", protocol, "--fault", "chip_contacts=0.6", "--seed", "43")
    try:
        assert 'protocol = "zvt"' in bench.read_text()
        via_file = run_triage("--bench", str(bench), name="file")
    finally:
        stop_sim(proc)
    pick = lambda d: (d["verdict"], d["code01_origin"], [c["id"] for c in d["causes"]], d["unit"])  # noqa: E731
    assert via_file.code == virtual.code
    assert pick(via_file.doc) == pick(virtual.doc), \
        f"via the file:\n{causes_said(via_file.doc)}\nvirtual:\n{causes_said(virtual.doc)}"
