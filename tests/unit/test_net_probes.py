"""Host-connectivity probes without the lab: loopback reachability and echo, the ARP codec,
the delay relay and the namespace helpers' error paths. Root is needed only where marked."""
from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.core.errors import BenchError
from posbench.core import netns
from posbench.sim.net.delay_relay import DelayRelay
from posbench.drivers.host import arp_probe as arp
from posbench.drivers.host.echo import echo_series, percentile
from posbench.drivers.host.reachability import probe_port
from posbench.drivers.host.rules import Rule, RuleSet
from posbench.drivers.host.simulator import HostSimulator

pytestmark = pytest.mark.timeout(30)

ROOT = os.geteuid() == 0
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
ADDR = socket.inet_aton("10.231.1.10")


# -- reachability on loopback ---------------------------------------------------------------
def test_probe_port_open_on_loopback() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        result = probe_port("127.0.0.1", port, timeout_s=1.0, attempts=2)
    assert result.state == "open"
    assert result.outcomes == ["open", "open"]
    assert len(result.times_s) == 2 and all(0 <= t < 1.0 for t in result.times_s)


def test_probe_port_refused_on_loopback() -> None:
    with socket.socket() as holder:  # a port nobody listens on: bound, never listening
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        result = probe_port("127.0.0.1", port, timeout_s=1.0, attempts=2)
    assert result.state == "refused"
    assert "ECONNREFUSED" in result.detail
    assert all(t < 0.5 for t in result.times_s)


def test_probe_port_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        probe_port("127.0.0.1", 1, timeout_s=0)
    with pytest.raises(BenchError, match="resolving"):
        probe_port("no-such-host.invalid", 1, timeout_s=0.5, attempts=1)


# -- echo series on loopback ----------------------------------------------------------------
@pytest.fixture
def host(tmp_path: Path) -> Iterator[HostSimulator]:
    sim = HostSimulator(log_path=tmp_path / "host.jsonl", seed=3).start()
    try:
        yield sim
    finally:
        sim.stop()


def test_echo_series_healthy_loopback(host: HostSimulator) -> None:
    stats = echo_series(host.address, count=10, interval_s=0.01, timeout_s=1.0, terminal_id="TERM0001")
    assert (stats.sent, stats.answered, stats.loss, stats.reconnects) == (10, 10, 0.0, 0)
    assert stats.p50_s is not None and stats.p95_s is not None and stats.max_s is not None
    assert 0 < stats.p50_s <= stats.p95_s <= stats.max_s < 0.05
    log = (Path(host.log_path)).read_text()
    assert log.count('"mti":"0800"') == 10 and '"tid":"TERM0001"' in log


def test_echo_series_counts_loss_and_reconnects(tmp_path: Path) -> None:
    rules = RuleSet([Rule(mti="0800", drop=True, probability=0.5, name="lossy")])
    with HostSimulator(rules=rules, log_path=tmp_path / "h.jsonl", seed=7) as sim:
        stats = echo_series(sim.address, count=12, interval_s=0.0, timeout_s=0.2)
    assert 0 < stats.answered < 12
    assert stats.loss == pytest.approx(1 - stats.answered / 12)
    assert len(stats.failures) == 12 - stats.answered
    # every failure but a final one is followed by a reconnect
    assert stats.reconnects in (len(stats.failures), len(stats.failures) - 1)
    assert all("no reply in time" in f for f in stats.failures)


def test_echo_series_host_down_is_all_loss() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        address = holder.getsockname()
        stats = echo_series(address, count=3, interval_s=0.0, timeout_s=0.3)
    assert (stats.answered, stats.loss, stats.p50_s, stats.reconnects) == (0, 1.0, None, 2)
    assert all("ConnectionRefusedError" in f for f in stats.failures)


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([2.0], 95) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile(list(map(float, range(101))), 95) == pytest.approx(95.0)


# -- ARP codec ----------------------------------------------------------------------------
def test_build_and_parse_probe() -> None:
    frame = arp.build_probe(MAC_A, ADDR)
    assert len(frame) == 42
    packet = arp.parse_arp(frame)
    assert packet is not None and packet.is_probe
    assert (packet.eth_dst, packet.sender_mac, packet.sender_ip, packet.target_mac, packet.target_ip) == (
        arp.BROADCAST, MAC_A, arp.ZERO_IP, arp.ZERO_MAC, ADDR)
    # our own probe never counts; the same probe from someone else claims the address
    assert not arp.claims(packet, ADDR, MAC_A)
    assert arp.claims(packet, ADDR, MAC_B)


def test_claims_reply_and_announcement() -> None:
    reply = arp.parse_arp(arp.build_arp(arp.ARPOP_REPLY, MAC_B, ADDR, MAC_A, arp.ZERO_IP, eth_dst=MAC_A)
                          + b"\x00" * 18)  # Ethernet padding to 60 bytes
    assert reply is not None and reply.op == arp.ARPOP_REPLY
    assert arp.claims(reply, ADDR, MAC_A)
    assert not arp.claims(reply, socket.inet_aton("10.231.1.11"), MAC_A)
    announce = arp.parse_arp(arp.build_announcement(MAC_B, ADDR))
    assert announce is not None and arp.claims(announce, ADDR, MAC_A)
    assert arp.mac_text(MAC_B) == "02:00:00:00:00:02"


def test_parse_rejects_other_frames() -> None:
    good = arp.build_probe(MAC_A, ADDR)
    assert arp.parse_arp(good[:41]) is None
    assert arp.parse_arp(good[:12] + b"\x08\x00" + good[14:]) is None  # IPv4, not ARP
    assert arp.parse_arp(good[:14] + b"\x00\x06" + good[16:]) is None  # htype 6
    assert arp.parse_arp(good[:20] + b"\x00\x03" + good[22:]) is None  # RARP op
    with pytest.raises(ValueError):
        arp.build_arp(1, MAC_A[:5], ADDR, MAC_B, ADDR)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_fuzz_parse_never_raises(frame: bytes) -> None:
    packet = arp.parse_arp(frame)
    if packet is not None:
        assert len(frame) >= 42 and frame[12:14] == b"\x08\x06"
        assert packet.op in (1, 2) and len(packet.sender_mac) == 6 and len(packet.target_ip) == 4


@settings(max_examples=200, deadline=None)
@given(op=st.sampled_from([1, 2]), sha=st.binary(min_size=6, max_size=6), spa=st.binary(min_size=4, max_size=4),
       tha=st.binary(min_size=6, max_size=6), tpa=st.binary(min_size=4, max_size=4),
       dst=st.binary(min_size=6, max_size=6), pad=st.binary(max_size=24),
       ours=st.binary(min_size=6, max_size=6), wanted=st.binary(min_size=4, max_size=4))
def test_fuzz_roundtrip_and_claims(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes, dst: bytes,
                                   pad: bytes, ours: bytes, wanted: bytes) -> None:
    packet = arp.parse_arp(arp.build_arp(op, sha, spa, tha, tpa, eth_dst=dst) + pad)
    assert packet == arp.ArpPacket(sha, dst, op, sha, spa, tha, tpa)
    expected = sha != ours and (spa == wanted or (op == 1 and spa == arp.ZERO_IP and tpa == wanted))
    assert arp.claims(packet, wanted, ours) == expected


def test_arp_probe_missing_interface_is_bench_error() -> None:
    if not ROOT:
        pytest.skip("opening a raw socket needs root")
    with pytest.raises(BenchError, match="no-such-if0"):
        arp.arp_probe("no-such-if0", "10.231.1.10", timeout_s=0.2, count=1)


def test_arp_probe_without_privilege_is_bench_error() -> None:
    """As an unprivileged user (a subprocess that dropped root) the raw socket is refused."""
    # Everything is imported before dropping root: the interpreter may live where nobody
    # cannot read (e.g. under /root).
    code = ("import os, sys\n"
            "from posbench.core.errors import BenchError\n"
            "from posbench.drivers.host.arp_probe import arp_probe\n"
            "if os.geteuid() == 0: os.setgid(65534); os.setuid(65534)\n"
            "try:\n    arp_probe('lo', '127.0.0.1', 0.2, 1)\n"
            "except BenchError as e:\n    print('BENCHERROR', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20,
                          cwd=Path(__file__).resolve().parents[2])
    assert "BENCHERROR" in done.stdout, done.stderr
    assert "needs root or CAP_NET_RAW" in done.stdout


# -- delay relay on loopback ----------------------------------------------------------------
@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A loopback TCP echo server (one thread per connection) for relay tests."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        conn.settimeout(5.0)
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()
    finally:
        stop.set()
        thread.join(2)
        server.close()


def _relay(target: tuple[str, int], delay: float, jitter: float) -> DelayRelay:
    listen = socket.socket()
    listen.bind(("127.0.0.1", 0))
    return DelayRelay(listen, target, random.Random(5), delay, jitter).start()


def test_relay_adds_delay_both_ways(echo_server: tuple[str, int]) -> None:
    relay = _relay(echo_server, 0.1, 0.02)
    try:
        with socket.create_connection(relay.address, timeout=2) as conn:
            times = []
            for i in range(3):
                start = time.perf_counter()
                conn.sendall(b"ping%d" % i)
                assert conn.recv(100) == b"ping%d" % i
                times.append(time.perf_counter() - start)
        assert all(0.16 <= t < 0.6 for t in times), times  # two legs of 0.1 +- 0.02 s
    finally:
        relay.stop()


def test_relay_keeps_order_under_jitter(echo_server: tuple[str, int]) -> None:
    relay = _relay(echo_server, 0.01, 0.01)
    payload = bytes(random.Random(1).getrandbits(8) for _ in range(300_000))
    try:
        with socket.create_connection(relay.address, timeout=5) as conn:
            sender = threading.Thread(target=conn.sendall, args=(payload,), daemon=True)
            sender.start()
            got = bytearray()
            while len(got) < len(payload):
                chunk = conn.recv(65536)
                assert chunk, "relay closed early"
                got += chunk
            sender.join(5)
        assert bytes(got) == payload
        assert relay.connections == 1
    finally:
        relay.stop()


def test_relay_stop_closes_connections(echo_server: tuple[str, int]) -> None:
    relay = _relay(echo_server, 0.0, 0.0)
    conn = socket.create_connection(relay.address, timeout=2)
    try:
        conn.sendall(b"x")
        assert conn.recv(10) == b"x"
        start = time.monotonic()
        relay.stop(timeout=2.0)
        assert time.monotonic() - start < 2.0
        conn.settimeout(2)
        try:
            assert conn.recv(10) == b""
        except ConnectionResetError:
            pass
        with pytest.raises(OSError):
            socket.create_connection(relay.address, timeout=0.5)
    finally:
        conn.close()


def test_relay_drops_client_when_target_is_down() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        relay = _relay(holder.getsockname(), 0.0, 0.0)
        try:
            with socket.create_connection(relay.address, timeout=2) as conn:
                conn.settimeout(3)
                try:
                    assert conn.recv(10) == b""
                except ConnectionResetError:
                    pass
        finally:
            relay.stop()


# -- namespace helpers: error paths -------------------------------------------------------
def test_run_reports_missing_tool_failure_and_timeout() -> None:
    with pytest.raises(BenchError, match="not installed"):
        netns.run(["pbl-no-such-tool"])
    with pytest.raises(BenchError, match="exit 3: boom"):
        netns.run(["sh", "-c", "echo boom >&2; exit 3"])
    start = time.monotonic()
    with pytest.raises(BenchError, match="no exit within"):
        netns.run(["sleep", "5"], timeout=0.2)
    assert time.monotonic() - start < 2
    assert netns.run(["sh", "-c", "exit 1"], check=False).returncode == 1


def test_call_in_unknown_namespace_is_bench_error() -> None:
    with pytest.raises(BenchError, match="pbl-no-such-ns"):
        netns.call_in("pbl-no-such-ns", lambda: None, timeout=2)


def test_have_netns_without_root_gives_reason() -> None:
    code = ("import os\n"
            "from posbench.core.netns import have_netns\n"
            "if os.geteuid() == 0: os.setgid(65534); os.setuid(65534)\n"
            "print(have_netns())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20,
                          cwd=Path(__file__).resolve().parents[2])
    assert "(False, 'the network lab needs root" in done.stdout, done.stderr
