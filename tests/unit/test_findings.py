"""Evidence in plain words: sentences, grouping with counts, at most three key findings, code 01."""
from datetime import datetime, timezone

from posbench.diagnosis.ranking import verdict_json
from posbench.diagnosis.verdict import Cause, EvidenceItem, ReadPath, Verdict
from posbench.spec.evidence import Recorder, RunRecord
from posbench.diagnosis.findings import code01_sentence, group, key_findings, reason_words, sentence

SWIPE_NOTE = ("faulty after 15 reads: 7/15 failed (46.7%, 95% CI 24.8%..69.9%); failures: t2_parity 5, "
              "t1_lrc 2; SPRT p0=0.02 p1=0.25 alpha=0.01 beta=0.05")


def ev(note: str, ratio: float = 60.0, measurement: str = "", value=None, limit: str = "",
       test: str = "test_x.py::test_y") -> EvidenceItem:
    return EvidenceItem(test=test, measurement=measurement, value=value, limit=limit, note=note, ratio=ratio)


def verdict(**fields) -> Verdict:
    """A verdict with only ``fields`` besides what every verdict has."""
    return Verdict.model_validate({"unit": {}, "verdict": "pass", "code01_origin": "none", "causes": [],
                                   "measurements": [], "tests": [], "started": "2026-01-01T00:00:00+00:00",
                                   "duration_s": 1.0} | fields)


def test_a_read_path_verdict_is_said_as_reads_failed_with_the_reasons_in_words():
    record = ev(SWIPE_NOTE, 250.0, "swipe_sprt_verdict", "faulty", "== healthy")
    stats = {"swipe": ReadPath(trials=15, failures=7, reasons={"t2_parity": 5, "t1_lrc": 2})}
    expected = "7 of 15 swipes failed: parity error on track 2 ×5, checksum (LRC) error on track 1 ×2"
    assert sentence(record, stats) == (expected, "")
    assert sentence(record) == (expected, "")  # a verdict without read_paths: from the note
    assert "SPRT" not in expected and "alpha" not in expected


def test_a_sale_failure_note_becomes_the_reasons_in_words():
    note = ("the unit failed 7 of 8 sales itself: 01 shown for 'chip_error' (STAN 000101); "
            "01 shown for 'chip_error' (STAN 000102); 01 shown for 'chip_error' (STAN 000103)")
    assert sentence(ev(note))[0] == "the unit failed 7 of 8 sales itself: chip error"


def test_a_bare_label_gets_its_value_and_limit_a_sentence_with_numbers_does_not():
    assert sentence(ev("payment app error counter", 15.0, "err_app", 96, "<= 25"))[0] == \
        "payment app error counter: 96 (at most 25 allowed)"
    assert sentence(ev("3 of 24 ECR commands unanswered", 60.0, "ecr_success_rate", 0.875, ">= 0.98"))[0] == \
        "3 of 24 ECR commands unanswered"


def test_reason_words():
    assert reason_words("t2_parity") == "parity error on track 2"
    assert reason_words("sw_6A82") == "card refused (status 6A82)"
    assert reason_words("something_new") == "something new"
    assert reason_words("rc_64_chip") == "card not readable (LRC/parity error)"  # a ZVT sale's result code


def test_near_identical_evidence_is_one_finding_with_a_count():
    records = [ev("status: unit did not answer (no ENQ within 1 s)", 15.0) for _ in range(4)]
    records += [ev("transaction log: unit did not answer (no ENQ within 1 s)", 15.0) for _ in range(3)]
    records += [ev("unhandled: terminal: ST command: no ENQ within 1 s", 4.0)]
    records += [ev("the supply fell to 10.2 V", 60.0), ev("the supply fell to 10.7 V", 15.0)]
    found = group(records)
    assert [f.label for f in found] == [  # eight records together outweigh two stronger ones
        "the unit stopped answering (status, transaction log, ST command) ×8",
        "the supply fell to 10.2 V ×2"]
    assert found[0].count == 8 and found[0].ratio == 15.0 and len(found[0].records) == 8


def test_at_most_three_key_findings_strongest_first_and_none_against_the_cause():
    cause = Cause(id="application", evidence=[
        ev("the payment app restarted 3 time(s) during 24 commands", 60.0),
        ev("payment app error counter", 15.0, "err_app", 96, "<= 25"),
        ev("app restarts since power-on", 15.0, "restarts_since_power_on", 6, "<= 0"),
        ev("a sale's reply arrived late", 4.0),
        ev("the unit answered every echo", 0.25)])
    found = key_findings(cause, verdict())
    assert len(found) == 3
    assert found[0].text.startswith("the payment app restarted")
    assert all(f.ratio > 1 for f in found)
    assert len(group(cause.evidence)) == 5  # all of them stay available


def test_findings_never_carry_a_full_pan():
    found = group([ev("card 4111111111111111 read as 4111111111111112", 60.0)])
    assert "4111111111111111" not in found[0].label and "411111******1111" in found[0].label


def test_code01_sentences():
    assert code01_sentence(verdict(code01_sales=8)) == "no code 01 reproduced in 8 sales"
    ran = [{"nodeid": "test_code01.py::test_code01_origin", "outcome": "passed"}]
    assert code01_sentence(verdict(tests=ran)) == "no code 01 reproduced"
    assert code01_sentence(verdict(code01_sales=0)) == "code 01 not checked: no sale could be run"
    errored = verdict(tests=[{"nodeid": "test_code01.py::test_code01_origin", "outcome": "error"}])
    assert code01_sentence(errored) == "code 01 not checked: no sale could be run"  # a bench error stopped it
    terminal = verdict(code01_origin="terminal", code01_sales=8,
                       code01=[{"origin": "terminal"}, {"origin": "terminal"}, {"origin": "issuer"}])
    assert code01_sentence(terminal) == "the unit showed code 01 itself in 2 of 8 sales: the host never sent it"
    issuer = verdict(code01_origin="issuer", code01_sales=8, code01=[{"origin": "issuer"}])
    assert code01_sentence(issuer).startswith("code 01 came from the card issuer in 1 of 8 sales")


def test_the_verdict_json_carries_the_sale_count_and_the_sentence():
    run = RunRecord()
    Recorder(run, "test_code01.py::test_code01_origin").code01_sales(8)
    doc = verdict_json(run, datetime.now(timezone.utc), 1.0)
    assert doc["code01_origin"] == "none" and doc["code01_sales"] == 8
    assert doc["code01_meaning"] == "no code 01 reproduced in 8 sales"
    assert "code01_sales" not in verdict_json(RunRecord(), datetime.now(timezone.utc), 1.0)


def test_code01_sentence_says_why_the_origin_was_not_told():
    untold = {"test": "tests/hil/test_code01.py::test_code01_origin", "measurement": "terminal_01_count",
              "why": "the origin of the code 01 shown in 1 of 8 sales cannot be told"}
    issuer = verdict(code01_origin="issuer", code01_sales=8, code01=[{"origin": "issuer"}], unmeasured=[untold])
    assert code01_sentence(issuer).endswith("; not told for the rest: the origin of the code 01 shown in 1 of 8 "
                                            "sales cannot be told")
    assert code01_sentence(verdict(code01_sales=8, unmeasured=[untold])) == \
        "code 01 not checked: the origin of the code 01 shown in 1 of 8 sales cannot be told"
