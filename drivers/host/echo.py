"""A series of ISO 8583 echo tests (0800 / 0810, field 70 = 301): loss, latency, reconnects.

What a terminal's link check does: one persistent connection, one echo every ``interval_s``
seconds, each with a deadline; after a failed echo the connection is dropped and the next echo
connects again (a reconnect). Latency is the round trip of an answered echo in seconds, from
sending the request to its reply (the connect time of a reconnect is not part of it, but it is
inside the echo's deadline).
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from posbench.core.errors import ProtocolError

from .client import HostClient
from .wire import ConnectionClosed


@dataclass
class EchoStats:
    """``sent``/``answered`` echoes, ``loss`` = unanswered fraction (0..1), latency of answered
    echoes in seconds (``None`` when none was answered), ``reconnects``: connections opened (or
    tried) again because an echo failed."""

    sent: int
    answered: int
    loss: float
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    reconnects: int
    latencies_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` (0..100) percentile, linear between closest ranks; None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def echo_series(address: tuple[str, int], count: int = 10, interval_s: float = 0.2,
                timeout_s: float = 2.0, netns: str | None = None,
                terminal_id: str | None = "BENCHECH", first_stan: int = 1) -> EchoStats:
    """Send ``count`` echoes to ``address`` (host, port), one every ``interval_s`` seconds.

    ``timeout_s`` bounds each echo (connect included). ``netns``: connect from that network
    namespace (the lab's bench PC). ``terminal_id`` goes in field 41 (None: no field 41);
    STANs count up from ``first_stan``. Never raises for network failures: they are the result.
    """
    if count < 1 or timeout_s <= 0 or interval_s < 0:
        raise ValueError("count must be >= 1, timeout_s > 0, interval_s >= 0")
    factory = None
    if netns is not None:
        from posbench.core.netns import socket_in  # only needed with a namespace
        factory = lambda: socket_in(netns, socket.AF_INET, socket.SOCK_STREAM)  # noqa: E731
    client = HostClient(address, timeout_s, sock_factory=factory)
    latencies: list[float] = []
    failures: list[str] = []
    reconnects = 0
    had_failure = False
    connected = False
    start = time.monotonic()
    try:
        for index in range(count):
            due = start + index * interval_s
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            deadline = time.monotonic() + timeout_s
            stan = (first_stan + index - 1) % 999_999 + 1
            doc = {"t": "0800", "7": datetime.now(timezone.utc).strftime("%m%d%H%M%S"),
                   "11": f"{stan:06d}", "70": "301"}
            if terminal_id is not None:
                doc["41"] = f"{terminal_id:<8}"[:8]
            try:
                if not connected:
                    if had_failure:
                        reconnects += 1
                        had_failure = False
                    client.connect(timeout_s)
                    connected = True
                sent_at = time.perf_counter()
                client.exchange(doc, max(deadline - time.monotonic(), 0.001))
                latencies.append(time.perf_counter() - sent_at)
            except (TimeoutError, ConnectionClosed, ProtocolError, OSError) as exc:
                failures.append(f"STAN {stan:06d}: {_describe(exc)}")
                client.close()
                connected = False
                had_failure = True
    finally:
        client.close()
    return EchoStats(
        sent=count, answered=len(latencies), loss=1.0 - len(latencies) / count,
        p50_s=percentile(latencies, 50), p95_s=percentile(latencies, 95),
        max_s=max(latencies) if latencies else None, reconnects=reconnects,
        latencies_s=latencies, failures=failures)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ProtocolError):
        return f"protocol error: {exc.detail}"
    if isinstance(exc, TimeoutError):
        return "no reply in time"
    if isinstance(exc, ConnectionClosed):
        return "connection closed by the host"
    name = type(exc).__name__
    strerror = getattr(exc, "strerror", None)
    return f"{name}: {strerror}" if strerror else name
