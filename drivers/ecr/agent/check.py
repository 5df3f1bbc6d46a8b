"""The agent protocol's preflight check: its ID, every wait short."""
from __future__ import annotations

from posbench.drivers.ecr.checking import identity_said
from posbench.drivers.transport.enq_ack import LinkTiming

from .adapter import AgentTerminal
from .section import Section


def answer(section: Section, model: str | None, probe_s: float) -> str:
    assert section.port is not None  # TerminalSection: the agent protocol needs a port
    timing = LinkTiming(enq_tries=2, enq_wait=0.3, frame_tries=1, ack_wait=probe_s, inter_byte=0.2)
    with AgentTerminal(section.port, section.baudrate, min(section.reply_timeout, probe_s), timing=timing) as agent:
        return identity_said(section.protocol, agent.identify())
