"""The first question of a triage: did the 01 come from the issuer or from the unit itself?

Runs sales through the terminal against the acquirer host simulator and compares what the
terminal displayed with what the host logged for the same STAN.
"""
from bench.errors import UnitNotResponding

REASON_CAUSE = {"no_keys": "data_loss", "no_config": "data_loss", "app_restart": "application",
                "kernel_error": "firmware_driver"}
"""Local failure reasons the unit reports, and the cause each points to."""


def test_code01_origin(terminal, profile, host_log, record):
    amounts = profile.tests.sale_amounts
    answered = terminal_01 = unanswered = 0
    for amount in amounts:
        try:
            sale = terminal.sale(amount)
        except UnitNotResponding as exc:
            unanswered += 1
            record.evidence("application", "moderate", f"sale of {amount}: no reply ({exc.detail})")
            terminal.wait_ready(terminal.boot_timeout)
            continue
        host_code = host_log.answer_for(sale.terminal_id, sale.stan)
        answered += host_code is not None
        if sale.display_code == "01":
            origin = "issuer" if host_code == "01" else "terminal"
            record.code01(origin, sale.stan, host_code, sale.reason)
            if origin == "issuer":
                record.evidence("issuer_referral", "decisive",
                                f"host log shows field 39 = 01 for STAN {sale.stan} (amount {amount})")
            else:
                terminal_01 += 1
                cause = REASON_CAUSE.get(sale.reason)
                if cause:
                    record.evidence(cause, "moderate",
                                    f"unit showed 01 for STAN {sale.stan} without the host sending it "
                                    f"(unit reports {sale.reason}; host answered {host_code or 'nothing'})")
        elif host_code is not None and sale.display_code != host_code:
            record.evidence("application", "strong", f"unit showed {sale.display_code} but the host "
                            f"answered {host_code} for STAN {sale.stan}")
    lim = profile.limits
    record.measure("terminal_01_count", terminal_01, "count", lim["terminal_01_count"])
    record.measure("sale_host_answered_rate", round(answered / len(amounts), 3), "ratio",
                   lim["sale_host_answered_rate"])
