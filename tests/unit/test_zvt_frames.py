"""The seven worked ZVT serial frames of the reference (terminal-protocols.md, "Worked frames"),
both directions, and the CRC-16/KERMIT check value."""
from __future__ import annotations

import pytest

from posbench.drivers.ecr.zvt.codec import Apdu, decode_apdu, encode_apdu
from posbench.drivers.ecr.zvt.link import crc16_kermit, decode_frame, encode_frame

WORKED = {
    "registration 123456, config BA, EUR": (
        "06 00 06 12 34 56 BA 09 78", "10 02 06 00 06 12 34 56 BA 09 78 10 03 24 C3"),
    "authorization 110.00 EUR (DLE doubled)": (
        "06 01 0A 04 00 00 00 01 10 00 49 09 78",
        "10 02 06 01 0A 04 00 00 00 01 10 10 00 49 09 78 10 03 F2 FF"),
    "positive completion": ("80 00 00", "10 02 80 00 00 10 03 F5 1F"),
    "diagnosis": ("06 70 00", "10 02 06 70 00 10 03 D9 F9"),
    "status enquiry 123456": ("05 01 03 12 34 56", "10 02 05 01 03 12 34 56 10 03 E0 43"),
    "reset terminal": ("06 18 00", "10 02 06 18 00 10 03 56 3A"),
    "negative 9C": ("84 9C 00", "10 02 84 9C 00 10 03 C3 41"),
}


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize("apdu, frame", WORKED.values(), ids=WORKED.keys())
def test_encode_gives_the_worked_frame(apdu: str, frame: str) -> None:
    assert encode_frame(h(apdu)) == h(frame)


@pytest.mark.parametrize("apdu, frame", WORKED.values(), ids=WORKED.keys())
def test_decode_of_the_worked_frame_gives_the_apdu(apdu: str, frame: str) -> None:
    assert decode_frame(h(frame)) == h(apdu)


def test_the_apdus_themselves_encode_from_their_parts() -> None:
    assert encode_apdu(0x06, 0x00, h("12 34 56 BA 09 78")) == h(WORKED["registration 123456, config BA, EUR"][0])
    assert decode_apdu(h("05 01 03 12 34 56")) == Apdu(0x05, 0x01, h("12 34 56"))
    assert encode_apdu(0x84, 0x9C) == h("84 9C 00")


def test_crc_check_value() -> None:
    assert crc16_kermit(b"123456789") == 0x2189


def test_crc_covers_the_unstuffed_apdu_and_etx() -> None:
    assert crc16_kermit(h("06 00 06 12 34 56 BA 09 78 03")) == 0xC324
