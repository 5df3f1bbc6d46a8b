"""Card data masking (bench/core/masking.py): never more than the first 6 and last 4 digits of a PAN."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.core.masking import mask_pan, scrub

pytestmark = pytest.mark.timeout(60)

VISA16 = "4111111111111111"


# -- mask_pan ----------------------------------------------------------------------------------
@pytest.mark.parametrize("length", range(13, 20))
def test_mask_pan_keeps_first6_last4(length):
    pan = "".join(str((i * 7 + 3) % 10) for i in range(length))
    masked = mask_pan(pan)
    assert len(masked) == length
    assert masked == pan[:6] + "*" * (length - 10) + pan[-4:]
    assert pan not in masked


def test_mask_pan_examples():
    assert mask_pan(VISA16) == "411111******1111"
    assert mask_pan("4222222222222") == "422222***2222"                 # 13 digits
    assert mask_pan("6011000990139424123") == "601100*********4123"     # 19 digits


@pytest.mark.parametrize("short", ["", "4", "411111", "4111111111", "411111111111"])
def test_mask_pan_short_input_masked_whole(short):
    assert mask_pan(short) == "*" * len(short)


@pytest.mark.parametrize("text", ["4111 1111 1111 1111", "4111-1111-1111-1111", " 4111.1111.1111.1111\n",
                                  "PAN: 4111 1111 1111 1111"])
def test_mask_pan_ignores_separators(text):
    assert mask_pan(text) == "411111******1111"


def test_mask_pan_short_with_separators():
    assert mask_pan("4111 1111 11") == "*" * 10


def test_mask_pan_non_string():
    assert mask_pan(4111111111111111) == "411111******1111"  # type: ignore[arg-type]


def test_mask_pan_is_idempotent_on_masked_pan():
    # The terminal sends first 6 / last 4 on the ECR link; masking it again must not lose them.
    assert mask_pan("411111******1111") == "411111******1111"
    assert mask_pan(mask_pan(VISA16)) == mask_pan(VISA16)
    assert mask_pan("422222***2222") == "422222***2222"
    assert mask_pan("************1111") == "************1111"


@given(st.text(alphabet="0123456789", min_size=13, max_size=19))
def test_mask_pan_property(pan):
    masked = mask_pan(pan)
    assert masked == pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
    assert mask_pan(masked) == masked
    assert sum(ch.isdigit() for ch in masked) == 10


# -- scrub -------------------------------------------------------------------------------------
@pytest.mark.parametrize("pan", ["4222222222222", "4111111111111111", "378282246310005",
                                 "6011000990139424123", "30569309025904", "5555555555554444"])
def test_scrub_masks_pans_of_every_length(pan):
    text = f"card {pan} declined; retry with {pan}."
    out = scrub(text)
    assert pan not in out
    assert out == f"card {mask_pan(pan)} declined; retry with {mask_pan(pan)}."


def test_scrub_masks_several_pans():
    text = "a=4111111111111111,b=5555555555554444 c:4222222222222"
    assert scrub(text) == "a=411111******1111,b=555555******4444 c:422222***2222"


def test_scrub_pan_next_to_letters():
    assert scrub("pan4111111111111111end") == "pan411111******1111end"


@pytest.mark.parametrize("text", [
    "rrn 123456789012 stan 000042",          # 12-digit RRN stays
    "date 2024-05-01 time 14:30:05",
    "20240501",
    "ts 2024-05-01T14:30:05Z amount 000000001250",
    "phone +49 30 1234567",
    "4111 1111 1111",                         # groups of 4, only 12 digits
    "version 3.4.2 boot_id 2083c6c6",
    "",
])
def test_scrub_leaves_other_numbers_alone(text):
    assert scrub(text) == text


def test_scrub_masks_pan_glued_to_other_digits():
    # An ISO 8583 field 2 dump: LLVAR length "16" glued to the PAN, then field 3.
    out = scrub("raw: 164111111111111111000000 end")
    assert VISA16 not in out
    assert re.search(r"\d{13}", out) is None


def test_scrub_leaves_masked_pan_alone():
    assert scrub("pan 411111******1111") == "pan 411111******1111"


SAFE_TEXT = st.text(alphabet=st.characters(codec="ascii"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(pan=st.text(alphabet="0123456789", min_size=13, max_size=19), before=SAFE_TEXT, after=SAFE_TEXT)
def test_scrub_never_lets_a_full_pan_through(pan, before, after):
    out = scrub(before + pan + after)
    assert pan not in out
    assert re.search(r"\d{13}", out) is None  # no run of 13+ digits survives at all


@settings(max_examples=200, deadline=None)
@given(pan=st.text(alphabet="0123456789", min_size=13, max_size=19),
       words=st.lists(st.text(alphabet="abc xyz:=;,-/", min_size=1, max_size=8), min_size=2, max_size=6))
def test_scrub_pan_between_words_keeps_first6_last4(pan, words):
    text = words[0] + pan + "".join(words[1:])
    assert scrub(text) == words[0] + mask_pan(pan) + "".join(words[1:])


@given(st.text(max_size=60))
def test_scrub_only_touches_long_digit_runs(text):
    out = scrub(text)
    assert len(out) == len(text)
    if re.search(r"\d{13}", text) is None:
        assert out == text
