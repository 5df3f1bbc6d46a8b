"""The first question of a triage: did the 01 come from the issuer or from the unit itself?

Runs sales through the terminal and records, per sale, what it displayed (agent: its display
code; ZVT: the result code, BMP 27; Caisse-AP: the field 39 AF passes on; Concert: the report's
code), the terminal's own report of the acquirer's code and, where the bench runs the host
(``[host] log``), what the host answered, found by STAN (ZVT: the trace number, BMP 0B;
Caisse-AP carries none: the sale's amount after the moment it began). The rules that tell the
origin from those live in ``posbench.diagnosis.code01``.
"""
import time

from posbench.core import progress
from posbench.diagnosis import code01
from posbench.diagnosis.rules import SALE_CAUSES, sale_failure_cause
from posbench.core.errors import ProtocolError, UnitNotResponding
from posbench.spec.measures import Measure, measures
from posbench.drivers.terminal import has
from posbench.fixtures.session import optional
from posbench.spec.readtest import sale_saw_no_card, until_presented


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
    seen, tried = _sales(terminal, unit, actuator, record, card, amounts, host_log)
    found = code01.origins(seen, tried)
    for c in found.code01:
        record.code01(c.origin, c.stan, c.host_code, c.reason)
    record.code01_sales(tried)
    record.add(found.evidence)
    if found.untold:
        record.unmeasured("terminal_01_count", code01.untold_why(found.untold, tried, terminal.protocol))
    else:
        record.measure("terminal_01_count", found.terminal_01_count,
                       bears_on=("issuer_referral", *SALE_CAUSES[terminal.protocol]))
    record.measure("sale_host_answered_rate", found.sale_host_answered_rate)


def _sales(terminal, unit, actuator, record, card: str | None, amounts, host_log) -> tuple[list[code01.SaleSeen], int]:
    """A sale of each amount (minor units), as the code-01 rule reads them, and how many were run.
    A unit silent even after a power cycle ends them (the sales not run are not counted); its
    silence and a reply that arrived corrupted are evidence of their own."""
    seen: list[code01.SaleSeen] = []
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
                record.add(unit.silence(f"sale of {amount}: no reply ({exc.detail})", t0, garbles))
                if unit.ready():
                    continue
                break
            except ProtocolError as exc:
                record.evidence("pcb_intermittent", "moderate", f"sale of {amount}: the reply arrived corrupted ({exc})")
                continue
            seen.append(_seen(terminal.protocol, sale, host_log, mark, amount))
    return seen, tried


def _seen(protocol: str, sale, host_log, mark: int | None, amount: int) -> code01.SaleSeen:
    """A sale as the code-01 rule reads it, with the host log's answer where the bench keeps one
    (found by STAN, else by amount after ``mark``: Caisse-AP carries no STAN)."""
    log_code = None
    if host_log is not None:
        log_code = host_log.answer_for(sale.terminal_id, sale.stan) if sale.stan \
            else host_log.answer_since(mark, amount) if sale.host_answered else None
    return code01.SaleSeen(sale.stan, sale.display_code, sale.reason, sale.acquirer_code, sale.host_answered,
                           host_log is not None, log_code, sale_failure_cause(protocol, sale),
                           sale.details.get("card_read"))
