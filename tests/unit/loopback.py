"""A scripted loopback TCP peer for the unit tests of TCP drivers (ZVT, Caisse-AP)."""
from __future__ import annotations

import socket
import threading
from typing import Callable


class Listener:
    """A loopback server (a terminal's side) that accepts one connection and runs ``body(conn)`` in a
    thread; ``join()`` waits for it and raises what it raised."""

    def __init__(self, body: Callable[[socket.socket], None]):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = bytearray()
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.server.settimeout(5.0)
                conn, _ = self.server.accept()
                with conn:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conn.settimeout(5.0)
                    body(conn)
            except BaseException as exc:  # handed to the test thread by join()
                self.error = exc
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join(10.0)
        self.server.close()
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
