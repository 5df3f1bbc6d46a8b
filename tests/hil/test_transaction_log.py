"""The unit's transaction log: gaps (lost records) and patterns of wrong use at the counter."""


def test_transaction_log(ask, terminal, profile, record):
    n = profile.tests.log_records
    log = ask(lambda: terminal.transaction_log(n), "transaction log")
    lim = profile.limits
    gaps = sum(b.seq - a.seq - 1 for a, b in zip(log, log[1:]) if b.seq > a.seq + 1)
    record.measure("log_records_read", len(log), "count", lim["log_records_read"])
    record.measure("log_sequence_gaps", gaps, "records", lim["log_sequence_gaps"], cause="data_loss",
                   note=f"{gaps} transaction record(s) missing from the journal")
    sales = [r for r in log if r.type == "SALE"] or log
    def rate(event: str) -> float:
        return round(sum(event in r.events for r in log) / max(1, len(sales)), 3)
    record.measure("wrong_pin_rate", rate("PIN_WRONG"), "ratio", lim["wrong_pin_rate"],
                   cause="operator_error", note="sales declined for a wrong PIN (host code 55)")
    record.measure("card_pulled_rate", rate("CARD_PULLED"), "ratio", lim["card_pulled_rate"],
                   cause="operator_error", strength="moderate",
                   note="cards pulled out before the read finished")
    record.measure("amount_correction_rate", rate("AMOUNT_CORRECTED"), "ratio",
                   lim["amount_correction_rate"], cause="operator_error", strength="moderate",
                   note="sales voided right away because the amount was keyed wrongly")
