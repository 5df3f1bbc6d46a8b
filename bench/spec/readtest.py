"""A read path's health as measurements and evidence: the SPRT's verdict, reads used, the rate."""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Callable, NamedTuple

from posbench.core import progress
from posbench.drivers import registry
from posbench.spec.evidence import Evidence, Recorder
from posbench.core.limits import HEALTHY, Limit
from posbench.spec.measures import Measure
from posbench.setup.profile import SprtSpec
from posbench.spec.sprt import Sprt, SprtResult
from posbench.core.errors import UnitError, UnitNotResponding
from posbench.drivers.actuator.base import TechnicianGone

if TYPE_CHECKING:
    from posbench.drivers.actuator.base import Actuator
    from posbench.drivers.terminal import SaleResult

MAX_INTERRUPTIONS = 5
"""Reads cut off (the reader left the bus, the unit reset) before the path counts as unjudgeable."""
MAX_RETRIES = 3
"""Times one read is presented again after the technician said the card was not presented
(late, the wrong way) before the test stops with ``TechnicianGone`` (a bench error)."""


class NotPresented(Exception):
    """A read that saw no card because none was presented as it should have been (the technician
    was late, presented it the wrong way or asked to try again): an operator event, not a read."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class EndedUnpresented(NotPresented):
    """A read the unit ended before the card could be presented (a terminal refusing a sale at
    once: low voltage, memory full, a diagnosis due), the technician punctual: the unit's refusal,
    yet no read of its reader. The read is done again; the refusals are counted apart."""


def no_card(actuator: Actuator, kind: str, reason: str = "no_card") -> str:
    """A read saw no card after an action of ``kind``: whoever presented it says whether it was.
    "presented": the failed read's ``reason`` (the reader saw nothing: the unit's); "refused":
    ``EndedUnpresented``; otherwise ``NotPresented`` (the read is done again).
    ``Skipped``/``TechnicianGone`` pass through."""
    answer = actuator.missed(kind)
    if answer == "presented":
        return reason
    if answer == "refused":
        raise EndedUnpresented(kind)
    raise NotPresented(kind)


def gone(kind: str, tries: int) -> TechnicianGone:
    """The error that ends a test whose card was not presented in ``tries`` tries."""
    return TechnicianGone("technician", f"presenting the card ({kind})",
                          f"not presented in {tries} tries: the technician did not come back")


def until_presented(actuator: Actuator, kind: str, attempt: Callable[[], bool]) -> tuple[bool, int]:
    """Run ``attempt()`` (present a card and look for it; True when it was seen) until the card was
    seen or the actuator says it was presented or that the unit ended before it could be; returns
    (seen, operator events). Either is the unit's answer (seen False); more than ``MAX_RETRIES``
    retries: ``TechnicianGone``."""
    for retries in range(MAX_RETRIES + 1):
        if attempt():
            return True, retries
        if actuator.missed(kind) in ("presented", "refused"):
            return False, retries
    raise gone(kind, MAX_RETRIES + 1)


def sale_saw_no_card(protocol: str, sale: SaleResult) -> bool:
    """Did the terminal end the sale without a card to read (its card wait timed out, or nothing
    it could read was presented)? Each protocol's ``codes.saw_no_card`` says (ZVT: 6C with no
    card technology; Caisse-AP: AF 08; Concert: a refusal whose report carries no PAN)."""
    return registry.codes(protocol).saw_no_card(sale)


class PathReads(NamedTuple):
    """What ``decide_path`` found: the SPRT's result, reads cut off, operator events (cards not
    presented in time or the right way, each read again: never a read of the unit)."""
    result: SprtResult
    interruptions: int
    operator_events: int
    refusals: int = 0
    """Reads the unit ended before the card could be presented (``EndedUnpresented``)."""


class ReadInterrupted(Exception):
    """A read that never happened: the reader vanished or the unit reset under it.

    Not a failed read of the path (a head or antenna did not fail): it is retried, and the
    interruption itself is evidence about the unit's power or board.
    """

    def __init__(self, what: str, t0: float, t1: float):
        super().__init__(what)
        self.what, self.t0, self.t1 = what, t0, t1


def decide_path(spec: SprtSpec, read_once: Callable[[int], str],
                on_interrupt: Callable[[ReadInterrupted], None] = lambda exc: None, what: str = "reads"
                ) -> PathReads:
    """Read until the SPRT decides; returns its result, interrupted reads and operator events.

    ``read_once(n)`` performs read ``n`` and returns "" for a good read or the failure reason
    ("t1_parity", "no_card", "timeout", ...); it raises ``ReadInterrupted`` for a read that was
    cut off, which ``on_interrupt`` handles (reconnect, evidence) before the read is tried again,
    and ``NotPresented`` (``no_card``) for a card not presented, read again as the same read ``n``
    (an operator event, never a failed read; after ``MAX_RETRIES`` of one read ``TechnicianGone``).
    ``EndedUnpresented`` (the unit refused before the card came) is read again as the same read ``n``
    and counted apart (``PathReads.refusals``): the unit's, but no read of the path.
    After ``MAX_INTERRUPTIONS`` reads cut off, or as many refused in a row (a terminal that refuses
    every sale at once), the test stops with whatever it has (verdict ``undecided``).
    ``what`` names the reads while they are shown (``posbench.core.progress``).
    """
    test = Sprt(spec.p0, spec.p1, spec.alpha, spec.beta, spec.max_trials)
    reasons: Counter[str] = Counter()
    interruptions = n = events = retries = refusals = refused_in_a_row = 0
    with progress.waiting(f"the {what} to decide the path", None):
        while not test.done:
            if not retries:
                n += 1
            progress.step(what, n, spec.max_trials)
            outcome = _read(read_once, n, on_interrupt)
            if isinstance(outcome, NotPresented) and not isinstance(outcome, EndedUnpresented):
                events += 1
                retries += 1
                if retries > MAX_RETRIES:
                    raise gone(outcome.kind, retries)
                continue
            retries = 0
            if isinstance(outcome, EndedUnpresented):
                refusals += 1
                refused_in_a_row += 1
                if refused_in_a_row >= MAX_INTERRUPTIONS:
                    break
                n -= 1  # the same read again
                continue
            refused_in_a_row = 0
            if outcome is None:
                interruptions += 1
                if interruptions >= MAX_INTERRUPTIONS:
                    break
                continue
            if outcome:
                reasons[outcome] += 1
            test.update(bool(outcome))
    return PathReads(test.result(dict(reasons)), interruptions, events, refusals)


def _read(read_once: Callable[[int], str], n: int,
          on_interrupt: Callable[[ReadInterrupted], None]) -> str | NotPresented | None:
    """Read ``n``'s failure reason ("" when good), None when it was cut off (handled), the
    ``NotPresented`` when no card was presented, the ``EndedUnpresented`` when the unit did not
    wait for it."""
    try:
        return read_once(n)
    except ReadInterrupted as exc:
        on_interrupt(exc)
        return None
    except NotPresented as exc:  # and EndedUnpresented
        return exc
    except UnitNotResponding:
        return "timeout"
    except UnitError as exc:
        return type(exc).__name__


def path_measures(path: str, spec: Callable[..., SprtSpec | None], cause: str) -> tuple[Measure, ...]:
    """The declared measurements of a read path (``record_path``): ``spec(profile, **params)``
    gives the path's SPRT from the profile, or None when the profile names no read paths;
    ``cause`` is what a faulty path points to (its head, antenna or contacts)."""
    def limit(make: Callable[[SprtSpec], Limit]):
        return lambda profile, **params: make(s) if (s := spec(profile, **params)) is not None else None
    return (Measure(f"{path}_sprt_verdict", "", limit(lambda s: HEALTHY), bears_on=(cause,)),
            Measure(f"{path}_failure_rate", "ratio", limit(lambda s: Limit(max=s.p1)), bears_on=(cause,)),
            Measure(f"{path}_reads", "count", limit(lambda s: Limit(max=s.max_trials))),
            Measure(f"{path}_interruptions", "count",
                    lambda profile, **params: profile.limit("reader_interruptions")
                    if spec(profile, **params) is not None else None))


def record_path(record: Recorder, path: str, reads: PathReads, spec: SprtSpec) -> None:
    """Measurements ``<path>_sprt_verdict``, ``_failure_rate``, ``_reads`` and ``_interruptions``
    (declared by ``path_measures``); a faulty verdict is evidence for the cause the path's
    declaration names. The path's ``operator_events`` (cards not presented, read again) go into the
    run record beside its statistics: what the technician did, never evidence about the unit; so
    do its ``refusals`` (sales the unit refused before the card could be presented: the unit's, but
    no read).

    The failure-rate limit is the profile's p1 (the rate from which a path counts as faulty);
    the verdict itself comes from the SPRT, stated with its alpha and beta.
    """
    result, refusals = reads.result, reads.refusals
    cause = record.cause_of(f"{path}_sprt_verdict")
    lo, hi = result.interval()
    note = result.summary()
    record.run.read_paths[path] = {**result.to_dict(), "interruptions": reads.interruptions,
                                   "operator_events": reads.operator_events, "refusals": refusals,
                                   "test": record.test}
    strength = "strong" if result.truncated else "decisive"
    if refusals:
        note += (f"; the unit refused {refusals} time{'s' * (refusals > 1)} before the card could be "
                 "presented (not reads of the path)")
    record.measure(f"{path}_sprt_verdict", result.verdict,
                   if_failed=Evidence.of(cause, strength, note) if result.verdict == "faulty" else None)
    record.measure(f"{path}_failure_rate", round(result.failure_rate, 4),
                   note=f"95% CI {lo:.3f}..{hi:.3f} over {result.trials} reads")
    record.measure(f"{path}_reads", result.trials,
                   note=f"SPRT p0={spec.p0:g} p1={spec.p1:g} alpha={spec.alpha:g} beta={spec.beta:g}")
    record.measure(f"{path}_interruptions", reads.interruptions,
                   note="reads cut off by the reader leaving the bus or the unit resetting")
