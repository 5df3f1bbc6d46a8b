"""Reachability of the acquirer host's TCP port: open, refused (rejected) or filtered (dropped).

What a firewall in the path does decides the class: nothing in the way completes the
handshake (``open``); a TCP reset or an ICMP port-unreachable ends ``connect`` with
ECONNREFUSED, an ICMP admin-prohibited / host-unreachable with EHOSTUNREACH (``refused``, the
detail says which); a firewall that drops the SYN leaves ``connect`` without an answer until
the timeout (``filtered``). Each attempt's time is kept: a refusal takes a round trip, a
filter the whole timeout.
"""
from __future__ import annotations

import contextlib
import errno
import socket
import time
from dataclasses import dataclass, field
from typing import Literal

from posbench.core.errors import BenchError

DEVICE = "host port probe"
State = Literal["open", "refused", "filtered"]

_REFUSED = {
    errno.ECONNREFUSED: "ECONNREFUSED (TCP reset or ICMP port unreachable)",
    errno.EHOSTUNREACH: "EHOSTUNREACH (ICMP host unreachable or administratively prohibited)",
    errno.ENETUNREACH: "ENETUNREACH (ICMP network unreachable or no route)",
    errno.EACCES: "EACCES (blocked by a local firewall rule)",
    errno.EPERM: "EPERM (blocked by a local firewall rule)",
}


@dataclass
class PortProbe:
    """``state`` of the port over all attempts; ``times_s``: seconds each attempt took;
    ``detail``: what each attempt saw (errno names), for the evidence note."""

    host: str
    port: int
    state: State
    times_s: list[float] = field(default_factory=list)
    detail: str = ""
    outcomes: list[State] = field(default_factory=list)


def probe_port(host: str, port: int, timeout_s: float = 2.0, attempts: int = 3,
               netns: str | None = None, interval_s: float = 0.0) -> PortProbe:
    """Try a TCP handshake to ``host:port`` ``attempts`` times, each bounded by ``timeout_s`` seconds.

    The state is ``open`` when any attempt completed the handshake, else ``refused`` when any
    attempt was actively refused, else ``filtered``. ``netns``: make the sockets in that network
    namespace (the lab's bench PC). ``interval_s``: seconds between attempts (a series timing
    the path spaces its handshakes, as echoes are). ``BenchError`` for a local failure (no
    socket, bad address).
    """
    if attempts < 1 or timeout_s <= 0:
        raise ValueError("attempts must be >= 1 and timeout_s > 0")
    outcomes: list[State] = []
    notes: list[str] = []
    times: list[float] = []
    for n in range(attempts):
        if n and interval_s:
            time.sleep(interval_s)
        state, note, elapsed = _attempt(host, int(port), timeout_s, netns)
        outcomes.append(state)
        notes.append(note)
        times.append(elapsed)
    if "open" in outcomes:
        state = "open"
    elif "refused" in outcomes:
        state = "refused"
    else:
        state = "filtered"
    distinct = list(dict.fromkeys(notes))
    return PortProbe(host, int(port), state, times, "; ".join(distinct), outcomes)


def _attempt(host: str, port: int, timeout_s: float, netns: str | None) -> tuple[State, str, float]:
    if netns is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    else:
        from posbench.core.netns import socket_in  # only needed with a namespace
        sock = socket_in(netns, socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_s)
        start = time.perf_counter()
        try:
            sock.connect((host, port))
        except TimeoutError:
            return "filtered", f"no answer within {timeout_s:g} s", time.perf_counter() - start
        except socket.gaierror as exc:
            raise BenchError(DEVICE, f"resolving {host}", str(exc)) from None
        except OSError as exc:
            elapsed = time.perf_counter() - start
            if exc.errno in _REFUSED:
                return "refused", _REFUSED[exc.errno], elapsed
            raise BenchError(DEVICE, f"connecting to {host}:{port}", exc.strerror or str(exc)) from None
        return "open", "handshake completed", time.perf_counter() - start
    finally:
        with contextlib.suppress(OSError):
            sock.close()
