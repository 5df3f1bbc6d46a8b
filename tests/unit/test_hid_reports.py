"""HID report parsers of both reader flavours: the 337-byte vendor report and keyboard reports."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.setup.cards import load_deck
from posbench.core.errors import ProtocolError
from posbench.drivers.card.tracks import REASONS, TrackError
from posbench.drivers.usb.hid_keyboard import (KeyboardDecoder, char_reports, decode_reports,
                                      text_reports)
from posbench.drivers.usb.magstripe import (REPORT_LEN, STATUS_LRC, STATUS_NO_DATA, STATUS_OK,
                                   STATUS_PARITY, Swipe, build_hid_report, parse_hid_report,
                                   parse_keyboard_text)

VISA = load_deck()["VISA-T1"]
TRACK_CHARS = "".join(chr(c) for c in range(0x20, 0x60))


def test_vendor_report_layout_and_round_trip():
    report = build_hid_report({1: (STATUS_OK, VISA.track1), 2: (STATUS_PARITY, None)})
    assert len(report) == REPORT_LEN == 337
    assert report[0:3] == bytes([STATUS_OK, STATUS_PARITY, STATUS_NO_DATA])
    assert report[3] == len(VISA.track1) and report[4] == 0 and report[6] == 0
    assert report[7:7 + len(VISA.track1)] == VISA.track1.encode()
    swipe = parse_hid_report(report)
    assert swipe.raw(1) == VISA.track1 and swipe.track_data(1).pan == VISA.pan
    assert not swipe.ok and swipe.failures() == {2: "parity"}
    with pytest.raises(TrackError) as info:
        swipe.track_data(2)
    assert info.value.reason == "parity"
    assert VISA.pan not in repr(swipe) and VISA.pan not in repr(swipe.tracks[1])


def test_vendor_report_malformed_is_a_protocol_error():
    good = bytearray(build_hid_report({1: (STATUS_OK, VISA.track1), 2: (STATUS_OK, VISA.track2)}))
    with pytest.raises(ProtocolError, match="not 337"):
        parse_hid_report(bytes(good[:300]))
    too_long = bytearray(good)
    too_long[3] = 111
    with pytest.raises(ProtocolError, match="exceeds"):
        parse_hid_report(bytes(too_long))
    bad_byte = bytearray(good)
    bad_byte[9] = 0x7F
    with pytest.raises(ProtocolError, match="character set") as info:
        parse_hid_report(bytes(bad_byte))
    assert VISA.pan not in str(info.value)


def test_unknown_status_codes_are_unreadable_and_ok_without_data_is_no_data():
    report = bytearray(build_hid_report({1: (STATUS_OK, VISA.track1), 2: (STATUS_OK, VISA.track2)}))
    report[0], report[1], report[4] = 0x42, STATUS_OK, 0
    swipe = parse_hid_report(bytes(report))
    assert swipe.failures() == {1: "unreadable", 2: "no_data"}


def test_keyboard_reports_round_trip_every_track_character():
    text = VISA.track1 + VISA.track2 + TRACK_CHARS + "\r"
    reports = text_reports(text)
    assert all(len(r) == 8 for r in reports) and len(reports) == 2 * len(text)
    assert decode_reports(reports) == text
    assert char_reports("%")[0] == bytes([0x02, 0, 0x22, 0, 0, 0, 0, 0])  # shift + 5
    assert char_reports("1")[0] == bytes([0, 0, 0x1E, 0, 0, 0, 0, 0])


def test_keyboard_decoder_counts_a_held_key_once():
    press = char_reports("1")[0]
    decoder = KeyboardDecoder()
    assert decoder.feed(press) == "1" and decoder.feed(press) == "" and decoder.feed(bytes(8)) == ""
    assert decoder.feed(press) == "1"
    assert decoder.feed(bytes([0, 0, 1, 1, 1, 1, 1, 1])) == ""  # rollover error: phantom state
    with pytest.raises(ProtocolError):
        decoder.feed(bytes([0, 0, 0x3A, 0, 0, 0, 0, 0]))  # F1: no card reader types it
    with pytest.raises(ProtocolError):
        decoder.feed(b"\x00" * 7)


def test_keyboard_text_with_bad_and_absent_tracks():
    swipe = parse_keyboard_text("%E?" + VISA.track2 + "\r")
    assert swipe.flavour == "keyboard"
    assert swipe.failures() == {1: "unreadable"}
    assert swipe.raw(2) == VISA.track2 and swipe.tracks[3].reason == "no_data"
    both = parse_keyboard_text(VISA.track1 + VISA.track2 + "+123?")
    assert both.ok and both.raw(3) == ";123?"
    for bad in ("x" + VISA.track2, VISA.track2[:-1], VISA.track2 + VISA.track2 + VISA.track2):
        with pytest.raises(ProtocolError) as info:
            parse_keyboard_text(bad)
        assert VISA.pan not in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(min_size=REPORT_LEN, max_size=REPORT_LEN), st.binary(max_size=400)))
def test_fuzz_vendor_report_parser(raw):
    try:
        swipe = parse_hid_report(raw)
    except ProtocolError:
        return
    assert isinstance(swipe, Swipe)
    for n, read in swipe.tracks.items():
        assert read.ok or read.reason in REASONS
        try:
            swipe.track_data(n) if n < 3 else None
        except TrackError as exc:
            assert exc.reason in REASONS


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=10), max_size=40))
def test_fuzz_keyboard_decoder(reports):
    decoder = KeyboardDecoder()
    for report in reports:
        try:
            decoder.feed(report)
        except ProtocolError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=TRACK_CHARS + "\rE", max_size=120))
def test_fuzz_keyboard_text_parser(text):
    try:
        swipe = parse_keyboard_text(text)
    except ProtocolError:
        return
    for n in (1, 2):
        try:
            swipe.track_data(n)
        except TrackError as exc:
            assert exc.reason in REASONS


def test_status_codes_cover_the_decoder_reasons():
    assert {STATUS_PARITY, STATUS_LRC, STATUS_NO_DATA} and STATUS_OK == 0
    from posbench.drivers.usb.magstripe import REASON_STATUS
    assert set(REASON_STATUS) == {"no_data", "start_sentinel", "end_sentinel", "parity", "lrc"}
    assert len(set(REASON_STATUS.values())) == len(REASON_STATUS) and 0 not in REASON_STATUS.values()
