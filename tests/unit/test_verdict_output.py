"""What a technician reads: the verdict's first screen on the terminal and the HTML verdict panel."""
import io
import re
from datetime import datetime, timezone

from rich.console import Console

from posbench.spec import taxonomy
from posbench.diagnosis.ranking import verdict as verdict_of
from posbench.diagnosis.verdict import Verdict
from posbench.spec.evidence import Recorder, RunRecord
from posbench.spec.evidence import TestOutcome as Outcome  # not collected as a test class
from posbench.core.limits import Limit
from posbench.render.html import panel, put_first
from posbench.render.screen import SCREEN_LINES, details, screen

SWIPE = "test_read_paths.py::test_swipe"
SPRT = {"verdict": "faulty", "trials": 15, "failures": 7, "failure_rate": 7 / 15, "ci": [0.25, 0.7],
        "truncated": False, "reasons": {"t2_parity": 7}, "p0": 0.02, "p1": 0.25, "alpha": 0.01, "beta": 0.05,
        "max_trials": 50, "test": SWIPE}


def typed(**fields) -> Verdict:
    """A verdict with only ``fields`` besides what every verdict has."""
    return Verdict.model_validate({"unit": {}, "verdict": "pass", "code01_origin": "none", "causes": [],
                                   "measurements": [], "tests": [], "started": "2026-01-01T00:00:00+00:00",
                                   "duration_s": 1.0} | fields)


def faulty_doc() -> Verdict:
    """Three causes, one of them with 17 near-identical evidence lines."""
    run = RunRecord(read_paths={"swipe": SPRT})
    swipe = Recorder(run, SWIPE)
    swipe.unit(serial="PT100-0000042", model="PT100", firmware="3.4.2")
    swipe.measure("swipe_sprt_verdict", "faulty", "", Limit(equals="healthy"), cause="msr_head",
                  strength="decisive", note="faulty after 15 reads: 7/15 failed; SPRT p0=0.02 p1=0.25 alpha=0.01 beta=0.05")
    status = Recorder(run, "test_status.py::test_status")
    for i in range(17):
        status.evidence("application", "moderate", f"status: unit did not answer (no ENQ within {i % 3 + 1} s)")
    status.measure("err_app", 96, "", Limit(max=25), cause="application", strength="strong",
                   note="payment app error counter")
    status.measure("restarts_since_power_on", 6, "", Limit(max=0), cause="application", strength="strong",
                   note="app restarts since power-on")
    status.evidence("application", "strong", "the payment app restarted 3 time(s) during 24 commands")
    Recorder(run, "test_power.py::test_load").evidence("power_supply", "decisive", "the supply fell to 9.1 V")
    Recorder(run, "test_code01.py::test_code01_origin").code01_sales(8)
    return verdict_of(run, datetime.now(timezone.utc), 12.0)


def printed(lines: list[str], width: int = 80) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, highlight=False, color_system=None)
    for line in lines:
        console.print(line)
    return out.getvalue().splitlines()


def test_a_fault_screen_fits_ten_lines_and_leads_with_names_actions_and_findings():
    doc = faulty_doc()
    assert {c.id for c in doc.causes} == {"msr_head", "application", "power_supply"}
    shown = printed(screen(doc, "reports/PT100-0000042-20261128T102030Z.html"))
    assert len(shown) <= SCREEN_LINES, "\n".join(shown)
    text = "\n".join(shown)
    top = doc.causes[0]
    assert shown[0].startswith(f"FAULT: {taxonomy.name(top.id)}")
    assert taxonomy.get(top.id).action in " ".join(text.split())
    for cause in doc.causes:
        assert "_" not in cause.id or cause.id not in text, f"the id {cause.id} instead of the name"
    assert "Magstripe read head" in text and "repair: clean or replace the MSR read head" in text
    assert "SPRT" not in text and "alpha" not in text and "test_" not in text
    assert "no code 01 reproduced in 8 sales" in text
    assert "--verbose" in text


def test_a_screen_never_shows_more_than_three_findings_per_cause():
    doc = faulty_doc()
    app = next(c for c in doc.causes if c.id == "application")
    doc.causes = [app]
    bullets = [line for line in screen(doc, "r.html", width=200) if line.startswith("  - ")]
    assert len(bullets) == 3
    assert any("×17" in line and "the unit stopped answering" in line for line in bullets)


def test_verbose_details_keep_every_evidence_line_test_id_and_statistic():
    doc = faulty_doc()
    text = "\n".join(printed(details(doc), width=300))
    assert text.count("status: unit did not answer") == 17
    assert "test_status.py::test_status" in text and "msr_head" in text
    assert "p0=0.02 p1=0.25 alpha=0.01 beta=0.05" in text


def test_a_bench_error_screen_names_each_failure_once_with_a_count():
    doc = typed(verdict="bench_error", unit={"serial": ""},
                bench_errors=[f"test_power.py::test_{name}: virtual bench: its process 7 is gone" for name in
                              ("load", "cold_boot", "brownout")] + ["the run was interrupted before it finished"])
    shown = printed(screen(doc, "r.html"))
    assert shown[0].startswith("BENCH ERROR: the bench failed, the unit was not judged")
    assert "  - virtual bench: its process 7 is gone ×3" in shown
    assert "test_power.py" not in "\n".join(shown) and len(shown) <= SCREEN_LINES


def test_a_passing_screen():
    run = RunRecord()
    Recorder(run, "t").measure("x", 1, "", Limit(max=2))
    Recorder(run, "test_code01.py::test_code01_origin").code01_sales(8)
    shown = printed(screen(verdict_of(run, datetime.now(timezone.utc), 1.0), "r.html"))
    assert shown[0].startswith("no fault found") and "no code 01 reproduced in 8 sales" in shown


def test_the_panel_leads_with_names_and_keeps_the_rest_one_click_away():
    page = panel(faulty_doc(), [(SWIPE, "supply trace", b"\x89PNG-bytes")])
    key = re.sub(r"<details.*?</details>", "", page, flags=re.S)  # what shows before anything is opened
    assert "Magstripe read head" in key and "clean or replace the MSR read head" in key
    assert "7 of 15 swipes failed: parity error on track 2 ×7" in key
    assert "no code 01 reproduced in 8 sales" in key
    assert "SPRT p0" not in key and "alpha=" not in key and SWIPE not in key
    assert "alpha=0.01" in page and SWIPE in page  # in <details>
    assert len(re.findall(r"<ul class=\"pb-key\">(.*?)</ul>", page, re.S)) == 3
    assert all(block.count("<li>") <= 3 for block in re.findall(r"<ul class=\"pb-key\">(.*?)</ul>", page, re.S))
    assert "×17" in page and "data:image/png;base64," in page


def test_the_panel_goes_above_pytest_htmls_environment_table():
    page = ("<html><body><h1 id=\"title\">posbench triage report</h1><p>Report generated</p>"
            "<div id=\"environment-header\"><h2>Environment</h2></div><table id=\"environment\"></table>"
            "<div class=\"summary\"></div></body></html>")
    out = put_first(page, "<section id=\"posbench-verdict\"></section>")
    assert out.index("posbench-verdict") < out.index("environment-header")
    assert out.index("id=\"title\"") < out.index("posbench-verdict")
    assert put_first("<html><body class='x'><p>a</p></body></html>", "<b>P</b>").startswith(
        "<html><body class='x'>\n<b>P</b>")


def test_a_pass_whose_01_origin_could_not_be_told_says_why_and_is_no_clean_answer():
    run = RunRecord()
    Recorder(run, "t").measure("x", 1, "", Limit(max=2))
    code01 = Recorder(run, "tests/hil/test_code01.py::test_code01_origin")
    code01.code01_sales(8)
    why = ("the origin of the code 01 shown in 3 of 8 sales (STAN 000001) cannot be told: the agent terminal's "
           "report carried no acquirer code and the bench has no [host] log")
    code01.unmeasured("terminal_01_count", why, ("issuer_referral",))
    doc = verdict_of(run, datetime.now(timezone.utc), 1.0)
    assert doc.verdict == "pass" and doc.code01_origin == "none"
    assert doc.code01_meaning == f"code 01 not checked: {why}"
    shown = " ".join(printed(screen(doc, "r.html"), width=400))
    assert shown.startswith("no fault found")
    assert f"but the code 01 the unit came in with was not checked: {why}" in shown


def test_a_pass_after_no_sale_ran_is_no_clean_answer_to_the_01_either():
    run = RunRecord()
    Recorder(run, "t").measure("x", 1, "", Limit(max=2))
    Recorder(run, "tests/hil/test_code01.py::test_code01_origin").code01_sales(0)
    shown = printed(screen(verdict_of(run, datetime.now(timezone.utc), 1.0), "r.html"), width=200)
    assert "but the code 01 the unit came in with was not checked: no sale could be run" in shown

def inconclusive_doc() -> Verdict:
    """Tests failed, no cause reached the reporting threshold: the host answered 7 of 8 sales."""
    run = RunRecord()
    rec = Recorder(run, "test_code01.py::test_code01_origin")
    rec.unit(serial="PT100-0000042", model="PT100", firmware="3.4.2")
    rec.measure("sale_host_answered_rate", 0.875, "ratio", Limit(min=1.0), cause="network_unstable",
                strength="weak")
    rec.code01_sales(8)
    run.tests.append(Outcome("test_code01.py::test_code01_origin", "failed", 1.0,
                             "measurements outside their limits:\n  sale_host_answered_rate = 0.875 ratio (limit >= 1)"))
    doc = verdict_of(run, datetime.now(timezone.utc), 12.0)
    assert doc.verdict == "inconclusive", doc
    return doc


def test_an_inconclusive_screen_says_what_was_seen_in_words_and_what_to_do():
    shown = printed(screen(inconclusive_doc(), "r.html"))
    text = "\n".join(shown)
    assert shown[0].startswith("INCONCLUSIVE: tests failed, but not clearly enough to name a cause"), text
    assert "sale_host_answered_rate" not in text and "sales the host answered: 88% (at least 100% needed)" in text
    assert "what to do: run the triage again" in text and len(shown) <= SCREEN_LINES


def test_an_inconclusive_contradiction_is_said_in_words_with_an_action():
    doc = inconclusive_doc()
    doc.contradictions = ["Unstable network: sale_host_answered_rate = 0.875 ratio, limit >= 1 — but echo loss 0%"]
    text = "\n".join(printed(screen(doc, "r.html"), width=200))
    assert "INCONCLUSIVE: the evidence contradicts itself" in text
    assert "sale_host_answered_rate" not in text and "sales the host answered: 88%" in text
    assert "what to do: run the triage again" in text and "cable" in text


def test_a_healthy_screen_says_what_was_not_judged_and_whether_it_matters_not_a_count():
    run = RunRecord()
    Recorder(run, "t").measure("x", 1, "", Limit(max=2))
    Recorder(run, "test_status.py::test_status").unmeasured("free_memory_kib", "ZVT has no memory status")
    Recorder(run, "test_code01.py::test_code01_origin").code01_sales(8)
    doc = verdict_of(run, datetime.now(timezone.utc), 1.0)
    doc.undecided = {"resources": "free_memory_kib unmeasured: ZVT has no memory status"}
    text = "\n".join(printed(screen(doc, "r.html"), width=200))
    assert "unmeasured" not in text, text
    assert f"not judged here: {taxonomy.name('resources')}; if the unit still shows code 01" in text
    doc.undecided = {}
    assert "not judged" not in "\n".join(printed(screen(doc, "r.html"), width=200))
    doc.undecided, doc.code01_origin = {"resources": "..."}, "issuer"
    assert "the card issuer sent the 01" in "\n".join(printed(screen(doc, "r.html"), width=200))


def test_an_inconclusive_screen_says_first_that_the_terminal_refused_before_the_card():
    """Concert gives no reason for a refusal at once: the technician reads on the first screen that
    the terminal refused without waiting for the card, and where the reason can be seen."""
    doc = typed(verdict="inconclusive", unit={"serial": "C-1"},
                measurements=[{"name": "sale_swipe_sprt_verdict", "value": "undecided", "unit": "", "limit": "healthy",
                               "passed": False, "test": "test_read_paths.py::test_card_reads_in_sales[swipe]"}],
                read_paths={"sale_swipe": {"refusals": 15}, "sale_tap": {"refusals": 7}, "sale_insert": {}})
    shown = printed(screen(doc, "r.html", width=120), width=120)
    assert shown[1] == "  - the unit refused 22 sale(s) at once, before a card was presented (no reason given)", shown
    assert "the terminal's display says why it refuses" in " ".join(shown)
