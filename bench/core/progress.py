"""What the bench is waiting for, told to whoever shows it (the live lines of ``posbench triage``).

Tests and fixtures wrap a long wait in ``waiting("the unit to boot", up_to_s=10)`` and count
repeated steps with ``step("swipes", 7, 50)``; a listener (``bench.runner.WaitDisplay``) decides
how to show them. With no listener (plain pytest) both cost a list lookup.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(eq=False)
class Wait:
    """One wait in progress: ``what`` (completes "waiting for ..."), its bound in seconds (None:
    open-ended), its monotonic start, and the latest step counted inside it."""

    what: str
    up_to_s: float | None
    started: float = field(default_factory=time.monotonic)
    step: str = ""
    shown: bool = False
    """Whether a display has shown it (it lasted long enough)."""

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Listener(Protocol):
    def started(self, wait: Wait) -> None: ...
    def ended(self, wait: Wait) -> None: ...


_listeners: list[Listener] = []
_lock = threading.Lock()
_open: list[Wait] = []
"""Waits in progress, oldest first (a wait may hold a shorter one: a sale inside a read test)."""


def listen(listener: Listener) -> None:
    with _lock:
        _listeners.append(listener)


def unlisten(listener: Listener) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def current() -> list[Wait]:
    """The waits in progress, oldest first."""
    with _lock:
        return list(_open)


@contextmanager
def waiting(what: str, up_to_s: float | None = None) -> Iterator[Wait]:
    """Say the bench is waiting for ``what`` (at most ``up_to_s`` seconds) until the block ends."""
    wait = Wait(what, up_to_s)
    with _lock:
        _open.append(wait)
        listeners = list(_listeners)
    for listener in listeners:
        listener.started(wait)
    try:
        yield wait
    finally:
        with _lock:
            if wait in _open:
                _open.remove(wait)
            listeners = list(_listeners)
        for listener in listeners:
            listener.ended(wait)


def step(what: str, done: int, total: int | None = None) -> None:
    """Count a step of the innermost wait (``"swipes", 7, 50`` reads "swipes: 7 of up to 50")."""
    with _lock:
        if _open:
            _open[-1].step = f"{what}: {done}" + (f" of up to {total}" if total else "")
