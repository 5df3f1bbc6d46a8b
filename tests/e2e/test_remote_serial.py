"""The ECR driver over pyserial's remote transports, with a third-party server in between.

A real bench often reaches the unit through a remote serial server (``rfc2217://`` or
``socket://``). Here the virtual terminal's pty is exported by ``SerialBridge`` (pyserial's own
RFC 2217 PortManager, or raw TCP) and the driver and ``posbench triage`` reach it only through
that server, as they would a ser2net port.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import serial

from posbench.core.errors import BenchError, PortLost, PortUnavailable, UnitError
from posbench.sim.bench import SimBench
from posbench.sim.devices.pty_port import PtyPort
from posbench.sim.devices.serial_bridge import SerialBridge
from posbench.drivers.ecr.agent.adapter import AgentTerminal

from .conftest import triage

SEED = 11
"""A healthy virtual unit (the same seed as the local-pty triage test)."""


@pytest.fixture
def sim() -> Iterator[SimBench]:
    bench = SimBench(seed=SEED)
    try:
        yield bench.start()
    finally:
        bench.close()


@pytest.fixture
def bridges() -> Iterator[Callable[..., SerialBridge]]:
    """``bridges(port_path, raw=False)`` starts a bridge; every one is stopped at teardown."""
    started: list[SerialBridge] = []

    def start(port_path: str, raw: bool = False) -> SerialBridge:
        bridge = SerialBridge(port_path, raw=raw)
        started.append(bridge)
        return bridge.start()
    try:
        yield start
    finally:
        for bridge in started:
            bridge.stop(timeout=3.0)


@pytest.fixture
def drivers() -> Iterator[Callable[[str], AgentTerminal]]:
    """``drivers(url)`` opens an ECR driver; every one is closed at teardown."""
    opened: list[AgentTerminal] = []

    def open_driver(url: str) -> AgentTerminal:
        driver = AgentTerminal(url, baudrate=115200, reply_timeout=1.0, sale_timeout=10.0,
                             boot_timeout=10.0)
        opened.append(driver)
        return driver.open()
    try:
        yield open_driver
    finally:
        for driver in opened:
            driver.close()


def _identify_and_sell(sim: SimBench, term: AgentTerminal) -> None:
    term.wait_ready(10.0)  # the unit boots for 1.5 s after power on
    ident = term.identify()
    assert (ident.model, ident.serial) == ("PT100", sim.serial)
    sale = term.sale(1250)
    assert (sale.display_code, sale.host_answered, sale.host_code) == ("00", True, "00")
    assert sale.terminal_id == sim.terminal_id and sale.pan == "411111******1111"


@pytest.mark.timeout(150)
def test_rfc2217_driver_and_triage(sim, bridges, drivers, tmp_path):
    bridge = bridges(sim.terminal.port.path)
    assert bridge.url.startswith("rfc2217://127.0.0.1:")
    term = drivers(bridge.url)
    _identify_and_sell(sim, term)
    status = term.status()
    assert status.boot_id and status.log_seq > 200  # 200 seeded records and the sale above
    assert term.link.stats.naks_received == term.link.stats.naks_sent == 0
    term.close()  # the bridge serves one client at a time: make room for the triage
    assert bridge.clients == 1

    text = sim.bench_toml()
    local = f'port = "{sim.terminal.port.path}"'
    assert local in text
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(text.replace(local, f'port = "{bridge.url}"'), encoding="utf-8")
    r = triage(tmp_path, "--bench", str(bench_file), timeout=120)
    assert r.code == 0, r.out + r.err
    assert r.doc is not None and r.doc["verdict"] == "pass", r.doc
    assert r.doc["unit"]["serial"] == sim.serial
    assert bridge.clients >= 2, "the triage did not go through the bridge"


@pytest.mark.timeout(60)
def test_raw_tcp_socket_url(sim, bridges, drivers):
    bridge = bridges(sim.terminal.port.path, raw=True)
    assert bridge.url.startswith("socket://127.0.0.1:")
    _identify_and_sell(sim, drivers(bridge.url))
    assert bridge.clients == 1


@pytest.mark.timeout(60)
def test_bridge_stopped_mid_sale_is_a_bench_error(sim, bridges, drivers):
    bridge = bridges(sim.terminal.port.path)
    term = drivers(bridge.url)
    term.wait_ready(10.0)
    term.identify()
    stopped: list[float] = []

    def pull_the_plug() -> None:
        bridge.stop(timeout=2.0)
        stopped.append(time.monotonic())
    timer = threading.Timer(0.1, pull_the_plug)  # the sale takes ~0.2 s: stop it halfway
    timer.start()
    try:
        with pytest.raises((PortLost, PortUnavailable)) as info:
            term.sale(1250)
        raised = time.monotonic()
    finally:
        timer.join(5.0)
    assert isinstance(info.value, BenchError) and not isinstance(info.value, UnitError)
    assert info.value.device == "terminal"
    assert stopped and raised - stopped[0] < 10.0, "the driver took too long to give up"
    # The next command does not hang either: the server is gone, so the port is unavailable.
    start = time.monotonic()
    with pytest.raises((PortLost, PortUnavailable)):
        term.identify()
    assert time.monotonic() - start < 10.0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("raw", [False, True], ids=["rfc2217", "raw"])
def test_bridge_is_transparent_to_every_byte_value(bridges, raw):
    """0xFF is the telnet IAC: over RFC 2217 it must be escaped both ways (an LRC can be 0xFF)."""
    device = PtyPort()
    try:
        bridge = bridges(device.path, raw=raw)
        payload = bytes(range(256)) * 2
        client = serial.serial_for_url(bridge.url, baudrate=115200, timeout=0.5)
        try:
            client.write(payload)
            got = bytearray()
            deadline = time.monotonic() + 5.0
            while len(got) < len(payload) and time.monotonic() < deadline:
                got += device.read(4096, 0.2)
            assert bytes(got) == payload, "client -> device"
            device.write(payload)
            back = bytearray()
            while len(back) < len(payload) and time.monotonic() < deadline:
                back += client.read(len(payload) - len(back))
            assert bytes(back) == payload, "device -> client"
        finally:
            client.close()
            bridge.stop()
    finally:
        device.close()
