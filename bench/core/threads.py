"""Calls bounded in time: one way to run a call that may hang (a device open, a namespace entry)."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def call_with_deadline(fn: Callable[[], T], timeout: float, name: str) -> T:
    """``fn()`` run in a fresh daemon thread named ``name``; its result, or its exception re-raised
    here. ``TimeoutError`` when it does not return within ``timeout`` seconds (the thread is then
    left to finish on its own: whatever it opens late, ``fn`` must close itself)."""
    values: list[T] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            values.append(fn())
        except BaseException as exc:  # handed back to the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"{name} did not finish within {timeout:g} s")
    if errors:
        raise errors[0]
    return values[0]
