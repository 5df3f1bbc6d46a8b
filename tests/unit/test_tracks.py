"""ISO 7811/7813 tracks: bit encoding, decoding with typed errors, field parsing, the test deck."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.setup.cards import load_deck
from posbench.core.errors import ConfigError, UnitError
from posbench.drivers.card.tracks import (LEAD_ZEROS, REASONS, TrackData, TrackError, decode_bits, encode_bits,
                          lrc_char, luhn_valid, parse_track1, parse_track2)

DECK = load_deck()
VISA = DECK["VISA-T1"]


def test_deck_holds_only_published_test_pans_that_pass_luhn():
    assert len(DECK) >= 10
    published = {"4111111111111111", "4012888888881881", "5555555555554444", "5105105105105100",
                 "378282246310005", "6011111111111117"}
    assert published <= {c.pan for c in DECK.values()}
    for card in DECK.values():
        assert luhn_valid(card.pan)
        assert card.pan not in repr(card) and card.masked_pan in repr(card)


@pytest.mark.parametrize("card_id", sorted(DECK))
def test_every_deck_track_round_trips_through_bits_both_directions(card_id):
    card = DECK[card_id]
    for n, text in card.tracks().items():
        bits = encode_bits(n, text)
        assert bits[:LEAD_ZEROS] == [0] * LEAD_ZEROS and bits[-LEAD_ZEROS:] == [0] * LEAD_ZEROS
        assert decode_bits(n, bits) == text
        assert decode_bits(n, bits[::-1]) == text  # swiped the other way
    t1, t2 = parse_track1(card.track1), parse_track2(card.track2)
    assert (t1.pan, t1.name, t1.expiry, t1.service_code) == (card.pan, card.name, card.expiry,
                                                             card.service_code)
    assert (t2.pan, t2.name, t2.expiry) == (card.pan, None, card.expiry)


def test_character_encoding_matches_iso_7811():
    # ';' on track 2 is 0x0B: bits 1101 (LSB first), 3 ones -> parity 0
    bits = encode_bits(2, ";1?", lead=0, trail=0)
    assert bits[:5] == [1, 1, 0, 1, 0]
    # '%' on track 1 is 0x05: 101000 LSB first, 2 ones -> parity 1
    assert encode_bits(1, "%A?", lead=0, trail=0)[:7] == [1, 0, 1, 0, 0, 0, 1]
    # LRC: XOR of ';' 0x0B, '1' 0x01, '?' 0x0F = 0x05 -> '5'
    assert lrc_char(2, ";1?") == "5"
    assert bits[-5:] == [1, 0, 1, 0, 1]  # 0x05 and odd parity 1


def _reason(track, bits):
    with pytest.raises(TrackError) as info:
        decode_bits(track, bits)
    assert info.value.track == track
    return info.value.reason


def test_decode_errors_are_typed():
    bits = encode_bits(2, VISA.track2)
    width = 5
    first = LEAD_ZEROS
    assert _reason(2, [0] * 60) == "no_data"
    flipped = list(bits)
    flipped[first + 3 * width + 1] ^= 1  # one data bit of the 4th character
    assert _reason(2, flipped) == "parity"
    double = list(bits)
    double[first + 3 * width] ^= 1
    double[first + 3 * width + 1] ^= 1  # two bits of one char: parity holds, LRC catches it
    assert _reason(2, double) == "lrc"
    lrc_bad = list(bits)
    lrc_bad[len(bits) - LEAD_ZEROS - 2] ^= 1
    assert _reason(2, lrc_bad) == "lrc"
    truncated = bits[:first + 10 * width]
    assert _reason(2, truncated) == "end_sentinel"
    stray = list(bits)
    stray[3] = 1  # noise before the start sentinel misframes the read
    assert _reason(2, stray) == "start_sentinel"
    dropped = bits[:first + 7] + bits[first + 8:]
    assert _reason(2, dropped) in ("parity", "lrc", "end_sentinel")


def test_parse_errors_are_typed_and_never_show_the_pan():
    cases = {
        "start_sentinel": (2, "4111111111111111=3012101?"),
        "end_sentinel": (2, ";4111111111111111=3012101"),
        "luhn": (2, ";4111111111111112=3012101?"),
        "format": (2, ";4111111111111111D3012101?"),
    }
    for reason, (track, text) in cases.items():
        with pytest.raises(TrackError) as info:
            parse_track2(text)
        assert info.value.reason == reason, reason
        assert "4111111111111111" not in str(info.value) and "411111111111111" not in str(info.value)
        assert isinstance(info.value, UnitError)
    with pytest.raises(TrackError, match="format") as info:
        parse_track2(";4111111111111111=3013101?")  # month 13
    with pytest.raises(TrackError) as info:
        parse_track1("%A4111111111111111^X^3012101?")
    assert info.value.reason == "format"
    with pytest.raises(TrackError) as info:
        parse_track1("%B4111111111111111^TEST3012101?")
    assert info.value.reason == "format"


def test_a_trailing_lrc_character_is_checked():
    good = VISA.track2 + lrc_char(2, VISA.track2)
    assert parse_track2(good).pan == VISA.pan
    bad_lrc = chr(ord(lrc_char(2, VISA.track2)) ^ 1)
    with pytest.raises(TrackError) as info:
        parse_track2(VISA.track2 + bad_lrc)
    assert info.value.reason == "lrc"


def test_track_data_repr_masks_pan_and_hides_discretionary():
    data = parse_track1(VISA.track1)
    text = repr(data) + str(data)
    assert VISA.pan not in text and "411111******1111" in text
    assert data.discretionary and data.discretionary not in text


def test_luhn():
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112") and not luhn_valid("") and not luhn_valid("41x1")


def test_load_deck_rejects_a_bad_card(tmp_path):
    bad = tmp_path / "deck.toml"
    bad.write_text(
        '[[card]]\nid = "X"\nbrand = "Visa"\npan = "4111111111111112"\nname = "A/B"\n'
        'expiry = "3012"\nservice_code = "101"\ntrack1 = "%B4111111111111112^A/B^3012101?"\n'
        'track2 = ";4111111111111112=3012101?"\n')
    with pytest.raises(ConfigError) as info:
        load_deck(bad)
    assert "luhn" in str(info.value) and "4111111111111112" not in str(info.value)


@settings(max_examples=300, deadline=None)
@given(track=st.sampled_from([1, 2, 3]), bits=st.lists(st.booleans(), max_size=800))
def test_fuzz_decode_bits_only_raises_track_error(track, bits):
    try:
        text = decode_bits(track, bits)
    except TrackError as exc:
        assert exc.reason in REASONS and exc.track == track
    else:
        assert text[0] in "%;" and text[-1] == "?"


@settings(max_examples=300, deadline=None)
@given(track=st.sampled_from([1, 2]), text=st.text(max_size=100))
def test_fuzz_parse_only_raises_track_error(track, text):
    parse = parse_track1 if track == 1 else parse_track2
    try:
        data = parse(text)
    except TrackError as exc:
        assert exc.reason in REASONS
    else:
        assert isinstance(data, TrackData) and luhn_valid(data.pan)


@settings(max_examples=150, deadline=None)
@given(body=st.text(alphabet="0123456789=", min_size=1, max_size=36))
def test_fuzz_track2_text_round_trips(body):
    text = ";" + body + "?"
    assert decode_bits(2, encode_bits(2, text)) == text
