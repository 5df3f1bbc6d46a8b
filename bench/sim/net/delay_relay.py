"""A TCP relay that delays every chunk it forwards: latency and jitter for the network lab.

This kernel has no netem (sch_netem), so delay cannot come from a queueing discipline. The
router of the lab redirects the host port to this relay (nftables dnat), and the relay forwards
each connection to the real host, holding every chunk ``delay_s`` +- ``jitter_s`` seconds
(uniform) before passing it on, in both directions. Chunks of one direction keep their order
(a chunk is never released before the one ahead of it), as TCP requires.

Hand-written: no library in the project relays TCP with a delay; it is two pump threads per
connection around a deadline queue.
"""
from __future__ import annotations

import collections
import contextlib
import random
import select
import socket
import threading
import time
from collections.abc import Callable

from posbench.core.errors import BenchError

DEVICE = "delay relay"
CHUNK = 65536
POLL_S = 0.05


class DelayRelay:
    """Accepts on ``listen_sock`` (bound; the relay listens and owns it) and forwards to ``target``.

    ``rng``: draws the delays (seeded by the lab). ``delay_s``: mean hold time of a chunk per
    direction, seconds; ``jitter_s``: half-width of the uniform spread around it.
    ``connect``: makes the upstream socket (e.g. in a namespace), default a plain TCP socket;
    ``connect_timeout``: seconds to reach the target before the client is dropped.
    """

    def __init__(self, listen_sock: socket.socket, target: tuple[str, int], rng: random.Random,
                 delay_s: float, jitter_s: float = 0.0, *,
                 connect: Callable[[], socket.socket] | None = None, connect_timeout: float = 3.0):
        if delay_s < 0 or jitter_s < 0:
            raise ValueError("delay_s and jitter_s must be >= 0")
        self.listen_sock = listen_sock
        self.target = (target[0], int(target[1]))
        self.delay_s, self.jitter_s = delay_s, jitter_s
        self.connect_timeout = connect_timeout
        self._rng = rng
        self._rng_lock = threading.Lock()
        self._connect = connect or (lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._accepter: threading.Thread | None = None
        self.connections = 0

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the relay listens on."""
        host, port = self.listen_sock.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> DelayRelay:
        """Listen and accept in a background thread."""
        if self._accepter is not None:
            raise RuntimeError("relay already started")
        try:
            self.listen_sock.listen(16)
        except OSError as exc:
            raise BenchError(DEVICE, "listening", exc.strerror or str(exc)) from None
        self.listen_sock.settimeout(POLL_S)
        self._accepter = threading.Thread(target=self._accept_loop, name="delay-relay", daemon=True)
        self._accepter.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, close every connection, join the threads within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        with contextlib.suppress(OSError):
            self.listen_sock.close()
        with self._lock:
            socks, self._socks = list(self._socks), set()
            threads = list(self._threads)
        for sock in socks:
            _close(sock)
        if self._accepter is not None:
            self._accepter.join(max(0.0, deadline - time.monotonic()))
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _delay(self) -> float:
        with self._rng_lock:
            spread = self._rng.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0
        return max(0.0, self.delay_s + spread)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self.listen_sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop()
            thread = threading.Thread(target=self._open, args=(client,), name="delay-relay-conn", daemon=True)
            with self._lock:
                if self._stopping.is_set():
                    _close(client)
                    return
                self._socks.add(client)
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _open(self, client: socket.socket) -> None:
        try:
            upstream = self._connect()
        except Exception:  # noqa: BLE001 - no upstream socket: the client is dropped like a dead host
            self._forget(client)
            return
        with self._lock:
            if self._stopping.is_set():
                _close(upstream)
                return
            self._socks.add(upstream)
        try:
            upstream.settimeout(self.connect_timeout)
            upstream.connect(self.target)
        except OSError:
            self._forget(client, upstream)
            return
        self.connections += 1
        halves = _Halves()
        back = threading.Thread(target=self._pump, args=(upstream, client, halves),
                                name="delay-relay-back", daemon=True)
        with self._lock:
            self._threads.append(back)
        back.start()
        self._pump(client, upstream, halves)

    def _pump(self, src: socket.socket, dst: socket.socket, halves: _Halves) -> None:
        """Move bytes src -> dst, each chunk held for its delay; half-close dst at src's EOF.

        The sockets are closed when both directions ended cleanly, or at once on an error.
        """
        queue: collections.deque[tuple[float, bytes]] = collections.deque()
        last_release = 0.0
        eof = False
        try:
            src.setblocking(False)
            while not self._stopping.is_set():
                now = time.monotonic()
                while queue and queue[0][0] <= now:
                    _, data = queue.popleft()
                    dst.settimeout(2.0)
                    dst.sendall(data)
                if eof and not queue:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    if halves.finish():
                        self._forget(src, dst)
                    return
                wait = POLL_S if not queue else min(POLL_S, max(0.0, queue[0][0] - time.monotonic()))
                if eof:
                    time.sleep(wait)
                    continue
                ready, _, _ = select.select([src], [], [], wait)
                if not ready:
                    continue
                try:
                    data = src.recv(CHUNK)
                except (BlockingIOError, InterruptedError):
                    continue
                if not data:
                    eof = True
                    continue
                last_release = max(time.monotonic() + self._delay(), last_release)
                queue.append((last_release, data))
        except (OSError, ValueError):
            pass  # a reset or a socket closed by stop(): the connection ends
        self._forget(src, dst)

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                self._socks.discard(sock)
        for sock in socks:
            _close(sock)


class _Halves:
    """Counts the finished directions of one relayed connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = 0

    def finish(self) -> bool:
        """Mark one direction finished; True for the second one."""
        with self._lock:
            self._done += 1
            return self._done >= 2


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
