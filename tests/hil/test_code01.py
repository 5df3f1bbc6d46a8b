"""The first question of a triage: did the 01 come from the issuer or from the unit itself?

Runs sales through the terminal against the acquirer host simulator and compares what the
terminal displayed (agent: its display code; ZVT: the result code, BMP 27) with what the host
logged for the same STAN (ZVT: the trace number, BMP 0B).
"""
import time
from collections import defaultdict

from bench.diagnosers import AGENT_REASON_CAUSE, NETWORK_CAUSES, ZVT_SALE_CAUSES, sale_failure_cause
from bench.errors import ProtocolError, UnitNotResponding
from drivers.terminal import has


def test_code01_origin(terminal, profile, host_log, record, supply_watch, actuator, needs):
    needs("sale", "terminal_01_count", "sale_host_answered_rate", causes=("issuer_referral",))
    amounts = profile.tests.sale_amounts
    # A terminal that reads the card in the sale gets one presented (the agent's sale reads none).
    card = profile.read_paths.chip.cards[0] if has(terminal, "card_sale") and profile.read_paths else None
    answered = 0
    issuer_stans: list[str] = []
    local: dict[str, list[str]] = defaultdict(list)  # reason -> STANs the unit showed 01 for itself
    failures: dict[tuple[str, str], list[str]] = defaultdict(list)  # (cause, strength) -> what failed
    mismatched: list[str] = []
    offline = 0
    for amount in amounts:
        t0 = time.monotonic()
        if card:
            actuator.insert(card)
        try:
            sale = terminal.sale(amount)
        except UnitNotResponding as exc:
            note = f"sale of {amount}: no reply ({exc.detail})"
            if supply_watch is None or supply_watch.attribute(
                    record, note, t0, time.monotonic(), steady_cause="") != "power_supply":
                record.evidence("application", "moderate", note)
            terminal.wait_ready(terminal.boot_timeout)
            continue
        except ProtocolError as exc:
            record.evidence("pcb_intermittent", "moderate", f"sale of {amount}: the reply arrived corrupted ({exc})")
            continue
        finally:
            if card:
                actuator.remove()
        host_code = host_log.answer_for(sale.terminal_id, sale.stan) if sale.stan else None
        answered += host_code is not None
        if sale.display_code == "01":
            origin = "issuer" if host_code == "01" else "terminal"
            record.code01(origin, sale.stan, host_code, sale.reason)
            if origin == "issuer":
                issuer_stans.append(sale.stan)
            else:
                local[sale.reason or "unstated"].append(sale.stan)
                if found := sale_failure_cause(terminal.protocol, sale):
                    failures[found].append(f"01 shown for '{sale.reason}' (STAN {sale.stan})")
        elif host_code is not None and sale.display_code != host_code:
            mismatched.append(f"STAN {sale.stan}: showed {sale.display_code}, host sent {host_code}")
        elif sale.display_code != "00" and (found := sale_failure_cause(terminal.protocol, sale)):
            failures[found].append(f"{sale.display_code}: {sale.reason or 'no reason given'}")
            if host_code is None and found[0] not in NETWORK_CAUSES:
                offline += 1  # refused before it went online: not a question of reaching the host
    n = len(amounts)
    if issuer_stans:
        record.evidence("issuer_referral", "decisive",
                        f"host log shows field 39 = 01 for {len(issuer_stans)} of {n} sales "
                        f"(STAN {', '.join(issuer_stans)}) and the unit showed exactly that")
    for (cause, strength), notes in failures.items():
        record.evidence(cause, "strong" if len(notes) > 1 and strength != "weak" else strength,
                        f"the unit failed {len(notes)} of {n} sales itself: " + "; ".join(notes[:3]))
    if mismatched:
        record.evidence("application", "strong", "unit showed another code than the host sent: "
                        + "; ".join(mismatched))
    lim = profile.limits
    sale_causes = ZVT_SALE_CAUSES if terminal.protocol == "zvt" else tuple(AGENT_REASON_CAUSE.values())
    record.measure("terminal_01_count", sum(map(len, local.values())), "count", lim["terminal_01_count"],
                   bears_on=("issuer_referral", *sale_causes))
    record.measure("sale_host_answered_rate", round(answered / max(1, n - offline), 3), "ratio",
                   lim["sale_host_answered_rate"], bears_on=("network_unstable", "firewall"))
