"""The first question of a triage: did the 01 come from the issuer or from the unit itself?

Runs sales through the terminal and compares what it displayed (agent: its display code; ZVT:
the result code, BMP 27; Caisse-AP: the field 39 AF passes on; Concert: the report's code) with
what the acquirer answered. Two sources say that: the terminal's own report of the acquirer's
code (``SaleResult.acquirer_code``: ZVT BMP A0 / a host code 01-63, Concert's report, Caisse-AP
AF's field 39), which every bench has, and posbench's host log where the bench runs the host
(``[host] log``), found by STAN (ZVT: the trace number, BMP 0B; Caisse-AP carries none: the
sale's amount after the moment it began). The log decides where both speak; where they disagree
the unit misreports its host's answer (``application``). Where neither speaks the origin is not
told, and the run says why.
"""
import time
from collections import defaultdict

import pytest

from posbench.core import progress
from posbench.diagnosis.rules import NETWORK_CAUSES, SALE_CAUSES, sale_failure_cause
from posbench.core.errors import ProtocolError, UnitNotResponding
from posbench.spec.measures import Measure, measures
from posbench.drivers.terminal import has
from posbench.fixtures.session import optional
from posbench.spec.readtest import sale_saw_no_card, until_presented


def _origin(code: str | None) -> str | None:
    """The origin of a 01 by one source's acquirer code (None: that source does not say)."""
    return None if code is None else "issuer" if code == "01" else "terminal"


def _sale(terminal, actuator, card: str | None, amount: int):
    """One sale of ``amount`` (minor units) with ``card`` inserted (None: the unit's sale reads no
    card). A sale the terminal ended for want of a card is asked about: a card the technician did
    not present in time or the right way is an operator event and the sale is run again
    (``posbench.spec.readtest.until_presented``); one presented and not read is the unit's answer."""
    done = []

    def attempt() -> bool:
        if card:
            actuator.insert(card)
        try:
            done.append(terminal.sale(amount))
        finally:
            if card:
                actuator.remove()
        return not (card and sale_saw_no_card(terminal.protocol, done[-1]))

    until_presented(actuator, "insert", attempt)
    return done[-1]


@measures(
    Measure("terminal_01_count", "count", "terminal_01_count", bears_on=("issuer_referral",)),
    Measure("sale_host_answered_rate", "ratio", "sale_host_answered_rate", bears_on=("network_unstable", "firewall")),
    needs="sale",
)
def test_code01_origin(terminal, unit, profile, record, actuator, request):
    host_log = optional(request, "host_log")
    amounts = profile.tests.sale_amounts
    # A terminal that reads the card in the sale gets one presented (the agent's sale reads none).
    card = profile.read_paths.chip.cards[0] if has(terminal, "card_sale") and profile.read_paths else None
    answered = 0
    issuer_stans: list[str] = []
    local: dict[str, list[str]] = defaultdict(list)  # reason -> STANs the unit showed 01 for itself
    failures: dict[tuple[str, str], list[str]] = defaultdict(list)  # (cause, strength) -> what failed
    mismatched: list[str] = []
    untold: list[str] = []  # STANs of 01s whose origin neither the report nor a host log tells
    offline = 0
    tried = 0
    with progress.waiting(f"{len(amounts)} sales", None):
        for amount in amounts:
            progress.step("sales", tried + 1, len(amounts))
            tried += 1
            t0, garbles = time.monotonic(), unit.garbles()
            # a sale without a trace number is found in the log by amount after this
            mark = host_log.mark() if host_log is not None else None
            try:
                sale = _sale(terminal, actuator, card, amount)
            except UnitNotResponding as exc:
                unit.judge_silence(record, f"sale of {amount}: no reply ({exc.detail})", t0, garbles)
                if unit.ready():
                    continue
                break  # silent even after a power cycle: the sales not run are not counted
            except ProtocolError as exc:
                record.evidence("pcb_intermittent", "moderate", f"sale of {amount}: the reply arrived corrupted ({exc})")
                continue
            reported = sale.acquirer_code  # the terminal's own word on what its acquirer answered
            if host_log is not None:
                host_code = host_log.answer_for(sale.terminal_id, sale.stan) if sale.stan \
                    else host_log.answer_since(mark, amount) if sale.host_answered else None
                answered += host_code is not None
                if reported and host_code and reported != host_code:
                    mismatched.append(f"STAN {sale.stan or '?'}: reported the acquirer's {reported}, "
                                      f"host sent {host_code}")
            else:
                host_code = reported or None
                answered += sale.host_answered
            if sale.display_code == "01":
                by_log = _origin(host_code or "") if host_log is not None else None
                by_report = _origin(reported)
                origin = by_log or by_report
                if origin is None:
                    untold.append(sale.stan or "?")
                    continue
                if by_log and by_report and by_log != by_report:
                    mismatched.append(f"STAN {sale.stan or '?'}: showed 01, its report says "
                                      f"{'the acquirer sent 01' if by_report == 'issuer' else 'the acquirer did not'}, "
                                      f"host log {host_code or 'has no answer'}")
                record.code01(origin, sale.stan, host_code, sale.reason)
                if origin == "issuer":
                    issuer_stans.append(sale.stan)
                else:
                    local[sale.reason or "unstated"].append(sale.stan)
                    if found := sale_failure_cause(terminal.protocol, sale):
                        failures[found].append(f"01 shown for '{sale.reason}' (STAN {sale.stan})")
            elif host_code is not None and sale.display_code and sale.display_code != host_code:
                # (a unit that shows no code, "", never got the host's answer: the host link's doing)
                mismatched.append(f"STAN {sale.stan}: showed {sale.display_code}, host sent {host_code}")
            elif sale.display_code != "00" and (found := sale_failure_cause(terminal.protocol, sale)):
                failures[found].append(f"{sale.display_code}: {sale.reason or 'no reason given'}")
                if host_code is None and found[0] not in NETWORK_CAUSES:
                    offline += 1  # refused before it went online: not a question of reaching the host
            elif host_code is None and sale.details.get("card_read") == "no":
                offline += 1  # refused before a card was read (Concert: no reason given): not online either
    n = tried
    record.code01_sales(n)
    if issuer_stans:
        source = "host log shows" if host_log is not None else "the terminal's report gives the acquirer's"
        record.evidence("issuer_referral", "decisive",
                        f"{source} field 39 = 01 for {len(issuer_stans)} of {n} sales "
                        f"(STAN {', '.join(issuer_stans)}) and the unit showed exactly that")
    for (cause, strength), notes in failures.items():
        record.evidence(cause, "strong" if len(notes) > 1 and strength != "weak" else strength,
                        f"the unit failed {len(notes)} of {n} sales itself: " + "; ".join(notes[:3]))
    if mismatched:
        record.evidence("application", "strong", "unit showed another code than the host sent: "
                        + "; ".join(mismatched))
    if untold:
        record.unmeasured("terminal_01_count", f"the origin of the code 01 shown in {len(untold)} of {n} sales "
                          f"(STAN {', '.join(untold[:5])}) cannot be told: the {terminal.protocol} "
                          "terminal's report carried no acquirer code and the bench has no [host] log")
    else:
        record.measure("terminal_01_count", sum(map(len, local.values())),
                       bears_on=("issuer_referral", *SALE_CAUSES[terminal.protocol]))
    record.measure("sale_host_answered_rate", round(answered / max(1, n - offline), 3))
