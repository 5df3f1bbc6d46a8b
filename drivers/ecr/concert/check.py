"""Concert V2's preflight check: no identity in Concert, its ENQ handshake is all it answers."""
from __future__ import annotations

from posbench.core.errors import UnitNotResponding

from .link import probe
from .section import Section


def answer(section: Section, model: str | None, probe_s: float) -> str:
    assert section.port is not None  # TerminalSection: Concert needs a port
    if not probe(section.port, section.line, probe_s):
        raise UnitNotResponding("terminal", "probing", f"no ACK to ENQ at 9600 {section.line}")
    return f"concert unit answers ENQ with ACK ({section.line})"
