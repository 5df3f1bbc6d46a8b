"""Unit tests for the ECR frame and message codec (drivers/ecr/agent/codec.py)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.core.errors import FrameError, MessageError, ProtocolError
from posbench.drivers.transport.frame import ACK, ENQ, EOT, ETX, FS, MAX_MESSAGE, NAK, STX, decode_frame, encode_frame, lrc
from posbench.drivers.ecr.agent.codec import Message, decode_message, encode_message

pytestmark = pytest.mark.timeout(60)


def _frame(message: bytes, lrc_byte: int | None = None) -> bytes:
    """Build a frame by hand (independent of ``encode_frame``)."""
    body = message + bytes([ETX])
    value = 0
    for b in body:
        value ^= b
    return bytes([STX]) + body + bytes([value if lrc_byte is None else lrc_byte])


# -- constants and LRC ------------------------------------------------------------------------
def test_control_byte_values():
    assert (STX, ETX, EOT, ENQ, ACK, NAK, FS) == (0x02, 0x03, 0x04, 0x05, 0x06, 0x15, 0x1C)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0x00),
        (b"\x00", 0x00),
        (b"\xff", 0xFF),
        (b"ST\x03", 0x04),  # 0x53 ^ 0x54 ^ 0x03
        (b"ST\x1crc=OK\x1cuptime_s=12\x03", 0x2E),
        (b"AA", 0x00),
        (bytearray(b"ST\x03"), 0x04),
    ],
)
def test_lrc_known_vectors(data, expected):
    assert lrc(data) == expected


# -- frames: known vectors ----------------------------------------------------------------------
def test_encode_frame_known_vector():
    assert encode_frame(b"ST") == b"\x02ST\x03\x04"


def test_encode_frame_with_fields_known_vector():
    assert encode_frame(b"ST\x1crc=OK\x1cuptime_s=12") == b"\x02ST\x1crc=OK\x1cuptime_s=12\x03\x2e"


def test_decode_frame_known_vector():
    assert decode_frame(b"\x02ST\x03\x04") == b"ST"


def test_decode_frame_accepts_bytearray_and_memoryview():
    assert decode_frame(bytearray(b"\x02ST\x03\x04")) == b"ST"
    assert decode_frame(memoryview(b"\x02ST\x03\x04")) == b"ST"


def test_empty_message_frame_round_trip():
    assert encode_frame(b"") == b"\x02\x03\x03"
    assert decode_frame(b"\x02\x03\x03") == b""


def test_lrc_may_equal_a_control_byte():
    # The LRC byte is not escaped: it may be NUL, STX or ETX and must still decode.
    for message, lrc_byte in ((b" #", 0x00), (b"! ", STX), (b"00", ETX), (b"06", ENQ), (b"a", 0x62)):
        frame = encode_frame(message)
        assert frame == _frame(message)
        assert frame[-1] == lrc_byte
        assert decode_frame(frame) == message


def test_max_size_message_round_trip():
    message = b"A" * MAX_MESSAGE
    assert decode_frame(encode_frame(message)) == message


# -- frames: every FrameError branch -------------------------------------------------------------
@pytest.mark.parametrize("frame", [b"", b"\x02", b"\x02\x03"])
def test_decode_frame_too_short(frame):
    with pytest.raises(FrameError, match="too short"):
        decode_frame(frame)


def test_decode_frame_bad_start():
    with pytest.raises(FrameError, match="expected STX"):
        decode_frame(b"\x05ST\x03\x04")


def test_decode_frame_no_etx_before_lrc():
    with pytest.raises(FrameError, match="no ETX"):
        decode_frame(b"\x02ST\x04\x04")
    # LRC byte missing: the ETX is now the last byte
    with pytest.raises(FrameError, match="no ETX"):
        decode_frame(b"\x02ST\x03")


@pytest.mark.parametrize("inner", [b"S\x03T", b"S\x02T", b"\x02ST", b"ST\x03"])
def test_decode_frame_stx_or_etx_inside(inner):
    with pytest.raises(FrameError, match="STX or ETX inside"):
        decode_frame(_frame(inner))


def test_decode_frame_too_long():
    with pytest.raises(FrameError, match="exceeds"):
        decode_frame(_frame(b"A" * (MAX_MESSAGE + 1)))


def test_decode_frame_lrc_mismatch():
    with pytest.raises(FrameError, match="LRC mismatch: got 0x05, computed 0x04"):
        decode_frame(b"\x02ST\x03\x05")


@pytest.mark.parametrize("bad", [b"\x00", b"\x01", b"\x1b", b"\x1d", b"\x7f", b"\x80", b"\xff", b"\n"])
def test_decode_frame_disallowed_payload_byte(bad):
    with pytest.raises(FrameError, match="not allowed"):
        decode_frame(_frame(b"ST" + bad))


def test_frame_errors_are_protocol_errors():
    with pytest.raises(ProtocolError) as info:
        decode_frame(b"")
    assert isinstance(info.value, FrameError)
    assert info.value.device == "ecr"
    assert "too short" in info.value.detail


# -- frames: encode errors ----------------------------------------------------------------------
def test_encode_frame_too_long():
    with pytest.raises(MessageError, match="exceeds"):
        encode_frame(b"A" * (MAX_MESSAGE + 1))


@pytest.mark.parametrize("bad", [b"\x02", b"\x03", b"\x00", b"\x7f", b"\xc3\xa9"])
def test_encode_frame_disallowed_byte(bad):
    with pytest.raises(MessageError, match="not allowed"):
        encode_frame(b"ST" + bad)


# -- messages: known vectors ----------------------------------------------------------------------
def test_encode_message_known_vectors():
    assert encode_message("ST") == b"ST"
    assert encode_message("ST", [("rc", "OK"), ("uptime_s", "12")]) == b"ST\x1crc=OK\x1cuptime_s=12"
    assert encode_message("ST", {"rc": "OK", "uptime_s": 12}) == b"ST\x1crc=OK\x1cuptime_s=12"


def test_decode_message_known_vector():
    msg = decode_message(b"ST\x1crc=OK\x1cuptime_s=12")
    assert msg == Message("ST", [("rc", "OK"), ("uptime_s", "12")])


def test_message_values_may_hold_equals_and_be_empty():
    payload = encode_message("TX", [("expr", "a=b=c"), ("empty", ""), ("sp", " x ")])
    assert decode_message(payload).fields == [("expr", "a=b=c"), ("empty", ""), ("sp", " x ")]


def test_message_accessors():
    msg = Message("LOG", [("line", "a"), ("rc", "00"), ("line", "b")])
    assert msg.get("rc") == "00"
    assert msg.get("missing") is None
    assert msg.get("missing", "dflt") == "dflt"
    assert msg.get("line") == "a"
    assert msg.getall("line") == ["a", "b"]
    assert msg.getall("missing") == []
    assert msg.require("rc") == "00"
    assert msg.encode() == b"LOG\x1cline=a\x1crc=00\x1cline=b"


def test_message_require_missing_field():
    with pytest.raises(MessageError, match="LOG reply lacks field 'rc'"):
        Message("LOG").require("rc")


def test_message_default_fields_are_independent():
    a, b = Message("AA"), Message("BB")
    a.fields.append(("k", "v"))
    assert b.fields == []


# -- messages: every MessageError branch -----------------------------------------------------------
@pytest.mark.parametrize("command", ["", "S", "st", "1ST", "ABCDEFGHI", "S T", "ST\n", "ST=", "ÉT"])
def test_encode_message_bad_command(command):
    with pytest.raises(MessageError, match="bad command code"):
        encode_message(command)


@pytest.mark.parametrize("key", ["", "Rc", "1rc", "r-c", "r c", "a" * 33, "rc\n", "_rc", "é"])
def test_encode_message_bad_field_name(key):
    with pytest.raises(MessageError, match="bad field name"):
        encode_message("ST", [(key, "v")])


def test_encode_message_longest_field_name_accepted():
    key = "a" + "b" * 31
    assert decode_message(encode_message("ST", [(key, "v")])).fields == [(key, "v")]


@pytest.mark.parametrize("value", ["a\x1cb", "\x00", "line\n", "\x7f", "é", "tab\t"])
def test_encode_message_bad_value(value):
    with pytest.raises(MessageError, match="cannot carry"):
        encode_message("ST", [("k", value)])


def test_encode_message_too_long():
    with pytest.raises(MessageError, match="exceeds"):
        encode_message("ST", [("data", "x" * MAX_MESSAGE)])


def test_encode_message_exactly_max_accepted():
    overhead = len(b"ST\x1cdata=")
    payload = encode_message("ST", [("data", "x" * (MAX_MESSAGE - overhead))])
    assert len(payload) == MAX_MESSAGE


def test_decode_message_not_ascii():
    with pytest.raises(MessageError, match="not ASCII"):
        decode_message(b"ST\x1crc=\xc3\xa9")


@pytest.mark.parametrize("payload", [b"", b"st", b"S", b"\x1crc=OK", b"ST\x00", b"ABCDEFGHI"])
def test_decode_message_bad_command(payload):
    with pytest.raises(MessageError, match="bad command code"):
        decode_message(payload)


@pytest.mark.parametrize(
    "payload",
    [b"ST\x1c", b"ST\x1crc", b"ST\x1c=OK", b"ST\x1cRC=OK", b"ST\x1crc=OK\x1c", b"ST\x1c\x1crc=OK"],
)
def test_decode_message_field_not_key_value(payload):
    with pytest.raises(MessageError, match="not key=value"):
        decode_message(payload)


@pytest.mark.parametrize("payload", [b"ST\x1crc=O\x00K", b"ST\x1crc=\n", b"ST\x1crc=\x7f"])
def test_decode_message_control_character(payload):
    with pytest.raises(MessageError, match="control character"):
        decode_message(payload)


def test_message_errors_are_protocol_errors():
    with pytest.raises(ProtocolError) as info:
        decode_message(b"")
    assert isinstance(info.value, MessageError)
    assert not isinstance(info.value, FrameError)


# -- hypothesis ------------------------------------------------------------------------------------
_COMMANDS = st.from_regex(r"[A-Z][A-Z0-9]{1,7}", fullmatch=True)
_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
_FIELDS = st.lists(st.tuples(_KEYS, _VALUES), max_size=20)
_PAYLOAD_BYTES = st.binary(max_size=200) | st.lists(
    st.sampled_from([STX, ETX, FS, 0x41, 0x3D, 0x61, 0x00, 0x80]), max_size=40
).map(bytes)


@settings(deadline=None, max_examples=300)
@given(data=st.binary(max_size=300))
def test_decode_frame_arbitrary_bytes_only_raises_frame_error(data):
    try:
        message = decode_frame(data)
    except FrameError:
        return
    # a frame that decodes must re-encode to exactly the same bytes
    assert encode_frame(message) == data


@settings(deadline=None, max_examples=300)
@given(message=_PAYLOAD_BYTES)
def test_decode_frame_well_formed_envelope_arbitrary_payload(message):
    """Frames with correct STX/ETX/LRC around arbitrary payloads: decode or FrameError only."""
    frame = _frame(message)
    try:
        assert decode_frame(frame) == message
    except FrameError:
        pass


@settings(deadline=None, max_examples=300)
@given(data=_PAYLOAD_BYTES)
def test_decode_message_arbitrary_bytes_only_raises_message_error(data):
    try:
        msg = decode_message(data)
    except MessageError:
        return
    assert isinstance(msg, Message)
    assert msg.encode() == data


@settings(deadline=None, max_examples=300)
@given(command=_COMMANDS, fields=_FIELDS)
def test_message_round_trip(command, fields):
    payload = encode_message(command, fields)
    assert decode_message(payload) == Message(command, fields)
    assert decode_message(decode_frame(encode_frame(payload))) == Message(command, fields)
    assert Message(command, fields).encode() == payload


@settings(deadline=None, max_examples=200)
@given(message=st.lists(st.sampled_from([FS, *range(0x20, 0x7F)]), max_size=MAX_MESSAGE).map(bytes))
def test_frame_round_trip_any_allowed_payload(message):
    frame = encode_frame(message)
    assert frame[0] == STX and frame[-2] == ETX
    assert lrc(frame[1:]) == 0  # LRC over message + ETX + LRC cancels out
    assert decode_frame(frame) == message


@settings(deadline=None, max_examples=200)
@given(message=st.lists(st.integers(0x20, 0x7E), min_size=1, max_size=60).map(bytes),
       flip=st.integers(min_value=0), mask=st.integers(min_value=1, max_value=255))
def test_single_byte_corruption_detected(message, flip, mask):
    frame = bytearray(encode_frame(message))
    frame[1 + flip % (len(frame) - 1)] ^= mask  # corrupt anything but STX
    with pytest.raises(FrameError):
        decode_frame(bytes(frame))
