"""Tests of the ECR link layer (drivers/transport/enq_ack.py) over a real byte transport.

Each test gets a connected pair of file descriptors: a ``socket.socketpair`` or a raw
pseudo-terminal (``os.openpty`` + ``tty.setraw``). The ``Link`` under test gets one end through
``FdPort``; the other end is played either by a second ``Link`` or by a scripted ``Peer`` thread
that works at byte level and records everything it reads.
"""
from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
import tty
from typing import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posbench.core.errors import FrameError, MessageError, UnitNotResponding
from posbench.drivers.transport.frame import ACK, ENQ, EOT, ETX, MAX_MESSAGE, NAK, STX, decode_frame, encode_frame
from posbench.drivers.ecr.agent.codec import decode_message, encode_message
from posbench.drivers.transport.enq_ack import Link, LinkStats, LinkTiming

FAST = LinkTiming(enq_tries=3, enq_wait=0.1, frame_tries=3, ack_wait=0.2, inter_byte=0.05, eot_wait=0.1)

REQUEST = encode_message("ST", [("seq", "1")])
REPLY = encode_message("ST", [("rc", "OK"), ("uptime_s", "12")])


# -- transport --------------------------------------------------------------------------------------
class FdPort:
    """A ``BytePort`` over a file descriptor (one end of a socketpair or a pty)."""

    def __init__(self, fd: int):
        self.fd = fd

    def read(self, size: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return b""
        try:
            return os.read(self.fd, size)
        except OSError:  # a pty master reads EIO once the slave is closed
            return b""

    def write(self, data: bytes) -> None:
        view = memoryview(bytes(data))
        while view:
            select.select([], [self.fd], [], 5.0)
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                continue
            view = view[n:]

    def discard_input(self) -> None:
        while select.select([self.fd], [], [], 0)[0]:
            try:
                if not os.read(self.fd, 4096):
                    return
            except OSError:
                return


def _open_pair(kind: str) -> tuple[int, int]:
    if kind == "socketpair":
        a, b = socket.socketpair()
        return a.detach(), b.detach()
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    return slave, master


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


@pytest.fixture(params=["socketpair", "pty"])
def pair(request) -> Iterator[tuple[int, int]]:
    a, b = _open_pair(request.param)
    try:
        yield a, b
    finally:
        _close(a, b)


# -- scripted peer ----------------------------------------------------------------------------------
class Peer:
    """The far end, scripted at byte level. Every read has a timeout; ``log`` holds all it read."""

    def __init__(self, fd: int):
        self.port = FdPort(fd)
        os.set_blocking(fd, False)
        self.log = bytearray()
        self._buf = bytearray()

    def byte(self, timeout: float = 2.0) -> int | None:
        if not self._buf:
            chunk = self.port.read(4096, timeout)
            if not chunk:
                return None
            self._buf.extend(chunk)
            self.log.extend(chunk)
        return self._buf.pop(0)

    def expect(self, wanted: int, timeout: float = 2.0) -> None:
        got = self.byte(timeout)
        assert got == wanted, f"peer expected 0x{wanted:02X}, got {got if got is None else hex(got)}"

    def frame(self, timeout: float = 2.0) -> bytes:
        """Read STX .. ETX LRC (asserting the first byte is STX)."""
        self.expect(STX, timeout)
        out = bytearray([STX])
        while True:
            b = self.byte(timeout)
            assert b is not None, f"frame cut off after {bytes(out)!r}"
            out.append(b)
            if b == ETX:
                lrc_byte = self.byte(timeout)
                assert lrc_byte is not None
                out.append(lrc_byte)
                return bytes(out)

    def quiet(self, quiet: float) -> bytes:
        """Read until the line has been silent for ``quiet`` s; return what was read."""
        out = bytearray()
        while (b := self.byte(quiet)) is not None:
            out.append(b)
        return bytes(out)

    def send(self, data: bytes | int) -> None:
        self.port.write(bytes([data]) if isinstance(data, int) else data)


@contextlib.contextmanager
def peer_thread(fd: int, script: Callable[[Peer], None], join: float = 10.0) -> Iterator[Peer]:
    """Run ``script(peer)`` in a thread; on exit join it and re-raise whatever it raised."""
    peer = Peer(fd)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            script(peer)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="ecr-peer", daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        thread.join(join)
    assert not thread.is_alive(), "peer thread did not finish"
    if errors:
        raise errors[0]


@contextlib.contextmanager
def link_thread(link: Link, action: Callable[[Link], object], join: float = 10.0) -> Iterator[dict]:
    """Run ``action(link)`` in a thread; the dict gets ``result`` or ``error``."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = action(link)
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    thread = threading.Thread(target=run, name="ecr-link", daemon=True)
    thread.start()
    try:
        yield box
    finally:
        thread.join(join)
    assert not thread.is_alive(), "link thread did not finish"


def _stats(**nonzero: int) -> dict[str, int]:
    expected = LinkStats().snapshot()
    expected.update(nonzero)
    return expected


# -- Link to Link -----------------------------------------------------------------------------------
@pytest.mark.timeout(20)
def test_link_to_link_both_directions(pair):
    a, b = pair
    driver = Link(FdPort(a), FAST, device="driver")
    terminal = Link(FdPort(b), FAST, device="terminal")

    def serve(link: Link) -> bytes:
        request = link.receive(5.0)
        link.send(REPLY)
        return request

    with link_thread(terminal, serve) as box:
        driver.send(REQUEST)
        reply = driver.receive(5.0)
    assert "error" not in box, box.get("error")
    assert box["result"] == REQUEST
    assert reply == REPLY
    assert decode_message(reply).get("uptime_s") == "12"
    assert driver.stats.snapshot() == _stats(frames_sent=1, frames_received=1)
    assert terminal.stats.snapshot() == _stats(frames_sent=1, frames_received=1)


@pytest.mark.timeout(30)
def test_link_to_link_many_exchanges_including_max_size(pair):
    a, b = pair
    driver = Link(FdPort(a), FAST, device="driver")
    terminal = Link(FdPort(b), FAST, device="terminal")
    big = b"L" * MAX_MESSAGE
    requests = [REQUEST, big, encode_message("LOG", [("page", str(i)) for i in range(50)]), b"ZZ"]

    def serve(link: Link) -> list[bytes]:
        seen = []
        for _ in requests:
            message = link.receive(5.0)
            seen.append(message)
            link.send(message[::-1])  # echo reversed
        return seen

    with link_thread(terminal, serve) as box:
        replies = []
        for message in requests:
            driver.send(message)
            replies.append(driver.receive(5.0))
    assert "error" not in box, box.get("error")
    assert box["result"] == requests
    assert replies == [m[::-1] for m in requests]
    n = len(requests)
    assert driver.stats.snapshot() == _stats(frames_sent=n, frames_received=n)
    assert terminal.stats.snapshot() == _stats(frames_sent=n, frames_received=n)


# -- sender -----------------------------------------------------------------------------------------
@pytest.mark.timeout(10)
def test_send_enq_unanswered_gives_up_after_three_tries(pair):
    a, b = pair
    link = Link(FdPort(a), FAST, device="dut")
    with peer_thread(b, lambda p: p.quiet(0.5)) as peer:
        start = time.monotonic()
        with pytest.raises(UnitNotResponding, match="no ACK to ENQ after 3 tries") as info:
            link.send(REQUEST, doing="sending ST")
        elapsed = time.monotonic() - start
    assert bytes(peer.log) == bytes([ENQ, EOT, ENQ, EOT, ENQ, EOT])
    assert info.value.device == "dut" and info.value.doing == "sending ST"
    assert 3 * FAST.enq_wait - 0.02 <= elapsed < 3 * FAST.enq_wait + 0.5
    assert link.stats.snapshot() == _stats(enq_retries=3)


@pytest.mark.timeout(10)
def test_send_enq_answered_on_second_try(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)

    def script(p: Peer) -> None:
        p.expect(ENQ)
        p.expect(EOT)  # ignored the first ENQ: the sender gives up on it with EOT
        p.expect(ENQ)
        p.send(ACK)
        assert decode_frame(p.frame()) == REQUEST
        p.send(ACK)
        p.expect(EOT)

    with peer_thread(b, script):
        link.send(REQUEST)
    assert link.stats.snapshot() == _stats(enq_retries=1, frames_sent=1)


@pytest.mark.timeout(10)
def test_send_ignores_stale_input(pair):
    """A stale ACK left on the line must not be taken as the answer to the ENQ."""
    a, b = pair
    link = Link(FdPort(a), FAST)
    os.write(b, bytes([ACK, ACK]))
    time.sleep(0.05)
    with peer_thread(b, lambda p: p.quiet(0.5)) as peer:
        with pytest.raises(UnitNotResponding):
            link.send(REQUEST)
    assert bytes(peer.log) == bytes([ENQ, EOT] * 3)


@pytest.mark.timeout(10)
def test_send_nak_then_ack_retransmits(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)
    frames = []

    def script(p: Peer) -> None:
        p.expect(ENQ)
        p.send(ACK)
        frames.append(p.frame())
        p.send(NAK)
        frames.append(p.frame())
        p.send(ACK)
        p.expect(EOT)
        assert p.quiet(0.2) == b""

    with peer_thread(b, script):
        link.send(REQUEST)
    assert frames == [encode_frame(REQUEST)] * 2
    assert link.stats.snapshot() == _stats(retransmits=1, naks_received=1, frames_sent=1)


@pytest.mark.timeout(10)
def test_send_three_naks_raise_frame_error(pair):
    a, b = pair
    link = Link(FdPort(a), FAST, device="dut")

    def script(p: Peer) -> None:
        p.expect(ENQ)
        p.send(ACK)
        for _ in range(3):
            assert p.frame() == encode_frame(REQUEST)
            p.send(NAK)
        p.expect(EOT)
        assert p.quiet(0.2) == b""

    with peer_thread(b, script):
        with pytest.raises(FrameError, match="NAK 3 times") as info:
            link.send(REQUEST)
    assert info.value.device == "dut"
    assert link.stats.snapshot() == _stats(retransmits=2, naks_received=3)


@pytest.mark.timeout(10)
def test_send_frame_never_acknowledged(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)
    frames = []

    def script(p: Peer) -> None:
        p.expect(ENQ)
        p.send(ACK)
        for _ in range(3):
            frames.append(p.frame())
        p.expect(EOT)

    with peer_thread(b, script):
        start = time.monotonic()
        with pytest.raises(UnitNotResponding, match="not acknowledged after 3 tries"):
            link.send(REQUEST)
        elapsed = time.monotonic() - start
    assert len(frames) == 3
    assert 3 * FAST.ack_wait - 0.02 <= elapsed < 3 * FAST.ack_wait + 0.5
    assert link.stats.snapshot() == _stats(retransmits=2, ack_timeouts=3)


@pytest.mark.timeout(10)
def test_send_nak_then_silence_is_not_responding(pair):
    """Only NAKs on every try make a FrameError; a mix with timeouts is UnitNotResponding."""
    a, b = pair
    link = Link(FdPort(a), FAST)

    def script(p: Peer) -> None:
        p.expect(ENQ)
        p.send(ACK)
        p.frame()
        p.send(NAK)
        p.frame()
        p.frame()
        p.expect(EOT)

    with peer_thread(b, script):
        with pytest.raises(UnitNotResponding):
            link.send(REQUEST)
    assert link.stats.snapshot() == _stats(retransmits=2, naks_received=1, ack_timeouts=2)


@pytest.mark.timeout(10)
def test_send_counts_noise_while_waiting(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)

    def script(p: Peer) -> None:
        p.expect(ENQ)
        p.send(b"\x00xy" + bytes([NAK, ACK]))  # a NAK is noise while waiting for the ENQ's ACK
        p.frame()
        p.send(b"\xff\x00" + bytes([ACK]))
        p.expect(EOT)

    with peer_thread(b, script):
        link.send(REQUEST)
    assert link.stats.snapshot() == _stats(noise_bytes=6, frames_sent=1)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "message", [b"ST\x00", b"ST\x03", b"A" * (MAX_MESSAGE + 1)], ids=["nul", "etx", "too_long"]
)
def test_send_unencodable_message_fails_before_touching_the_line(pair, message):
    """A message that cannot be framed must fail before the ENQ, not leave the peer mid-session."""
    a, b = pair
    link = Link(FdPort(a), FAST)
    with peer_thread(b, lambda p: p.quiet(0.2)) as peer:
        with pytest.raises(MessageError):
            link.send(message)
    assert bytes(peer.log) == b""
    assert link.stats.snapshot() == _stats()


# -- receiver ---------------------------------------------------------------------------------------
def _bad_lrc(message: bytes) -> bytes:
    frame = bytearray(encode_frame(message))
    frame[-1] ^= 0x5A
    return bytes(frame)


@pytest.mark.timeout(10)
def test_receive_bad_lrc_is_naked_then_good_frame_acked(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)

    def script(p: Peer) -> None:
        p.send(ENQ)
        p.expect(ACK)
        p.send(_bad_lrc(REQUEST))
        p.expect(NAK)
        p.send(encode_frame(REQUEST))
        p.expect(ACK)
        p.send(EOT)
        assert p.quiet(0.2) == b""

    with peer_thread(b, script):
        assert link.receive(2.0) == REQUEST
    assert link.stats.snapshot() == _stats(naks_sent=1, frames_received=1)


@pytest.mark.timeout(10)
def test_receive_cut_off_frame_is_naked_not_hung(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)
    nak_after: list[float] = []

    def script(p: Peer) -> None:
        p.send(ENQ)
        p.expect(ACK)
        p.send(encode_frame(REQUEST)[:4])  # STX + 3 message bytes, then the line goes quiet
        sent = time.monotonic()
        p.expect(NAK)
        nak_after.append(time.monotonic() - sent)
        p.send(encode_frame(REQUEST))
        p.expect(ACK)
        p.send(EOT)

    with peer_thread(b, script):
        assert link.receive(2.0) == REQUEST
    assert FAST.inter_byte - 0.02 <= nak_after[0] < FAST.inter_byte + 0.5
    assert link.stats.snapshot() == _stats(naks_sent=1, frames_received=1)


@pytest.mark.timeout(10)
def test_receive_frame_without_lrc_is_naked(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)

    def script(p: Peer) -> None:
        p.send(ENQ)
        p.expect(ACK)
        p.send(encode_frame(REQUEST)[:-1])  # ends at ETX
        p.expect(NAK)
        p.send(encode_frame(REQUEST))
        p.expect(ACK)
        p.send(EOT)

    with peer_thread(b, script):
        assert link.receive(2.0) == REQUEST
    assert link.stats.snapshot() == _stats(naks_sent=1, frames_received=1)


@pytest.mark.timeout(10)
def test_receive_three_bad_frames_raise_frame_error(pair):
    a, b = pair
    link = Link(FdPort(a), FAST, device="term")
    bad = [_bad_lrc(REQUEST), encode_frame(REQUEST)[:3], b"\x02S\x02T\x03\x07"]

    def script(p: Peer) -> None:
        p.send(ENQ)
        p.expect(ACK)
        for frame in bad:
            p.send(frame)
            p.expect(NAK)
        p.send(EOT)

    with peer_thread(b, script):
        with pytest.raises(FrameError, match="3 bad frames in a row") as info:
            link.receive(2.0, doing="receiving ST")
    assert info.value.device == "term" and info.value.doing == "receiving ST"
    assert link.stats.snapshot() == _stats(naks_sent=3)


@pytest.mark.timeout(10)
def test_receive_counts_noise_before_enq(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)
    noise = b"\x00\xffjunk\x15\x06"

    def script(p: Peer) -> None:
        p.send(noise + bytes([EOT]))  # an EOT between sessions is not noise
        time.sleep(0.02)
        p.send(ENQ)
        p.expect(ACK)
        p.send(encode_frame(REQUEST))
        p.expect(ACK)
        p.send(EOT)

    with peer_thread(b, script):
        assert link.receive(2.0) == REQUEST
    assert link.stats.snapshot() == _stats(noise_bytes=len(noise), frames_received=1)


@pytest.mark.timeout(10)
def test_receive_counts_noise_between_ack_and_frame(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)

    def script(p: Peer) -> None:
        p.send(ENQ)
        p.expect(ACK)
        p.send(b"\x00\x00\x03" + encode_frame(REQUEST))
        p.expect(ACK)
        p.send(b"!" + bytes([EOT]))  # noise while waiting for EOT counts too

    with peer_thread(b, script):
        assert link.receive(2.0) == REQUEST
    assert link.stats.snapshot() == _stats(noise_bytes=4, frames_received=1)


@pytest.mark.timeout(10)
def test_receive_reacknowledges_repeated_enq(pair):
    """A sender that missed our ACK sends ENQ again: it gets a second ACK, then the frame is taken."""
    a, b = pair
    link = Link(FdPort(a), FAST)

    def script(p: Peer) -> None:
        p.send(ENQ)
        p.expect(ACK)
        p.send(bytes([EOT, ENQ]))
        p.expect(ACK)
        p.send(encode_frame(REQUEST))
        p.expect(ACK)
        p.send(EOT)

    with peer_thread(b, script):
        assert link.receive(2.0) == REQUEST
    assert link.stats.snapshot() == _stats(noise_bytes=1, frames_received=1)


@pytest.mark.timeout(10)
def test_receive_without_eot_still_returns(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)

    def script(p: Peer) -> None:
        p.send(ENQ)
        p.expect(ACK)
        p.send(encode_frame(REQUEST))
        p.expect(ACK)

    with peer_thread(b, script):
        start = time.monotonic()
        assert link.receive(2.0) == REQUEST
        assert time.monotonic() - start < FAST.eot_wait + 0.5


@pytest.mark.timeout(10)
def test_receive_no_enq_times_out(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)
    start = time.monotonic()
    with pytest.raises(UnitNotResponding, match="no ENQ within 0.3 s"):
        link.receive(0.3)
    assert 0.28 <= time.monotonic() - start < 0.8


@pytest.mark.timeout(10)
def test_receive_enq_without_frame_times_out(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)

    def script(p: Peer) -> None:
        p.send(ENQ)
        p.expect(ACK)
        assert p.quiet(FAST.ack_wait + 0.2) == b""

    with peer_thread(b, script):
        start = time.monotonic()
        with pytest.raises(UnitNotResponding, match="no frame within"):
            link.receive(1.0)
        assert time.monotonic() - start < FAST.ack_wait + 0.5


@pytest.mark.timeout(15)
def test_receive_oversized_frame_is_naked_no_hang(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)
    oversized = bytes([STX]) + b"A" * (MAX_MESSAGE + 200)  # no ETX

    def script(p: Peer) -> None:
        p.send(ENQ)
        p.expect(ACK)
        for _ in range(3):  # the sender retransmits on each NAK
            p.send(oversized)
            p.expect(NAK)  # sent once MAX_MESSAGE bytes went by without ETX
        p.send(EOT)

    with peer_thread(b, script):
        start = time.monotonic()
        with pytest.raises(FrameError, match="longer than"):
            link.receive(2.0)
        assert time.monotonic() - start < 3.0
    assert link.stats.naks_sent == 3
    assert link.stats.frames_received == 0


@pytest.mark.timeout(15)
def test_receive_oversized_then_good_frame(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)

    def script(p: Peer) -> None:
        p.send(ENQ)
        p.expect(ACK)
        p.send(bytes([STX]) + b"B" * (MAX_MESSAGE + 300))
        p.expect(NAK)
        time.sleep(0.05)
        p.send(encode_frame(REQUEST))
        p.expect(ACK)
        p.send(EOT)

    with peer_thread(b, script):
        assert link.receive(2.0) == REQUEST
    assert link.stats.naks_sent == 1 and link.stats.frames_received == 1


@pytest.mark.timeout(15)
def test_receive_deadline_holds_under_continuous_noise(pair):
    """A line that never stops babbling (wrong baud rate, floating RX) must not stall ``receive``."""
    a, b = pair
    link = Link(FdPort(a), FAST)
    stop = threading.Event()

    def script(p: Peer) -> None:
        end = time.monotonic() + 3.0
        while not stop.is_set() and time.monotonic() < end:
            if select.select([], [p.port.fd], [], 0.01)[1]:
                with contextlib.suppress(BlockingIOError):
                    os.write(p.port.fd, b"\x00" * 64)

    with peer_thread(b, script):
        try:
            start = time.monotonic()
            with pytest.raises(UnitNotResponding):
                link.receive(0.3)
            elapsed = time.monotonic() - start
        finally:
            stop.set()
    assert elapsed < 1.0
    assert link.stats.noise_bytes > 0


@pytest.mark.timeout(15)
def test_send_deadline_holds_under_continuous_noise(pair):
    a, b = pair
    link = Link(FdPort(a), FAST)
    stop = threading.Event()

    def script(p: Peer) -> None:
        end = time.monotonic() + 3.0
        while not stop.is_set() and time.monotonic() < end:
            if select.select([], [p.port.fd], [], 0.01)[1]:
                with contextlib.suppress(BlockingIOError):
                    os.write(p.port.fd, b"\x00" * 64)

    with peer_thread(b, script):
        try:
            start = time.monotonic()
            with pytest.raises(UnitNotResponding):
                link.send(REQUEST)
            elapsed = time.monotonic() - start
        finally:
            stop.set()
    assert elapsed < 3 * FAST.enq_wait + 0.7
    assert link.stats.enq_retries == 3


# -- hypothesis: arbitrary bytes after ENQ -----------------------------------------------------------
FUZZ = LinkTiming(enq_tries=3, enq_wait=0.05, frame_tries=3, ack_wait=0.03, inter_byte=0.02, eot_wait=0.02)
# worst case: three tries, each an STX hunt plus an inter-byte wait (and an LRC wait), plus the EOT wait
FUZZ_BOUND = FUZZ.frame_tries * (FUZZ.ack_wait + 2 * FUZZ.inter_byte) + FUZZ.eot_wait + 0.5

_TOKENS = st.sampled_from(
    [bytes([STX]), bytes([ETX]), bytes([ENQ]), bytes([EOT]), bytes([ACK]), bytes([NAK]), b"\x1c",
     b"ST", b"rc=OK", encode_frame(b"ST"), encode_frame(REQUEST), _bad_lrc(REQUEST)]
)
_LINE = st.binary(max_size=300) | st.lists(_TOKENS | st.binary(max_size=3), max_size=20).map(b"".join)


@pytest.mark.timeout(60)
@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=_LINE.map(lambda d: d[:300]))
def test_receive_arbitrary_bytes_after_enq_is_bounded(data):
    a, b = _open_pair("socketpair")
    try:
        link = Link(FdPort(a), FUZZ)
        os.write(b, bytes([ENQ]) + data)
        start = time.monotonic()
        try:
            message = link.receive(0.5)
        except (UnitNotResponding, FrameError):
            message = None
        elapsed = time.monotonic() - start
        assert elapsed < FUZZ_BOUND, f"receive took {elapsed:.2f} s"
        if message is not None:
            assert encode_frame(message) in data
            assert link.stats.frames_received == 1
        # the link only ever answers with ACK / NAK
        answers = FdPort(b).read(4096, 0.01)
        assert set(answers) <= {ACK, NAK}
        assert answers[:1] == bytes([ACK])  # the ENQ was acknowledged first
    finally:
        _close(a, b)



@pytest.mark.timeout(10)
def test_send_late_ack_is_not_taken_for_the_frames_ack(pair):
    """The peer ACKs ENQ #1 too late, then ACKs ENQ #2 at once. Without settling, the sender
    would take the second ACK as the frame's and report a frame the peer rejected as delivered."""
    a, b = pair
    link = Link(FdPort(a), FAST)

    def script(p: Peer) -> None:
        p.expect(ENQ)
        time.sleep(FAST.enq_wait * 1.5)  # the sender gives up on ENQ #1: EOT, ENQ #2
        p.send(ACK)                      # late answer to ENQ #1
        p.expect(EOT)
        p.expect(ENQ)
        p.send(ACK)                      # answer to ENQ #2, arriving while the sender settles
        for _ in range(FAST.frame_tries):
            p.frame()
            p.send(NAK)
        p.expect(EOT)

    with peer_thread(b, script):
        with pytest.raises(FrameError, match="NAK"):
            link.send(REQUEST)


def test_a_pty_that_went_away_is_lost_not_reopened():
    """The kernel reuses /dev/pts numbers: a driver whose emulator died must not reopen the path,
    which may already be a stranger's pty, nor open one whose node was made anew."""
    import os

    from posbench.core.errors import PortLost, PortUnavailable
    from posbench.drivers.serial.port import SerialBytePort
    master, slave = os.openpty()
    path = os.ttyname(slave)
    port = SerialBytePort(path, 115200, "test", reopen_s=0.5)
    port.open()
    os.close(master)
    os.close(slave)
    with pytest.raises(PortLost, match="pseudo-terminal does not come back"):
        port.reopen()
    port._pty_id = (-1, -1)  # as if the node had been made anew since the first open
    others = [os.openpty() for _ in range(4)]
    try:
        if not any(os.ttyname(s) == path for _, s in others):
            pytest.skip(f"the kernel did not reuse {path} this time")
        with pytest.raises(PortUnavailable, match="different pseudo-terminal"):
            port.open()
    finally:
        for m, s in others:
            os.close(m)
            os.close(s)


def test_a_read_ends_once_the_port_is_told_the_unit_is_gone():
    """``SerialBytePort.gone``: a waiting read asks it between steps and ends with
    UnitNotResponding (its reason in the detail) instead of waiting out its timeout."""
    import os

    from posbench.drivers.serial import port as port_mod
    from posbench.core.errors import UnitNotResponding
    master, slave = os.openpty()
    port = port_mod.SerialBytePort(os.ttyname(slave), 115200, "test")
    asked: list[float] = []
    try:
        port.open()
        port.write(b"\x05")  # what was last asked: the unit's silence counts from here
        os.read(master, 1)

        def gone(since: float) -> str | None:
            asked.append(since)
            return "it lost power" if len(asked) >= 2 else None
        port.gone = gone
        with pytest.raises(UnitNotResponding, match="it lost power"):
            port.read(1, 3600.0)
        assert len(asked) == 2 and asked[0] == asked[1]
        os.write(master, b"\x06")  # bytes waiting are read as before
        assert port.read(1, 3600.0) == b"\x06"
        port.gone = None
        assert port.read(1, 2 * port_mod.GONE_LOOK_S) == b""  # unwatched, the timeout runs out
    finally:
        port.close()
        os.close(master)
        os.close(slave)
