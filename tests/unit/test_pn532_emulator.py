"""The PN532 emulator against nfcpy's own pn532 driver, the NFC reader driver, and the parsers."""
from __future__ import annotations

import random
import time

import ndef
import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posbench.core.errors import PortLost, PortUnavailable
from posbench.sim.devices.nfc_cards import CardApplication, Iso14443_4Card, Type2Tag
from posbench.sim.devices.pn532 import PN532Emulator, crc_a
from posbench.sim.devices.pn532_frames import ACK, ERROR_FRAME, NACK, FrameParser, checksum, encode_frame
from posbench.drivers.nfc.fci import FciError, PpseFci, parse_ppse_fci
from posbench.drivers.card.emv import TlvError, encode_tlv, parse_tlv
from posbench.drivers.nfc.reader import NfcReader, ReaderLost, ReaderSilent

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def emulator():
    emu = PN532Emulator(random.Random(3)).start()
    yield emu
    emu.stop(2.0)


@pytest.fixture(scope="module")
def reader(emulator):
    rdr = NfcReader(emulator.path, timeout=3.0)
    yield rdr
    rdr.close(2.0)


# -- nfcpy's driver reads the virtual cards -----------------------------------------------------
def test_nfcpy_initialises_the_emulated_chip(emulator, reader):
    seen = emulator.counters.commands
    # GetFirmwareVersion, SAMConfiguration, SetSerialBaudRate, the extended-frame line test,
    # SetParameters and RFConfiguration all went through nfcpy's real init.
    for code in (0x02, 0x14, 0x10, 0x00, 0x12, 0x32):
        assert seen.get(code, 0) >= 1, f"nfcpy never sent command 0x{code:02X}"
    assert emulator.counters.errors_sent == 0
    assert reader.probe()


def test_type4_card_select_ppse(emulator, reader):
    emulator.present(Iso14443_4Card())
    result = reader.tap(2.0)
    assert result.ok, result
    assert (result.tag_type, result.status_word, result.aids) == ("Type4Tag", "9000", ("A0000000031010",))
    assert result.uid == "08A1B2C3"


def test_type4_card_with_two_applications(emulator, reader):
    apps = (CardApplication("A0000000041010", "MASTERCARD", 2), CardApplication("A0000000031010", "VISA", 1))
    emulator.present(Iso14443_4Card(bytes.fromhex("08112233"), apps))
    result = reader.tap(2.0)
    assert result.ok and result.aids == ("A0000000041010", "A0000000031010")


def test_type4_card_without_ppse_is_a_bad_response(emulator, reader):
    emulator.present(Iso14443_4Card(ppse=False))
    result = reader.tap(2.0)
    assert (result.reason, result.status_word) == ("bad_response", "6A82")


def test_type2_tag_ndef_text(emulator, reader):
    emulator.present(Type2Tag(records=[ndef.TextRecord("hello from posbench")]))
    result = reader.tap(2.0)
    assert result.ok, result
    assert (result.tag_type, result.product, result.records) == ("Type2Tag", "NXP NTAG213", ("hello from posbench",))


def test_type2_tag_ndef_uri(emulator, reader):
    emulator.present(Type2Tag(bytes.fromhex("04010203040506"), [ndef.UriRecord("https://example.com/pos")]))
    result = reader.tap(2.0)
    assert result.ok and result.records == ("https://example.com/pos",)
    assert result.uid == "04010203040506"


def test_no_card_within_timeout(emulator, reader):
    emulator.remove()
    started = time.monotonic()
    result = reader.tap(0.5)
    elapsed = time.monotonic() - started
    assert result.reason == "no_card" and result.polls >= 3
    assert 0.5 <= elapsed < 1.0


def test_healthy_antenna_30_taps_all_succeed(emulator, reader):
    cards = [Iso14443_4Card(), Type2Tag()]
    results = []
    for i in range(30):
        emulator.present(cards[i % 2])
        results.append(reader.tap(1.0))
    assert [r.reason for r in results] == ["ok"] * 30
    assert all(r.polls <= 2 for r in results)  # found at the first poll (Type 2: one re-sense)


def test_reader_lost_mid_run_and_reopened(emulator, reader):
    emulator.present(Iso14443_4Card())
    emulator.set_powered(False)
    try:
        with pytest.raises(ReaderLost) as err:
            reader.tap(1.0)
        assert isinstance(err.value, PortLost) and reader.lost
        with pytest.raises(ReaderLost):
            reader.tap(1.0)  # stays lost until reopened
    finally:
        emulator.set_powered(True)
    reader.reopen(3.0)
    assert reader.tap(2.0).ok


# -- opening -------------------------------------------------------------------------------------
def test_unpowered_reader_fails_open_quickly():
    emu = PN532Emulator(random.Random(0)).start()
    try:
        emu.set_powered(False)
        started = time.monotonic()
        with pytest.raises(ReaderSilent) as err:
            NfcReader(emu.path, timeout=3.0)
        assert time.monotonic() - started < 1.5
        assert isinstance(err.value, PortUnavailable) and "unpowered" in str(err.value)
    finally:
        emu.stop(2.0)


@pytest.mark.parametrize("path", ["/dev/posbench-no-such-reader", "tty:POSBENCHX9:pn532"])
def test_missing_reader_is_port_unavailable(path):
    with pytest.raises(PortUnavailable) as err:
        NfcReader(path, timeout=3.0)
    assert not isinstance(err.value, ReaderSilent)


# -- the antenna fault ---------------------------------------------------------------------------
def _tap_series(severity: float, taps: int, seed: int) -> list:
    emu = PN532Emulator(random.Random(seed), antenna_fault=severity).start()
    rdr = None
    try:
        rdr = NfcReader(emu.path, timeout=3.0)
        cards = [Iso14443_4Card(), Type2Tag()]
        out = []
        for i in range(taps):
            emu.present(cards[i % 2])
            out.append(rdr.tap(0.25))
        return [out, emu.counters]
    finally:
        if rdr is not None:
            rdr.close(2.0)
        emu.stop(2.0)


def test_antenna_fault_severity_1_fails_most_taps_with_typed_reasons():
    results, counters = _tap_series(1.0, 12, seed=11)
    failed = [r for r in results if not r.ok]
    assert len(failed) >= 9
    assert {r.reason for r in failed} <= {"no_card", "rf_error"}
    assert any(r.reason == "rf_error" for r in failed)
    assert counters.missed > 0 and counters.rf_errors_sent > 0


def test_antenna_fault_severity_0_3_fails_a_quarter_of_taps():
    results, _ = _tap_series(0.3, 40, seed=5)
    assert sum(not r.ok for r in results) >= 10


# -- malformed frames on the wire ------------------------------------------------------------------
def _exchange(port: serial.Serial, raw: bytes, expect: int) -> bytes:
    port.reset_input_buffer()
    port.write(raw)
    got = b""
    deadline = time.monotonic() + 1.0
    while len(got) < expect and time.monotonic() < deadline:
        got += port.read(expect - len(got))
    return got


def test_malformed_frames_get_nack_or_error_frame(emulator, reader):
    reader.close(2.0)  # the wire test owns the port; reopened below for later tests
    try:
        with serial.Serial(emulator.path, 115200, timeout=0.2) as port:
            good = bytes.fromhex("0000FF02FED4022A00")
            assert _exchange(port, good, 19) == ACK + encode_frame(bytes.fromhex("D50332010607"))
            bad_dcs = bytes.fromhex("0000FF02FED4022B00")
            assert _exchange(port, bad_dcs, 6) == NACK
            unknown = encode_frame(bytes.fromhex("D4FE"))
            assert _exchange(port, unknown, 14) == ACK + ERROR_FRAME
            bad_params = encode_frame(bytes.fromhex("D44A05"))  # MaxTg 5
            assert _exchange(port, bad_params, 14) == ACK + ERROR_FRAME
            # a NACK from the host repeats the last answer
            assert _exchange(port, NACK, 8) == ERROR_FRAME
            assert _exchange(port, bytes(range(256)) * 2 + good, 19)[-13:] == encode_frame(
                bytes.fromhex("D50332010607"))
    finally:
        reader.reopen(3.0)
    assert emulator.running


# -- parsers, fuzzed ---------------------------------------------------------------------------
payloads = st.binary(min_size=1, max_size=264).map(lambda b: b"\xD4" + b)


@FUZZ
@given(st.binary(max_size=600))
def test_frame_parser_never_raises(data):
    parser = FrameParser()
    for event in parser.feed(data):
        assert event.kind in {"frame", "ack", "nack", "checksum", "syntax"}
        if event.kind == "frame":
            assert event.data[0] == 0xD4 and 2 <= len(event.data) <= 265


@FUZZ
@given(payloads, st.binary(max_size=40).filter(lambda b: b"\x00\xff" not in b and not b.endswith(b"\x00")),
       st.data())
def test_frame_parser_finds_frames_in_noise_and_any_chunking(payload, noise, data):
    stream = noise + encode_frame(payload) + ACK + encode_frame(payload)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    parser, events = FrameParser(), []
    for a, b in zip([0] + cuts, cuts + [len(stream)]):
        events += parser.feed(stream[a:b])
    assert [(e.kind, e.data) for e in events] == [("frame", payload), ("ack", b""), ("frame", payload)]


@FUZZ
@given(payloads)
def test_encoded_frames_have_valid_checksums(payload):
    frame = encode_frame(payload)
    assert frame[:3] == b"\x00\x00\xFF" and frame[-1] == 0
    if len(payload) < 255:
        assert (frame[3] + frame[4]) & 0xFF == 0
    else:
        assert frame[3:5] == b"\xFF\xFF" and sum(frame[5:8]) & 0xFF == 0
    assert checksum(payload) == frame[-2]


@FUZZ
@given(st.integers(0, 255), st.binary(max_size=40))
def test_every_command_answers_a_frame_never_crashes(code, params):
    emu = PN532Emulator(random.Random(0), antenna_fault=0.5)
    sent: list[bytes] = []
    emu._send = sent.append  # capture the chip's output instead of writing the pty
    emu._stop.set()          # RF timeouts return at once
    emu.present(random.choice([Iso14443_4Card(), Type2Tag()]))
    try:
        emu._command(0x4A, b"\x01\x00")
        sent.clear()
        emu._command(code, params)
    finally:
        emu.port.close()
    assert sent[0] == ACK
    answer = sent[1]
    assert answer == ERROR_FRAME or answer[5:7] == bytes([0xD5, (code + 1) & 0xFF]) or (
        answer[3:5] == b"\xFF\xFF" and answer[8:10] == bytes([0xD5, (code + 1) & 0xFF]))


@FUZZ
@given(st.binary(max_size=200))
def test_tlv_parser_raises_only_its_own_errors(data):
    """Any bytes: the EMV parser says ``TlvError``, the PPSE reader ``FciError``, nothing else."""
    try:
        parse_tlv(data)
    except TlvError:
        pass
    try:
        parse_ppse_fci(data)
    except FciError:
        pass


aids = st.binary(min_size=5, max_size=16)


@FUZZ
@given(st.lists(st.tuples(aids, st.integers(1, 15)), min_size=1, max_size=5))
def test_ppse_fci_round_trip(entries):
    body = b"".join(encode_tlv(0x61, encode_tlv(0x4F, aid) + encode_tlv(0x87, bytes([prio])))
                    for aid, prio in entries)
    fci = encode_tlv(0x6F, encode_tlv(0x84, b"2PAY.SYS.DDF01") + encode_tlv(0xA5, encode_tlv(0xBF0C, body)))
    parsed = parse_ppse_fci(fci)
    assert isinstance(parsed, PpseFci)
    assert [(e.aid, e.priority) for e in parsed.entries] == entries


def test_ppse_fci_rejects_missing_objects():
    with pytest.raises(FciError):
        parse_ppse_fci(encode_tlv(0x6F, encode_tlv(0x84, b"2PAY.SYS.DDF01")))
    with pytest.raises(FciError):
        parse_ppse_fci(bytes.fromhex("6F05840E32"))  # length runs past the end


# -- the cards' own protocols --------------------------------------------------------------------
def test_iso_dep_retransmits_after_rnak_and_chains_long_answers():
    card = Iso14443_4Card()
    assert card.select() and card.frame(b"\xE0\x20").data == card.ats  # FSD 32: chaining
    select = bytes.fromhex("00A404000E") + b"2PAY.SYS.DDF01" + b"\x00"
    first = card.frame(b"\x02" + select).data
    assert first[0] == 0x12  # I-block, block 0, more to come
    assert card.frame(b"\xB2").data == first  # R(NAK) with the same block number: retransmit
    second = card.frame(b"\xA3").data  # R(ACK) block 1: continue
    assert second[0] & 0xEF == 0x03
    answer = first[1:] + second[1:]
    while second[0] & 0x10:
        second = card.frame(bytes([0xA2 | (second[0] & 1) ^ 1])).data
        answer += second[1:]
    assert answer.endswith(b"\x90\x00") and parse_ppse_fci(answer[:-2]).aids == ("A0000000031010",)


def test_type2_tag_mutes_on_unknown_command_and_naks_bad_pages():
    tag = Type2Tag()
    assert tag.select()
    assert tag.frame(b"\x1A\x00") is None and tag.frame(b"\x30\x00") is None  # silent until reselected
    assert tag.select() and tag.frame(b"\x30\x2D").data == b"\x00"
    assert tag.select() and tag.frame(b"\xA2\x05\x01\x02\x03\x04").data == b"\x0A"
    assert tag.frame(b"\x30\x05").data[:4] == b"\x01\x02\x03\x04"


def test_crc_a_matches_iso14443_example():
    assert crc_a(b"\x00\x00") == b"\xA0\x1E"  # ISO/IEC 14443-3 annex B example
    assert crc_a(b"\x12\x34") == b"\x26\xCF"


def test_chip_side_iso_dep_with_automatic_rats():
    """With fAutomaticRATS (SetParameters 0x10) the chip adds the ATS and runs ISO-DEP itself."""
    emu = PN532Emulator(random.Random(0))
    sent: list[bytes] = []
    emu._send = sent.append
    emu._stop.set()
    card = Iso14443_4Card()
    emu.present(card)
    try:
        emu._command(0x12, b"\x10")
        emu._command(0x4A, b"\x01\x00")
        assert sent[-1] == encode_frame(bytes.fromhex("D54B010100042004") + card.uid + card.ats)
        select = bytes.fromhex("00A404000E") + b"2PAY.SYS.DDF01" + b"\x00"
        for _ in range(2):  # block numbers toggle on both sides
            emu._command(0x40, b"\x01" + select)
            data = sent[-1][7:-2]
            assert data[0] == 0x00 and data.endswith(b"\x90\x00")
            assert parse_ppse_fci(data[1:-2]).aids == ("A0000000031010",)
        emu._command(0x52, b"\x00")
        assert sent[-1] == encode_frame(bytes.fromhex("D55300")) and card.state == "halt"
    finally:
        emu.port.close()


# -- the reader on a bench room's RFC 2217 port -------------------------------------------------
def test_reader_over_rfc2217_keeps_its_read_timeout_local(emulator, monkeypatch):
    """nfcpy sets the tty's timeout before every read; on RFC 2217 that must not renegotiate the
    line with the server (pyserial 3.5 would, four acknowledged requests per read, and an open
    over ser2net overran its deadline in CI). Only nfcpy's baud rate changes reach the server,
    whichever of pyserial and pyserial-labgrid provides ``serial``."""
    from posbench.drivers.nfc import reader as reader_module
    from posbench.sim.devices.serial_bridge import SerialBridge

    renegotiations = []
    original = reader_module._Rfc2217LocalTimeout._reconfigure_port

    def counted(self):
        renegotiations.append(self._baudrate)
        return original(self)
    monkeypatch.setattr(reader_module._Rfc2217LocalTimeout, "_reconfigure_port", counted)
    with SerialBridge(emulator.path) as bridge:
        rdr = NfcReader(bridge.url, timeout=3.0)
        try:
            emulator.present(Iso14443_4Card())
            result = rdr.tap(2.0)
            reads = emulator.counters.commands.get(0x4A, 0)  # InListPassiveTarget: one read at least
        finally:
            rdr.close(2.0)
    assert result.ok and result.aids == ("A0000000031010",), result
    assert reads >= 1
    # the open's own configuration, then one per baud rate nfcpy chose (115200 at most twice)
    assert 1 <= len(renegotiations) <= 3, renegotiations
