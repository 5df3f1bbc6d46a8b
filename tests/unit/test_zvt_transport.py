"""ZVT link rules over real byte transports.

Serial: ``SerialTransport`` opens the slave end of a pseudo-terminal (``PtyPort``) through
``SerialBytePort``, as it would a /dev/ttyUSB0; a scripted PT peer in a thread holds the master end
and works at byte level, comparing what it reads with literal frames. TCP: ``TcpTransport`` against
a loopback listener that splits messages across segments. These peers test the link only.
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Callable, Iterator

import pytest

from posbench.core.errors import PortUnavailable, UnitNotResponding
from posbench.sim.devices.pty_port import PtyPort
from posbench.drivers.ecr.zvt.codec import encode_apdu

from .loopback import Listener
from posbench.drivers.ecr.zvt.link import (
    ACK,
    NAK,
    ConnectionClosed,
    ZvtTiming,
    NoAcknowledge,
    SerialTransport,
    TransmissionFailed,
    ZvtFrameError,
)
from posbench.drivers.ecr.zvt.tcp import TcpTransport
from posbench.sim.ecr.zvt.server import TcpServerTransport

FAST = ZvtTiming(t1_s=0.2, t2_s=0.4, repeats=2)
AUTH_APDU = bytes.fromhex("06 01 0A 04 00 00 00 01 10 00 49 09 78")
AUTH_FRAME = bytes.fromhex("10 02 06 01 0A 04 00 00 00 01 10 10 00 49 09 78 10 03 F2 FF")
ACK_APDU = bytes.fromhex("80 00 00")
ACK_FRAME = bytes.fromhex("10 02 80 00 00 10 03 F5 1F")


# -- scripted PT on a pty ---------------------------------------------------------------------------
class ScriptedPT:
    """The PT end of a pty, scripted at byte level; every read has a timeout."""

    def __init__(self) -> None:
        self.port = PtyPort()
        self.path = self.port.path
        self._buf = bytearray()

    def read_exactly(self, n: int, timeout: float = 2.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self._buf) < n and time.monotonic() < deadline:
            self._buf.extend(self.port.read(4096, deadline - time.monotonic()))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def silent_for(self, seconds: float) -> bool:
        """True when nothing at all arrives within ``seconds``."""
        return not self._buf and not self.port.read(4096, seconds)

    def write(self, data: bytes) -> None:
        self.port.write(data)


class Script:
    """Runs ``body(pt)`` in a thread; ``join()`` re-raises its failure in the test."""

    def __init__(self, pt: ScriptedPT, body: Callable[[ScriptedPT], None]):
        self.error: BaseException | None = None

        def run() -> None:
            try:
                body(pt)
            except BaseException as exc:  # handed to the test thread by join()
                self.error = exc
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 10.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "scripted PT did not finish"
        if self.error is not None:
            raise self.error


@pytest.fixture
def pt() -> Iterator[ScriptedPT]:
    peer = ScriptedPT()
    try:
        yield peer
    finally:
        peer.port.close()


@pytest.fixture
def ecr(pt: ScriptedPT) -> Iterator[SerialTransport]:
    transport = SerialTransport(pt.path, 9600, FAST).open()
    try:
        yield transport
    finally:
        transport.close()


def test_the_port_is_8n2(ecr: SerialTransport) -> None:
    ser = ecr.port._ser()
    assert (ser.bytesize, ser.parity, ser.stopbits, ser.baudrate) == (8, "N", 2, 9600)


def test_a_frame_is_acknowledged(pt: ScriptedPT, ecr: SerialTransport) -> None:
    def body(pt: ScriptedPT) -> None:
        assert pt.read_exactly(len(AUTH_FRAME)) == AUTH_FRAME
        pt.write(bytes((ACK,)))
    script = Script(pt, body)
    ecr.send(AUTH_APDU)
    script.join()
    assert ecr.stats.frames_sent == 1 and ecr.stats.retransmits == 0


def test_a_nak_makes_the_sender_repeat(pt: ScriptedPT, ecr: SerialTransport) -> None:
    def body(pt: ScriptedPT) -> None:
        assert pt.read_exactly(len(AUTH_FRAME)) == AUTH_FRAME
        pt.write(bytes((NAK,)))
        assert pt.read_exactly(len(AUTH_FRAME)) == AUTH_FRAME
        pt.write(bytes((ACK,)))
    script = Script(pt, body)
    ecr.send(AUTH_APDU)
    script.join()
    assert (ecr.stats.naks_received, ecr.stats.repeats, ecr.stats.frames_sent) == (1, 1, 1)


def test_send_then_works_between_writing_and_the_ack_once(pt: ScriptedPT, ecr: SerialTransport) -> None:
    """The sender's work runs once, after the frame is written and before the ACK is awaited (the
    PT here answers only once the work has run; a NAKed frame's repeat does not run it again);
    its result or its error comes after the ACK."""
    worked = threading.Event()

    def body(pt: ScriptedPT) -> None:
        assert pt.read_exactly(len(AUTH_FRAME)) == AUTH_FRAME  # the first send
        assert worked.wait(5.0), "the work did not run before the ACK was awaited"
        pt.write(bytes((NAK,)))
        for answer in (ACK, ACK, NAK):  # its repeat; the second send; the third, NAKed
            assert pt.read_exactly(len(AUTH_FRAME)) == AUTH_FRAME
            pt.write(bytes((answer,)))
    script = Script(pt, body)
    calls: list[str] = []

    def work() -> str:
        calls.append("work")
        worked.set()
        return "result"
    assert ecr.send_then(AUTH_APDU, "sending", work) == "result"
    assert calls == ["work"] and ecr.stats.repeats == 1

    def failing() -> str:
        raise ValueError("bench's own work failed")
    with pytest.raises(ValueError, match="own work failed"):
        ecr.send_then(AUTH_APDU, "sending", failing)
    with pytest.raises(TransmissionFailed):  # NAKed, then no answer: the link's error, as send's
        ecr.send_then(AUTH_APDU, "sending", lambda: "never returned")
    script.join()
    assert ecr.stats.frames_sent == 2


def test_no_ack_means_two_repeats_then_a_transmission_error(pt: ScriptedPT, ecr: SerialTransport) -> None:
    frames: list[bytes] = []

    def body(pt: ScriptedPT) -> None:
        for _ in range(3):
            frames.append(pt.read_exactly(len(AUTH_FRAME), timeout=2.0))
        assert pt.silent_for(FAST.t2_s + 0.2), "the sender repeated more than twice"
    script = Script(pt, body)
    started = time.monotonic()
    with pytest.raises(NoAcknowledge, match="no ACK within T2") as err:
        ecr.send(AUTH_APDU, "sending an authorization")
    elapsed = time.monotonic() - started
    script.join()
    assert frames == [AUTH_FRAME] * 3
    assert isinstance(err.value, UnitNotResponding) and isinstance(err.value, TransmissionFailed)
    assert "sending an authorization" in str(err.value)
    assert 3 * FAST.t2_s - 0.1 <= elapsed < 3 * FAST.t2_s + 1.0
    assert ecr.stats.ack_timeouts == 3


def test_nak_every_time_is_a_transmission_error(pt: ScriptedPT, ecr: SerialTransport) -> None:
    def body(pt: ScriptedPT) -> None:
        for _ in range(3):
            assert pt.read_exactly(len(AUTH_FRAME)) == AUTH_FRAME
            pt.write(bytes((NAK,)))
    script = Script(pt, body)
    with pytest.raises(TransmissionFailed, match="3 NAK") as err:
        ecr.send(AUTH_APDU)
    script.join()
    assert not isinstance(err.value, UnitNotResponding)


def test_a_crc_error_is_answered_with_nak_and_the_repeat_taken(pt: ScriptedPT, ecr: SerialTransport) -> None:
    bad = ACK_FRAME[:-1] + bytes((ACK_FRAME[-1] ^ 0xFF,))

    def body(pt: ScriptedPT) -> None:
        pt.write(bad)
        assert pt.read_exactly(1) == bytes((NAK,))
        pt.write(ACK_FRAME)
        assert pt.read_exactly(1) == bytes((ACK,))
    script = Script(pt, body)
    assert ecr.receive(2.0) == ACK_APDU
    script.join()
    assert (ecr.stats.naks_sent, ecr.stats.frames_received) == (1, 1)


def test_a_gap_above_t1_is_answered_with_nak(pt: ScriptedPT, ecr: SerialTransport) -> None:
    def body(pt: ScriptedPT) -> None:
        pt.write(AUTH_FRAME[:6])
        time.sleep(FAST.t1_s * 2.5)
        assert pt.read_exactly(1, timeout=0.1) == bytes((NAK,)), "no NAK within T1 + margin of the gap"
        pt.write(AUTH_FRAME[6:])  # the late rest is noise to the receiver
        pt.write(AUTH_FRAME)
        assert pt.read_exactly(1) == bytes((ACK,))
    script = Script(pt, body)
    assert ecr.receive(2.0) == AUTH_APDU
    script.join()
    assert ecr.stats.naks_sent == 1


def test_three_bad_frames_are_a_transmission_error(pt: ScriptedPT, ecr: SerialTransport) -> None:
    bad = ACK_FRAME[:-1] + bytes((ACK_FRAME[-1] ^ 0x01,))

    def body(pt: ScriptedPT) -> None:
        for _ in range(3):
            pt.write(bad)
            assert pt.read_exactly(1) == bytes((NAK,))
    script = Script(pt, body)
    with pytest.raises(TransmissionFailed, match="3 bad frames in a row, last: CRC mismatch"):
        ecr.receive(2.0)
    script.join()


def test_silence_is_unit_not_responding(ecr: SerialTransport) -> None:
    started = time.monotonic()
    with pytest.raises(UnitNotResponding, match="waiting for the answer: no message within 0.3 s"):
        ecr.receive(0.3, "waiting for the answer")
    assert time.monotonic() - started < 1.0


def test_noise_before_a_frame_is_skipped(pt: ScriptedPT, ecr: SerialTransport) -> None:
    def body(pt: ScriptedPT) -> None:
        pt.write(b"\x00\x10\x10\x06\x15" + ACK_FRAME)
        assert pt.read_exactly(1) == bytes((ACK,))
    script = Script(pt, body)
    assert ecr.receive(2.0) == ACK_APDU
    script.join()


# -- TCP --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def tcp_ecr(body: Callable[[socket.socket], None], **options) -> Iterator[TcpTransport]:
    """A ``TcpTransport`` connected to a ``Listener`` running ``body``; both closed after."""
    listener = Listener(body)
    transport = TcpTransport("127.0.0.1", listener.port, **options)
    try:
        yield transport
    finally:
        transport.close()
    listener.join()


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        assert chunk, "ECR closed the connection"
        out.extend(chunk)
    return bytes(out)


def test_tcp_reassembles_a_message_split_across_segments() -> None:
    big = encode_apdu(0x06, 0xD3, bytes(range(256)) * 2)  # extended length: FF lo hi
    pieces = [ACK_APDU[:1], ACK_APDU[1:], big[:2], big[2:4], big[4:100], big[100:]]

    def body(conn: socket.socket) -> None:
        assert _recv_exactly(conn, len(AUTH_APDU)) == AUTH_APDU
        for piece in pieces:
            conn.sendall(piece)
            time.sleep(0.03)
        conn.sendall(ACK_APDU + ACK_APDU)  # two messages in one segment
        time.sleep(0.5)
    with tcp_ecr(body) as transport:
        transport.send(AUTH_APDU)
        assert [transport.receive(2.0) for _ in range(4)] == [ACK_APDU, big, ACK_APDU, ACK_APDU]


def test_tcp_message_cut_off_is_a_frame_error() -> None:
    def body(conn: socket.socket) -> None:
        conn.sendall(bytes.fromhex("06 0F 05 27 00"))
        time.sleep(0.6)
    with tcp_ecr(body, rest_timeout_s=0.3) as transport:
        with pytest.raises(ZvtFrameError, match="cut off after 5 bytes of 8"):
            transport.receive(2.0)


def test_tcp_silence_and_close() -> None:
    def body(conn: socket.socket) -> None:
        time.sleep(0.4)
    with tcp_ecr(body) as transport:
        with pytest.raises(UnitNotResponding, match="no message within 0.2 s"):
            transport.receive(0.2)
        with pytest.raises(ConnectionClosed, match="closed the connection"):
            transport.receive(2.0)


def test_tcp_refused_is_port_unavailable_naming_the_address() -> None:
    with contextlib.closing(socket.create_server(("127.0.0.1", 0))) as probe:
        port = probe.getsockname()[1]
    transport = TcpTransport("127.0.0.1", port)
    with pytest.raises(PortUnavailable, match=f"127.0.0.1:{port}.*refused.*PT is off"):
        transport.send(ACK_APDU)


def test_serial_port_missing_is_port_unavailable() -> None:
    with pytest.raises(PortUnavailable, match="ZVT port /dev/ttyNOSUCH0"):
        SerialTransport("/dev/ttyNOSUCH0").open()


# -- TCP, the PT's end ------------------------------------------------------------------------------
@pytest.fixture
def pt_server() -> Iterator[TcpServerTransport]:
    server = TcpServerTransport(("127.0.0.1", 0), rest_timeout_s=0.5)
    try:
        yield server
    finally:
        server.close()


def test_pt_end_reassembles_what_the_ecr_splits(pt_server: TcpServerTransport) -> None:
    big = encode_apdu(0x06, 0x01, bytes(300))
    with socket.create_connection(pt_server.local_address, timeout=2.0) as ecr:
        ecr.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (big[:1], big[1:4], big[4:200], big[200:] + ACK_APDU):
            ecr.sendall(piece)
            time.sleep(0.03)
        assert [pt_server.receive(2.0) for _ in range(2)] == [big, ACK_APDU]
        assert pt_server.connected and pt_server.accepted == 1


def test_pt_and_ecr_ends_talk_both_ways(pt_server: TcpServerTransport) -> None:
    ecr = TcpTransport(*pt_server.local_address)
    try:
        ecr.send(AUTH_APDU)
        assert pt_server.receive(2.0) == AUTH_APDU
        pt_server.send(ACK_APDU)
        assert ecr.receive(2.0) == ACK_APDU
        pt_server.hang_up()  # the PT reboots
        with pytest.raises(ConnectionClosed, match="the PT at 127.0.0.1:[0-9]+ closed the connection"):
            ecr.receive(2.0)
        ecr.send(AUTH_APDU)  # the ECR connects anew, the PT accepts it
        assert pt_server.receive(2.0) == AUTH_APDU and pt_server.accepted == 2
    finally:
        ecr.close()


def test_pt_end_without_an_ecr(pt_server: TcpServerTransport) -> None:
    started = time.monotonic()
    with pytest.raises(UnitNotResponding, match="no ECR connected within 0.2 s"):
        pt_server.receive(0.2)
    assert time.monotonic() - started < 1.0
    with pytest.raises(ConnectionClosed, match="no ECR connected to 127.0.0.1:"):
        pt_server.send(ACK_APDU)


def test_pt_end_sees_the_ecr_hang_up_and_a_cut_message(pt_server: TcpServerTransport) -> None:
    with socket.create_connection(pt_server.local_address, timeout=2.0) as ecr:
        ecr.sendall(AUTH_APDU[:5])
        with pytest.raises(ZvtFrameError, match="cut off after 5 bytes of 13"):
            pt_server.receive(2.0)
    with pytest.raises(ConnectionClosed, match="the ECR at 127.0.0.1:[0-9]+ closed the connection"):
        pt_server.receive(2.0)
    assert not pt_server.connected


# -- silence judged by what came before it (issue 21, finding 4) -----------------------------------
@contextlib.contextmanager
def deaf_listener(server: socket.socket | None = None) -> Iterator[tuple[str, int]]:
    """A listening port whose accept queue is full and never served (a PT whose network stack is
    up and whose application is not, or the virtual PT while it is off): a connect times out.
    ``server``: that listening socket (default: a new one)."""
    server = server or socket.create_server(("127.0.0.1", 0), backlog=0)
    pending: list[socket.socket] = []
    try:
        for _ in range(16):  # Linux queues backlog + 1 connections; the next SYN is dropped
            sock = socket.socket()
            pending.append(sock)
            sock.settimeout(0.3)
            try:
                sock.connect(server.getsockname())
            except TimeoutError:
                break
        else:
            pytest.skip("this kernel's listen queue never filled: no connect timeout to test")
        yield server.getsockname()[:2]
    finally:
        for sock in pending:
            sock.close()
        server.close()


def test_a_pt_that_never_answered_is_the_benchs_matter_naming_its_address() -> None:
    with deaf_listener() as (host, port):
        transport = TcpTransport(host, port, connect_timeout_s=0.3)
        with pytest.raises(PortUnavailable, match=f"{host}:{port}.*no answer within 0.3 s: the address is wrong"):
            transport.send(ACK_APDU)


@pytest.mark.parametrize("how", ["refuses", "stops accepting"])
def test_a_pt_that_answered_and_then_takes_no_connection_has_stopped_answering(how: str) -> None:
    pt = TcpServerTransport(("127.0.0.1", 0), rest_timeout_s=0.5)
    address = pt.local_address
    ecr = TcpTransport(*address, connect_timeout_s=0.3)
    try:
        ecr.send(AUTH_APDU)
        assert pt.receive(2.0) == AUTH_APDU
        pt.send(ACK_APDU)
        assert ecr.receive(2.0) == ACK_APDU  # it answered: the address, the cable, the PT's power were right
        ecr.close()  # the connection gone (the PT rebooted, a poll gave up on it)
        pt.close()   # and the PT takes none any more (off, or its application died)
        if how == "refuses":
            with pytest.raises(UnitNotResponding, match="refused: the PT answered earlier in this session") as err:
                ecr.send(AUTH_APDU)
        else:
            # the same port kept by a listener that never accepts: connecting times out
            with deaf_listener(socket.create_server(address, backlog=0)):
                with pytest.raises(UnitNotResponding, match="no answer within 0.3 s: the PT answered earlier") as err:
                    ecr.send(AUTH_APDU)
        assert not isinstance(err.value, PortUnavailable) and "address is wrong" not in str(err.value)
    finally:
        ecr.close()
        pt.close()
