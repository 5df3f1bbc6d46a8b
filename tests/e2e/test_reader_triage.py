"""A card reader as the unit (issue 25), end to end: ``posbench triage --virtual --profile
<reader>`` on the virtual bench shaped like each reader profile, and the bench file ``posbench
sim`` writes for one, as a technician runs them."""
from __future__ import annotations

import pytest

from .conftest import assert_no_card_data, causes_said, start_sim, stop_sim, triage, verdict_screen

READERS = ("magtek-hid", "magtek-keyboard", "acr122u", "pn532-uart")
TERMINAL_TESTS = ("test_ecr_link", "test_status", "test_transaction_log", "test_code01", "test_network",
                  "test_brownout", "test_card_reads_in_sales", "test_chip")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("profile", READERS)
def test_a_healthy_reader_passes_with_only_the_tests_a_reader_has(tmp_path, profile):
    r = triage(tmp_path, "--virtual", "--profile", profile, "--seed", "3")
    assert r.code == 0 and r.doc is not None, r.out[-3000:] + r.err[-2000:]
    assert r.doc["verdict"] == "pass" and not r.doc["causes"], causes_said(r.doc)
    assert r.doc["unit"]["kind"] == "reader" and r.doc["code01_origin"] == "none"
    ran = {t["nodeid"].split("::")[-1].split("[")[0] for t in r.doc["tests"]}
    assert ran and not ran & set(TERMINAL_TESTS), ran  # a terminal's tests are not collected for a reader
    assert not r.doc.get("unmeasured"), r.doc.get("unmeasured")  # nor listed as unmeasured noise
    assert "code 01 does not apply to a reader alone" in r.out
    assert_no_card_data(r.out, r.err, *(path.read_text() for path in r.files.values()))


@pytest.mark.timeout(240)
def test_a_faulty_magstripe_readers_first_screen_names_its_head(tmp_path):
    r = triage(tmp_path, "--virtual", "--profile", "magtek-hid", "--fault", "msr_head=1", "--seed", "5")
    screen = verdict_screen(r.out)
    assert r.code == 1 and r.doc["causes"][0]["id"] == "msr_head", causes_said(r.doc)
    assert screen[0].startswith("FAULT: Magstripe read head"), screen
    assert any("repair: clean the head" in line for line in screen), screen
    assert any("swipes failed" in line for line in screen), screen
    assert_no_card_data(r.out, r.err, *(path.read_text() for path in r.files.values()))


@pytest.mark.timeout(300)
def test_a_reader_sim_bench_file_gives_the_same_verdict(tmp_path):
    args = ("--profile", "pn532-uart", "--fault", "nfc_antenna=1", "--seed", "7")
    virtual = triage(tmp_path, "--virtual", *args, name="virtual")
    proc, bench = start_sim(tmp_path, *args)
    try:
        text = bench.read_text()
        assert "[terminal]" not in text and 'profile = "pn532-uart"' in text
        via_file = triage(tmp_path, "--bench", str(bench), name="file")
    finally:
        stop_sim(proc)
    pick = lambda d: (d["verdict"], [c["id"] for c in d["causes"]][:1], d["unit"]["kind"])  # noqa: E731
    assert via_file.code == virtual.code == 1
    assert pick(via_file.doc) == pick(virtual.doc) == ("fault", ["nfc_antenna"], "reader"), \
        f"via the file:\n{causes_said(via_file.doc)}\nvirtual:\n{causes_said(virtual.doc)}"
