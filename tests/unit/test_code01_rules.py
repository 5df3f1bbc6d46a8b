"""The code-01 origin rules (``posbench.diagnosis.code01``) on hand-made sales."""
from __future__ import annotations

from posbench.diagnosis.code01 import Code01, SaleSeen, origins, untold_why


def _sale(stan: str, shown: str, reported: str | None = None, *, log: str | None = None, logged: bool = False,
          answered: bool = True, found: tuple[str, str] | None = None, reason: str = "",
          card_read: str | None = None) -> SaleSeen:
    return SaleSeen(stan, shown, reason, reported, answered, logged, log, found, card_read)


def test_an_issuers_01_in_the_host_log_is_decisive_for_the_referral():
    out = origins([_sale("000001", "01", log="01", logged=True), _sale("000002", "00", log="00", logged=True)], 2)
    assert out.code01 == [Code01("issuer", "000001", "01", "")]
    assert [(e.cause, e.ratio, e.test) for e in out.evidence] == [("issuer_referral", 250.0, "")]
    assert out.evidence[0].note == ("host log shows field 39 = 01 for 1 of 2 sales (STAN 000001) and the unit "
                                    "showed exactly that")
    assert (out.terminal_01_count, out.sale_host_answered_rate, out.untold) == (0, 1.0, [])


def test_without_a_host_log_the_terminals_report_tells_the_origin():
    out = origins([_sale("000003", "01", "01")], 4)
    assert out.code01 == [Code01("issuer", "000003", "01", "")]
    assert out.evidence[0].note.startswith("the terminal's report gives the acquirer's field 39 = 01 for 1 of 4")
    assert out.sale_host_answered_rate == 0.25  # four sales run, one answered


def test_a_01_the_unit_made_itself_counts_and_points_to_its_reason():
    sales = [_sale(f"00000{i}", "01", "00", found=("data_loss", "moderate"), reason="no_keys") for i in (1, 2)]
    out = origins(sales, 2)
    assert [c.origin for c in out.code01] == ["terminal", "terminal"] and out.terminal_01_count == 2
    assert [(e.cause, e.ratio) for e in out.evidence] == [("data_loss", 60.0)]  # twice: moderate becomes strong
    assert out.evidence[0].note == ("the unit failed 2 of 2 sales itself: 01 shown for 'no_keys' (STAN 000001); "
                                    "01 shown for 'no_keys' (STAN 000002)")
    weak = origins([_sale("1", "05", found=("network_unstable", "weak")), _sale("2", "05", found=("network_unstable", "weak"))], 2)
    assert [(e.cause, e.ratio) for e in weak.evidence] == [("network_unstable", 4.0)]  # weak stays weak


def test_a_unit_showing_another_code_than_its_host_sent_misreports_it():
    out = origins([_sale("000009", "05", log="00", logged=True)], 1)
    assert [(e.cause, e.ratio, e.note) for e in out.evidence] == [
        ("application", 60.0, "unit showed another code than the host sent: STAN 000009: showed 05, host sent 00")]
    both = origins([_sale("000010", "01", "01", log="05", logged=True)], 1)
    assert both.code01 == [Code01("terminal", "000010", "05", "")]  # the log decides
    assert both.evidence[0].note == (
        "unit showed another code than the host sent: STAN 000010: reported the acquirer's 01, host sent 05; "
        "STAN 000010: showed 01, its report says the acquirer sent 01, host log 05")


def test_a_01_neither_source_tells_is_untold_not_counted():
    out = origins([_sale("000004", "01", None), _sale("", "01", None)], 2)
    assert out.untold == ["000004", "?"] and out.code01 == [] and out.evidence == []
    assert untold_why(out.untold, 2, "concert") == (
        "the origin of the code 01 shown in 2 of 2 sales (STAN 000004, ?) cannot be told: the concert terminal's "
        "report carried no acquirer code and the bench has no [host] log")


def test_sales_refused_before_going_online_leave_the_host_answered_rate():
    sales = [_sale("1", "00", "00"), _sale("2", "05", None, answered=False, found=("data_loss", "moderate")),
             _sale("3", "05", None, answered=False, card_read="no"),
             _sale("4", "05", None, answered=False, found=("network_unstable", "weak"))]
    out = origins(sales, 4)
    assert out.sale_host_answered_rate == 0.5  # 1 answered of the 2 that went online
    assert [e.cause for e in out.evidence] == ["data_loss", "network_unstable"]
    assert out.evidence[0].note == "the unit failed 1 of 4 sales itself: 05: no reason given"


def test_a_unit_that_shows_no_code_never_got_the_hosts_answer_no_mismatch():
    out = origins([_sale("000011", "", log="00", logged=True)], 1)
    assert out.evidence == [] and out.sale_host_answered_rate == 1.0
