"""Rules that turn what a terminal reported into evidence, and that tell the bench's mistakes
from the unit's faults.

Two kinds live here. Protocol rules: what a code the unit reported (an agent failure reason, a
protocol's result code, terminal status or lock bit) says about the causes of code 01, each
protocol's tables in its driver package; tests call them and stay free of cause tables. Bench rules: read a whole run's measurements, where one test
alone cannot tell who is wrong; each returns the bench errors it found and takes out of the run
what those errors (or the run as a whole) make meaningless.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from posbench.drivers import registry
from posbench.drivers.terminal import READ_PATH_CAUSE, LogRecord, SaleResult
from posbench.spec.evidence import Recorder, RunRecord

REACHED_HOST = {"sale_host_answered_rate": lambda v: v > 0, "echo_loss_unit": lambda v: v < 1}
"""Measurements that show the unit reached its acquirer host, and when they show it."""


def wrong_host_address(run: RunRecord) -> list[str]:
    """The bench's own probe of ``[host] address`` failed while the unit reached its host.

    The unit got its answers from a host the bench cannot find where bench.toml says it is: the
    description is wrong (or the bench is not on the unit's LAN), not the site's firewall.
    The probe's measurement and the evidence drawn from it are taken out of the run.
    """
    probes = [m for m in run.measurements if m.name == "host_port_state" and m.value != "open"]
    if not probes:
        return []
    reached = [m for m in run.measurements if m.name in REACHED_HOST and isinstance(m.value, (int, float))
               and REACHED_HOST[m.name](m.value)]
    if not reached:
        return []
    how = ", ".join(f"{m.name} = {m.value}" for m in reached)
    probe = probes[0]
    run.measurements[:] = [m for m in run.measurements if m not in probes]
    run.evidence[:] = [e for e in run.evidence if not (e.measurement == "host_port_state" and e.test == probe.test)]
    return [f"{probe.test}: [host] address in the bench description is wrong: the bench's probe found "
            f"the host port {probe.value}, yet the unit reached its host ({how}); point [host] address "
            "at the host the unit uses (and make sure the bench sits on the unit's LAN)"]


SALE_READ_TEST = "test_card_reads_in_sales["
"""The read-path sales (``tests/hil/test_read_paths.py``): one parametrized test per path."""


def refusals_on_every_path(run: RunRecord) -> list[str]:
    """The sales failed to read the card by every path: the terminal refused them all alike.

    A terminal that gives no reason for a refusal (Concert) refuses at once, before any card is
    read, for low voltage, a full memory, a diagnosis due or the abort key; each such refusal
    looks like a card not read by the path presented. One worn reader fails one path; all three
    failing together is the terminal's refusal, not three readers: that evidence is taken out
    (the readers stay judged by the bench's own readers). No bench error: returns nothing."""
    from_sales = [e for e in run.evidence if SALE_READ_TEST in e.test and e.cause in READ_PATH_CAUSE.values()]
    if {e.cause for e in from_sales} != set(READ_PATH_CAUSE.values()):
        return []
    run.evidence[:] = [e for e in run.evidence if e not in from_sales]
    return []


BENCH_RULES = (wrong_host_address, refusals_on_every_path)


def apply_bench_rules(run: RunRecord) -> None:
    """Run every rule once; what they find joins the run's bench errors."""
    for rule in BENCH_RULES:
        for error in rule(run):
            if error not in run.bench_errors:
                run.bench_errors.append(error)


# -- protocol rules -----------------------------------------------------------------------------
# Each protocol's codes and the causes they point to live in its driver package
# (``posbench.drivers.ecr.<protocol>.codes``); these dispatch to it by protocol name.
NETWORK_CAUSES = ("network_unstable", "firewall", "ip_conflict")

SALE_CAUSES = {name: registry.codes(name).SALE_CAUSES for name in registry.names()}
"""Causes a sale the unit failed itself can speak to, per protocol. A Concert refusal gives no
reason (status 7): it speaks to no cause by itself; the read-path sales and the host log do."""
STATUS_CAUSES = tuple(sorted({c for name in registry.names() for c in registry.codes(name).STATUS_CAUSES}))
"""Causes a terminal status code or lock bit can speak to (ZVT's, the one protocol that reports them)."""


def sale_failure_cause(protocol: str, sale: SaleResult) -> tuple[str, str] | None:
    """What a sale the unit failed itself (``posbench.drivers.terminal.SaleResult``) points to."""
    return registry.codes(protocol).sale_failure_cause(sale)


def sale_read_failure(protocol: str, sale: SaleResult, technology: str) -> str:
    """Why a sale did not read the card presented by ``technology`` ("" when it read it): the
    protocol's code with the technology the terminal reported (else the one presented). A
    refusal for another reason (host, keys) is no read error, nor is an abort before any card
    was read (ZVT 6C, Caisse-AP AF 08): a cashier's abort or a missed presentation is no reader
    fault. Concert has no result code: a refusal whose report carries no PAN is a card not read."""
    return registry.codes(protocol).sale_read_failure(sale, technology)


def judge_terminal_status(record: Recorder, protocol: str, status) -> None:
    """A terminal status code and lock bits (``posbench.drivers.terminal.Status``) as the declared
    measurements ``terminal_status`` and ``locks``, and the evidence each code gives."""
    codes = registry.codes(protocol)
    code = status.terminal_status
    if code is None:
        record.unmeasured("terminal_status", "the terminal's status enquiry gave no terminal status byte")
    else:
        record.measure("terminal_status", f"{code:02X}",
                       note=f"the terminal reports status {code:02X}: {status.terminal_status_text}")
        if (found := codes.status_cause(code)):
            record.evidence(found[0], found[1], f"the terminal reports status {code:02X}: "
                            f"{status.terminal_status_text}", measurement="terminal_status",
                            value=f"{code:02X}", limit=str(record.limit("terminal_status")))
    record.measure("locks", len(status.locks), note="locks set: " + (", ".join(status.locks) or "none"))
    for lock in status.locks:
        if (found := codes.lock_cause(lock)):
            record.evidence(found[0], found[1], f"the terminal has the lock \"{lock}\" set",
                            measurement="locks", value=lock, limit="none set")


# -- network rules ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EchoPath:
    """What the echoes of one vantage point gave: ``loss`` (ratio), ``p95`` (s, None if none came
    back); ``timed`` False when the p95 bounds the unit's own host checks, not echoes."""

    path: str
    loss: float
    p95: float | None
    timed: bool = True
    what: str = "echoes"
    """What the round trips were: ISO 8583 echoes, or TCP handshakes (a host the bench may not echo)."""


def echoes_judged(probe_state: str, bench_answered: int) -> bool:
    """Whether the echoes speak to the link at all: not when the host port is closed to everyone
    (the reachability test names that). An echo the host answered proves the port open even when
    every probe of it was lost (seen: network_unstable=1 over Caisse-AP lost 75 % of the bench's
    echoes and all three probes, and no cause was named)."""
    return probe_state == "open" or bench_answered > 0


def judge_echo_paths(record: Recorder, bench: EchoPath, unit: EchoPath | None) -> None:
    """Echoes from the bench and through the unit, judged together against the limits of
    ``echo_loss_bench`` and ``echo_p95_s_bench`` (call only when the host port is open to all).

    Both paths bad: the network between the LAN and the host (``network_unstable``), each symptom
    seen on both its own observation; latency from two vantage points is decisive. Only the
    unit's path bad: the unit's own place on the LAN (weakly ``ip_conflict``). A unit whose
    protocol can neither echo nor check its host (``unit`` None: Concert, Caisse-AP) leaves the
    bench's echoes alone: the bench sits on the unit's LAN, so bad ones point at the path to the
    host, from one vantage point only. The bench's path bad and the unit's untimed host checks
    passing: the path to the host all the same (strong; see the rule's comment)."""
    loss_limit, p95_limit = record.limit("echo_loss_bench"), record.limit("echo_p95_s_bench")
    if unit is None:
        lossy, slow_ = not loss_limit.check(bench.loss), bench.p95 is not None and not p95_limit.check(bench.p95)
        if lossy or slow_:
            record.evidence("network_unstable", "decisive" if lossy and slow_ else "strong",
                            f"the bench's {bench.what} to the host lose {bench.loss:.0%}"
                            + (f", p95 {bench.p95:.3f} s" if bench.p95 is not None else "")
                            + " (the unit's protocol cannot echo: the bench's vantage point only)",
                            measurement="echo_loss_bench" if lossy else "echo_p95_s_bench",
                            value=bench.loss if lossy else bench.p95,
                            limit=str(loss_limit if lossy else p95_limit))
        return

    def slow(p: EchoPath) -> bool:
        return p.p95 is not None and not p95_limit.check(p.p95)

    def bad(p: EchoPath, latency_counts: bool = True) -> bool:
        return not loss_limit.check(p.loss) or (latency_counts and slow(p))

    judged = len(record.run.evidence)
    if bad(bench) and bad(unit):
        if not loss_limit.check(bench.loss) and not loss_limit.check(unit.loss):
            record.evidence("network_unstable", "strong",
                            f"round trips lose {bench.loss:.0%} from the bench ({bench.what}) and {unit.loss:.0%} "
                            "from the unit: "
                            "the path to the host drops packets", measurement="echo_loss_bench",
                            value=bench.loss, limit=str(loss_limit))
        if slow(bench) and slow(unit):
            record.evidence("network_unstable", "decisive",
                            f"round-trip p95 {bench.p95:.3f} s from the bench ({bench.what}) and {unit.p95:.3f} s "
                            "from the unit"
                            + ("" if unit.timed else " (its host checks)") + ": "
                            "the path to the host is slow and jittery", measurement="echo_p95_s_bench",
                            value=bench.p95, limit=str(p95_limit))
    elif bad(unit, latency_counts=unit.timed):
        record.evidence("ip_conflict", "weak",
                        f"only the unit's echoes fail ({unit.loss:.0%} lost, the bench's {bench.loss:.0%}): "
                        "the unit's own place on the LAN is at fault")
    if len(record.run.evidence) == judged and not unit.timed and bad(bench):
        # The unit's host checks (ZVT's diagnosis) run over TCP, whose retransmissions hide a lossy
        # path from them, and are not timed: passing, they do not clear the path the bench saw bad.
        # One vantage point only: strong from twice the loss limit (one round trip in twelve lost
        # on a loaded bench host is moderate).
        heavy = bench.loss >= 2 * (loss_limit.max or 0.0) or slow(bench)
        record.evidence("network_unstable", "strong" if heavy else "moderate",
                        f"the bench's {bench.what} to the host lose {bench.loss:.0%}"
                        + (f", p95 {bench.p95:.3f} s" if bench.p95 is not None else "")
                        + f"; the unit's host checks passed ({unit.loss:.0%} failed), but they are not timed and "
                        "TCP's retransmissions hide lost packets from them",
                        measurement="echo_loss_bench" if not loss_limit.check(bench.loss) else "echo_p95_s_bench",
                        value=bench.loss if not loss_limit.check(bench.loss) else bench.p95,
                        limit=str(loss_limit if not loss_limit.check(bench.loss) else p95_limit))


def brownout_sale_end(records: Sequence[LogRecord]) -> tuple[str, tuple[str, ...]]:
    """How the unit's journal says the sale under a brownout ended, from its SALE records
    (``LogRecord``) written since the sale began, with the events those records carry.

    ``"power_fail"``: the next boot marked it cut off (what a healthy unit does with a sale the
    power took). ``"approved"``: it ended approved with no power failure, so the unit finished the
    sale before the power went and only its answer to the bench was lost on the way (seen over
    labgrid, where the supply's command arrives later than on a local pty); nothing is left to
    reverse. ``"otherwise"``: it ended neither approved nor cut off (the application restarted in
    it, its answer lost): an approval the unit never reversed is then the unit losing its own sale.
    ``"none"``: no SALE record."""
    sales = [r for r in records if r.type == "SALE"]
    events = tuple(sorted({e for r in sales for e in r.events}))
    if not sales:
        return "none", events
    if any("POWER_FAIL" in r.events for r in sales):
        return "power_fail", events
    if all(r.display_code == "00" for r in sales):
        return "approved", events
    return "otherwise", events
