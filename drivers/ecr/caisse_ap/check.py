"""Caisse-AP's preflight check: the terminal answers a request (it tells no identity)."""
from __future__ import annotations

from posbench.drivers.ecr.checking import identity_said
from posbench.drivers.terminal import Identity

from .adapter import CaisseApPaymentTerminal
from .section import Section


def answer(section: Section, model: str | None, probe_s: float) -> str:
    assert section.address is not None  # TerminalSection: Caisse-AP needs an address
    CaisseApPaymentTerminal(section.address, section.currency, reply_timeout=probe_s).wait_ready(probe_s)
    return identity_said(section.protocol, Identity(model=model or "", serial="", firmware="", components={}))
