"""Rules that read a whole run's measurements and tell the bench's mistakes from the unit's faults.

Tests record what they measured; the rules here look across tests, where one test alone cannot
tell who is wrong. Each rule is a function of the ``RunRecord`` that returns the bench errors
it found and takes out of the run what those errors make meaningless.
"""
from __future__ import annotations

from bench.evidence import RunRecord

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


BENCH_RULES = (wrong_host_address,)


def apply_bench_rules(run: RunRecord) -> None:
    """Run every rule once; what they find joins the run's bench errors."""
    for rule in BENCH_RULES:
        for error in rule(run):
            if error not in run.bench_errors:
                run.bench_errors.append(error)
