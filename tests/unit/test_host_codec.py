"""posbench.drivers.host.iso_spec: the ISO 8583 codec of the host link."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.core.errors import ProtocolError
from posbench.drivers.host import iso_spec

pytestmark = pytest.mark.timeout(30)

PAN = "4111111111111111"
SALE = {"t": "0200", "2": PAN, "3": "000000", "4": "000000001234", "11": "000042", "41": "TERM0001",
        "52": "0123456789ABCDEF"}


def test_spec_has_no_header_and_is_a_copy() -> None:
    from iso8583.specs import default

    assert iso_spec.SPEC["h"]["max_len"] == 0
    assert iso_spec.SPEC is not default and iso_spec.SPEC["h"] is not default["h"]
    assert iso_spec.SPEC["2"] == default["2"] and iso_spec.SPEC["2"] is not default["2"]


def test_round_trip_and_no_mutation() -> None:
    doc = dict(SALE)
    raw = iso_spec.encode(doc)
    assert doc == SALE  # iso8583.encode would have added "p"
    assert isinstance(raw, bytes) and raw.startswith(b"0200")
    back = iso_spec.decode(raw)
    assert {k: v for k, v in back.items() if k != "p"} == SALE


def test_echo_with_secondary_bitmap_round_trips() -> None:
    back = iso_spec.decode(iso_spec.encode({"t": "0800", "7": "1231235959", "11": "000001", "70": "301"}))
    assert back["70"] == "301" and back["t"] == "0800"


def test_encode_error_names_field_without_card_data() -> None:
    with pytest.raises(ProtocolError) as info:
        iso_spec.encode({"t": "0200", "2": PAN + "12345678"})
    text = str(info.value)
    assert "field 2" in text and PAN not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_encode_wrong_type_is_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="field 4"):
        iso_spec.encode({"t": "0200", "4": 1234})


def test_decode_truncated_pan_field_keeps_pan_out_of_message() -> None:
    raw = iso_spec.encode(SALE)
    cut = raw[: raw.index(PAN.encode()) + 10]
    with pytest.raises(ProtocolError) as info:
        iso_spec.decode(cut)
    assert PAN[:10] not in str(info.value) and "field 2" in str(info.value)


@pytest.mark.parametrize("raw", [b"", b"02", b"0200", b"ABCD" + bytes(8), b"0200" + bytes(8) + b"x",
                                 "0200"])
def test_decode_rejects(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        iso_spec.decode(raw)  # type: ignore[arg-type]


def test_response_mti() -> None:
    assert iso_spec.response_mti("0200") == "0210"
    assert iso_spec.response_mti("0800") == "0810"
    assert iso_spec.response_mti("0400") == "0410"
    with pytest.raises(ValueError):
        iso_spec.response_mti("02x0")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.binary(max_size=200).map(lambda b: b"0200" + b),
                 st.binary(max_size=200).map(lambda b: b"0800\xf2" + b)))
def test_decode_fuzz_only_protocol_error(raw: bytes) -> None:
    try:
        doc = iso_spec.decode(raw)
    except ProtocolError as exc:
        assert PAN not in str(exc)
    else:
        assert len(doc["t"]) == 4 and doc["t"].isdigit()
