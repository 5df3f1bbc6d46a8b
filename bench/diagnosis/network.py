"""Network rules (``tests/hil/test_network.py``): what echoes from the bench and through the unit,
judged together, say about the path to the acquirer's host and the unit's place on its LAN."""
from __future__ import annotations

from dataclasses import dataclass

from posbench.core.limits import Limit
from posbench.spec.evidence import Evidence


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


def echo_paths(bench: EchoPath, unit: EchoPath | None, loss_limit: Limit, p95_limit: Limit) -> list[Evidence]:
    """Echoes from the bench and through the unit, judged together against the limits of
    ``echo_loss_bench`` and ``echo_p95_s_bench`` (``loss_limit``, ``p95_limit``; call only when
    the host port is open to all): the evidence they give.

    Both paths bad: the network between the LAN and the host (``network_unstable``), each symptom
    seen on both its own observation; latency from two vantage points is decisive. Only the
    unit's path bad: the unit's own place on the LAN (weakly ``ip_conflict``). A unit whose
    protocol can neither echo nor check its host (``unit`` None: Concert, Caisse-AP) leaves the
    bench's echoes alone: the bench sits on the unit's LAN, so bad ones point at the path to the
    host, from one vantage point only. The bench's path bad and the unit's untimed host checks
    passing: the path to the host all the same (strong; see the rule's comment)."""
    found: list[Evidence] = []
    if unit is None:
        lossy, slow_ = not loss_limit.check(bench.loss), bench.p95 is not None and not p95_limit.check(bench.p95)
        if lossy or slow_:
            found.append(Evidence.of("network_unstable", "decisive" if lossy and slow_ else "strong",
                                     f"the bench's {bench.what} to the host lose {bench.loss:.0%}"
                                     + (f", p95 {bench.p95:.3f} s" if bench.p95 is not None else "")
                                     + " (the unit's protocol cannot echo: the bench's vantage point only)",
                                     measurement="echo_loss_bench" if lossy else "echo_p95_s_bench",
                                     value=bench.loss if lossy else bench.p95,
                                     limit=str(loss_limit if lossy else p95_limit)))
        return found

    def slow(p: EchoPath) -> bool:
        return p.p95 is not None and not p95_limit.check(p.p95)

    def bad(p: EchoPath, latency_counts: bool = True) -> bool:
        return not loss_limit.check(p.loss) or (latency_counts and slow(p))

    if bad(bench) and bad(unit):
        if not loss_limit.check(bench.loss) and not loss_limit.check(unit.loss):
            found.append(Evidence.of("network_unstable", "strong",
                                     f"round trips lose {bench.loss:.0%} from the bench ({bench.what}) and "
                                     f"{unit.loss:.0%} from the unit: "
                                     "the path to the host drops packets", measurement="echo_loss_bench",
                                     value=bench.loss, limit=str(loss_limit)))
        if slow(bench) and slow(unit):
            found.append(Evidence.of("network_unstable", "decisive",
                                     f"round-trip p95 {bench.p95:.3f} s from the bench ({bench.what}) and "
                                     f"{unit.p95:.3f} s from the unit"
                                     + ("" if unit.timed else " (its host checks)") + ": "
                                     "the path to the host is slow and jittery", measurement="echo_p95_s_bench",
                                     value=bench.p95, limit=str(p95_limit)))
    elif bad(unit, latency_counts=unit.timed):
        found.append(Evidence.of("ip_conflict", "weak",
                                 f"only the unit's echoes fail ({unit.loss:.0%} lost, the bench's {bench.loss:.0%}): "
                                 "the unit's own place on the LAN is at fault"))
    if not found and not unit.timed and bad(bench):
        # The unit's host checks (ZVT's diagnosis) run over TCP, whose retransmissions hide a lossy
        # path from them, and are not timed: passing, they do not clear the path the bench saw bad.
        # One vantage point only: strong from twice the loss limit (one round trip in twelve lost
        # on a loaded bench host is moderate).
        heavy = bench.loss >= 2 * (loss_limit.max or 0.0) or slow(bench)
        lossless = loss_limit.check(bench.loss)
        found.append(Evidence.of("network_unstable", "strong" if heavy else "moderate",
                                 f"the bench's {bench.what} to the host lose {bench.loss:.0%}"
                                 + (f", p95 {bench.p95:.3f} s" if bench.p95 is not None else "")
                                 + f"; the unit's host checks passed ({unit.loss:.0%} failed), but they are not "
                                 "timed and TCP's retransmissions hide lost packets from them",
                                 measurement="echo_p95_s_bench" if lossless else "echo_loss_bench",
                                 value=bench.p95 if lossless else bench.loss,
                                 limit=str(p95_limit if lossless else loss_limit)))
    return found
