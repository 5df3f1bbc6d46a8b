"""A plain ISO 8583 client of the host link: what a terminal does, for tests and echo checks.

Connection errors (``ConnectionRefusedError``, ``TimeoutError``, other ``OSError``) are raised
as they are: the caller knows whether the bench or the unit is at fault.
"""
from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from posbench.core.errors import ProtocolError

from .iso_spec import decode, encode, response_mti
from .wire import ConnectionClosed, recv_message, send_message


class HostClient:
    """One persistent TCP connection to ``address``, opened on first use.

    ``timeout``: default seconds for connecting and for one exchange.
    ``sock_factory``: makes the (unconnected TCP) socket of each connection instead of
    ``socket.create_connection``, e.g. one inside a network namespace (``posbench.core.netns.socket_in``).
    """

    def __init__(self, address: tuple[str, int], timeout: float = 5.0,
                 sock_factory: Callable[[], socket.socket] | None = None):
        self.address = (address[0], int(address[1]))
        self.timeout = timeout
        self.sock_factory = sock_factory
        self._sock: socket.socket | None = None

    def _peer_hung_up(self) -> bool:
        """True when the host has closed the open connection (hosts close silent ones): a peek
        that does not wait finds its end of stream or a reset. Pending bytes (a late reply)
        and nothing at all both mean it is still open."""
        assert self._sock is not None
        readable = select.poll()  # poll, not select: any descriptor number
        readable.register(self._sock, select.POLLIN)
        try:
            # look first: a socket with a timeout waits for readability inside recv itself
            if not readable.poll(0):
                return False
            return self._sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def connect(self, timeout: float | None = None) -> None:
        """Open the connection now within ``timeout`` seconds (``exchange`` does it lazily);
        one the host has hung up on since is opened again, as a terminal dials again."""
        if self._sock is not None and self._peer_hung_up():
            self.close()
        if self._sock is None:
            limit = self.timeout if timeout is None else timeout
            if self.sock_factory is None:
                sock = socket.create_connection(self.address, timeout=limit)
            else:
                sock = self.sock_factory()
                try:
                    sock.settimeout(limit)
                    sock.connect(self.address)
                except BaseException:
                    sock.close()
                    raise
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock

    def exchange(self, doc: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send ``doc`` and return the reply with the same STAN (field 11) and response MTI.

        Replies to other requests (a late answer to an earlier STAN) are skipped. ``timeout``
        (seconds, default the client's) bounds the whole exchange; ``TimeoutError`` when no
        matching reply came, the connection stays open for later replies. A broken connection
        (``ConnectionClosed``, ``ProtocolError``, other ``OSError``) is closed before raising.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        raw = encode(doc)
        want_mti = response_mti(doc["t"])
        want_stan = doc.get("11")
        self.connect(max(deadline - time.monotonic(), 0.001))
        assert self._sock is not None
        try:
            send_message(self._sock, raw, max(deadline - time.monotonic(), 0.001))
        except OSError:  # a half-sent message leaves the stream unusable
            self.close()
            raise
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {want_mti} reply to STAN {want_stan} in time")
                reply = decode(recv_message(self._sock, remaining))
                if reply.get("t") == want_mti and reply.get("11") == want_stan:
                    return reply
        except TimeoutError:
            raise
        except (ConnectionClosed, ProtocolError, OSError):
            self.close()
            raise

    def close(self) -> None:
        """Close the connection; the next exchange reconnects."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> HostClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def echo(client_or_address: HostClient | tuple[str, int], stan: str | int,
         timeout: float = 5.0, tid: str | None = None) -> float:
    """Send an 0800 echo test (field 70 = 301) and return the round trip in seconds.

    ``tid`` (field 41) is sent when given. With an address, a connection is opened for this echo only (connect time included).
    The reply's field 39 is not checked: use ``HostClient.exchange`` to see it.
    """
    doc = {"t": "0800", "7": datetime.now(timezone.utc).strftime("%m%d%H%M%S"),
           "11": f"{int(stan):06d}", "70": "301"}
    if tid is not None:
        doc["41"] = tid
    if isinstance(client_or_address, HostClient):
        client, own = client_or_address, False
    else:
        client, own = HostClient(client_or_address, timeout), True
    try:
        start = time.perf_counter()
        client.exchange(doc, timeout)
        elapsed = time.perf_counter() - start
    finally:
        if own:
            client.close()
    return elapsed
