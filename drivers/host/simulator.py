"""The acquirer host simulator: an ISO 8583 host on TCP that answers by rules and logs everything.

Handles 0200 (financial, -> 0210), 0400 (reversal, -> 0410) and 0800 (network management,
-> 0810). Every request goes through the ``RuleSet`` (rules select by MTI), so a rule can set
the response code, delay the reply (seconds) or drop it. Delayed replies are sent from their
own thread: the connection keeps being read meanwhile, and a reply whose connection closed
before its delay ran out is never sent. Other request MTIs are answered with code 12 (invalid
transaction); a request missing a mandatory field is answered with 30 (format error).
Undecodable bytes close that connection only.

The JSONL log at ``log_path`` is the host's word on what it said (see ``posbench.drivers.host.log``):
one object per message in and out, written before the reply is sent. PANs are masked.
"""
from __future__ import annotations

import contextlib
import json
import random
import socket
import socketserver
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from posbench.core.errors import HostUnavailable, ProtocolError
from posbench.core.masking import mask_pan, scrub

from .iso_spec import decode, encode, response_mti
from .rules import Decision, RuleSet, amount_of, pan_of
from .wire import ConnectionClosed, recv_message, send_message

DEVICE = "host simulator"

_ECHO: dict[str, tuple[str, ...]] = {
    "0200": ("3", "4", "11", "41", "42", "49"),
    "0400": ("3", "4", "11", "41", "42", "49"),
    "0800": ("7", "11", "41", "70"),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "0200": ("3", "4", "11", "41"),
    "0400": ("11", "41"),
    "0800": ("11",),
}


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    peer: str
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    closed: threading.Event = field(default_factory=threading.Event)


class _JsonlLog:
    """Append-only JSONL file; one ``write`` + flush per line under a lock."""

    def __init__(self, path: Path):
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO | None = open(path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"ts": _now_iso(), **record}, separators=(",", ":")) + "\n"
        with self._lock:
            if self._fh is not None:
                self._fh.write(line)
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128
    """Listen backlog: an acquirer's is large; socketserver's 5 drops the SYNs of a burst of
    connections while the accept loop is busy (a loaded bench host), which reads as packet loss."""

    def __init__(self, address: tuple[str, int], sim: HostSimulator,
                 listen_sock: socket.socket | None = None):
        self.sim = sim
        if listen_sock is None:
            super().__init__(address, _Handler)
            return
        # A socket made elsewhere (e.g. inside a network namespace) replaces the server's own;
        # it is bound to ``address`` unless it already is.
        super().__init__(address, _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listen_sock
        try:
            if listen_sock.getsockname()[1] == 0:
                listen_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listen_sock.bind(address)
            self.server_address = listen_sock.getsockname()
            self.server_activate()
        except OSError:
            self.server_close()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.sim._log_event("error", peer=_peer(client_address),
                            detail=f"handler crashed: {type(sys.exc_info()[1]).__name__}")


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.sim._serve(self.request, _peer(self.client_address))


class HostSimulator:
    """ISO 8583 acquirer host on TCP.

    ``listen``: (host, port) to bind, port 0 picks a free one. ``seed``: makes rule draws and
    auth codes repeatable. ``idle_timeout``: seconds a connection may stay silent.
    ``send_timeout``: seconds a reply may take to write, and a started request to arrive.
    ``listen_sock``: a TCP socket to serve on instead of a new one (bound to ``listen`` unless
    already bound), e.g. one made inside a network namespace by ``posbench.core.netns.socket_in``;
    the simulator closes it on ``stop``, so it serves one start only.
    """

    def __init__(self, listen: tuple[str, int] = ("127.0.0.1", 0), rules: RuleSet | None = None,
                 *, log_path: str | Path, seed: int | None = None,
                 idle_timeout: float = 30.0, send_timeout: float = 5.0,
                 listen_sock: socket.socket | None = None):
        self.listen = listen
        self._listen_sock = listen_sock
        self.rules = rules if rules is not None else RuleSet()
        self.log_path = Path(log_path)
        self.idle_timeout = idle_timeout
        self.send_timeout = send_timeout
        self._rng = random.Random(seed)
        self._auth_rng = random.Random(self._rng.getrandbits(64))
        self._rng_lock = threading.Lock()
        self._seq = 0
        self._run = ""
        self._conns: set[_Connection] = set()
        self._conns_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._log: _JsonlLog | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> HostSimulator:
        """Bind and serve in background threads; ``HostUnavailable`` if bind or log fails."""
        if self._server is not None:
            raise RuntimeError("host simulator already started")
        try:
            self._log = _JsonlLog(self.log_path)
        except OSError as exc:
            raise HostUnavailable(DEVICE, "opening the host log", f"{self.log_path}: {exc.strerror}") from None
        try:
            self._server = _Server(self.listen, self, self._listen_sock)
        except OSError as exc:
            self._log.close()
            raise HostUnavailable(DEVICE, f"binding {self.listen[0]}:{self.listen[1]}",
                                  exc.strerror or str(exc)) from None
        self._stopping.clear()
        self._run = uuid.uuid4().hex[:8]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="host-sim", daemon=True)
        self._thread.start()
        return self

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the simulator listens on."""
        if self._server is None:
            raise RuntimeError("host simulator not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, close every client connection and the log, within ``timeout`` seconds."""
        server, self._server = self._server, None
        if server is None:
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        stopper = threading.Thread(target=server.shutdown, name="host-sim-stop", daemon=True)
        stopper.start()
        stopper.join(max(0.0, deadline - time.monotonic()))
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            _close(conn)
        server.server_close()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            self._thread = None
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> HostSimulator:
        return self if self._server is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- connection handling ---------------------------------------------------------------
    def _serve(self, sock: socket.socket, peer: str) -> None:
        conn = _Connection(sock, peer)
        with self._conns_lock:
            if self._stopping.is_set():
                _close(conn)
                return
            self._conns.add(conn)
        try:
            while not self._stopping.is_set():
                try:
                    raw = recv_message(sock, self.idle_timeout, body_timeout=self.send_timeout)
                    doc = decode(raw)
                except (ConnectionClosed, TimeoutError) as exc:
                    if isinstance(exc, TimeoutError):
                        self._log_event("idle_timeout", peer=peer, detail=f"silent for {self.idle_timeout} s")
                    break
                except ProtocolError as exc:
                    self._log_event("malformed", peer=peer, detail=scrub(exc.detail))
                    break
                except OSError:
                    break  # reset by the peer, or closed by stop()
                self._handle(conn, doc)
        except Exception as exc:  # never let one connection take the server down
            self._log_event("error", peer=peer, detail=type(exc).__name__)
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            _close(conn)

    def _handle(self, conn: _Connection, doc: dict[str, Any]) -> None:
        mti = doc["t"]
        seq = self._next_seq()
        if mti[2] in "13579":  # a response sent to the host: nothing to answer
            self._log_message("in", doc, conn.peer, seq, "ignored", 0.0, None)
            return
        missing = [f for f in _REQUIRED.get(mti, ("11",)) if f not in doc]
        if missing or mti not in _ECHO:
            decision = Decision("30" if missing else "12")
        else:
            with self._rng_lock:
                decision = self.rules.decide(doc, self._rng)
            if mti != "0200" and not decision.rule_name:
                decision = Decision("00")  # default_code is for financial requests only
        reply = self._reply(doc, decision.code, seq)
        action = "dropped" if decision.drop else "delayed" if decision.delay_s > 0 else "answered"
        rule = decision.rule_name or None
        self._log_message("in", doc, conn.peer, seq, action, decision.delay_s, rule)
        if decision.drop:
            return
        if decision.delay_s > 0:
            threading.Thread(target=self._send_later, args=(conn, reply, seq, decision.delay_s, rule),
                             name=f"host-sim-delay-{seq}", daemon=True).start()
        else:
            self._send(conn, reply, seq, "answered", 0.0, rule)

    def _reply(self, doc: dict[str, Any], code: str, seq: int) -> dict[str, Any]:
        mti = doc["t"]
        reply: dict[str, Any] = {"t": response_mti(mti)}
        for key in _ECHO.get(mti, ("11", "41")):
            if key in doc:
                reply[key] = doc[key]
        now = datetime.now(timezone.utc)
        if mti == "0800":
            reply.setdefault("7", now.strftime("%m%d%H%M%S"))
        if mti == "0200":
            reply["37"] = now.strftime("%y%j%H") + f"{seq % 100_000:05d}"
            if code == "00":
                with self._rng_lock:
                    reply["38"] = f"{self._auth_rng.randrange(1_000_000):06d}"
        reply["39"] = code
        return reply

    def _send_later(self, conn: _Connection, reply: dict[str, Any], seq: int, delay_s: float,
                    rule: str | None) -> None:
        if conn.closed.wait(delay_s):
            self._log_event("reply_lost", peer=conn.peer, seq=seq, detail="connection closed during the delay")
            return
        self._send(conn, reply, seq, "delayed", delay_s, rule)

    def _send(self, conn: _Connection, reply: dict[str, Any], seq: int, action: str, delay_s: float,
              rule: str | None) -> None:
        try:
            raw = encode(reply)
        except ProtocolError as exc:
            self._log_event("error", peer=conn.peer, seq=seq, detail=scrub(exc.detail))
            return
        with conn.send_lock:
            if conn.closed.is_set():
                self._log_event("reply_lost", peer=conn.peer, seq=seq, detail="connection closed")
                return
            # Logged before sending: a client that has the reply also finds it in the log.
            self._log_message("out", reply, conn.peer, seq, action, delay_s, rule)
            try:
                send_message(conn.sock, raw, self.send_timeout)
            except OSError as exc:
                self._log_event("send_failed", peer=conn.peer, seq=seq, detail=type(exc).__name__)

    # -- logging ---------------------------------------------------------------------------
    def _log_message(self, direction: str, doc: dict[str, Any], peer: str, seq: int, action: str,
                     delay_s: float, rule: str | None) -> None:
        pan = pan_of(doc)
        self._write({
            "dir": direction, "mti": doc.get("t"), "stan": doc.get("11"), "tid": doc.get("41"),
            "amount": amount_of(doc), "pan": mask_pan(pan) if pan else None, "rc": doc.get("39"),
            "action": action, "delay_s": delay_s, "rule": rule, "run": self._run, "seq": seq,
            "peer": peer,
        })

    def _log_event(self, event: str, **fields: Any) -> None:
        self._write({"event": event, "run": self._run, **fields})

    def _write(self, record: dict[str, Any]) -> None:
        log = self._log
        if log is not None:
            # A full disk must not kill the host; the reader then sees a short log.
            with contextlib.suppress(OSError, ValueError):
                log.write(record)

    def _next_seq(self) -> int:
        with self._rng_lock:
            self._seq += 1
            return self._seq


def _peer(address: Any) -> str:
    try:
        return f"{address[0]}:{address[1]}"
    except (TypeError, IndexError):
        return str(address)


def _close(conn: _Connection) -> None:
    conn.closed.set()
    with contextlib.suppress(OSError):
        conn.sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        conn.sock.close()


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
