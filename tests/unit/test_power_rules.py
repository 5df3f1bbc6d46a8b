"""The power rules (``posbench.diagnosis.power``) on hand-made journals and host logs."""
from __future__ import annotations

from posbench.diagnosis.power import (BrownoutSale, HostSales, brownout_sale_end, host_sales, judge_brownout_sale,
                                      not_recovered, reversal_pending, usb_drops)
from posbench.drivers.terminal import LogRecord


def _journal(*records: tuple[str, str, tuple[str, ...]]) -> tuple[LogRecord, ...]:
    return tuple(LogRecord(seq, "2026-12-05T02:00:00Z", kind, 1000, "476173******0010", display, display, events)
                 for seq, (kind, display, events) in enumerate(records, start=1))


def test_a_sale_the_journal_shows_finished_before_the_power_went_needs_no_reversal():
    """Seen over labgrid: the supply's drop reached the unit after it had finished the sale, and
    only its answer to the bench was lost; the approval was then blamed on the application."""
    assert brownout_sale_end(_journal(("SALE", "00", ()))) == ("approved", ())


def test_a_sale_the_power_cut_off_or_the_application_lost_is_told_apart():
    assert brownout_sale_end(_journal(("SALE", "00", ("POWER_FAIL",)))) == ("power_fail", ("POWER_FAIL",))
    assert brownout_sale_end(_journal(("SALE", "01", ("APP_RESTART",)))) == ("otherwise", ("APP_RESTART",))
    assert brownout_sale_end(_journal(("SALE", "00", ()), ("SALE", "01", ()))) == ("otherwise", ())
    assert brownout_sale_end(_journal(("REVERSAL", "00", ()))) == ("none", ())
    assert brownout_sale_end([]) == ("none", ())


SINCE = "2026-12-05T02:00:00.000"


def _host(*rows: tuple[str, str, str, str, str, str]) -> list[dict]:
    return [{"ts": ts, "tid": tid, "dir": d, "mti": mti, "stan": stan, "rc": rc} for ts, tid, d, mti, stan, rc in rows]


def test_the_host_log_gives_approvals_and_reversals_since_the_sale_of_this_terminal():
    log = _host((SINCE, "T1", "out", "0210", "000001", "00"), (SINCE, "T1", "out", "0210", "000002", "51"),
                ("2026-12-05T01:59:59.000", "T1", "out", "0210", "000003", "00"),
                (SINCE, "T2", "out", "0210", "000004", "00"), (SINCE, "T1", "in", "0400", "000001", ""),
                (SINCE, "T2", "in", "0400", "000004", ""))
    assert host_sales(log, SINCE, "T1") == HostSales(frozenset({"000001"}), frozenset({"000001"}))
    assert host_sales(log, SINCE, None).reversed == {"000001", "000004"}


def _reading(found, name):
    return next(r for r in found.readings if r.name == name)


def test_an_approval_never_reversed_whose_journal_shows_a_power_failure_is_the_supply():
    sale = BrownoutSale(False, _journal(("SALE", "00", ("POWER_FAIL",))), HostSales(frozenset({"000001"})))
    assert reversal_pending(sale)
    found = judge_brownout_sale(sale)
    assert [(r.name, r.value) for r in found.readings] == [("brownout_records_added", 1), ("unreversed_sales", 1)]
    assert _reading(found, "brownout_records_added").note == "the interrupted sale left 1 journal records"
    e = _reading(found, "unreversed_sales").if_failed
    assert (e.cause, e.ratio, e.note) == ("power_supply", 60.0, "1 sale(s) the host approved were cut off by the "
                                                                "brownout and never reversed")
    assert found.evidence == [] and found.unmeasured == {}


def test_an_approval_never_reversed_of_a_sale_that_ended_otherwise_is_the_application():
    sale = BrownoutSale(False, _journal(("SALE", "01", ("APP_RESTART",))), HostSales(frozenset({"000001"})))
    e = _reading(judge_brownout_sale(sale), "unreversed_sales").if_failed
    assert (e.cause, e.ratio) == ("application", 60.0)
    assert "events: APP_RESTART" in e.note and "lost track of its own transaction" in e.note


def test_a_reversal_that_went_out_before_the_next_sale_clears_it():
    sale = BrownoutSale(False, _journal(("SALE", "00", ("POWER_FAIL",))), HostSales(frozenset({"000001"})))
    after = sale.after({"000001"}, reachable=True)
    assert not reversal_pending(after) and _reading(judge_brownout_sale(after), "unreversed_sales").value == 0


def test_without_a_journal_the_supply_is_only_the_likelier_reading():
    sale = BrownoutSale(False, None, HostSales(frozenset({"000001"})))
    found = judge_brownout_sale(sale)
    assert [r.name for r in found.readings] == ["unreversed_sales"]
    e = found.readings[0].if_failed
    assert (e.cause, e.ratio) == ("power_supply", 15.0) and "may also be the application" in e.note


def test_a_unit_that_cannot_reach_its_host_afterwards_gives_no_evidence_here():
    sale = BrownoutSale(False, _journal(("SALE", "00", ("POWER_FAIL",))), HostSales(frozenset({"000001"})))
    found = judge_brownout_sale(sale.after((), reachable=False))
    assert _reading(found, "unreversed_sales").value == 1 and _reading(found, "unreversed_sales").if_failed is None


def test_a_sale_finished_before_the_power_went_leaves_nothing_to_reverse():
    sale = BrownoutSale(False, _journal(("SALE", "00", ())), HostSales(frozenset({"000001"})))
    assert not reversal_pending(sale)
    found = judge_brownout_sale(sale)
    r = _reading(found, "unreversed_sales")
    assert r.value == 0 and r.if_failed.cause == "power_supply" and "only its answer" in r.if_failed.note


def test_an_approval_with_no_journal_record_is_the_supply_losing_it():
    found = judge_brownout_sale(BrownoutSale(True, (), HostSales(frozenset({"000001"}), frozenset({"000001"}))))
    assert [(e.cause, e.ratio, e.measurement, e.value, e.limit) for e in found.evidence] == [
        ("power_supply", 60.0, "brownout_records_added", 0, ">= 1")]
    assert _reading(found, "unreversed_sales").value == 0


def test_the_units_own_acquirer_leaves_unreversed_sales_unmeasured_unless_the_sale_was_finished():
    found = judge_brownout_sale(BrownoutSale(False, _journal(("SALE", "00", ("POWER_FAIL",))), None))
    assert [r.name for r in found.readings] == ["brownout_records_added"]
    assert "cannot see the acquirer's log" in found.unmeasured["unreversed_sales"]
    answered = judge_brownout_sale(BrownoutSale(True, None, None))
    r = _reading(answered, "unreversed_sales")
    assert (r.value, r.if_failed.note) == (0, "the unit answered the sale approved: nothing was left to reverse")
    assert not reversal_pending(BrownoutSale(False, None, None))


def test_a_unit_that_did_not_come_back_is_the_supply_or_with_garbled_frames_the_board():
    e = not_recovered(0, 20.0)
    assert (e.cause, e.ratio) == ("power_supply", 60.0)
    assert e.note == "the unit did not answer within 20 s after the brownout (or drew no current on the restored supply)"
    e = not_recovered(3, 20.0)
    assert e.cause == "pcb_intermittent" and e.note.endswith("while its link damaged 3 frame(s): it runs, its "
                                                             "replies do not arrive whole")


def test_usb_drops_are_the_boards_only_where_no_supply_is_watched():
    assert usb_drops(2, 30.0, supply_watched=True) is None
    e = usb_drops(2, 30.0, supply_watched=False)
    assert (e.cause, e.ratio, e.note) == ("pcb_intermittent", 15.0, "the reader left the bus 2 time(s) in 30 s")
