"""The agent protocol's failure reasons and the cause each points to."""
from __future__ import annotations

from posbench.drivers.terminal import SaleResult

REASON_CAUSE = {"no_keys": "data_loss", "no_config": "data_loss", "app_restart": "application",
                "kernel_error": "firmware_driver"}
"""Local failure reasons the agent reports for a sale it failed itself, and the cause each points to."""

SALE_CAUSES = tuple(sorted(set(REASON_CAUSE.values())))
"""Causes a sale the unit failed itself can speak to."""
STATUS_CAUSES: tuple[str, ...] = ()
"""The agent reports no terminal status code or lock bits."""


def sale_failure_cause(sale: SaleResult) -> tuple[str, str] | None:
    """What a sale the unit failed itself points to: its local failure reason."""
    cause = REASON_CAUSE.get(sale.reason)
    return (cause, "moderate") if cause else None


def sale_read_failure(sale: SaleResult, technology: str) -> str:
    """The agent reports no result code of a card not read: "" (its own readers are judged by
    the sale's card read report)."""
    return ""


def read_failure_words(code: str) -> str | None:
    """A read failure code of ``sale_read_failure`` in words; None: not one this protocol words
    (the report's own table says it)."""
    return None


def saw_no_card(sale: SaleResult) -> bool:
    return False


def status_cause(code: int) -> tuple[str, str] | None:
    return None


def lock_cause(lock: str) -> tuple[str, str] | None:
    return None
