"""The virtual terminals: one front end per ECR protocol on the shared virtual unit, each loaded
by name through ``posbench.drivers.registry``.

A virtual terminal module has ``front_end``, ``terminal_toml``, ``SALE_TIMEOUT_S`` and
``CARD_TIMEOUT_S``; it may have ``unit_serial`` and ``serial_problem`` where its protocol limits
the serial number a unit reports (ZVT: BCD digits), and the functions below stand in for them
where it has not (any text is a serial number, reported as given)."""
from __future__ import annotations

from types import ModuleType


def unit_serial(virtual: ModuleType, serial: str, given: bool) -> str:
    """The serial number the virtual terminal ``virtual`` reports for ``serial`` (``given``: by
    ``posbench sim --unit``, not made up)."""
    hook = getattr(virtual, "unit_serial", None)
    return hook(serial, given) if hook is not None else serial


def serial_problem(virtual: ModuleType, serial: str) -> str | None:
    """Why ``posbench sim --unit SERIAL`` cannot be the serial number of ``virtual``'s unit
    (None: it can)."""
    hook = getattr(virtual, "serial_problem", None)
    return hook(serial) if hook is not None else None
