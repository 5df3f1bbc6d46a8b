"""Caisse-AP's AF reasons of a sale the terminal did not do, and the cause each points to."""
from __future__ import annotations

from posbench.drivers.terminal import READ_PATH_CAUSE, SaleResult

NOT_ENDED = 7
"""AF 07 "not ended": the terminal gave up on the card before going online (a card it could not
read; its message, field 44, says how). Caisse-AP names no reason per reader: the read path is
the one the bench presented the card on (or CC's contactless application)."""
NO_CARD_IN_TIME = 8
"""AF 08: no card (or PIN) in time."""
REASON_CAUSE: dict[int, tuple[str, str]] = {
    0: ("application", "moderate"),         # unknown: the terminal cannot say what became of the sale
    5: ("data_loss", "moderate"),           # forbidden: the terminal will not pay (keys, merchant record)
    10: ("firmware_driver", "moderate"),    # bad selection: the kernel could not select the application
    11: ("network_unstable", "weak"),       # acquirer abandon: the host did not answer
    6: ("operator_error", "moderate"),      # abandon: the abort key, the PIN try limit
    8: ("operator_error", "weak"),          # no card or PIN in time
}
"""AF reasons of a sale the terminal did not do, and the cause each points to. 02 (phone call)
and 04 (refused) carry the issuer's decision (field 39); 09, 12 and 13 answer a request the bench
got wrong."""
SALE_CAUSES = tuple(sorted({c for c, _ in REASON_CAUSE.values()} | set(READ_PATH_CAUSE.values())))
"""Causes a Caisse-AP sale's AF reason can speak to."""
STATUS_CAUSES: tuple[str, ...] = ()
"""Caisse-AP reports no terminal status code."""


def sale_failure_cause(sale: SaleResult) -> tuple[str, str] | None:
    """What a sale the terminal did not do points to: AF 07 the reader of the card's technology,
    any other AF reason its cause."""
    if sale.result_code == NOT_ENDED:
        return (READ_PATH_CAUSE[sale.card_technology], "moderate") if sale.card_technology in READ_PATH_CAUSE \
            else None
    return REASON_CAUSE.get(sale.result_code) if sale.result_code is not None else None


def sale_read_failure(sale: SaleResult, technology: str) -> str:
    """AF 07 with the technology the terminal reported (else the one presented); an abort
    before any card was read (AF 08) is no read error."""
    if sale.result_code is None or sale.result_code == 0 or sale.display_code == "00":
        return ""
    return f"af07_{sale.card_technology or technology}" if sale.result_code == NOT_ENDED else ""


def read_failure_words(code: str) -> str | None:
    """A read failure code of ``sale_read_failure`` in words; None: not one this protocol words
    (the report's own table says it)."""
    return None


def saw_no_card(sale: SaleResult) -> bool:
    """AF 08: no card in time."""
    return sale.result_code == NO_CARD_IN_TIME


def status_cause(code: int) -> tuple[str, str] | None:
    return None


def lock_cause(lock: str) -> tuple[str, str] | None:
    return None
