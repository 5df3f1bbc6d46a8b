"""ZVT's preflight check: a status enquiry with every wait bounded, and the PT's identity."""
from __future__ import annotations

from posbench.drivers.ecr.checking import identity_said

from .adapter import ZvtPaymentTerminal
from .section import Section


def answer(section: Section, model: str | None, probe_s: float) -> str:
    with ZvtPaymentTerminal(section.url, section.password, section.currency, section.baudrate, model) as zvt:
        assert zvt.driver is not None  # opened by the with statement
        zvt.driver.wait_ready(probe_s, poll_s=0.3)  # a status enquiry with every wait bounded
        return identity_said(section.protocol, zvt.identify())
