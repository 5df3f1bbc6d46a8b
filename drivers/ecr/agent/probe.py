"""The agent protocol's discover probe: an ID request, at 9600 and 115200 8N1."""
from __future__ import annotations

from posbench.core.errors import BenchError, PortUnavailable, UnitError
from posbench.drivers.probing import Answer, LineSettings, NoAnswer, SerialProbe, TcpProbe
from posbench.drivers.transport.enq_ack import LinkTiming

from .adapter import AgentTerminal


def ask_agent(port: str, settings: LineSettings, timeout_s: float) -> Answer:
    timing = LinkTiming(enq_tries=1, enq_wait=timeout_s, ack_wait=1.0, inter_byte=0.2)
    terminal = AgentTerminal(port, settings.baudrate, reply_timeout=1.0, timing=timing)
    try:
        terminal.open()  # PortUnavailable: the port cannot be opened at all
        ident = terminal.identify()
    except PortUnavailable:
        raise
    except (UnitError, BenchError) as exc:  # silence, garbage, or the port lost mid-question
        raise NoAnswer(exc.detail or str(exc)) from None
    finally:
        terminal.close()
    return Answer("agent", "terminal", f"answered ID: {ident.model} serial {ident.serial} firmware "
                  f"{ident.firmware}", settings, {"protocol": "agent", "port": port,
                                                  "baudrate": settings.baudrate},
                  {"model": ident.model, "serial": ident.serial})


SERIAL = (SerialProbe("agent", "terminal", (LineSettings(9600), LineSettings(115200)), "ID",
                      "an ID reply (model, serial, firmware)", ask_agent),)
TCP: tuple[TcpProbe, ...] = ()
