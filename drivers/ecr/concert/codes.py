"""Concert V2's codes: a refusal carries no reason (status 7), so a sale speaks to no cause by
itself; the read-path sales and the host log do."""
from __future__ import annotations

from posbench.drivers.terminal import SaleResult

SALE_CAUSES: tuple[str, ...] = ()
"""A Concert refusal gives no reason: it speaks to no cause by itself."""
STATUS_CAUSES: tuple[str, ...] = ()
"""Concert reports no terminal status."""


def sale_failure_cause(sale: SaleResult) -> tuple[str, str] | None:
    return None  # a refusal without a reason


def _unread(sale: SaleResult) -> bool:
    """A refusal whose report carries no PAN: the terminal did not read the card."""
    return sale.details.get("card_read") == "no" and sale.display_code != "00"


def sale_read_failure(sale: SaleResult, technology: str) -> str:
    """Concert has no result code: a refusal whose report carries no PAN is a card not read by
    the path presented (``technology``)."""
    return f"refused_unread_{technology}" if _unread(sale) else ""


def read_failure_words(code: str) -> str | None:
    """A read failure code of ``sale_read_failure`` in words; None: not one this protocol words
    (the report's own table says it)."""
    return None


def saw_no_card(sale: SaleResult) -> bool:
    """A refusal whose report carries no PAN (Concert tells no more)."""
    return _unread(sale)


def status_cause(code: int) -> tuple[str, str] | None:
    return None


def lock_cause(lock: str) -> tuple[str, str] | None:
    return None
