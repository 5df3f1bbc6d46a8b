"""Find serial ports a unit may sit on, and say which answer as a posbench ECR terminal.

Lists what ``serial.tools.list_ports`` sees (plus ports named explicitly), and with probing
sends one ``ID`` to each at the given baud rates with short timeouts. Every probe is bounded:
a silent port costs ``enq_wait`` seconds per baud rate.
"""
from __future__ import annotations

from dataclasses import dataclass

from serial.tools import list_ports

from posbench.errors import BenchError, UnitError
from posbench.drivers.serial.agent import AgentTerminal, Identity
from posbench.drivers.serial.agent_link import LinkTiming


@dataclass
class Found:
    port: str
    description: str
    hwid: str
    baudrate: int | None = None
    identity: Identity | None = None
    problem: str = ""

    def bench_snippet(self) -> str:
        lines = ["[terminal]", f'port = "{self.port}"']
        if self.baudrate:
            lines.append(f"baudrate = {self.baudrate}")
        if self.identity:
            lines[:0] = ["[unit]", f'model = "{self.identity.model}"',
                         f'serial = "{self.identity.serial}"', ""]
        return "\n".join(lines)


def serial_ports(extra: list[str] | tuple[str, ...] = ()) -> list[Found]:
    """Ports the OS lists, then ``extra`` ports (pty paths, URLs) not already among them."""
    found = [Found(p.device, p.description or "", p.hwid or "")
             for p in sorted(list_ports.comports(include_links=True), key=lambda p: p.device)]
    known = {f.port for f in found}
    found += [Found(port, "named on the command line", "") for port in extra if port not in known]
    return found


def probe(found: Found, baudrates: list[int], enq_wait: float = 0.3) -> Found:
    """Ask ``ID`` at each baud rate until a unit answers; fills ``identity`` or ``problem``."""
    timing = LinkTiming(enq_tries=1, enq_wait=enq_wait, ack_wait=1.0, inter_byte=0.2)
    for baud in baudrates:
        terminal = AgentTerminal(found.port, baud, reply_timeout=1.0, timing=timing)
        try:
            terminal.open()
            found.identity, found.baudrate = terminal.identify(), baud
            found.problem = ""
            return found
        except BenchError as exc:  # cannot open: no point trying other rates
            found.problem = exc.detail or str(exc)
            return found
        except UnitError as exc:
            found.problem = f"no ECR terminal answered ({exc.detail or exc})"
        finally:
            terminal.close()
    return found
