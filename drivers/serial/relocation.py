"""Serial ports whose address moves: a URL that is only valid until its server restarts.

A bench room serves a place's serial ports through ser2net on a new TCP port at every acquire,
after a power cycle of the unit and after the exporter restarts (docs/bench-setup.md). The one
who knows where a port went (``posbench.room``) registers a locator for the URL it handed out;
a driver reopening a port asks ``current(url)`` for the address to try now.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from posbench.core.errors import PortUnavailable

POLL_S = 0.2
"""Seconds between looks for a followed port that is not served at the moment."""

_locators: dict[str, Callable[[], str]] = {}
_settle: dict[Callable[[], str], float] = {}
_lock = threading.Lock()


def follow(url: str, locate: Callable[[], str], settle_s: float = 0.0) -> None:
    """From now on, ``current(url)`` asks ``locate()`` where the port is. ``locate`` returns a
    URL for ``serial_for_url`` or raises ``PortUnavailable`` (not served at the moment);
    ``settle_s``: seconds the port may take to be served again after its server restarted."""
    with _lock:
        _locators[url] = locate
        _settle[locate] = settle_s


def patience(url: str, within_s: float) -> float:
    """Seconds to keep trying to reopen ``url``: ``within_s``, or longer for a followed port whose
    server needs longer to serve it again."""
    with _lock:
        locate = _locators.get(url)
        return max(within_s, _settle.get(locate, 0.0)) if locate is not None else within_s


def forget(locate: Callable[[], str]) -> None:
    """Stop following every URL that ``locate`` answers for (the place was released)."""
    with _lock:
        for url in [u for u, fn in _locators.items() if fn is locate]:
            del _locators[url]
        _settle.pop(locate, None)


def current(url: str) -> str:
    """Where the port first handed out as ``url`` (or found since at ``url``) is now: ``url``
    itself for a port nobody follows. The answer is followed too, so a port can move again.
    A followed port that is not served at the moment is waited for, up to its ``settle_s``."""
    with _lock:
        locate = _locators.get(url)
        settle_s = _settle.get(locate, 0.0) if locate is not None else 0.0
    if locate is None:
        return url
    deadline = time.monotonic() + settle_s
    while True:
        try:
            now = locate()
            break
        except PortUnavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(POLL_S)
    if now != url:
        with _lock:
            _locators[now] = locate
    return now
