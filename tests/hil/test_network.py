"""Host connectivity: address conflicts on the unit's LAN, the host port, ISO 8583 echo series.

Valid on a real bench too: ``[network]`` in bench.toml names the unit's address and the bench's
interface on its LAN; ``[host] address`` is where the unit is pointed. On the virtual bench the
same tests run inside the network lab's namespaces, against real packets.
"""
import statistics

import pytest

from bench.stats import percentile
from drivers.host.arp_probe import arp_probe
from drivers.host.echo import echo_series
from drivers.host.reachability import probe_port


@pytest.fixture(scope="module")
def network(bench_config):
    if bench_config.network is None:
        pytest.skip("the bench description has no [network] section (unit address, bench interface)")
    return bench_config.network


@pytest.fixture(scope="module")
def host_address(bench_config):
    if bench_config.host is None:
        pytest.skip("the bench description has no [host] section: no acquirer host to reach")
    return bench_config.host.host_port


def test_address_conflict(network, profile, record):
    """RFC 5227 probe for the unit's address: more than one MAC answering is a conflict."""
    result = arp_probe(network.interface, network.unit_address, timeout_s=1.5, count=3, netns=network.netns)
    macs = sorted(result.macs)
    record.measure("arp_macs", len(macs), "MACs", profile.limits["arp_macs"], cause="ip_conflict",
                   strength="decisive",
                   note=f"{len(macs)} hosts answer for {network.unit_address}: {', '.join(macs)}")
    if not macs:
        record.evidence("ip_conflict", 1 / 4, f"nobody answered ARP for {network.unit_address}: "
                        "is the unit on this LAN at all?")


def test_host_port(host_address, network, profile, record):
    """The acquirer's port from the unit's LAN: open, refused (rejected) or filtered (dropped)."""
    host, port = host_address
    probe = probe_port(host, port, timeout_s=1.0, attempts=3, netns=network.netns)
    how = {"refused": "rejected: connections are actively refused (a firewall REJECT rule or no "
                      "listener)", "filtered": "dropped: connection attempts get no answer at all "
                      "(a firewall DROP rule)"}.get(probe.state, "open")
    times = ", ".join(f"{t:.3f}" for t in probe.times_s)
    record.measure("host_port_state", probe.state, "", profile.limits["host_port_state"], cause="firewall",
                   strength="decisive",
                   note=f"{host}:{port} is {how}; attempts took {times} s ({probe.detail})")


def _echo_measures(record, profile, path: str, answered: list[float | None], reconnects: int) -> tuple[float, float | None]:
    lim = profile.limits
    loss = round(sum(a is None for a in answered) / len(answered), 3) if answered else 1.0
    ok = sorted(a for a in answered if a is not None)
    p95 = percentile(ok, 95)
    p95 = round(p95, 4) if p95 is not None else None
    record.measure(f"echo_loss_{path}", loss, "ratio", lim["echo_loss"], bears_on="network_unstable",
                   note=f"{sum(a is None for a in answered)} of {len(answered)} echoes unanswered ({path})")
    record.measure(f"echo_p95_s_{path}", p95, "s", lim["echo_p95_s"], bears_on="network_unstable",
                   note=f"echo latency ({path}): p50 {statistics.median(ok) if ok else float('nan'):.3f} s, "
                        f"max {max(ok) if ok else float('nan'):.3f} s")
    record.measure(f"echo_reconnects_{path}", reconnects, "count", lim["echo_reconnects"],
                   note=f"connections re-opened after a failed echo ({path})")
    return loss, p95


def test_echo_series(host_address, network, terminal, ask, profile, record, needs):
    """0800/0810 echoes (70=301) from the bench and through the unit: loss, latency, reconnects.

    Both paths bad: the network between LAN and host (``network_unstable``). Only the unit's path
    bad: something about the unit's own place on the LAN (an address conflict, its link).
    """
    n = profile.tests.echoes
    probe = probe_port(*host_address, timeout_s=1.0, attempts=3, netns=network.netns)
    direct = echo_series(host_address, count=n, interval_s=0.05, timeout_s=1.0, netns=network.netns)
    d_loss, d_p95 = _echo_measures(record, profile, "bench", direct.latencies_s + [None] * (direct.sent - direct.answered),
                                   direct.reconnects)
    unit: list[float | None] = []
    reconnects = 0
    unit_timed = needs("echo", "echo_p95_s_unit", "echo_reconnects_unit", causes=("network_unstable",), skip=False)
    if unit_timed:
        while len(unit) < n:
            got = ask(lambda: terminal.echo(min(4, n - len(unit)), per_echo_s=1.0), "echo through the unit")
            unit += list(got.latencies_s)
            reconnects += got.reconnects
        u_loss, u_p95 = _echo_measures(record, profile, "unit", unit, reconnects)
    else:  # the unit's own host check (ZVT diagnosis): whether it reaches its host, not how fast
        needs("host_diagnosis", "echo_loss_unit", causes=("network_unstable", "firewall"))
        checks = [ask(terminal.host_check, "host check through the unit") for _ in range(max(2, n // 4))]
        failed = [c for c in checks if not c.ok]
        # A host check holds at least one round trip to the host, plus the unit's own work: its
        # p95 is an upper bound of the unit's echo latency, judged only together with the bench's.
        u_loss, u_p95 = round(len(failed) / len(checks), 3), percentile([c.duration_s for c in checks], 95)
        record.measure("echo_loss_unit", u_loss, "ratio", profile.limits["echo_loss"],
                       bears_on=("network_unstable", "firewall"),
                       note=f"{len(failed)} of {len(checks)} host checks by the unit failed"
                       + (f" ({failed[0].reason})" if failed else ""))
    lim = profile.limits
    if probe.state != "open":
        return  # the port is closed to everyone: the reachability test names that, not a flaky link
    bad = lambda loss, p95: not lim["echo_loss"].check(loss) or (p95 is not None and not lim["echo_p95_s"].check(p95))  # noqa: E731
    if bad(d_loss, d_p95) and bad(u_loss, u_p95):
        # Each symptom seen on both paths is its own observation: loss, and latency.
        if not lim["echo_loss"].check(d_loss) and not lim["echo_loss"].check(u_loss):
            record.evidence("network_unstable", "strong",
                            f"echoes lose {d_loss:.0%} from the bench and {u_loss:.0%} from the unit: "
                            "the path to the host drops packets", measurement="echo_loss_bench",
                            value=d_loss, limit=str(lim["echo_loss"]))
        slow = [p for p in (d_p95, u_p95) if p is not None and not lim["echo_p95_s"].check(p)]
        if len(slow) == 2:  # measured from two vantage points: what network_unstable means
            record.evidence("network_unstable", "decisive",
                            f"echo p95 {d_p95:.3f} s from the bench and {u_p95:.3f} s from the unit"
                            + ("" if unit_timed else " (its host checks)") + ": "
                            "the path to the host is slow and jittery", measurement="echo_p95_s_bench",
                            value=d_p95, limit=str(lim["echo_p95_s"]))
    elif bad(u_loss, u_p95 if unit_timed else None):
        record.evidence("ip_conflict", "weak",
                        f"only the unit's echoes fail ({u_loss:.0%} lost, the bench's {d_loss:.0%}): "
                        "the unit's own place on the LAN is at fault")
