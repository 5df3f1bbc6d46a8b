"""Concert V2 messages and frames (drivers/ecr/concert/codec.py on the agent link's frame codec):
the 34-character request, the 25/80-character answer and its 55-character report, golden frames
worked out by hand (LRC = XOR of the message and ETX), malformed input, and hypothesis fuzzing:
arbitrary bytes give only the project's typed errors."""
from __future__ import annotations

from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.drivers.ecr.concert.codec import (ANSWER_LEN, REPORT_LEN, REQUEST_LEN, Answer, Report, Request)
from posbench.drivers.ecr.concert.adapter import sale_result
from posbench.drivers.transport.frame import decode_frame, encode_frame
from posbench.core.errors import MessageError, ProtocolError

PAN = "4111111111111111"


def xor(data: bytes) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


def test_request_is_34_characters_in_field_order():
    raw = Request(1250, "01", "1", "1", "0", "978").encode()
    assert raw == b"0100001250110978          A010B010"
    assert len(raw) == REQUEST_LEN


def test_request_frame_lrc_is_the_xor_of_message_and_etx():
    raw = Request(1250).encode()
    frame = encode_frame(raw)
    assert frame[0] == 0x02 and frame[-2] == 0x03
    assert frame[-1] == xor(raw + b"\x03")
    assert decode_frame(frame) == raw


def test_request_round_trip():
    request = Request(99999999, "42", "0", "1", "0", "840", "ABCDEFGHIJ", "A011", "B011")
    assert Request.decode(request.encode()) == request


@pytest.mark.parametrize("request_", [Request(0), Request(10**8), Request(5, "1"), Request(5, currency="EUR"),
                                      Request(5, answer_flag="2"), Request(5, private="short"),
                                      Request(5, delay="A0100")])
def test_request_that_does_not_fit_is_a_message_error(request_):
    with pytest.raises(MessageError):
        request_.encode()


def test_answer_with_report_is_80_characters_and_masks_the_pan():
    report = Report(PAN, "2812", "000042", "52100123", "00")
    answer = Answer("01", "0", 1250, "1", report, "978")
    raw = answer.encode()
    assert len(raw) == ANSWER_LEN + REPORT_LEN == 80
    assert PAN.encode() not in raw and b"411111******1111" in raw
    back = Answer.decode(raw)
    assert back.accepted and back.amount == 1250 and back.currency == "978"
    assert back.report == Report("411111******1111", "2812", "000042", "52100123", "00")


def test_short_answer_has_no_report():
    raw = Answer("01", "7", 310, "1", None, "978").encode()
    assert len(raw) == ANSWER_LEN
    back = Answer.decode(raw)
    assert back.report is None and back.status == "7" and not back.accepted


def test_a_full_pan_from_a_terminal_is_masked_when_decoded():
    text = f"{PAN:<19}2812000042521001230" + "0" + " " * 16
    assert len(text) == REPORT_LEN
    assert Report.decode(text).pan == "411111******1111"


@pytest.mark.parametrize("raw, words", [
    (b"01012", "25 or 80"),
    (b"01X00001250" + b"1978" + b" " * 10, "status"),
    (b"0100000X2501978" + b" " * 10, "amount"),
    (b"010000012501EUR" + b" " * 10, "currency"),
    (b"01000001250\xe9978" + b" " * 10, "ASCII"),
    (b"01000001250\x1c978" + b" " * 10, "printable"),
])
def test_malformed_answer_is_a_message_error_saying_what(raw, words):
    with pytest.raises(MessageError, match=words):
        Answer.decode(raw)


def test_sale_result_refused_without_pan_is_a_card_not_read():
    sale = sale_result(Answer("01", "7", 1250, "1", Report(), "978"))
    assert sale.details == {"status": "7", "card_read": "no"}
    assert sale.display_code == "" and not sale.host_answered and "no card read" in sale.reason


def test_sale_result_carries_the_acquirers_code_and_stan():
    sale = sale_result(Answer("01", "7", 1250, "1", Report(PAN, "2812", "000042", "52100123", "01"), "978"))
    assert (sale.display_code, sale.host_code, sale.stan, sale.terminal_id) == ("01", "01", "000042", "52100123")
    assert sale.host_answered and sale.reason == "" and sale.pan == "411111******1111"
    assert sale.details["card_read"] == "yes"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_bytes_give_only_typed_errors(data):
    for decode in (Answer.decode, Request.decode, decode_frame):
        try:
            decode(data)
        except ProtocolError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**8 - 1), st.sampled_from("079"), st.text("0123456789", min_size=6, max_size=6),
       st.booleans())
def test_answers_round_trip(amount, status, stan, with_report):
    report = Report(PAN, "2812", stan, "52100123", "05") if with_report else None
    answer = Answer("07", status, amount, "1", report, "978")
    back = Answer.decode(decode_frame(encode_frame(answer.encode())))
    assert (back.status, back.amount, back.report is None) == (status, amount, not with_report)
    if report is not None:
        assert back.report is not None and back.report.stan == stan
