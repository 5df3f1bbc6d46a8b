"""ZVT over TCP [P16 4]: bare APDUs on port 20007, reassembled from any segmentation by the
length field. The ECR connects (``TcpTransport``); the PT's end, which only the virtual bench
needs, is ``posbench.sim.ecr.zvt.server.TcpServerTransport``; both share ``TcpApdus``.
Written by hand: no maintained library implements the ZVT transport."""
from __future__ import annotations

import abc
import select
import socket
import time

from posbench.core.errors import PortLost, PortUnavailable, UnitNotResponding
from posbench.drivers.transport.tcp import connect_terminal

from .codec import apdu_size, decode_apdu
from .link import T2_S, TCP_PORT, ConnectionClosed, ZvtFrameError

class TcpApdus(abc.ABC):
    """Bare APDUs over one connected TCP socket, reassembled from any segmentation by their length
    field [P16 4]: what the ECR's ``TcpTransport`` (connects) and the PT's ``TcpServerTransport``
    (accepts) share. ``rest_timeout_s`` bounds the rest of a message once its first byte came, and
    every socket send (seconds)."""

    def __init__(self, rest_timeout_s: float, device: str):
        self.rest_timeout_s, self.device = rest_timeout_s, device
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self.answered = False
        """True once a whole message came from the other end (this session's link worked)."""

    @abc.abstractmethod
    def _peer(self) -> str:
        """The other end, in error messages ("the PT at 192.0.2.1:20007")."""

    @abc.abstractmethod
    def _connected(self, doing: str) -> socket.socket:
        """The connected socket (the ECR connects on demand; the PT needs an ECR)."""

    def _adopt(self, sock: socket.socket) -> None:
        sock.settimeout(self.rest_timeout_s)
        self._sock = sock
        self._buffer.clear()

    def _drop(self) -> None:
        """Close the connection and forget what was read ahead."""
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        self._buffer.clear()

    def _fill(self, deadline: float, doing: str) -> bool:
        """Read what has arrived into the buffer; False when nothing came by ``deadline``."""
        sock = self._connected(doing)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            return False
        try:
            chunk = sock.recv(65536)
        except OSError as exc:
            peer = self._peer()
            self._drop()
            raise ConnectionClosed(self.device, doing, f"{peer}: {exc}") from None
        if not chunk:
            peer = self._peer()
            self._drop()
            raise ConnectionClosed(self.device, doing, f"{peer} closed the connection")
        self._buffer.extend(chunk)
        return True

    def receive(self, timeout_s: float, doing: str = "waiting for a ZVT message") -> bytes:
        """One APDU, waiting ``timeout_s`` seconds for it to start and ``rest_timeout_s`` for the
        rest; ``ZvtFrameError`` when a message stops part way, ``ConnectionClosed`` when the
        peer hangs up."""
        deadline = time.monotonic() + timeout_s
        while not self._buffer:
            if not self._fill(deadline, doing):
                raise UnitNotResponding(self.device, doing, f"no message within {timeout_s:g} s")
        rest_deadline = time.monotonic() + self.rest_timeout_s
        while (total := apdu_size(self._buffer)) is None or len(self._buffer) < total:
            if not self._fill(rest_deadline, doing):
                got = len(self._buffer)
                self._buffer.clear()
                raise ZvtFrameError(f"message cut off after {got} bytes"
                                    + (f" of {total}" if total else ""), self.device, doing)
        apdu = bytes(self._buffer[:total])
        del self._buffer[:total]
        self.answered = True
        return apdu

    def discard_input(self) -> None:
        """Drop bytes received but not read."""
        self._buffer.clear()
        if self._sock is None:
            return
        for _ in range(64):  # at most 4 MiB: a peer that never stops sending cannot hold us
            if not select.select([self._sock], [], [], 0)[0]:
                return
            try:
                if not self._sock.recv(65536):
                    self._drop()
                    return
            except OSError:
                self._drop()
                return


class TcpTransport(TcpApdus):
    """The ECR's end of ZVT over TCP: connects to the PT (default port 20007) on first use.
    ``connect_timeout_s`` bounds connecting, ``rest_timeout_s`` the arrival of the rest of a
    message once its first byte came (seconds)."""

    def __init__(self, host: str, port: int = TCP_PORT, connect_timeout_s: float = 5.0,
                 rest_timeout_s: float = T2_S, device: str = "terminal"):
        super().__init__(rest_timeout_s, device)
        self.host, self.port = host, port
        self.connect_timeout_s = connect_timeout_s
        self.reconnects = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _peer(self) -> str:
        return f"the PT at {self.address}"

    def open(self) -> "TcpTransport":
        """Connect. A PT never heard from is the bench's matter (``PortUnavailable``: a wrong
        address, a cable, a PT not switched on); one that answered earlier in this session and
        now takes no connection has stopped answering (``UnitNotResponding``: its silence is
        judged against the supply and what happened before it, as on a serial link)."""
        sock = connect_terminal(self.host, self.port, self.connect_timeout_s, self.device,
                                f"connecting to the ZVT terminal at {self.address}", "the PT", reached=self.answered)
        self._adopt(sock)
        return self

    def close(self) -> None:
        self._drop()

    def _connected(self, doing: str = "") -> socket.socket:
        if self._sock is None:
            self.open()
        assert self._sock is not None
        return self._sock

    def send(self, apdu: bytes, doing: str = "sending a ZVT message") -> None:
        """Send one APDU; a broken connection is reopened once (``PortLost`` if that fails)."""
        apdu = decode_apdu(apdu).encode()
        try:
            self._connected().sendall(apdu)
            return
        except OSError as exc:
            first = exc
        self.close()
        try:
            self.open()
        except PortUnavailable as exc:
            raise PortLost(self.device, doing, f"connection to {self.address} lost ({first}); "
                                               f"reconnecting failed: {exc.detail}") from None
        except UnitNotResponding as exc:
            raise UnitNotResponding(self.device, doing, f"connection to {self.address} lost ({first}); "
                                                        f"reconnecting failed: {exc.detail}") from None
        self.reconnects += 1
        try:
            self._connected().sendall(apdu)
        except OSError as again:
            if self.answered:  # it took the new connection and dropped it at once: the PT's doing
                raise ConnectionClosed(self.device, doing, f"{self.address}: {first}; after reconnecting: "
                                                           f"{again}") from None
            raise PortLost(self.device, doing, f"{self.address}: {first}; after reconnecting: {again}") from None
