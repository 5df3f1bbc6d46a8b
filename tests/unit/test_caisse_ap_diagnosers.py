"""What a Caisse-AP sale's answer says about the causes of code 01 (``posbench.diagnosis.rules``)."""
from __future__ import annotations

import pytest

from posbench.diagnosis.rules import SALE_CAUSES, sale_failure_cause, sale_read_failure
from posbench.drivers.ecr.caisse_ap.client import Answer
from posbench.drivers.ecr.caisse_ap.codec import Reason
from posbench.drivers.ecr.caisse_ap.adapter import sale_result


def answer(ae: str, reason: Reason | None = None, **fields: str):
    return sale_result(Answer({"CZ": "0320", "AE": ae, **({"AF": reason.encode()} if reason else {}), **fields}))


@pytest.mark.parametrize("reason, cause", [
    (Reason("05", message="TERMINAL NON INIT"), ("data_loss", "moderate")),
    (Reason("10"), ("firmware_driver", "moderate")),
    (Reason("11"), ("network_unstable", "weak")),
    (Reason("06"), ("operator_error", "moderate")),
    (Reason("08"), ("operator_error", "weak")),
    (Reason("00"), ("application", "moderate")),
    (Reason("02", "01"), None),   # the issuer referred the card: not the unit
    (Reason("04", "51"), None),   # the issuer refused it
    (Reason("09"), None),         # the bench's request was malformed
])
def test_af_reasons_point_at_their_cause(reason, cause):
    assert sale_failure_cause("caisse-ap", answer("01", reason)) == cause


def test_the_issuers_code_is_shown_and_counts_as_the_hosts_answer():
    sale = answer("01", Reason("02", "01", "APPEL PHONIE"))
    assert (sale.display_code, sale.host_code, sale.host_answered, sale.reason) == ("01", "01", True, "")
    sale = answer("01", Reason("07", message="CARTE ILLISIBLE"), CC="001")
    assert (sale.display_code, sale.host_answered, sale.result_code) == ("AF07", False, 7)
    assert sale.reason == "not ended: CARTE ILLISIBLE" and sale.details["application"] == "CB contact"
    done = answer("10", AC="123456", CC="00B", AA="411111######1111")
    assert (done.display_code, done.host_code, done.auth_code, done.card_technology) == ("00", "00", "123456",
                                                                                          "contactless")
    assert done.pan == "411111******1111"


def test_a_card_the_terminal_gave_up_on_fails_the_read_path_it_was_presented_on():
    not_ended = answer("01", Reason("07"), CC="001")
    assert sale_read_failure("caisse-ap", not_ended, "magstripe") == "af07_magstripe"
    assert sale_failure_cause("caisse-ap", not_ended) is None  # contact: chip or stripe, Caisse-AP does not say
    tapped = answer("01", Reason("07"), CC="00B")
    assert sale_read_failure("caisse-ap", tapped, "chip") == "af07_contactless"
    assert sale_failure_cause("caisse-ap", tapped) == ("nfc_antenna", "moderate")
    for reason in (Reason("08"), Reason("05"), Reason("02", "01")):
        assert sale_read_failure("caisse-ap", answer("01", reason), "chip") == ""
    assert sale_read_failure("caisse-ap", answer("10"), "chip") == ""


def test_the_sale_causes_of_caisse_ap():
    assert set(SALE_CAUSES["caisse-ap"]) == {"application", "chip_contacts", "data_loss", "firmware_driver",
                                             "msr_head", "network_unstable", "nfc_antenna", "operator_error"}
