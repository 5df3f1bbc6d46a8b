"""ZVT's discover probes: a status enquiry (05 01) on a serial port (9600 and 115200 8N2) or on TCP
(port 20007)."""
from __future__ import annotations

from typing import Any

from posbench.core.errors import BenchError, UnitError
from posbench.drivers.probing import Answer, LineSettings, NoAnswer, SerialProbe, TcpProbe

from .client import CommandRejected, ZvtTerminal
from .link import TCP_PORT, ZvtTiming, SerialTransport
from .tcp import TcpTransport
from .section import Section


PASSWORD = Section.model_fields["password"].default
"""The password the status enquiry carries: bench.toml's default (a PT with another one
answers 84 xx, which identifies it as well)."""


def _zvt_answer(terminal: ZvtTerminal, where: dict[str, Any], settings: LineSettings | None) -> Answer:
    """Run a status enquiry (05 01) on ``terminal``: answered 80 00 (with its completion) or
    84 xx is a ZVT PT; silence or anything else is ``NoAnswer``."""
    try:
        result = terminal.status_enquiry()
    except CommandRejected as exc:
        return Answer("zvt", "terminal", f"answered the status enquiry 84 {exc.result_code:02X} "
                      f"({exc.meaning})", settings, where)
    except (UnitError, BenchError) as exc:  # silence, garbage, refused connection, port lost
        raise NoAnswer(exc.detail or str(exc)) from None
    finally:
        terminal.close()
    unit = {k: v for k, v in (("model", result.device_name), ("serial", result.serial_number)) if v}
    about = ", ".join(f"{k} {v}" for k, v in (("model", result.device_name), ("serial", result.serial_number),
                                               ("software", result.software_version)) if v)
    status = result.terminal_status_meaning or "no status byte"
    return Answer("zvt", "terminal", f"answered the status enquiry 80 00: {about or 'no identity'}; "
                  f"status {status}", settings, where, unit)


def ask_zvt_serial(port: str, settings: LineSettings, timeout_s: float) -> Answer:
    transport = SerialTransport(port, settings.baudrate, ZvtTiming(t2_s=timeout_s, repeats=0), reopen_s=0.0)
    transport.open()  # PortUnavailable: the port cannot be opened at all
    terminal = ZvtTerminal(transport, password=PASSWORD, t3_s=1.0, t4_s=2.0)
    return _zvt_answer(terminal, {"protocol": "zvt", "port": port, "baudrate": settings.baudrate}, settings)


def ask_zvt_tcp(host: str, port: int, timeout_s: float) -> Answer:
    transport = TcpTransport(host, port, connect_timeout_s=timeout_s, rest_timeout_s=1.0)
    terminal = ZvtTerminal(transport, password=PASSWORD, t3_s=1.0, t4_s=2.0)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return _zvt_answer(terminal, {"protocol": "zvt", "address": address}, None)


SERIAL = (SerialProbe("zvt", "terminal", (LineSettings(9600, stopbits=2), LineSettings(115200, stopbits=2)),
                      "status enquiry 05 01", "80 00 or 84 xx", ask_zvt_serial),)
TCP = (TcpProbe("zvt", TCP_PORT, "status enquiry 05 01", "80 00 or 84 xx", ask_zvt_tcp),)
