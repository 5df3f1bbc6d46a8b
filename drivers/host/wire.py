"""TCP framing of the host link: a 2-byte big-endian length header, then the ISO 8583 message.

Every call has a deadline in seconds. ``recv_message`` tells apart the three ways a read ends
badly: nothing arrived in time (``TimeoutError``, the connection is still usable), the peer
closed cleanly between messages (``ConnectionClosed``), and broken bytes or a connection that
died or stalled mid-message (``ProtocolError``, the connection must be dropped).
"""
from __future__ import annotations

import socket
import struct
import time

from posbench.core.errors import ProtocolError

DEVICE = "host"
MAX_MESSAGE = 0xFFFF
"""Largest message in bytes the 2-byte header can carry."""


class ConnectionClosed(ConnectionError):
    """The peer closed the connection cleanly before the first byte of a message."""


def send_message(sock: socket.socket, raw: bytes, timeout: float = 5.0) -> None:
    """Send ``raw`` with its length header within ``timeout`` seconds."""
    if not 0 < len(raw) <= MAX_MESSAGE:
        raise ValueError(f"message length {len(raw)} outside 1..{MAX_MESSAGE}")
    sock.settimeout(timeout)
    sock.sendall(struct.pack(">H", len(raw)) + bytes(raw))


def recv_message(sock: socket.socket, timeout: float, body_timeout: float | None = None) -> bytes:
    """Receive one message.

    ``timeout``: seconds to wait for the message to start. ``body_timeout``: seconds the rest
    may take once the first byte arrived (default ``timeout``).
    """
    first = _recv_some(sock, 2, time.monotonic() + timeout, started=False)
    if not first:
        raise ConnectionClosed("host link closed by peer")
    deadline = time.monotonic() + (timeout if body_timeout is None else body_timeout)
    header = first + _recv_exactly(sock, 2 - len(first), deadline, "length header")
    (length,) = struct.unpack(">H", header)
    if length == 0:
        raise ProtocolError("zero-length message", DEVICE, "reading a message")
    return _recv_exactly(sock, length, deadline, f"{length}-byte message")


def _recv_exactly(sock: socket.socket, size: int, deadline: float, what: str) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = _recv_some(sock, size - len(buf), deadline, started=True)
        if not chunk:
            raise ProtocolError(f"connection closed after {len(buf)} of {size} bytes of the {what}",
                                DEVICE, "reading a message")
        buf += chunk
    return bytes(buf)


def _recv_some(sock: socket.socket, size: int, deadline: float, started: bool) -> bytes:
    """1..size bytes, or b"" on a clean close. A timeout mid-message is a ProtocolError."""
    remaining = deadline - time.monotonic()
    try:
        if remaining <= 0:
            raise TimeoutError("timed out")
        sock.settimeout(remaining)
        return sock.recv(size)
    except TimeoutError:
        if started:
            raise ProtocolError("peer stalled mid-message", DEVICE, "reading a message") from None
        raise TimeoutError("no message within the deadline") from None
