"""Connecting to a terminal over TCP (ZVT, Caisse-AP), and who a failed connection is blamed on."""
from __future__ import annotations

import socket

from posbench.core.errors import PortUnavailable, UnitNotResponding


def connect_terminal(host: str, port: int, timeout_s: float, device: str, doing: str, peer: str, *,
                     reached: bool, booting: bool = False) -> socket.socket:
    """A connection to the terminal (``peer``, e.g. "the PT") at ``host:port``, Nagle off, within
    ``timeout_s`` seconds.

    A terminal never reached in this session is the bench's matter (``PortUnavailable``: a wrong
    address, a cable, a terminal switched off); one that was ``reached`` earlier, or may still be
    ``booting``, has stopped answering (``UnitNotResponding``: its silence is judged against the
    supply and what happened before it, as on a serial link)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        refused_or_silent = isinstance(exc, (ConnectionRefusedError, TimeoutError))
        why = ("connection refused" if isinstance(exc, ConnectionRefusedError)
               else f"no answer within {timeout_s:g} s" if isinstance(exc, TimeoutError) else str(exc))
        if booting:
            raise UnitNotResponding(device, doing, f"{why} (the unit may still be booting)") from None
        if reached:
            raise UnitNotResponding(device, doing, f"{why}: {peer} answered earlier in this session and has "
                                    "stopped taking connections") from None
        raise PortUnavailable(device, doing, f"{why}: the address is wrong or {peer} is off"
                              if refused_or_silent else why) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
