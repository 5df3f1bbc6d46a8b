"""Host connectivity: address conflicts on the unit's LAN, the host port, ISO 8583 echo series.

Valid on a real bench too: ``[network]`` in bench.toml names the unit's address and the bench's
interface on its LAN; ``[host] address`` is where the unit is pointed. On the virtual bench the
same tests run inside the network lab's namespaces, against real packets.
"""
import statistics

import pytest

from posbench.diagnosis.network import EchoPath, echo_paths, echoes_judged
from posbench.spec.measures import Measure, measures
from posbench.core.stats import percentile
from posbench.drivers.host.arp_probe import arp_probe
from posbench.drivers.host.echo import echo_series
from posbench.drivers.host.reachability import probe_port


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


@measures(Measure("arp_macs", "MACs", "arp_macs", bears_on=("ip_conflict",), evidence="decisive"))
def test_address_conflict(network, profile, record):
    """RFC 5227 probe for the unit's address: more than one MAC answering is a conflict."""
    result = arp_probe(network.interface, network.unit_address, timeout_s=1.5, count=3, netns=network.netns)
    macs = sorted(result.macs)
    record.measure("arp_macs", len(macs),
                   note=f"{len(macs)} hosts answer for {network.unit_address}: {', '.join(macs)}")
    if not macs:
        record.evidence("ip_conflict", 1 / 4, f"nobody answered ARP for {network.unit_address}: "
                        "is the unit on this LAN at all?")


@measures(Measure("host_port_state", "", "host_port_state", bears_on=("firewall",), evidence="decisive"))
def test_host_port(host_address, network, profile, record):
    """The acquirer's port from the unit's LAN: open, refused (rejected) or filtered (dropped)."""
    host, port = host_address
    probe = probe_port(host, port, timeout_s=1.0, attempts=3, netns=network.netns)
    how = {"refused": "rejected: connections are actively refused (a firewall REJECT rule or no "
                      "listener)", "filtered": "dropped: connection attempts get no answer at all "
                      "(a firewall DROP rule)"}.get(probe.state, "open")
    times = ", ".join(f"{t:.3f}" for t in probe.times_s)
    record.measure("host_port_state", probe.state,
                   note=f"{host}:{port} is {how}; attempts took {times} s ({probe.detail})")


def _echo_measures(record, path: str, answered: list[float | None], reconnects: int | None,
                   kind: str = "echoes") -> EchoPath:
    """Loss, p95 latency and reconnects of one path's round trips (``answered``: seconds each, None
    for one lost). ``kind`` names them: ISO 8583 echoes, or TCP handshakes to an acquirer the bench
    may send nothing (a handshake is one round trip, as an echo's network share is); their
    reconnects (None) are not counted: every handshake is a connection of its own."""
    loss = round(sum(a is None for a in answered) / len(answered), 3) if answered else 1.0
    ok = sorted(a for a in answered if a is not None)
    p95 = percentile(ok, 95)
    p95 = round(p95, 4) if p95 is not None else None
    record.measure(f"echo_loss_{path}", loss,
                   note=f"{sum(a is None for a in answered)} of {len(answered)} {kind} unanswered ({path})")
    record.measure(f"echo_p95_s_{path}", p95,
                   note=f"{kind} latency ({path}): p50 {statistics.median(ok) if ok else float('nan'):.3f} s, "
                        f"max {max(ok) if ok else float('nan'):.3f} s")
    if reconnects is None:
        record.unmeasured(f"echo_reconnects_{path}", f"{kind}: each is a connection of its own, none re-opened")
    else:
        record.measure(f"echo_reconnects_{path}", reconnects, note=f"connections re-opened after a failed echo ({path})")
    return EchoPath(path, loss, p95, what="TCP handshakes" if reconnects is None else "echoes")


ECHOES = tuple(Measure(f"echo_{what}_{path}", unit, limit, bears_on=("network_unstable",),
                       needs="echo" if path == "unit" else None)
               for path in ("bench", "unit")
               for what, unit, limit in (("loss", "ratio", "echo_loss"), ("p95_s", "s", "echo_p95_s"),
                                         ("reconnects", "count", "echo_reconnects"))
               if (what, path) != ("loss", "unit"))
"""Echo loss, p95 latency and reconnects from the bench and through the unit."""
UNIT_LOSS = Measure("echo_loss_unit", "ratio", "echo_loss", bears_on=("network_unstable", "firewall"),
                    needs=("echo", "host_diagnosis"))
"""The unit's echoes lost, or where it cannot echo, the share of its own host checks (ZVT
diagnosis) that failed."""


@measures(*ECHOES, UNIT_LOSS)
def test_echo_series(host_address, network, terminal, unit, profile, record, bench_config):
    """0800/0810 echoes (70=301) from the bench and through the unit: loss, latency, reconnects.
    To a terminal's own acquirer (a [host] without posbench's log) the bench sends no message of
    its own: its path is timed by TCP handshakes instead (one round trip each, like an echo's
    network share).

    Both paths bad: the network between LAN and host (``network_unstable``). Only the unit's path
    bad: something about the unit's own place on the LAN (an address conflict, its link).
    """
    n = profile.tests.echoes
    host, port = host_address
    probe = probe_port(host, port, timeout_s=1.0, attempts=3, netns=network.netns)
    if bench_config.host.ours:
        direct = echo_series(host_address, count=n, interval_s=0.05, timeout_s=1.0, netns=network.netns)
        answered_directly = direct.answered
        bench = _echo_measures(record, "bench", direct.latencies_s + [None] * (direct.sent - direct.answered),
                               direct.reconnects)
    else:  # the terminal's own acquirer: the bench sends it no message, it only opens TCP handshakes
        shakes = probe_port(host, port, timeout_s=1.0, attempts=n, netns=network.netns, interval_s=0.05)
        answered_directly = shakes.outcomes.count("open")
        bench = _echo_measures(record, "bench", [t if o == "open" else None
                                                 for t, o in zip(shakes.times_s, shakes.outcomes)], None,
                               kind="TCP handshakes (the terminal's own acquirer: the bench sends it no message)")
    if record.wanted("echo_p95_s_unit"):
        answered: list[float | None] = []
        reconnects = 0
        while len(answered) < n:
            got = unit.ask(record, lambda: terminal.echo(min(4, n - len(answered)), per_echo_s=1.0),
                           "echo through the unit")
            answered += list(got.latencies_s)
            reconnects += got.reconnects
        through_unit = _echo_measures(record, "unit", answered, reconnects)
    elif record.wanted("echo_loss_unit"):  # its own host check (ZVT diagnosis): reached, or not
        checks = [unit.ask(record, terminal.host_check, "host check through the unit") for _ in range(max(2, n // 4))]
        failed = [c for c in checks if not c.ok]
        # A host check holds at least one round trip to the host, plus the unit's own work: its
        # p95 is an upper bound of the unit's echo latency, judged only together with the bench's.
        through_unit = EchoPath("unit", round(len(failed) / len(checks), 3),
                                percentile([c.duration_s for c in checks], 95), timed=False)
        record.measure("echo_loss_unit", through_unit.loss,
                       note=f"{len(failed)} of {len(checks)} host checks by the unit failed"
                       + (f" ({failed[0].reason})" if failed else ""))
    else:
        through_unit = None
    if echoes_judged(probe.state, answered_directly):
        record.add(echo_paths(bench, through_unit, record.limit("echo_loss_bench"), record.limit("echo_p95_s_bench")))
