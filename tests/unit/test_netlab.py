"""The network lab on real namespaces, veths, a bridge and nftables, and the probes run in it.

Needs root: without it every test here skips with ``have_netns()``'s reason, except in CI
(``CI`` set), where the lab must run and a missing capability fails instead.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from posbench.core.errors import BenchError
from posbench.core import netns
from posbench.sim.net.netlab import NetLab, root_links, root_nft_tables, sweep_stale
from posbench.drivers.host.arp_probe import arp_probe
from posbench.drivers.host.echo import echo_series
from posbench.drivers.host.log import HostLog
from posbench.drivers.host.reachability import probe_port
from posbench.drivers.host.simulator import HostSimulator

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]


def need_lab() -> None:
    ok, reason = netns.have_netns()
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the network lab, but: {reason}")
        pytest.skip(reason)


@contextlib.contextmanager
def running(log_dir: Path, faults: dict[str, float], firewall_mode: str | None = None,
            seed: int = 1) -> Iterator[tuple[NetLab, HostSimulator]]:
    """A lab with the host simulator listening in its host namespace, faults applied."""
    need_lab()
    lab = NetLab(seed, faults, firewall_mode=firewall_mode)
    sim: HostSimulator | None = None
    try:
        lab.start()
        sim = HostSimulator((lab.host_ip, 0), log_path=log_dir / f"host-{lab.namespaces[0]}.jsonl",
                            seed=seed, listen_sock=lab.host_listen_socket()).start()
        lab.apply_faults(sim.address[1])
        yield lab, sim
    finally:
        if sim is not None:
            sim.stop()
        lab.close()


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NetLab, HostSimulator]]:
    with running(tmp_path_factory.mktemp("healthy"), {}) as pair:
        yield pair


@pytest.fixture(scope="module")
def conflict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NetLab, HostSimulator]]:
    with running(tmp_path_factory.mktemp("conflict"), {"ip_conflict": 1.0}) as pair:
        yield pair


def arping(lab: NetLab) -> subprocess.CompletedProcess[str]:
    """Debian's arping (Thomas Habets' 2.x) from the bench PC: RFC 5227 style source 0.0.0.0,
    ``-d`` = exit 1 when two different MACs answer (in this arping ``-D`` only changes the display)."""
    return subprocess.run(["ip", "netns", "exec", lab.bench_ns, "arping", "-0", "-d", "-c", "3", "-w", "2",
                           "-i", lab.bench_iface, lab.unit_ip], capture_output=True, text=True, timeout=15)


# -- healthy ----------------------------------------------------------------------------------
def test_healthy_arp_probe_finds_one_mac(healthy: tuple[NetLab, HostSimulator]) -> None:
    lab, _ = healthy
    result = arp_probe(lab.bench_iface, lab.unit_ip, timeout_s=0.6, count=3, netns=lab.bench_ns)
    assert result.macs == {lab.unit_mac}
    assert result.replies >= 1 and result.probes_sent == 3 and not result.conflict
    assert 0.6 <= result.duration_s < 1.5


def test_healthy_arping_agrees(healthy: tuple[NetLab, HostSimulator]) -> None:
    lab, _ = healthy
    done = arping(lab)
    assert done.returncode == 0, done.stdout + done.stderr
    assert lab.unit_mac in done.stdout and lab.neighbour_mac not in done.stdout


def test_healthy_port_open_and_echo_clean(healthy: tuple[NetLab, HostSimulator]) -> None:
    lab, sim = healthy
    probe = probe_port(lab.host_ip, lab.host_port, timeout_s=1.0, attempts=3, netns=lab.bench_ns)
    assert probe.state == "open" and max(probe.times_s) < 0.1
    for ns, tid in ((lab.bench_ns, "BENCHPC1"), (lab.unit_ns, "UNIT0001")):
        stats = echo_series((lab.host_ip, lab.host_port), count=10, interval_s=0.0, timeout_s=1.0,
                            netns=ns, terminal_id=tid)
        assert (stats.answered, stats.loss, stats.reconnects) == (10, 0.0, 0), stats.failures
        assert stats.p95_s is not None and stats.p95_s < 0.05
    # the host saw each sender by its own LAN address: routed through the router, not NATed
    peers = {r.get("tid"): r.get("peer", "") for r in HostLog(sim.log_path).records() if r.get("dir") == "in"}
    assert peers["BENCHPC1"].startswith(lab.bench_ip + ":")
    assert peers["UNIT0001"].startswith(lab.unit_ip + ":")


def test_lab_traffic_stays_in_namespaces(healthy: tuple[NetLab, HostSimulator]) -> None:
    lab, _ = healthy
    root_before = os.readlink("/proc/thread-self/ns/net")
    inside = netns.call_in(lab.unit_ns, lambda: os.readlink("/proc/thread-self/ns/net"))
    assert inside != root_before
    assert os.readlink("/proc/thread-self/ns/net") == root_before  # the caller never moved
    # the unit's address exists in the unit namespace only
    sock = netns.socket_in(lab.unit_ns)
    with sock:
        sock.bind((lab.unit_ip, 0))
    with socket.socket() as here, pytest.raises(OSError):
        here.bind((lab.unit_ip, 0))
    # nothing of the lab is in the root namespace
    assert not {"lan0", "acq0", "pblbr0"} & set(root_links())
    assert not [t for t in root_nft_tables() if t.startswith("pbl_")]


# -- ip_conflict ----------------------------------------------------------------------------
def test_conflict_arp_probe_finds_two_macs(conflict: tuple[NetLab, HostSimulator]) -> None:
    lab, _ = conflict
    result = arp_probe(lab.bench_iface, lab.unit_ip, timeout_s=0.6, count=3, netns=lab.bench_ns)
    assert result.macs == {lab.unit_mac, lab.neighbour_mac}
    assert result.conflict


def test_conflict_arping_reports_duplicate(conflict: tuple[NetLab, HostSimulator]) -> None:
    lab, _ = conflict
    done = arping(lab)
    assert done.returncode == 1, done.stdout + done.stderr
    assert lab.unit_mac in done.stdout and lab.neighbour_mac in done.stdout


def test_conflict_breaks_the_units_link_only(conflict: tuple[NetLab, HostSimulator]) -> None:
    lab, _ = conflict
    address = (lab.host_ip, lab.host_port)
    # spread over > 1 s: the neighbour announces itself every 0.25 s at severity 1
    # (measured: 38..100 % loss over such a series; the unit wins its address back at times)
    unit = echo_series(address, count=10, interval_s=0.2, timeout_s=0.5, netns=lab.unit_ns)
    assert unit.loss >= 0.25, unit
    assert unit.reconnects >= 2
    bench = echo_series(address, count=5, interval_s=0.0, timeout_s=1.0, netns=lab.bench_ns)
    assert bench.loss == 0.0, bench.failures


# -- firewall -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "state", "detail"), [
    ("drop", "filtered", "no answer within"),
    ("reject", "refused", "ECONNREFUSED"),
    ("prohibit", "refused", "EHOSTUNREACH"),
])
def test_firewall_variants(tmp_path: Path, mode: str, state: str, detail: str) -> None:
    with running(tmp_path, {"firewall": 1.0}, firewall_mode=mode) as (lab, _):
        probe = probe_port(lab.host_ip, lab.host_port, timeout_s=0.5, attempts=2, netns=lab.bench_ns)
        assert probe.state == state and detail in probe.detail
        if state == "filtered":
            assert all(t >= 0.5 for t in probe.times_s)
        else:
            assert all(t < 0.2 for t in probe.times_s)
        rules = netns.run(["ip", "netns", "exec", lab.router_ns, "nft", "list", "table", "ip", "pbl_firewall"]).stdout
        assert f"tcp dport {lab.host_port}" in rules
        # the unit is blocked as well: the firewall is in the path, not on the bench
        stats = echo_series((lab.host_ip, lab.host_port), count=2, interval_s=0.0, timeout_s=0.5,
                            netns=lab.unit_ns)
        assert stats.answered == 0


def test_firewall_mode_follows_severity_unless_given() -> None:
    assert NetLab(1, {"firewall": 1.0}).firewall_mode == "drop"
    assert NetLab(1, {"firewall": 0.5}).firewall_mode == "drop"
    assert NetLab(1, {"firewall": 0.3}).firewall_mode == "reject"
    assert NetLab(1, {"firewall": 0.3}, firewall_mode="prohibit").firewall_mode == "prohibit"
    assert NetLab(1, {}).firewall_mode is None
    with pytest.raises(ValueError):
        NetLab(1, {"firewall": 0.0})
    with pytest.raises(ValueError):
        NetLab(1, {}, firewall_mode="maybe")


def test_firewall_also_blocks_the_relayed_path(tmp_path: Path) -> None:
    with running(tmp_path, {"firewall": 0.3, "network_unstable": 0.3}) as (lab, _):
        probe = probe_port(lab.host_ip, lab.host_port, timeout_s=1.5, attempts=2, netns=lab.bench_ns)
        assert probe.state == "refused" and "ECONNREFUSED" in probe.detail


# -- network_unstable ------------------------------------------------------------------------
def test_unstable_low_severity_is_visible(tmp_path: Path) -> None:
    with running(tmp_path, {"network_unstable": 0.3}) as (lab, sim):
        assert (lab.loss_pct, lab.delay_s) == (6, pytest.approx(0.15))
        stats = echo_series((lab.host_ip, lab.host_port), count=10, interval_s=0.0, timeout_s=1.5,
                            netns=lab.bench_ns)
        assert stats.loss >= 0.08 or (stats.p95_s is not None and stats.p95_s >= 0.3), stats
        assert stats.p50_s is None or stats.p50_s >= 0.15  # two legs of 0.15 +- 0.075 s
        rules = netns.run(["ip", "netns", "exec", lab.router_ns, "nft", "list", "table", "ip", "pbl_unstable"]).stdout
        assert "numgen random mod 100 < 6" in rules and "dnat to" in rules


def test_unstable_full_severity_is_worse(tmp_path: Path) -> None:
    with running(tmp_path, {"network_unstable": 1.0}) as (lab, _):
        stats = echo_series((lab.host_ip, lab.host_port), count=5, interval_s=0.0, timeout_s=1.5,
                            netns=lab.bench_ns)
        assert stats.loss >= 0.4 or (stats.p50_s is not None and stats.p50_s >= 0.5), stats


# -- cleanup ----------------------------------------------------------------------------------
def test_close_removes_everything_and_is_idempotent(tmp_path: Path) -> None:
    with running(tmp_path, {"ip_conflict": 0.5, "firewall": 0.3, "network_unstable": 0.2}) as (lab, _):
        names = lab.namespaces
        assert all(netns.ns_exists(n) for n in names)
    assert not set(names) & set(netns.list_netns())
    assert lab.leftovers() == []
    assert not {"lan0", "acq0", "pblbr0"} & set(root_links())
    assert not [t for t in root_nft_tables() if t.startswith("pbl_")]
    lab.close()  # a second close is a no-op


def test_failed_start_removes_what_was_built(monkeypatch: pytest.MonkeyPatch) -> None:
    need_lab()

    def broken(self: NetLab) -> None:
        raise BenchError("network lab", "injecting the address conflict", "test failure")

    monkeypatch.setattr(NetLab, "_inject_conflict", broken)
    lab = NetLab(1, {"ip_conflict": 1.0})
    with pytest.raises(BenchError, match="test failure"):
        lab.start()
    assert lab.leftovers() == []


KILLED_CHILD = """
import sys, time
from posbench.sim.net.netlab import NetLab
lab = NetLab(1, {"ip_conflict": 1.0}, name_prefix="pblk").start()
print(" ".join(lab.namespaces), flush=True)
time.sleep(60)
"""


def test_sweep_stale_removes_a_killed_owners_lab() -> None:
    need_lab()
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline() if child.stdout else ""
        names = line.split()
        assert len(names) == 6, child.stderr.read() if child.stderr else line
        assert all(netns.ns_exists(n) for n in names)
        mine = NetLab(2, {}, name_prefix="pblk").start()  # a live lab sweep_stale must not touch
        try:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
            assert all(netns.ns_exists(n) for n in names)  # SIGKILL left them behind
            removed = sweep_stale("pblk")
            assert sorted(removed) == sorted(names)
            assert not set(names) & set(netns.list_netns())
            assert all(netns.ns_exists(n) for n in mine.namespaces)
        finally:
            mine.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
        sweep_stale("pblk")
