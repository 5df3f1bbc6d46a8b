"""Serial port on TCP: the bench's stand-in for ser2net or a terminal server.

A real bench often reaches a unit's ECR port through a remote serial server (ser2net, a Moxa
NPort, a Digi terminal server) as ``rfc2217://host:port`` or ``socket://host:port``. This bridge
exports a local serial port (on the virtual bench: the virtual terminal's pty) the same way, so
the drivers' remote transports are exercised against a server that is not posbench's own code:

- RFC 2217 mode (default): telnet with the COM-PORT option, built on pyserial's own
  ``serial.rfc2217.PortManager`` (option negotiation, baud/parity/purge requests, IAC escaping),
  after pyserial's ``examples/rfc2217_server.py``.
- raw mode (``raw=True``): bytes copied as-is, no negotiation, for ``socket://`` clients.

One client at a time; a client that connects while another is served waits in the backlog until
that one leaves. Threads: one accepts, and per client one copies serial -> socket and one copies
socket -> serial. Every socket and serial call has a timeout and ``stop()`` has a deadline.

    with SerialBridge("/dev/pts/7") as bridge:
        AgentTerminal(bridge.url)...
"""
from __future__ import annotations

import errno
import select
import socket
import threading
import time

import serial
import serial.rfc2217

POLL_S = 0.1
"""Seconds each blocking call waits before the loops look at the stop flags again."""
SEND_TIMEOUT_S = 2.0
"""Seconds a socket send or serial write may take before the client counts as gone."""
MODEM_POLL_S = 1.0
"""Seconds between modem line checks (RFC 2217 NOTIFY_MODEMSTATE), as pyserial's example."""

_NO_MODEM_LINES = (errno.ENOTTY, errno.EINVAL)


class _ModemLinesOptional:
    """A pyserial port whose missing modem lines are not an error.

    A pty has no CTS/DSR/RI/CD and refuses RTS/DTR (ENOTTY); PortManager touches them when a
    client connects. They read as a null-modem cable would (CTS, DSR, CD on, RI off) and setting
    them is a no-op, as on a terminal server port wired without handshake lines.
    """

    _FIXED = {"cts": True, "dsr": True, "ri": False, "cd": True}

    def __init__(self, port: serial.SerialBase):
        object.__setattr__(self, "_port", port)

    def __getattr__(self, name: str):
        if name in self._FIXED:
            try:
                return getattr(self._port, name)
            except OSError as exc:
                if exc.errno in _NO_MODEM_LINES:
                    return self._FIXED[name]
                raise
        return getattr(self._port, name)

    def __setattr__(self, name: str, value) -> None:
        try:
            setattr(self._port, name, value)
        except OSError as exc:
            if name in ("rts", "dtr", "break_condition") and exc.errno in _NO_MODEM_LINES:
                return
            raise


class _Session:
    """One connected client: the socket, its write lock and the two copy threads."""

    def __init__(self, conn: socket.socket, port: _ModemLinesOptional, raw: bool):
        self.conn, self.port = conn, port
        self.ended = threading.Event()
        self._lock = threading.Lock()
        conn.settimeout(SEND_TIMEOUT_S)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # PortManager starts the telnet negotiation at once, through write() below.
        # PortManager duck-types both (pyserial's stubs ask for serial.Serial): it reads and sets
        # the port's settings and lines through the wrapper and writes to the client through us
        self.manager = None if raw else serial.rfc2217.PortManager(port, self)  # type: ignore[arg-type]
        self.threads = [threading.Thread(target=self._serial_to_socket, daemon=True,
                                         name="serial-bridge serial->socket"),
                        threading.Thread(target=self._socket_to_serial, daemon=True,
                                         name="serial-bridge socket->serial")]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def write(self, data: bytes) -> None:
        """Thread-safe send of already escaped bytes (PortManager calls this too)."""
        with self._lock:
            self.conn.sendall(data)

    def end(self) -> None:
        self.ended.set()
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _serial_to_socket(self) -> None:
        next_modem_check = time.monotonic() + MODEM_POLL_S
        try:
            while not self.ended.is_set():
                data = self.port.read(self.port.in_waiting or 1)  # returns after POLL_S at most
                if data:
                    if self.manager is not None:
                        data = b"".join(self.manager.escape(data))
                    self.write(data)
                if self.manager is not None and time.monotonic() >= next_modem_check:
                    self.manager.check_modem_lines()
                    next_modem_check = time.monotonic() + MODEM_POLL_S
        except (OSError, serial.SerialException):
            pass  # the client or the port went away: the session ends
        finally:
            self.end()

    def _socket_to_serial(self) -> None:
        try:
            while not self.ended.is_set():
                ready, _, _ = select.select([self.conn], [], [], POLL_S)
                if not ready:
                    continue
                data = self.conn.recv(4096)
                if not data:
                    break  # the client closed the connection
                if self.manager is not None:
                    data = b"".join(self.manager.filter(data))
                if data:
                    self.port.write(data)  # write_timeout bounds it
        except (OSError, ValueError, serial.SerialException):
            pass
        finally:
            self.end()

    def join(self, deadline: float) -> bool:
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)


class SerialBridge:
    """Exports the serial port ``port_url`` on ``host``:ephemeral port (RFC 2217, or raw TCP)."""

    def __init__(self, port_url: str, raw: bool = False, host: str = "127.0.0.1", port: int = 0,
                 baudrate: int = 115200):
        self.port_url, self.raw, self.baudrate = port_url, raw, baudrate
        self._bind = (host, port)
        self._serial: serial.SerialBase | None = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._session: _Session | None = None
        self._address: tuple[str, int] | None = None
        self._stop = threading.Event()
        self.clients = 0
        """Connections served so far."""

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> "SerialBridge":
        try:
            self._serial = serial.serial_for_url(self.port_url, baudrate=self.baudrate,
                                                 timeout=POLL_S, write_timeout=SEND_TIMEOUT_S)
            self._listener = socket.create_server(self._bind, backlog=1)
            self._listener.settimeout(POLL_S)
            self._address = self._listener.getsockname()[:2]
        except BaseException:
            self._close_resources()
            raise
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="serial-bridge accept")
        self._thread.start()
        return self

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the bridge listens on (still known after ``stop()``)."""
        assert self._address is not None, "start() the bridge first"
        return self._address

    @property
    def url(self) -> str:
        """The pyserial URL a client opens: ``rfc2217://h:p`` or ``socket://h:p``."""
        host, port = self.address
        return f"{'socket' if self.raw else 'rfc2217'}://{host}:{port}"

    def stop(self, timeout: float = 2.0) -> bool:
        """Drop the client, stop listening, close the port; True when every thread ended in time."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        session = self._session
        if session is not None:
            session.end()
        if self._listener is not None:
            try:  # wakes accept() at once; the accept thread closes it (never close under a user)
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        clean = True
        if session is not None:
            clean = session.join(deadline)
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            clean = clean and not self._thread.is_alive()
        self._close_resources()
        return clean

    def _close_resources(self) -> None:
        for closeable in (self._listener, self._serial):
            if closeable is not None:
                try:
                    closeable.close()
                except (OSError, serial.SerialException):
                    pass
        self._listener = None
        self._serial = None

    def __enter__(self) -> "SerialBridge":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        ser, listener = self._serial, self._listener
        assert ser is not None and listener is not None
        port = _ModemLinesOptional(ser)
        settings = ser.get_settings()
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break  # stop() shut the listener down
            try:
                self._session = _Session(conn, port, self.raw)
                self._session.start()
                self.clients += 1
                while not self._session.ended.wait(POLL_S) and not self._stop.is_set():
                    pass
                self._session.end()
                self._session.join(time.monotonic() + 2 * SEND_TIMEOUT_S)
            except OSError:
                pass  # the client vanished during the telnet greeting
            finally:
                conn.close()
                self._session = None
                try:
                    # A client may have changed baud rate or flow control over RFC 2217.
                    ser.apply_settings(settings)
                except (OSError, serial.SerialException, ValueError):
                    pass
        listener.close()  # new connections are refused from here on
