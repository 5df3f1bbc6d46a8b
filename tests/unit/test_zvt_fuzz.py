"""Arbitrary bytes into the ZVT frame reader, APDU, BMP, TLV and message parsers give only the
project's typed errors, and nothing hangs (the byte source never blocks; every loop is bounded)."""
from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.core.errors import UnitError
from posbench.drivers.ecr.zvt.codec import (
    ApduError,
    TlvError,
    ZvtMessageError,
    decode_apdu,
    encode_apdu,
    parse_bmps,
    parse_tlv,
)
from posbench.drivers.ecr.zvt.results import Collector
from posbench.drivers.ecr.zvt.link import (
    ACK,
    NAK,
    FrameReader,
    ZvtTiming,
    ZvtFrameError,
    ZvtLink,
    decode_frame,
    encode_frame,
)

FUZZ = settings(max_examples=300, deadline=None)
blobs = st.binary(max_size=300)
# bytes rich in the framing characters, so the reader's DLE/STX/ETX paths are exercised
framing = st.lists(st.sampled_from([0x10, 0x02, 0x03, 0x06, 0x15, 0x00, 0xFF, 0x80, 0x1F]) | st.integers(0, 255),
                   max_size=200).map(bytes)


class ChunkSource:
    """A byte source that hands out ``data`` in the given chunk sizes and then nothing, at once."""

    def __init__(self, data: bytes, sizes: list[int]):
        self.data, self.sizes, self.written = bytearray(data), list(sizes) or [4096], bytearray()

    def read(self, size: int, timeout: float) -> bytes:
        if not self.data:
            return b""
        n = max(1, min(size, self.sizes[0] if self.sizes else size))
        if self.sizes:
            self.sizes.pop(0)
        chunk = bytes(self.data[:n])
        del self.data[:n]
        return chunk

    def write(self, data: bytes) -> None:
        self.written.extend(data)

    def discard_input(self) -> None:
        self.data.clear()


@FUZZ
@given(framing, st.lists(st.integers(1, 16), max_size=20))
def test_frame_reader_gives_apdus_or_frame_errors(data: bytes, sizes: list[int]) -> None:
    reader = FrameReader(ChunkSource(data, sizes), t1_s=0.01)
    for _ in range(len(data) + 1):
        try:
            apdu = reader.read_frame(0.01)
        except ZvtFrameError:
            continue
        if apdu is None:
            break
        assert decode_apdu(apdu).encode() == apdu


@FUZZ
@given(framing)
def test_link_receive_gives_an_apdu_or_a_unit_error(data: bytes) -> None:
    source = ChunkSource(data, [])
    link = ZvtLink(source, ZvtTiming(t1_s=0.01, t2_s=0.01))
    try:
        apdu = link.receive(0.01)
    except UnitError:  # ZvtFrameError, TransmissionFailed, UnitNotResponding
        assert set(source.written) <= {NAK}
    else:
        decode_apdu(apdu)
        assert source.written.endswith(bytes((ACK,)))


@FUZZ
@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=600))
def test_any_apdu_survives_framing(cls: int, instr: int, data: bytes) -> None:
    apdu = encode_apdu(cls, instr, data)
    frame = encode_frame(apdu)
    assert decode_frame(frame) == apdu
    assert FrameReader(ChunkSource(frame, [3, 1, 7])).read_frame(2.0) == apdu  # all bytes are there: no wait on an idle host, and a busy one gets time


@pytest.mark.parametrize("parse, error", [
    (decode_frame, ZvtFrameError), (decode_apdu, ApduError), (parse_bmps, ZvtMessageError),
    (parse_tlv, TlvError)], ids=["frame", "apdu", "bmps", "tlv"])
@FUZZ
@given(data=blobs)
def test_parsers_raise_only_their_typed_errors(parse, error, data: bytes) -> None:
    with contextlib.suppress(error):
        parse(data)


@FUZZ
@given(blobs)
def test_message_readers_raise_only_message_errors(data: bytes) -> None:
    collector = Collector("authorization")
    readers = [collector.intermediate, collector.status_information, collector.print_line,
               collector.text_block, collector.completion, collector.abort,
               lambda raw: collector.completion(raw, status_enquiry=True)]
    for read in readers:
        with contextlib.suppress(ZvtMessageError):
            read(data)
    collector.result()


def test_a_frame_split_anywhere_reads_the_same() -> None:
    """The reader copies runs between DLEs: a split at any byte (a lone DLE ending a chunk, the
    STX or a doubled DLE on the next) gives the same APDU and counts the same noise."""
    apdu = bytes.fromhex("06 01 0A 04 00 00 00 01 10 00 49 09 78")  # a 10 to double
    stream = b"\x00\x10\x15" + encode_frame(apdu) + encode_frame(b"\x80\x00\x00")
    for cut in range(1, len(stream)):
        reader = FrameReader(ChunkSource(stream, [cut, len(stream)]), t1_s=0.01)
        assert reader.read_frame(0.01) == apdu, cut
        assert reader.read_frame(0.01) == b"\x80\x00\x00", cut
        assert reader.stats.noise_bytes == 3, cut
