"""The Caisse-AP field codec: golden frames from Nepting's local API documentation, malformed
input as typed errors, and hypothesis round trips."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.drivers.ecr.caisse_ap.codec import (AF_REASONS, FieldError, Reason, decode_message, encode_message,
                                               field_end, parse_reason)
from posbench.core.errors import ProtocolError

# Nepting's documented frames (a request with the mandatory fields; a refused answer).
REQUEST = b"CZ0040300CJ012247300123456CA00201CB00512345CD0010CE003978"
REFUSED = b"CZ0040320CJ012999999999999CA00201CB00512345CD0010CE003978AC006184118AE00201AF00204"
BAD_FORMAT = b"CZ0040320CJ012999999999999AE00201AF00209CA00201CB00512345CD0010CE003978"


def test_golden_request_both_ways():
    fields = {"CZ": "0300", "CJ": "247300123456", "CA": "01", "CB": "12345", "CD": "0", "CE": "978"}
    assert decode_message(REQUEST) == fields
    assert encode_message(fields) == REQUEST


def test_golden_answers_decode():
    refused = decode_message(REFUSED)
    assert (refused["AE"], refused["AF"], refused["AC"]) == ("01", "04", "184118")
    assert decode_message(BAD_FORMAT)["AF"] == "09"


def test_cz_goes_first_whatever_the_order_given():
    assert encode_message({"CA": "01", "CZ": "0300"}) == b"CZ0040300CA00201"


@pytest.mark.parametrize("raw, why", [
    (b"CZ0040300CA0x201", "not three digits"),
    (b"CZ0040300CA00", "cut off"),
    (b"CZ0040300CA002", "cut off"),
    (b"CZ0040300CA0050", "cut off"),
    (b"CA00201", "CZ .the protocol version. missing"),
    (b"CA00201CZ0040300", "not first"),
    (b"CZ0040300CZ0040300", "appears twice"),
    (b"CZ000", "length 000"),
    (b"cz0040300", "bad tag"),
    (b"CZ0040300C1001x", "bad tag"),
    (b"CZ0040300CF002\x00\x01", "not printable"),
    (b"", "empty message"),
])
def test_malformed_messages_are_typed_errors(raw, why):
    with pytest.raises(FieldError, match=why) as err:
        decode_message(raw)
    assert isinstance(err.value, ProtocolError)  # the unit's fault, never a crash


def test_field_end_tells_whole_fields_from_a_field_arriving():
    assert field_end(REQUEST) == len(REQUEST)
    assert field_end(REQUEST[:11]) == 9  # "CZ0040300" then "CJ" of the next field
    assert field_end(b"C") == 0
    with pytest.raises(FieldError):
        field_end(b"CZ0040300CA0x")


def test_values_that_cannot_be_sent_are_refused_before_sending():
    for fields in ({"CA": "01"}, {"CZ": "0300", "CA": ""}, {"CZ": "0300", "Ca": "1"}, {"CZ": "0300", "CF": "x" * 1000}):
        with pytest.raises(ValueError):
            encode_message(fields)


def test_af_with_the_issuers_field_39_and_the_terminals_message():
    reason = parse_reason("02" + "01" + "APPEL PHONIE".ljust(21) + "    ")
    assert (reason.code, reason.field39, reason.message, reason.meaning) == \
        ("02", "01", "APPEL PHONIE", AF_REASONS["02"])
    assert parse_reason("04") == Reason("04")
    assert parse_reason("07  CARTE ILLISIBLE").field39 == ""


@pytest.mark.parametrize("value", ["", "4", "x4", "0201", "04!!"])
def test_malformed_af_is_a_typed_error(value):
    if value == "0201":  # a reason and field 39: valid
        assert parse_reason(value).field39 == "01"
        return
    with pytest.raises(FieldError):
        parse_reason(value)


def test_every_reason_code_is_named():
    assert sorted(AF_REASONS) == [f"{n:02d}" for n in range(14)]


TAGS = st.from_regex(r"[A-Z]{2}", fullmatch=True).filter(lambda t: t != "CZ")
VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=120)


@given(st.dictionaries(TAGS, VALUES, max_size=8), VALUES)
def test_round_trip(fields, version):
    message = {"CZ": version, **fields}
    assert decode_message(encode_message(message)) == message


@given(st.builds(Reason, st.sampled_from(sorted(AF_REASONS)), st.sampled_from(["", "00", "01", "05", "51"]),
                 st.from_regex(r"[A-Z0-9 ]{0,21}", fullmatch=True).map(str.strip)))
def test_af_round_trip(reason):
    assert parse_reason(reason.encode()) == reason


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_give_fields_or_a_typed_error(raw):
    try:
        fields = decode_message(raw)
    except FieldError:
        return
    assert encode_message(fields) == raw  # what decodes is exactly the message it came from
