"""Bench rules: read a whole run, where one test alone cannot tell who is wrong, and tell the
bench's mistakes from the unit's faults.

Each rule returns what it found (``BenchCheck``: bench errors, and the measurements and evidence
those errors, or the run as a whole, make meaningless); it never edits the run. The caller applies
what ``check_bench`` found with ``BenchCheck.apply``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from posbench.drivers.terminal import READ_PATH_CAUSE
from posbench.spec.evidence import Evidence, Measurement, RunRecord

REACHED_HOST = {"sale_host_answered_rate": lambda v: v > 0, "echo_loss_unit": lambda v: v < 1}
"""Measurements that show the unit reached its acquirer host, and when they show it."""

SALE_READ_TEST = "test_card_reads_in_sales["
"""The read-path sales (``tests/hil/test_read_paths.py``): one parametrized test per path."""


@dataclass
class BenchCheck:
    """What bench rules found: bench errors, and what to take out of the run."""

    errors: list[str] = field(default_factory=list)
    withdrawn_measurements: list[Measurement] = field(default_factory=list)
    withdrawn_evidence: list[Evidence] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.errors or self.withdrawn_measurements or self.withdrawn_evidence)

    def apply(self, run: RunRecord) -> None:
        """Take the withdrawn measurements and evidence out of ``run``; its bench errors gain
        those not already named."""
        run.measurements[:] = [m for m in run.measurements if m not in self.withdrawn_measurements]
        run.evidence[:] = [e for e in run.evidence if e not in self.withdrawn_evidence]
        for error in self.errors:
            if error not in run.bench_errors:
                run.bench_errors.append(error)


def wrong_host_address(run: RunRecord) -> BenchCheck:
    """The bench's own probe of ``[host] address`` failed while the unit reached its host.

    The unit got its answers from a host the bench cannot find where bench.toml says it is: the
    description is wrong (or the bench is not on the unit's LAN), not the site's firewall.
    The probe's measurement and the evidence drawn from it are withdrawn.
    """
    probes = [m for m in run.measurements if m.name == "host_port_state" and m.value != "open"]
    if not probes:
        return BenchCheck()
    reached = [m for m in run.measurements if m.name in REACHED_HOST and isinstance(m.value, (int, float))
               and REACHED_HOST[m.name](m.value)]
    if not reached:
        return BenchCheck()
    how = ", ".join(f"{m.name} = {m.value}" for m in reached)
    probe = probes[0]
    return BenchCheck(
        [f"{probe.test}: [host] address in the bench description is wrong: the bench's probe found "
         f"the host port {probe.value}, yet the unit reached its host ({how}); point [host] address "
         "at the host the unit uses (and make sure the bench sits on the unit's LAN)"],
        probes, [e for e in run.evidence if e.measurement == "host_port_state" and e.test == probe.test])


def refusals_on_every_path(run: RunRecord) -> BenchCheck:
    """The sales failed to read the card by every path: the terminal refused them all alike.

    A terminal that gives no reason for a refusal (Concert) refuses at once, before any card is
    read, for low voltage, a full memory, a diagnosis due or the abort key; each such refusal
    looks like a card not read by the path presented. One worn reader fails one path; all three
    failing together is the terminal's refusal, not three readers: that evidence is withdrawn
    (the readers stay judged by the bench's own readers). No bench error."""
    from_sales = [e for e in run.evidence if SALE_READ_TEST in e.test and e.cause in READ_PATH_CAUSE.values()]
    if {e.cause for e in from_sales} != set(READ_PATH_CAUSE.values()):
        return BenchCheck()
    return BenchCheck(withdrawn_evidence=from_sales)


BENCH_RULES: tuple[Callable[[RunRecord], BenchCheck], ...] = (wrong_host_address, refusals_on_every_path)


def check_bench(run: RunRecord) -> BenchCheck:
    """Every bench rule once, each reading the run as the rules before it would leave it; what
    they found together (``run`` itself is not changed)."""
    found = BenchCheck()
    for rule in BENCH_RULES:
        seen = replace(run, measurements=[m for m in run.measurements if m not in found.withdrawn_measurements],
                       evidence=[e for e in run.evidence if e not in found.withdrawn_evidence])
        more = rule(seen)
        found.errors += [e for e in more.errors if e not in found.errors]
        found.withdrawn_measurements += more.withdrawn_measurements
        found.withdrawn_evidence += more.withdrawn_evidence
    return found
