"""posbench.drivers.host.wire: 2-byte big-endian length framing over real sockets."""
from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.core.errors import ProtocolError
from posbench.drivers.host.wire import MAX_MESSAGE, ConnectionClosed, recv_message, send_message

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_round_trip_and_back_to_back(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    send_message(a, b"hello")
    send_message(a, b"x" * 1000)
    assert recv_message(b, 1.0) == b"hello"
    assert recv_message(b, 1.0) == b"x" * 1000


def test_header_and_body_split_across_writes(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair

    def trickle() -> None:
        for part in (b"\x00", b"\x05he", b"l", b"lo"):
            a.sendall(part)
            time.sleep(0.02)

    threading.Thread(target=trickle, daemon=True).start()
    assert recv_message(b, 1.0) == b"hello"


def test_largest_message(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    data = bytes(range(256)) * 255 + bytes(range(255))
    assert len(data) == MAX_MESSAGE
    threading.Thread(target=send_message, args=(a, data), daemon=True).start()
    assert recv_message(b, 2.0) == data


@pytest.mark.parametrize("raw", [b"", b"x" * (MAX_MESSAGE + 1)])
def test_send_rejects_bad_length(pair: tuple[socket.socket, socket.socket], raw: bytes) -> None:
    with pytest.raises(ValueError):
        send_message(pair[0], raw)


def test_zero_length_is_protocol_error(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.sendall(b"\x00\x00")
    with pytest.raises(ProtocolError, match="zero-length"):
        recv_message(b, 1.0)


def test_clean_close_before_header_is_connection_closed(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionClosed):
        recv_message(b, 1.0)
    assert issubclass(ConnectionClosed, ConnectionError)


@pytest.mark.parametrize("sent", [b"\x00", b"\x00\x05abc"])
def test_close_mid_message_is_protocol_error(pair: tuple[socket.socket, socket.socket], sent: bytes) -> None:
    a, b = pair
    a.sendall(sent)
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(ProtocolError, match="closed after"):
        recv_message(b, 1.0)


def test_nothing_arrives_is_timeout(pair: tuple[socket.socket, socket.socket]) -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        recv_message(pair[1], 0.1)
    assert 0.09 <= time.monotonic() - start < 1.0


def test_stall_mid_message_is_protocol_error(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.sendall(b"\x00\x10abc")
    with pytest.raises(ProtocolError, match="stalled"):
        recv_message(b, 1.0, body_timeout=0.1)


def test_over_tcp_loopback() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname()[:2], timeout=1.0)
        conn, _ = server.accept()
        with client, conn:
            send_message(client, b"\x01\x02")
            assert recv_message(conn, 1.0) == b"\x01\x02"


@settings(max_examples=150, deadline=None)
@given(data=st.one_of(st.binary(max_size=64),
                      st.binary(max_size=40).map(lambda b: struct.pack(">H", len(b)) + b),
                      st.binary(max_size=40).map(lambda b: struct.pack(">H", len(b) + 3) + b)),
       close=st.booleans())
def test_recv_fuzz_only_expected_errors(data: bytes, close: bool) -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(data)
        if close:
            a.shutdown(socket.SHUT_WR)
        try:
            msg = recv_message(b, 0.02)
        except (ProtocolError, TimeoutError, ConnectionClosed):
            return
        (length,) = struct.unpack(">H", data[:2])
        assert msg == data[2:2 + length] and len(msg) == length > 0
