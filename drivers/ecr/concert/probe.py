"""Concert V2's discover probe: ENQ, answered by ACK, at 9600 8N1 then 7E1."""
from __future__ import annotations

from posbench.core.errors import PortUnavailable
from posbench.drivers.probing import Answer, LineSettings, NoAnswer, SerialProbe, TcpProbe

from .link import probe


def ask_concert(port: str, settings: LineSettings, timeout_s: float) -> Answer:
    try:
        answered = probe(port, line=settings.line, timeout_s=timeout_s)
    except PortUnavailable as exc:
        if settings.bytesize == 8:  # 8N1 comes first: a port that cannot be opened at all
            raise
        # The port opened at 8N1 a moment ago; refusing 7E1 (a pty, an adapter without 7-bit
        # support) says only that no 7E1 terminal can be on it.
        raise NoAnswer(f"the port refuses {settings.line} ({exc.detail or exc})") from None
    if not answered:
        raise NoAnswer("no ACK to ENQ")
    return Answer("concert", "terminal", f"answered ENQ with ACK ({settings.line})", settings,
                  {"protocol": "concert", "port": port, "baudrate": settings.baudrate, "line": settings.line})


SERIAL = (SerialProbe("concert", "terminal", (LineSettings(9600), LineSettings(9600, 7, "E")), "ENQ", "ACK",
                      ask_concert),)
TCP: tuple[TcpProbe, ...] = ()
