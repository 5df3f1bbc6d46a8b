"""Unit tests for ATR parsing, APDU helpers and BER-TLV (drivers/card/emv.py)."""
from __future__ import annotations

from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.drivers.card.emv import (ATR_REASONS, PPSE, PSE, ApduError, Atr, AtrError, InterfaceBytes,
                       TlvError, build_atr, fci_aids, fci_df_name, find_tag, get_response,
                       parse_atr, parse_tlv, read_record, select_by_name, split_response,
                       status_word)
from posbench.core.errors import ProtocolError, UnitError

pytestmark = pytest.mark.timeout(60)

H = bytes.fromhex


def xor(data: bytes) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


def with_tck(hexstr: str) -> bytes:
    """ATR bytes plus a TCK computed here (XOR of T0 .. last byte), independent of posbench.drivers.card.emv."""
    body = H(hexstr)
    return body + bytes([xor(body[1:])])


def tlv(tag: int, value: bytes) -> bytes:
    """A reference BER-TLV encoder (definite lengths), independent of posbench.drivers.card.emv."""
    t = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + n.to_bytes(2, "big")
    return t + length + value


# -- ATR --------------------------------------------------------------------------------------
def test_reference_t0_atr():
    atr = parse_atr(H("3B 65 00 00 9C 11 01 01 03"))
    assert atr.convention == "direct" and atr.ts == 0x3B and atr.t0 == 0x65
    assert atr.interface == (InterfaceBytes(tb=0x00, tc=0x00),)
    assert atr.historical == H("9C 11 01 01 03")
    assert atr.protocols == (0,)
    assert atr.tck is None and atr.tck_valid is None and not atr.tck_required
    assert str(atr) == "3B 65 00 00 9C 11 01 01 03"


def test_t1_atr_with_tck():
    # TD1 = 80: T=0, TD2 follows; TD2 = 01: T=1; 10 historical bytes; TCK required
    raw = with_tck("3B 8A 80 01 00 31 C1 73 C8 40 00 00 90 00")
    atr = parse_atr(raw)
    assert atr.protocols == (0, 1)
    assert atr.interface == (InterfaceBytes(td=0x80), InterfaceBytes(td=0x01))
    assert atr.historical == H("00 31 C1 73 C8 40 00 00 90 00")
    assert atr.tck == raw[-1] == xor(raw[1:-1]) and atr.tck_valid is True
    assert atr.to_bytes() == raw


def test_t1_only_atr_with_global_bytes():
    # TA1 = 96 (Fi/Di), TD1 = 81: T=1 and TD2 follows; TD2 = 31: T=1, TA3 TB3 follow
    raw = with_tck("3B F8 13 00 00 81 31 FE 45 4A 43 4F 50 76 32 34 31")
    atr = parse_atr(raw)
    assert atr.protocols == (1,)
    assert atr.interface[0] == InterfaceBytes(0x13, 0x00, 0x00, 0x81)
    assert atr.interface[2] == InterfaceBytes(ta=0xFE, tb=0x45)
    assert atr.historical == b"JCOPv241"


def test_inverse_convention():
    atr = parse_atr(H("3F 65 25 00 2C 09 69 90 00"))
    assert atr.convention == "inverse" and atr.ts == 0x3F and atr.protocols == (0,)
    assert atr.interface == (InterfaceBytes(tb=0x25, tc=0x00),)


def test_t0_with_t15_global_bytes_needs_tck():
    raw = with_tck("3B 80 80 1F 07")  # TD1: T=0; TD2: T=15 with TA3 (clock stop / class)
    atr = parse_atr(raw)
    assert atr.protocols == (0,) and atr.tck_required and atr.tck_valid
    with pytest.raises(AtrError) as err:
        parse_atr(raw[:-1])
    assert err.value.reason == "missing_tck"


def test_minimal_atr():
    atr = parse_atr(H("3B 00"))
    assert atr.interface == () and atr.historical == b"" and atr.protocols == (0,)


@pytest.mark.parametrize("raw, reason", [
    (b"", "no_atr"),
    (H("3C 65 00 00 9C 11 01 01 03"), "bad_ts"),
    (H("00"), "bad_ts"),
    (H("3B"), "truncated"),
    (H("3B 65 00 00 9C 11 01 01"), "truncated"),         # one historical byte short
    (H("3B 65 00"), "truncated"),                        # TC1 missing
    (H("3B 8A 80"), "truncated"),                        # TD2 missing
    (H("3B 80 0F"), "bad_td1"),
    (H("3B 8A 80 01 00 31 C1 73 C8 40 00 00 90 00"), "missing_tck"),
    (H("3B 8A 80 01 00 31 C1 73 C8 40 00 00 90 00 00"), "tck_mismatch"),
    (H("3B 65 00 00 9C 11 01 01 03 00"), "extra_bytes"),
    (H("3B 0F") + bytes(32), "too_long"),                # 34 bytes
])
def test_atr_errors(raw, reason):
    with pytest.raises(AtrError) as err:
        parse_atr(raw)
    assert err.value.reason == reason and reason in ATR_REASONS
    assert isinstance(err.value, ProtocolError) and isinstance(err.value, UnitError)
    assert err.value.device == "chip reader" and "parsing the ATR" in str(err.value)


def test_lenient_tck():
    bad = H("3B 8A 80 01 00 31 C1 73 C8 40 00 00 90 00 00")
    atr = parse_atr(bad, strict=False)
    assert atr.tck == 0 and atr.tck_valid is False and atr.protocols == (0, 1)
    missing = parse_atr(bad[:-1], strict=False)
    assert missing.tck is None and missing.tck_valid is False
    with pytest.raises(AtrError):
        parse_atr(H("3B 65 00"), strict=False)  # truncation is never lenient


def test_longest_valid_atr_is_33_bytes():
    # T0: TD1 only, 15 historical; TD1..TD3 chain TA/TB/TC/TD levels to 15 interface bytes
    levels = [InterfaceBytes(0x11, 0x00, 0x00, 0x01), InterfaceBytes(0x00, 0x00, 0x00, 0x01),
              InterfaceBytes(0x00, 0x00, 0x00, 0x01), InterfaceBytes(0x00, 0x00, 0x00)]
    raw = build_atr(levels, historical=bytes(range(15)))
    assert len(raw) == 33
    assert parse_atr(raw).historical == bytes(range(15))
    with pytest.raises(ValueError):
        build_atr(levels[:3] + [InterfaceBytes(0, 0, 0, 0x01), InterfaceBytes(ta=1)], bytes(15))


def test_build_atr_reproduces_the_reference_atrs():
    assert build_atr([InterfaceBytes(tb=0, tc=0)], H("9C 11 01 01 03")) == H("3B 65 00 00 9C 11 01 01 03")
    assert build_atr([InterfaceBytes(td=0x00), InterfaceBytes(td=0x01)], H("00 31 C1 73 C8 40 00 00 90 00")) \
        == with_tck("3B 8A 80 01 00 31 C1 73 C8 40 00 00 90 00")
    assert build_atr(convention="inverse") == H("3F 00")


byte = st.integers(0, 255)
opt = st.one_of(st.none(), byte)


@st.composite
def atr_layouts(draw):
    n_levels = draw(st.integers(0, 4))
    levels = []
    for i in range(n_levels):
        last = i == n_levels - 1
        proto = draw(st.integers(0, 14) if i == 0 else st.integers(0, 15))
        levels.append(InterfaceBytes(draw(opt), draw(opt), draw(opt), None if last else proto))
    historical = draw(st.binary(max_size=15))
    return levels, historical, draw(st.sampled_from(["direct", "inverse"]))


@settings(max_examples=300, deadline=None)
@given(atr_layouts())
def test_atr_round_trip(layout):
    levels, historical, convention = layout
    try:
        raw = build_atr(levels, historical, convention)
    except ValueError:
        return  # longer than 33 bytes: the builder refuses, as the parser would
    atr = parse_atr(raw)
    assert atr.to_bytes() == raw
    assert parse_atr(atr.to_bytes()) == atr
    assert atr.historical == historical and atr.convention == convention
    want = [(lv.ta, lv.tb, lv.tc, lv.td) for lv in levels]
    if want and want[-1] == (None, None, None, None):
        want.pop()  # a level with no bytes is not announced, so there is nothing to parse
    got = [(lv.ta, lv.tb, lv.tc, None if lv.td is None else lv.td & 0x0F) for lv in atr.interface]
    assert got == want
    expected = [lv.td & 0x0F for lv in levels if lv.td is not None and lv.td & 0x0F != 15]
    assert list(atr.protocols) == (list(dict.fromkeys(expected)) or [0])
    assert (atr.tck is not None) == any(lv.td is not None and lv.td & 0x0F for lv in levels)
    if atr.tck is not None:
        assert xor(raw[1:]) == 0
        corrupt = raw[:-1] + bytes([raw[-1] ^ 0x01])
        with pytest.raises(AtrError):
            parse_atr(corrupt)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40))
def test_atr_fuzz_gives_an_atr_or_an_atr_error(data):
    try:
        atr = parse_atr(data)
    except AtrError as exc:
        assert exc.reason in ATR_REASONS
        return
    assert isinstance(atr, Atr) and atr.to_bytes() == data


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0x3B, 0x3F]), st.binary(max_size=32))
def test_atr_fuzz_with_valid_ts(ts, rest):
    data = bytes([ts]) + rest
    try:
        atr = parse_atr(data, strict=False)
    except AtrError as exc:
        assert exc.reason in ATR_REASONS and exc.reason not in ("missing_tck", "tck_mismatch")
        return
    assert isinstance(atr, Atr)


# -- APDUs and status words -----------------------------------------------------------------
def test_select_pse_and_ppse():
    assert select_by_name(PSE) == H("00 A4 04 00 0E") + b"1PAY.SYS.DDF01" + H("00")
    assert select_by_name(PPSE)[5:-1] == b"2PAY.SYS.DDF01"
    aid = H("A0 00 00 00 03 10 10")
    assert select_by_name(aid, next_occurrence=True) == H("00 A4 04 02 07 A0 00 00 00 03 10 10 00")
    for bad in (b"", bytes(17)):
        with pytest.raises(ValueError):
            select_by_name(bad)


def test_other_commands():
    assert read_record(1, 1) == H("00 B2 01 0C 00")
    assert read_record(2, 3) == H("00 B2 03 14 00")
    assert get_response(0x1C) == H("00 C0 00 00 1C")
    with pytest.raises(ValueError):
        read_record(31, 1)


@pytest.mark.parametrize("resp, sw, words", [
    (H("6F 00 90 00"), (0x90, 0x00), "ok"),
    (H("6A 82"), (0x6A, 0x82), "not found"),
    (H("6A 81"), (0x6A, 0x81), "card blocked"),
    (H("62 83"), (0x62, 0x83), "invalidated"),
    (H("67 00"), (0x67, 0x00), "wrong length"),
    (H("6D 00"), (0x6D, 0x00), "instruction not supported"),
    (H("6E 00"), (0x6E, 0x00), "class not supported"),
    (H("61 1C"), (0x61, 0x1C), "28 more bytes"),
    (H("6C 10"), (0x6C, 0x10), "Le = 16"),
    (H("63 C2"), (0x63, 0xC2), "2 tries left"),
    (H("69 99"), (0x69, 0x99), "command not allowed (6999)"),
    (H("12 34"), (0x12, 0x34), "unknown status 1234"),
])
def test_status_words(resp, sw, words):
    sw1, sw2, meaning = status_word(resp)
    assert (sw1, sw2) == sw and words in meaning


def test_short_response():
    with pytest.raises(ApduError) as err:
        status_word(H("90"))
    assert err.value.reason == "short_response" and isinstance(err.value, ProtocolError)
    assert split_response(H("6F 00 90 00")) == (H("6F 00"), 0x90, 0x00)


# -- BER-TLV ----------------------------------------------------------------------------------
PSE_FCI = tlv(0x6F, tlv(0x84, PSE) + tlv(0xA5, tlv(0x88, H("01")) + tlv(0x5F2D, b"en")
                                          + tlv(0x9F11, H("01"))))
VISA, MC = H("A0 00 00 00 03 10 10"), H("A0 00 00 00 04 10 10")
PPSE_FCI = tlv(0x6F, tlv(0x84, PPSE) + tlv(0xA5, tlv(0xBF0C,
               tlv(0x61, tlv(0x4F, VISA) + tlv(0x87, H("01")) + tlv(0x50, b"VISA CREDIT"))
               + tlv(0x61, tlv(0x4F, MC) + tlv(0x87, H("02"))))))


def test_pse_fci():
    objs = parse_tlv(PSE_FCI)
    assert [o.tag for o in objs] == [0x6F] and objs[0].constructed
    fci = objs[0]
    assert [c.tag for c in fci.children] == [0x84, 0xA5]
    assert find_tag(objs, 0x88).value == H("01")
    assert find_tag(objs, 0x5F2D).value == b"en" and not find_tag(objs, 0x5F2D).constructed
    assert find_tag(objs, 0x9F11).value == H("01")
    assert fci_df_name(PSE_FCI) == PSE
    assert fci_aids(PSE_FCI) == []


def test_ppse_fci_aids_and_padding():
    assert fci_df_name(PPSE_FCI) == PPSE
    assert fci_aids(PPSE_FCI) == [VISA, MC]
    assert find_tag(parse_tlv(PPSE_FCI), 0xBF0C).constructed
    padded = H("00 00") + PPSE_FCI + H("FF 00")
    assert parse_tlv(padded) == parse_tlv(PPSE_FCI)
    record = tlv(0x70, tlv(0x61, tlv(0x4F, VISA) + tlv(0x50, b"VISA")))  # a PSE directory record
    assert fci_aids(record) == [VISA]


def test_long_lengths():
    big = bytes(range(256)) * 2
    for enc in (tlv(0x9F4B, big[:200]), tlv(0x9F4B, big[:300]),
                H("9F 4B 83 00 01 2C") + big[:300], H("9F 4B 84 00 00 01 2C") + big[:300]):
        (obj,) = parse_tlv(enc)
        assert obj.tag == 0x9F4B and obj.value == big[:len(obj.value)] and len(obj.value) in (200, 300)


@pytest.mark.parametrize("data, reason", [
    (H("6F"), "truncated"),
    (H("9F"), "truncated"),                  # multi-byte tag cut short
    (H("9F 81"), "truncated"),
    (H("84 05 01 02"), "truncated"),
    (H("84 81"), "truncated"),
    (H("84 82 01"), "truncated"),
    (H("6F 05 84 05 01 02 03"), "truncated"),  # inner object longer than its template
    (H("6F 80 84 00 00 00"), "indefinite_length"),
    (H("84 85 00 00 00 00 01 00"), "bad_length"),
    (H("9F 81 82 83 04 00"), "tag_too_long"),
])
def test_tlv_errors(data, reason):
    with pytest.raises(TlvError) as err:
        parse_tlv(data)
    assert err.value.reason == reason and isinstance(err.value, ProtocolError)


def nested(depth: int) -> bytes:
    data = tlv(0x84, b"")
    for _ in range(depth):
        data = tlv(0x70, data)
    return data


def test_nesting_limit():
    assert find_tag(parse_tlv(nested(16)), 0x84) is not None
    with pytest.raises(TlvError) as err:
        parse_tlv(nested(17))
    assert err.value.reason == "too_deep"


def test_fci_helpers_errors():
    with pytest.raises(TlvError) as err:
        fci_df_name(tlv(0x70, tlv(0x84, PSE)))
    assert err.value.reason == "missing_tag"
    with pytest.raises(TlvError):
        fci_df_name(tlv(0x6F, tlv(0xA5, b"")))


def test_sensitive_values_never_appear_in_a_repr():
    pan = "4111111111111111"
    track2 = H(pan + "D2512201000000000F")
    record = tlv(0x70, tlv(0x5A, H(pan)) + tlv(0x57, track2) + tlv(0x5F20, b"DOE/JOHN")
                 + tlv(0x9F08, H("00 02")))
    text = repr(parse_tlv(record))
    assert pan not in text and "411111******1111" in text
    assert track2.hex().upper() not in text and "DOE" not in text and "track 2" in text
    assert "0002" in text  # ordinary values are shown
    with pytest.raises(TlvError) as err:
        parse_tlv(tlv(0x5A, H(pan))[:-1])
    assert "411111" not in str(err.value)


tags = st.sampled_from([0x4F, 0x50, 0x84, 0x87, 0x88, 0x5F2D, 0x9F11, 0x9F4B, 0xDF8101])
values = st.binary(max_size=300)


def trees(depth: int):
    leaf = st.builds(tlv, tags, values)
    if depth == 0:
        return leaf
    node = st.builds(lambda tag, kids: tlv(tag, b"".join(kids)),
                     st.sampled_from([0x6F, 0xA5, 0x61, 0x70, 0xBF0C]),
                     st.lists(trees(depth - 1), max_size=3))
    return st.one_of(leaf, node)


@settings(max_examples=200, deadline=None)
@given(st.lists(trees(3), max_size=4))
def test_tlv_round_trip(objects):
    data = b"".join(objects)

    def encode(o) -> bytes:
        inner = b"".join(encode(c) for c in o.children) if o.children else o.value
        return tlv(o.tag, inner)

    parsed = parse_tlv(data)
    assert b"".join(encode(o) for o in parsed) == data
    for top in parsed:
        for o in top.walk():
            if o.constructed:
                assert b"".join(encode(c) for c in o.children) == o.value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_tlv_fuzz_gives_a_list_or_a_tlv_error(data):
    try:
        out = parse_tlv(data)
    except TlvError as exc:
        assert exc.reason in ("truncated", "bad_length", "indefinite_length", "tag_too_long",
                              "too_deep")
        return
    assert isinstance(out, list)
    repr(out)
