"""The unit's transaction log: gaps (lost records) and patterns of wrong use at the counter."""
from posbench.spec.measures import Measure, measures
from posbench.spec.sprt import wilson_interval

RATE_UNIT = "ratio (95% lower bound)"


@measures(
    Measure("log_records_read", "count", "log_records_read"),
    Measure("log_sequence_gaps", "records", "log_sequence_gaps", bears_on=("data_loss",), evidence="strong"),
    Measure("wrong_pin_rate", RATE_UNIT, "wrong_pin_rate", bears_on=("operator_error",), evidence="strong"),
    Measure("card_pulled_rate", RATE_UNIT, "card_pulled_rate", bears_on=("operator_error",), evidence="moderate"),
    Measure("amount_correction_rate", RATE_UNIT, "amount_correction_rate", bears_on=("operator_error",),
            evidence="moderate"),
    needs="journal",
)
def test_transaction_log(unit, terminal, profile, record):
    n = profile.tests.log_records
    log = unit.ask(record, lambda: terminal.transaction_log(n), "transaction log")
    gaps = sum(b.seq - a.seq - 1 for a, b in zip(log, log[1:]) if b.seq > a.seq + 1)
    record.measure("log_records_read", len(log))
    record.measure("log_sequence_gaps", gaps,
                   note=f"{gaps} transaction record(s) missing from the journal")
    sales = [r for r in log if r.type == "SALE"] or log

    def rate(name: str, event: str, what: str) -> None:
        """The misuse rate judged by its lower 95% Wilson bound: a few dozen records of a
        careful counter can show a high rate by chance; the bound says what is sure."""
        hits, n = sum(event in r.events for r in log), max(1, len(sales))
        low, high = wilson_interval(min(hits, n), n)
        record.measure(name, round(low, 3), note=f"{what}: {hits} of {n} sales ({hits / n:.1%}, "
                                              f"95% interval {low:.1%}..{high:.1%})")

    rate("wrong_pin_rate", "PIN_WRONG", "sales declined for a wrong PIN (host code 55)")
    rate("card_pulled_rate", "CARD_PULLED", "cards pulled out before the read finished")
    rate("amount_correction_rate", "AMOUNT_CORRECTED",
         "sales voided right away because the amount was keyed wrongly")
