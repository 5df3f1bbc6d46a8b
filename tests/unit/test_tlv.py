"""One BER-TLV codec (posbench.drivers.card.tlv); EMV and ZVT differ only in their rules."""
import pytest

from posbench.drivers.card import tlv
from posbench.drivers.card.emv import EMV_TLV, TlvError as EmvTlvError
from posbench.drivers.ecr.zvt.codec import ZVT_TLV, TlvError as ZvtTlvError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_the_same_bytes_read_alike_by_both_rules():
    data = h("E4 08 1F 12 01 02 07 02 41 42")
    for rules in (EMV_TLV, ZVT_TLV):
        (outer,) = tlv.parse(data, rules)
        assert outer.constructed and [c.tag for c in outer.children] == [0x1F12, 0x07]
        assert tlv.find((outer,), 0x07).value == b"AB"
        assert tlv.encode(0xE4, outer.children) == data


def test_padding_is_emv_only():
    data = h("00 00 5F 2D 02 64 65 FF")
    assert [t.tag for t in tlv.parse(data, EMV_TLV)] == [0x5F2D]
    with pytest.raises(ZvtTlvError):
        tlv.parse(data, ZVT_TLV)  # 00 is a tag to ZVT, and its length runs past the end


def test_long_lengths_beyond_82_are_emv_only():
    data = h("07 83 00 00 01 41")
    assert tlv.parse(data, EMV_TLV)[0].value == b"A"
    with pytest.raises(ZvtTlvError, match="only 81 and 82"):
        tlv.parse(data, ZVT_TLV)


def test_zvt_never_keeps_card_data_and_a_repr_never_shows_it():
    (item,) = tlv.parse(h("1F 31 03 41 42 43"), ZVT_TLV)
    assert item.value == b"" and item.redacted_length == 3 and "414243" not in repr(item)
    (pan,) = tlv.parse(h("5A 08 41 11 11 11 11 11 11 11"), EMV_TLV)
    assert "411111******1111" in repr(pan) and "4111111111111111" not in repr(pan)


@pytest.mark.parametrize("rules, error", [(EMV_TLV, EmvTlvError), (ZVT_TLV, ZvtTlvError)])
def test_each_user_gets_its_own_error(rules, error):
    with pytest.raises(error, match="declares 5 bytes, 1 left"):
        tlv.parse(h("07 05 00"), rules)
