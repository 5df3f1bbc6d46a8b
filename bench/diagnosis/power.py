"""Power rules: what a brownout during a sale, a reader leaving the USB bus and a unit slow to
come back say about the supply, the board and the application (``tests/hil/test_power.py``).

Each rule takes observations (journal records, the acquirer's log, counts) and returns evidence
(``Evidence.of``) or what to record (``Found``); the test records it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from posbench.drivers.terminal import LogRecord
from posbench.spec.evidence import Evidence, Found, Reading


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


def not_recovered(garbled: int, boot_timeout_s: float) -> Evidence:
    """The evidence a failed ``brownout_recovered`` gives: the supply, unless the unit's link
    damaged frames meanwhile (``garbled`` > 0): then it runs and its replies do not arrive whole,
    the board's intermittent fault."""
    return Evidence.of("pcb_intermittent" if garbled else "power_supply", "strong",
                       f"the unit did not answer within {boot_timeout_s:g} s after the brownout (or drew "
                       "no current on the restored supply)"
                       + (f", while its link damaged {garbled} frame(s): it runs, its replies do not arrive whole"
                          if garbled else ""))


def usb_drops(drops: int, watch_s: float, supply_watched: bool) -> Evidence | None:
    """The evidence a failed ``usb_drops`` gives by itself: none where the supply is watched (each
    drop is then judged against the supply readings as it happens), else the board, moderately."""
    if supply_watched:
        return None
    return Evidence.of("pcb_intermittent", "moderate", f"the reader left the bus {drops} time(s) in {watch_s:g} s")


@dataclass(frozen=True)
class HostSales:
    """What the acquirer's log (posbench's host) shows since the sale under the brownout began:
    the STANs it approved and those the unit reversed."""

    approved: frozenset[str] = frozenset()
    reversed: frozenset[str] = frozenset()
    reachable: bool = True
    """Whether the unit reached its host on the sale run after (True: none was needed)."""


def host_sales(records: Iterable[Mapping[str, Any]], since: str, terminal_id: str | None) -> HostSales:
    """Approvals (0210, field 39 = 00, sent) and reversals (0400, received) in the host log's
    ``records`` from ``since`` (ISO time, ms) on, of ``terminal_id`` (None: any terminal)."""
    mine = [r for r in records if r.get("ts", "") >= since and (terminal_id is None or r.get("tid") == terminal_id)]
    return HostSales(frozenset(r["stan"] for r in mine if r.get("dir") == "out" and r.get("mti") == "0210"
                               and r.get("rc") == "00"),
                     frozenset(r["stan"] for r in mine if r.get("dir") == "in" and r.get("mti") == "0400"))


@dataclass(frozen=True)
class BrownoutSale:
    """What the bench saw of the sale under the brownout once the unit came back."""

    answered: bool
    """The unit answered the sale approved (display code 00)."""
    journal: tuple[LogRecord, ...] | None
    """Journal records added since the sale began; None: the bench reads no journal."""
    host: HostSales | None
    """The acquirer's log; None: the unit talks to its own acquirer, out of the bench's sight."""

    @property
    def ended(self) -> tuple[str, tuple[str, ...]]:
        return brownout_sale_end(self.journal or ())

    @property
    def completed(self) -> bool:
        """The unit finished the sale: it answered it approved, or its journal shows it approved
        and finished before the power went (only its answer was cut off)."""
        return self.answered or self.ended[0] == "approved"

    @property
    def unreversed(self) -> int:
        """Sales the host approved and the unit never reversed (0 for a sale it completed)."""
        return 0 if self.completed or self.host is None else len(self.host.approved - self.host.reversed)

    def after(self, reversed_since: Iterable[str], reachable: bool) -> BrownoutSale:
        """The same sale once the unit ran another (a pending reversal goes out before it)."""
        assert self.host is not None
        return replace(self, host=replace(self.host, reversed=self.host.reversed | frozenset(reversed_since),
                                          reachable=reachable))


def reversal_pending(sale: BrownoutSale) -> bool:
    """Whether the host approved a sale the unit has not reversed yet: the bench runs another sale
    to give the reversal its chance to go out."""
    return sale.unreversed > 0


def judge_brownout_sale(sale: BrownoutSale) -> Found:
    """``brownout_records_added`` and ``unreversed_sales`` of a unit that came back, with the
    evidence they give.

    A sale approved and never reversed: the application lost it where the journal shows it ended
    without a power failure (the unit lost track of its own transaction), else the supply cut it
    off (strong with a journal; moderate without one, where nothing tells a sale the power cut off
    from one the application lost in the same seconds: seen, a false power_supply 0.76 named
    jointly with resources over Caisse-AP). A unit that could not reach its host afterwards cannot
    reverse: that is the network tests' finding, no evidence here."""
    found = Found()
    log = sale.journal
    if log is not None:
        found.readings.append(Reading("brownout_records_added", len(log),
                                      note=f"the interrupted sale left {len(log)} journal records"))
    if sale.host is None:  # the unit's own acquirer: its approvals and reversals are out of sight
        if sale.completed:
            found.readings.append(Reading("unreversed_sales", 0, if_failed=Evidence.of(
                "power_supply", "strong", "the unit " + ("answered the sale approved" if sale.answered else
                                                         "'s journal shows the sale approved and finished before "
                                                         "the power went") + ": nothing was left to reverse")))
        else:
            found.unmeasured["unreversed_sales"] = (
                "the bench cannot see the acquirer's log (the unit talks to its own acquirer), and neither the "
                "unit's answer nor its journal says the sale was finished")
        return found
    unreversed, (ended, events) = sale.unreversed, sale.ended
    cause: Evidence | None
    if unreversed and ended == "otherwise":
        cause = Evidence.of("application", "strong",
                            f"{unreversed} sale(s) the host approved were never reversed, and the unit's journal "
                            f"shows the sale ended without a power failure (events: {'+'.join(events) or 'none'}): "
                            "the unit lost track of its own transaction")
    elif sale.completed and not sale.answered:
        cause = Evidence.of("power_supply", "strong",
                            "the unit's journal shows the sale approved and finished before the power went; only "
                            "its answer to the bench was cut off, so nothing was left to reverse")
    else:
        cause = Evidence.of(
            "power_supply", "strong" if log is not None else "moderate",
            f"{unreversed} sale(s) the host approved were cut off by the brownout and never reversed"
            + ("" if sale.host.reachable else " (the unit could not reach its host afterwards either)")
            + ("" if log is not None else "; the unit keeps no journal the bench can read to tell how "
               "the sale ended, so this may also be the application losing its sale")) if sale.host.reachable else None
    found.readings.append(Reading("unreversed_sales", unreversed, if_failed=cause))
    if log is not None and len(log) == 0 and sale.host.approved:
        found.evidence.append(Evidence.of("power_supply", "strong",
                                          "the host approved the sale but the journal has no record of it",
                                          measurement="brownout_records_added", value=0, limit=">= 1"))
    return found
