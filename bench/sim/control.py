"""The virtual bench's control port: how a ``virtual`` actuator swipes, taps and inserts cards.

On a real bench a hand (or a card robot) does this; on the virtual bench a client sends one
JSON line per action over TCP on 127.0.0.1 and gets one JSON line back. JSON lines, because
the messages are tiny and any client (``nc``, a test) can speak them; no library is needed.
"""
from __future__ import annotations

import json
import socketserver
import threading
from typing import Callable

from posbench.drivers.actuator.virtual import MAX_LINE  # one wire limit, the client's (bytes)

Handler = Callable[[dict], dict]


class _RequestHandler(socketserver.StreamRequestHandler):
    timeout = 5.0  # seconds a client may stay silent before the connection is dropped

    def handle(self) -> None:
        assert isinstance(self.server, _Server)
        server = self.server.owner
        while True:
            try:
                line = self.rfile.readline(MAX_LINE + 1)
            except (TimeoutError, OSError):
                return
            if not line:
                return
            reply = server.dispatch(line)
            try:
                self.wfile.write(json.dumps(reply).encode() + b"\n")
            except OSError:
                return


class _Server(socketserver.ThreadingTCPServer):
    owner: ControlServer
    daemon_threads = True
    allow_reuse_address = True


class ControlServer:
    """Serves ``handlers`` (action name -> function of the request) on 127.0.0.1."""

    def __init__(self, handlers: dict[str, Handler], host: str = "127.0.0.1", port: int = 0):
        self.handlers = handlers
        self._server = _Server((host, port), _RequestHandler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def dispatch(self, line: bytes) -> dict:
        if len(line) > MAX_LINE:
            return {"ok": False, "error": f"request longer than {MAX_LINE} bytes"}
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            return {"ok": False, "error": f"not a JSON object: {exc}"}
        action = request.get("action")
        handler = self.handlers.get(action) if isinstance(action, str) else None
        if handler is None:
            return {"ok": False, "error": f"unknown action {action!r}; known: {', '.join(sorted(self.handlers))}"}
        try:
            return {"ok": True, **handler(request)}
        except (KeyError, ValueError, LookupError) as exc:
            return {"ok": False, "error": str(exc)}

    def start(self) -> "ControlServer":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="sim-control", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        if self._thread:
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()

