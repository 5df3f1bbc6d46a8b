"""A port whose address moves (a bench room's port after its exporter restarted): a driver
reopening it asks where it is now (``posbench.drivers.serial.relocation``). Loopback TCP servers
stand in for ser2net: the port is ``socket://`` here, ``rfc2217://`` in a bench room."""
from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from posbench.drivers.serial import relocation
from posbench.drivers.serial.port import SerialBytePort
from posbench.core.errors import PortLost, PortUnavailable


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(5.0)
        try:
            while data := self.request.recv(64):
                self.request.sendall(data.upper())
        except OSError:
            pass


@contextmanager
def echo_server() -> Iterator[str]:
    """A TCP echo server on loopback; its ``socket://`` URL. Its connections die with it."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"socket://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5.0)


def exchange(port: SerialBytePort, data: bytes) -> bytes:
    port.write(data)
    got = b""
    for _ in range(50):
        got += port.read(64, 0.1)
        if len(got) >= len(data):
            break
    return got


def test_a_port_that_moved_is_reopened_where_it_is_now():
    where: dict[str, str] = {}

    def locate() -> str:
        if "url" not in where:
            raise PortUnavailable("terminal", "locating its port", "not served now")
        return where["url"]

    with echo_server() as first:
        where["url"] = first
        relocation.follow(first, locate, settle_s=5.0)
        port = SerialBytePort(first, device="terminal", reopen_s=0.5)
        try:
            assert exchange(port, b"ping") == b"PING"
            with echo_server() as second:
                del where["url"]  # the exporter restarts: not served for a moment
                port.close()
                threading.Timer(0.3, lambda: where.update(url=second)).start()
                port.open()  # waits while it is not served, then opens where it is now
                assert port.url == second and exchange(port, b"pong") == b"PONG"
        finally:
            port.close()
            relocation.forget(locate)
    assert relocation.current(first) == first  # forgotten: nobody follows it any more


def test_a_port_that_stays_away_is_a_bench_error():
    def gone() -> str:
        raise PortUnavailable("terminal", "locating its port", "the exporter does not serve it now")

    with echo_server() as url:
        relocation.follow(url, gone, settle_s=0.2)
        port = SerialBytePort(url, device="terminal", reopen_s=0.2)
        try:
            with pytest.raises(PortLost, match="did not come back within 0.2 s .*does not serve it now"):
                port.reopen()
        finally:
            port.close()
            relocation.forget(gone)


def test_a_port_nobody_follows_keeps_its_address():
    assert relocation.current("/dev/ttyUSB7") == "/dev/ttyUSB7"
    assert relocation.patience("/dev/ttyUSB7", 3.0) == 3.0
