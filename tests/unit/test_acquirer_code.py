"""The acquirer's answer as each terminal's own report carries it (``SaleResult.acquirer_code``),
read from the bytes on the wire: what tells an issuer's 01 from a 01 the unit made itself on a
bench without posbench's host log (issue 21, finding 5).

ZVT [P15 rev. 13.08: 3.1 status information 04 0F, 10 error messages, 13 BMP A0 "result-code-AS",
1 byte binary]: BMP 27 codes 01-63 come from the network operator / authorisation system, 64-FF
are the PT's own; A0 is the authorisation system's own code. Concert V2: the 80-character answer
carries the 55-character report (``drivers/ecr/concert/codec``), the 25-character one none.
Caisse-AP [Nepting local API, AF]: reason (2) then the CB2A field 39 (2)."""
from __future__ import annotations

import pytest

from posbench.drivers.ecr.caisse_ap.client import Answer as CaisseApAnswer
from posbench.drivers.ecr.caisse_ap.codec import decode_message
from posbench.drivers.ecr.caisse_ap.adapter import sale_result as caisse_ap_sale
from posbench.drivers.ecr.concert.codec import Answer as ConcertAnswer
from posbench.drivers.ecr.concert.adapter import sale_result as concert_sale
from posbench.drivers.ecr.zvt.adapter import sale_result as zvt_sale
from posbench.drivers.ecr.zvt.results import Collector

# 04 0F data: 27 result code · 04 amount 12.50 · 0B trace 000042 · 29 terminal id 52100123
INFO = "04 000000001250 0B 000042 29 52100123"


def zvt(info: str | None, end: str):
    """A ZVT payment from its status information (04 0F data) and its end: "06 0F" + data or
    "06 1E" + result code, as the PT sends them."""
    collector = Collector("authorization")
    if info is not None:
        collector.status_information(bytes.fromhex(info))
    kind, data = end[:5], bytes.fromhex(end[5:])
    if kind == "06 1E":
        collector.abort(data)
    else:
        collector.completion(data)
    return zvt_sale(collector.result())


def test_zvt_issuer_refusal_carries_a0_the_authorisation_systems_code():
    sale = zvt("27 01 " + INFO + " A0 01", "06 1E 01")
    assert (sale.display_code, sale.acquirer_code, sale.stan) == ("01", "01", "000042")


def test_zvt_a0_other_than_the_code_shown_is_the_hosts_word_not_the_pts():
    # the PT shows 01 while the authorisation system answered 05: the report says who said what
    sale = zvt("27 01 " + INFO + " A0 05", "06 1E 01")
    assert (sale.display_code, sale.acquirer_code) == ("01", "05")


def test_zvt_host_code_without_a0_is_the_hosts_by_the_result_code_range():
    sale = zvt("27 01 " + INFO, "06 1E 01")
    assert sale.acquirer_code == "01"


@pytest.mark.parametrize("rc, display", [("A1", "A1"), ("9B", "9B"), ("85", "85"), ("64", "64")])
def test_zvt_the_pts_own_failure_has_no_acquirer_code(rc, display):
    sale = zvt(None, f"06 1E {rc}")
    assert (sale.display_code, sale.acquirer_code) == (display, "")


def test_zvt_approval_without_a0_does_not_say_whether_the_host_answered():
    sale = zvt("27 00 " + INFO, "06 0F 27 00")
    assert sale.display_code == "00" and sale.acquirer_code is None
    assert zvt("27 00 " + INFO + " A0 00", "06 0F 27 00").acquirer_code == "00"


REPORT = "411111******1111   2812000042521001230" + "1" + " " * 16


@pytest.mark.parametrize("raw, display, acquirer", [
    ("017" + "00001250" + "1" + REPORT + "978" + " " * 10, "01", "01"),              # the acquirer's 01
    ("017" + "00001250" + "1" + REPORT[:37] + "  " + REPORT[39:] + "978" + " " * 10, "", ""),  # no answer
    ("017" + "00001250" + "1" + "978" + " " * 10, "", None),                          # no report at all
])
def test_concert_acquirer_code_is_the_reports_field_39(raw, display, acquirer):
    sale = concert_sale(ConcertAnswer.decode(raw.encode("ascii")))
    assert (sale.display_code, sale.acquirer_code) == (display, acquirer)


def caisse_ap(raw: str):
    return caisse_ap_sale(CaisseApAnswer(decode_message(raw.encode("ascii"))))


@pytest.mark.parametrize("raw, display, acquirer", [
    ("CZ0040300AE00201AF0040201", "01", "01"),      # phone call, the issuer's 01 passed on
    ("CZ0040300AE00201AF0040451", "51", "51"),      # refused by the issuer (51)
    ("CZ0040300AE00201AF00211", "AF11", ""),        # acquirer abandon: the host gave no answer
    ("CZ0040300AE00201AF00207", "AF07", ""),        # not ended: the terminal gave up on the card
    ("CZ0040300AE00201AF00202", "AF02", None),      # a referral passed on without its code
    ("CZ0040300AE00210", "00", None),               # done: AE 10 carries no AF
])
def test_caisse_ap_acquirer_code_is_af_field_39(raw, display, acquirer):
    sale = caisse_ap(raw)
    assert (sale.display_code, sale.acquirer_code) == (display, acquirer)
