"""ZVT codec: APDU (extended length), BCD, LLVAR/LLLVAR, BMP table and parser, BER-TLV (BMP 06),
masked PAN, card data never kept, code tables."""
from __future__ import annotations

import pytest

from posbench.core.errors import MessageError
from posbench.drivers.ecr.zvt import codes
from posbench.drivers.ecr.zvt.codec import (
    BMPS,
    Apdu,
    ApduError,
    BmpError,
    BmpFormat,
    Redacted,
    Tlv,
    TlvError,
    apdu_size,
    bcd_decode,
    bcd_digits,
    bcd_encode,
    ber_length,
    decode_apdu,
    encode_apdu,
    encode_bmp,
    encode_lllvar,
    encode_llvar,
    encode_tlv,
    encode_tlv_container,
    find_all_tlv,
    find_tlv,
    is_positive,
    masked_pan,
    parse_bmps,
    parse_tlv,
    read_var,
)
from posbench.drivers.ecr.zvt.link import ZvtFrameError, decode_frame, encode_frame


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- APDU ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 254, 255, 256, 1000, 65535])
def test_apdu_round_trip_and_extended_length(size: int) -> None:
    data = bytes(i & 0xFF for i in range(size))
    raw = encode_apdu(0x06, 0xD3, data)
    if size < 255:
        assert raw[2] == size and len(raw) == 3 + size
    else:
        assert raw[2:5] == bytes((0xFF, size & 0xFF, size >> 8)) and len(raw) == 5 + size
    assert apdu_size(raw[:5]) == len(raw)
    assert decode_apdu(raw) == Apdu(0x06, 0xD3, data)
    assert decode_frame(encode_frame(raw)) == raw


def test_extended_length_is_low_byte_first() -> None:
    assert encode_apdu(0x06, 0xD3, bytes(0x0203))[:5] == h("06 D3 FF 03 02")


def test_apdu_length_mismatch_is_named() -> None:
    with pytest.raises(ApduError, match="declares 2 data bytes but carries 1"):
        decode_apdu(h("06 0F 02 27"))
    with pytest.raises(ApduError, match="shorter than its header"):
        decode_apdu(h("06"))
    with pytest.raises(ApduError):
        encode_apdu(0x06, 0x01, bytes(65536))


def test_apdu_size_waits_for_the_header() -> None:
    assert apdu_size(b"\x06\x0F") is None
    assert apdu_size(h("06 0F FF 01")) is None
    assert apdu_size(h("06 0F 02")) == 5


def test_positive_answers() -> None:
    assert is_positive(decode_apdu(h("80 00 00")))
    assert is_positive(decode_apdu(h("84 00 00")))
    assert not is_positive(decode_apdu(h("84 9C 00")))


# -- BCD, LLVAR ------------------------------------------------------------------------------------
def test_bcd() -> None:
    assert bcd_encode(11000, 6) == h("00 00 00 01 10 00")
    assert bcd_encode("123456", 3) == h("12 34 56")
    assert bcd_decode(h("00 00 00 01 10 00")) == 11000
    with pytest.raises(BmpError):
        bcd_encode(1234567, 3)
    with pytest.raises(BmpError):
        bcd_encode(-1, 3)
    with pytest.raises(BmpError, match="not packed BCD"):
        bcd_decode(h("1A"))


@pytest.mark.parametrize("size", [0, 9, 10, 99])
def test_llvar_round_trip(size: int) -> None:
    data = bytes(range(size))
    raw = encode_llvar(data)
    assert raw[:2] == bytes(0xF0 | int(d) for d in f"{size:02d}")
    assert read_var(raw, 0, 2) == (data, len(raw))


@pytest.mark.parametrize("size", [0, 5, 100, 999])
def test_lllvar_round_trip(size: int) -> None:
    data = bytes(i & 0xFF for i in range(size))
    raw = encode_lllvar(data)
    assert raw[:3] == bytes(0xF0 | int(d) for d in f"{size:03d}")
    assert read_var(raw, 0, 3) == (data, len(raw))


def test_var_errors() -> None:
    with pytest.raises(BmpError):
        encode_llvar(bytes(100))
    with pytest.raises(BmpError, match="bad LLVAR prefix"):
        read_var(h("F1 FA 00"), 0, 2)
    with pytest.raises(BmpError, match="declares 12 bytes, 1 left"):
        read_var(h("F1 F2 00"), 0, 2)


# -- BMPs ------------------------------------------------------------------------------------------
def test_bmp_table_formats() -> None:
    assert BMPS[0x04].format is BmpFormat.FIXED and BMPS[0x04].size == 6
    assert BMPS[0x29].size == 4 and BMPS[0x2A].size == 15 and BMPS[0x3B].size == 8
    assert BMPS[0x22].format is BmpFormat.LLVAR and BMPS[0x8B].format is BmpFormat.LLVAR
    assert BMPS[0x24].format is BmpFormat.LLLVAR and BMPS[0x3C].format is BmpFormat.LLLVAR
    assert BMPS[0x06].format is BmpFormat.TLV


def test_bmp_round_trip_in_order() -> None:
    fields = [(0x27, h("00")), (0x04, bcd_encode(11000, 6)), (0x0B, h("00 01 23")),
              (0x0C, h("12 30 45")), (0x0D, h("11 28")), (0x29, h("12 34 56 78")),
              (0x49, h("09 78")), (0x87, h("00 42")), (0x8A, h("05")),
              (0x8B, b"girocard"), (0x3C, b"x" * 120), (0xA0, h("05")), (0xAA, h("24 11 28"))]
    data = b"".join(encode_bmp(bmp, value) for bmp, value in fields)
    assert parse_bmps(data) == fields


def test_bmp_errors_are_named() -> None:
    with pytest.raises(BmpError, match="unknown BMP 0x99 at offset 0"):
        parse_bmps(h("99 00"))
    with pytest.raises(BmpError, match=r"BMP 04 \(amount\) at offset 2 needs 6 bytes, 2 left"):
        parse_bmps(h("27 00 04 00 01"))
    with pytest.raises(BmpError):
        encode_bmp(0x04, h("01"))
    with pytest.raises(BmpError):
        encode_bmp(0x99, b"")


def test_parse_from_an_offset() -> None:
    assert parse_bmps(h("12 34 56 BA 27 6C"), start=4) == [(0x27, h("6C"))]


# -- card data -------------------------------------------------------------------------------------
def test_pan_is_masked() -> None:
    raw = h("67 99 99 89 00 00 00 60 01 9F")  # 19 digits, F padded
    assert masked_pan(raw) == "679999*********0019"
    fields = parse_bmps(encode_bmp(0x22, raw))
    assert fields == [(0x22, "679999*********0019")]


def test_masked_digits_from_the_pt_stay_masked() -> None:
    assert masked_pan(h("47 61 73 EE EE EE 00 10")) == "476173******0010"
    assert masked_pan(h("12 34 56 78 90 12 34 5F")) == "123456*****2345"


def test_a_short_pan_is_masked_whole() -> None:
    assert masked_pan(h("12 34 56 78 90")) == "**********"


def test_pan_with_a_bad_nibble_is_refused() -> None:
    with pytest.raises(BmpError, match="non-decimal"):
        masked_pan(h("12 3A"))


@pytest.mark.parametrize("bmp", [0x23, 0x24, 0x2D])
def test_tracks_are_parsed_past_and_never_kept(bmp: int) -> None:
    secret = b";4761739001010010=25122011143804400000?"[:37]
    data = encode_bmp(bmp, secret) + encode_bmp(0x27, h("00"))
    fields = parse_bmps(data)
    assert fields == [(bmp, Redacted(len(secret))), (0x27, h("00"))]
    assert b"4761739001010010" not in repr(fields).encode()


def test_track_data_in_tlv_is_not_kept() -> None:
    items = parse_tlv(encode_tlv(0x1F09, b"4761739001010010=2512") + encode_tlv(0x1F12, h("00")))
    assert items[0] == Tlv(0x1F09, b"", (), 21)
    assert items[1].value == h("00")


# -- TLV -------------------------------------------------------------------------------------------
def test_tlv_multi_byte_and_constructed_tags() -> None:
    body = (encode_tlv(0x1F16, h("00 00 12 34")) + encode_tlv(0x1F17, b"reader fault")
            + encode_tlv(0x2F, [Tlv(0x1F12, h("02"))])
            + encode_tlv(0xE4, [Tlv(0x1F40, b"PT-1"), Tlv(0x1F43, h("00"))]))
    items = parse_tlv(body)
    assert [t.tag for t in items] == [0x1F16, 0x1F17, 0x2F, 0xE4]
    assert items[2].constructed and items[2].children == (Tlv(0x1F12, h("02")),)
    assert find_tlv(items, 0x1F12).value == h("02")
    assert find_tlv(items, 0x1F43).value == h("00")
    assert [t.tag for t in find_all_tlv(items, 0x1F40)] == [0x1F40]
    assert find_tlv(items, 0x1F55) is None


@pytest.mark.parametrize("size, prefix", [(0, "00"), (127, "7F"), (128, "81 80"), (255, "81 FF"),
                                          (256, "82 01 00"), (1000, "82 03 E8")])
def test_ber_lengths(size: int, prefix: str) -> None:
    assert ber_length(size) == h(prefix)
    item = encode_tlv(0x07, b"a" * size)
    assert parse_tlv(item) == (Tlv(0x07, b"a" * size),)


def test_tlv_container_in_a_bmp_list() -> None:
    container = encode_tlv_container([Tlv(0x1F55, h("04 02")), Tlv(0xE4, children=(Tlv(0x1F43, h("01")),))])
    assert container[0] == 0x06
    data = encode_bmp(0x27, h("00")) + container
    fields = parse_bmps(data)
    assert fields[0] == (0x27, h("00"))
    assert fields[1][0] == 0x06
    assert find_tlv(fields[1][1], 0x1F55).value == h("04 02")
    assert encode_bmp(0x06, b"") == h("06 00")


def test_tlv_container_with_long_length() -> None:
    text = encode_tlv(0x25, [Tlv(0x07, b"line %03d" % i) for i in range(40)])
    data = encode_tlv_container(text)
    assert data[1] == 0x82
    (bmp, items), = parse_bmps(data)
    assert len(find_all_tlv(items, 0x07)) == 40


@pytest.mark.parametrize("raw, message", [
    ("1F", "cut short"),
    ("1F 81 81 81 81 01 00", "longer than 4 bytes"),
    ("07 05 00", "declares 5 bytes, 1 left"),
    ("07 80", "only 81 and 82"),
    ("07 83 00 00 01 00", "only 81 and 82"),
    ("07", "length field missing"),
    ("07 82 01", "cut short"),
    ("E4 02 1F 12", "length field missing at offset 4"),  # offsets count from the start of the data parsed
])
def test_tlv_errors_are_named(raw: str, message: str) -> None:
    with pytest.raises(TlvError, match=message):
        parse_tlv(h(raw))


def test_deep_nesting_is_refused() -> None:
    item = encode_tlv(0x07, b"x")
    for _ in range(12):
        item = encode_tlv(0xE4, item)
    with pytest.raises(TlvError, match="nested deeper"):
        parse_tlv(item)


def test_errors_are_the_projects_message_errors() -> None:
    for exc in (ApduError, BmpError, TlvError):
        assert issubclass(exc, MessageError)
    with pytest.raises(ZvtFrameError, match="CRC mismatch"):
        decode_frame(h("10 02 80 00 00 10 03 F5 1E"))
    with pytest.raises(ZvtFrameError, match="DLE followed by 0x05"):
        decode_frame(h("10 02 80 10 05 00 10 03 F5 1F"))


def test_a_doubled_dle_in_the_crc_is_accepted() -> None:
    # find an APDU whose CRC has a 0x10 byte, then double it as some peers might
    for n in range(256):
        apdu = encode_apdu(0x06, 0xD1, bytes((0x00, n)))
        frame = encode_frame(apdu)
        if 0x10 in frame[-2:]:
            crc = frame[-2:].replace(b"\x10", b"\x10\x10")
            assert decode_frame(frame[:-2] + crc) == apdu
            return
    pytest.fail("no CRC with a DLE byte found")


# -- code tables -----------------------------------------------------------------------------------
def test_result_codes() -> None:
    assert codes.result_meaning(0x00) == "no error"
    assert "issuer" in codes.result_meaning(0x01)
    assert codes.result_meaning(0x33) == "host code 51"  # host codes travel binary
    assert codes.is_host_code(0x63) and not codes.is_host_code(0x64)
    assert codes.result_meaning(0x64).startswith("card not readable")
    assert codes.result_meaning(0x9A) == "ZVT protocol error"
    assert codes.result_meaning(0xFF).startswith("system error")
    assert codes.result_meaning(0x80) == "unknown result code 0x80"


def test_status_tables() -> None:
    assert codes.terminal_status_meaning(0xDF) == "out of order"
    assert codes.intermediate_meaning(0x0C) == "card not readable"
    assert codes.intermediate_meaning(0x4C) == "card not readable; please remove card"
    assert codes.intermediate_meaning(0x15) == "incorrect PIN"
    assert codes.intermediate_meaning(0xE2) == "PT requests a cleaning card"
    assert codes.CARD_TECHNOLOGY[0x02] == "contactless"
    assert codes.CONTACTLESS_ERRORS[0x03] == "contactless level 1 timeout"


def test_lock_bits() -> None:
    assert codes.lock_names(h("00 00")) == ()
    assert codes.lock_names(h("04 00")) == ("printer lock",)
    assert codes.lock_names(h("00 C6")) == ("transaction log defective", "card reader not found",
                                            "low battery power", "contactless reader not initialised")
    assert codes.registration_status_names(0x03) == ("PT initialisation necessary", "diagnosis necessary")


def test_card_type_ids_are_the_spec_list_sent_binary() -> None:
    """[P15 12, pp.185-189]: decimal IDs; BMP 8A is one binary byte [P15 13, p.117]."""
    assert (codes.CARD_TYPES[5], codes.CARD_TYPES[6], codes.CARD_TYPES[8]) == ("girocard", "Mastercard",
                                                                             "American Express")
    assert (codes.CARD_TYPES[10], codes.CARD_TYPES[12], codes.CARD_TYPES[46]) == ("Visa", "Diners",
                                                                                "Maestro (formerly: edc)")
    assert codes.CARD_TYPES[232] == "Discover Card" and codes.CARD_TYPES[260] == "BlueCode"
    assert 236 not in codes.CARD_TYPES and 255 not in codes.CARD_TYPES  # withdrawn; the TLV-41 marker
    assert codes.card_type_name(0x0A) == "Visa" and codes.card_type_name(0x0C) == "Diners"
    assert codes.card_type_name(0xFF) == "card type in TLV tag 41"
    assert codes.card_type_name(120) == "unknown card type 120"
    for brand, code in codes.SCHEME_CARD_TYPES.items():  # every scheme fits BMP 8A's one byte
        assert code in codes.CARD_TYPES and code < codes.CARD_TYPE_IN_TLV, brand


def test_serial_number_digits_as_bcd() -> None:
    """TLV 1F42 is BCD [P15 9.4.12.1, p.178]: the digits of a serial, an odd count padded left."""
    assert bcd_digits("PT100-0000123") == h("10 00 00 01 23")
    assert bcd_digits("12345") == h("01 23 45")
    with pytest.raises(BmpError, match="no decimal digit"):
        bcd_digits("PT-ABC")


def test_collected_result_is_the_dataclass_built_one() -> None:
    """``Collector.result`` fills the instance directly (no per-field ``__init__``): it must equal,
    hash and stay frozen like ``ZvtResult(...)`` with the same fields, defaults included."""
    import dataclasses

    from posbench.drivers.ecr.zvt.results import Collector, ZvtResult
    collector = Collector("status enquiry")
    collector.completion(encode_lllvar(b"PT100 2.4.1") + b"\x00" + encode_bmp(0x06, [
        Tlv(0x1F55, b"\x04\x00"), Tlv(0xE4, children=(Tlv(0x1F40, b"PT100"), Tlv(0x1F43, b"\x00")))]), True)
    got = collector.result()
    fields_ = {f.name: getattr(got, f.name) for f in dataclasses.fields(ZvtResult)}
    assert got == ZvtResult(**fields_) and hash(got) == hash(ZvtResult(**fields_))
    assert (got.software_version, got.terminal_status, got.lock_bits, got.locks, got.device_name) == (
        "PT100 2.4.1", 0, 0x0400, ("printer lock",), "PT100")
    assert got.pan == "" and got.amount is None and got.intermediate == () and got.ok
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.result_code = 1  # type: ignore[misc]


@pytest.mark.parametrize("sent, name", [
    (b"Debit Mastercard\x00", "Debit Mastercard"),  # as real PTs end it (issue 23): a C string
    (b"MASTERCARD\x00", "MASTERCARD"),
    (b"girocard", "girocard"),  # no NUL: the whole field
    (b"VISA\x00\x00\x00\x00", "VISA"),  # padded to a fixed length with NULs
])
def test_a_card_name_ends_at_its_terminating_nul(sent: bytes, name: str) -> None:
    """BMP 8B (card name) and 3C (additional text) are read up to the NUL that ends them: the NUL
    used to stay in the name and show in reports."""
    from posbench.drivers.ecr.zvt.results import Collector
    collector = Collector("payment")
    collector.status_information(encode_bmp(0x27, h("00")) + encode_bmp(0x8B, sent)
                                 + encode_bmp(0x3C, b"Danke\x00"))
    got = collector.result()
    assert (got.card_name, got.additional_text) == (name, "Danke")
