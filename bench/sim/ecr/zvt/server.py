"""The PT's end of ZVT over TCP: what the virtual PT listens with (a real bench only ever
connects to a PT: ``posbench.drivers.ecr.zvt.tcp.TcpTransport``)."""
from __future__ import annotations

import select
import socket
import time

from posbench.core.errors import UnitNotResponding
from posbench.drivers.ecr.zvt.codec import decode_apdu
from posbench.drivers.ecr.zvt.link import T2_S, TCP_PORT, ConnectionClosed
from posbench.drivers.ecr.zvt.tcp import TcpApdus


class TcpServerTransport(TcpApdus):
    """The PT's end of ZVT over TCP: listens on ``address`` (host, port; port 0 picks a free one)
    and serves one ECR connection at a time, later ones waiting in the backlog. ``receive``
    accepts the next connection when none is open; ``send`` needs one (``ConnectionClosed``
    otherwise, and when the ECR is gone); ``hang_up()`` drops it (a PT rebooting or losing its
    network), ``close()`` stops listening too."""

    def __init__(self, address: tuple[str, int] = ("127.0.0.1", TCP_PORT), rest_timeout_s: float = T2_S,
                 device: str = "ECR"):
        super().__init__(rest_timeout_s, device)
        self._listen = socket.create_server(address, backlog=1)
        self._ecr = ""
        self.accepted = 0
        """Connections accepted so far."""

    @property
    def local_address(self) -> tuple[str, int]:
        """(host, port) the PT listens on."""
        host, port = self._listen.getsockname()[:2]
        return str(host), int(port)

    @property
    def address(self) -> str:
        return "{}:{}".format(*self.local_address)

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def _peer(self) -> str:
        return f"the ECR at {self._ecr}"

    def accept(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` seconds for an ECR to connect; True when one is connected."""
        if self._sock is not None:
            return True
        if not select.select([self._listen], [], [], max(0.0, timeout_s))[0]:
            return False
        try:
            sock, peer = self._listen.accept()
        except OSError:
            return False  # it gave up between select and accept
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._adopt(sock)
        self._ecr = "{}:{}".format(*peer[:2])
        self.accepted += 1
        return True

    def _connected(self, doing: str) -> socket.socket:
        if self._sock is None:
            raise ConnectionClosed(self.device, doing, f"no ECR connected to {self.address}")
        return self._sock

    def receive(self, timeout_s: float, doing: str = "waiting for the ECR") -> bytes:
        """One APDU from the connected ECR, accepting a connection first when none is open; the
        whole wait for the first byte is ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        if not self.accept(timeout_s):
            raise UnitNotResponding(self.device, doing, f"no ECR connected within {timeout_s:g} s")
        return super().receive(max(0.0, deadline - time.monotonic()), doing)

    def send(self, apdu: bytes, doing: str = "sending to the ECR") -> None:
        """Send one APDU to the connected ECR; a broken connection is dropped (no reconnecting:
        the ECR opens connections)."""
        apdu = decode_apdu(apdu).encode()
        sock = self._connected(doing)
        try:
            sock.sendall(apdu)
        except OSError as exc:
            peer = self._peer()
            self._drop()
            raise ConnectionClosed(self.device, doing, f"{peer}: {exc}") from None

    def hang_up(self) -> None:
        """Drop the ECR's connection (the listener stays)."""
        self._drop()

    def close(self) -> None:
        self._drop()
        self._listen.close()
