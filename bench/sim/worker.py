"""The life cycle every emulator shares: a serving thread, started once and stopped within a bound."""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod


class Worker(ABC):
    """A daemon thread running ``_run()`` until ``_stop`` is set.

    ``start()`` (idempotent while running), ``stop(timeout)`` (waits at most ``timeout`` seconds,
    then ``_stopped()`` releases what the emulator holds: its pty, a wake-up event), ``running``,
    and the context manager. Subclasses set ``thread_name``, call ``_init_thread()`` in their
    ``__init__`` and define ``_run()``; ``_wanted()`` False makes ``start`` a no-op (a fault of
    severity 0 needs no thread).
    """

    thread_name = "emulator"

    def _init_thread(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _run(self) -> None:
        """The serving loop; returns once ``self._stop`` is set."""

    def _wanted(self) -> bool:
        return True

    def _stopped(self) -> None:
        """After the thread ended (or ``stop``'s wait ran out): release what the emulator holds."""

    def start(self):
        if self._thread is None and self._wanted():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._stopped()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
