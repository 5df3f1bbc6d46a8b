"""The first question of a triage: did the 01 come from the issuer or from the unit itself?

Runs sales through the terminal against the acquirer host simulator and compares what the
terminal displayed with what the host logged for the same STAN.
"""
import time
from collections import defaultdict

from bench.errors import ProtocolError, UnitNotResponding

REASON_CAUSE = {"no_keys": "data_loss", "no_config": "data_loss", "app_restart": "application",
                "kernel_error": "firmware_driver"}
"""Local failure reasons the unit reports, and the cause each points to."""


def test_code01_origin(terminal, profile, host_log, record, supply_watch):
    amounts = profile.tests.sale_amounts
    answered = 0
    issuer_stans: list[str] = []
    local: dict[str, list[str]] = defaultdict(list)  # reason -> STANs the unit showed 01 for
    mismatched: list[str] = []
    for amount in amounts:
        t0 = time.monotonic()
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
        host_code = host_log.answer_for(sale.terminal_id, sale.stan)
        answered += host_code is not None
        if sale.display_code == "01":
            origin = "issuer" if host_code == "01" else "terminal"
            record.code01(origin, sale.stan, host_code, sale.reason)
            if origin == "issuer":
                issuer_stans.append(sale.stan)
            else:
                local[sale.reason or "unstated"].append(sale.stan)
        elif host_code is not None and sale.display_code != host_code:
            mismatched.append(f"STAN {sale.stan}: showed {sale.display_code}, host sent {host_code}")
    n = len(amounts)
    if issuer_stans:
        record.evidence("issuer_referral", "decisive",
                        f"host log shows field 39 = 01 for {len(issuer_stans)} of {n} sales "
                        f"(STAN {', '.join(issuer_stans)}) and the unit showed exactly that")
    for reason, stans in local.items():
        cause = REASON_CAUSE.get(reason)
        if cause:
            record.evidence(cause, "strong" if len(stans) > 1 else "moderate",
                            f"unit showed 01 in {len(stans)} of {n} sales without the host sending it; "
                            f"the unit reports '{reason}' (STAN {', '.join(stans)})")
    if mismatched:
        record.evidence("application", "strong", "unit showed another code than the host sent: "
                        + "; ".join(mismatched))
    lim = profile.limits
    record.measure("terminal_01_count", sum(map(len, local.values())), "count", lim["terminal_01_count"])
    record.measure("sale_host_answered_rate", round(answered / n, 3), "ratio",
                   lim["sale_host_answered_rate"])
