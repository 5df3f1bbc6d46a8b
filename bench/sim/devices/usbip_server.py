"""The virtual bench's USB/IP server: exports ``usbip`` package devices on a TCP port.

Speaks the Linux USB/IP protocol (the ``usbip`` package's wire code does the framing), so the
Debian ``usbip`` tool lists the devices (``usbip --tcp-port P list -r 127.0.0.1``), the kernel
could attach them, and pyusb reaches them through ``posbench.drivers.usb.backend``.

Own listener instead of ``USBDevice.plug(via=USBIP(host, port))`` because the package's
listeners are process-global and keyed by the *requested* address: two servers on port 0
would share one listener and nobody learns the port the kernel picked. It also cannot drop
the connections of one device when that device is unplugged (a hub port powered off), and it
resets a device's endpoints on every import, even while another connection is using it.
The per-connection URB loop below mirrors ``usbip.protocol.serve_connection`` for that reason.
"""
from __future__ import annotations

import socket
import threading
import time

from usbip import protocol
from usbip.device import USBDevice

HANDSHAKE_TIMEOUT_S = 5.0
"""How long a client may take to send its OP_REQ_* after connecting."""


class UsbipServer:
    """USB/IP device server on ``host:port`` (port 0: the kernel picks one; see ``address``).

    ``add(device)`` exports a ``usbip.device.USBDevice`` (it gets a new device number each time,
    as a real device re-enumerating gets a new address); ``remove(device)`` unplugs it and
    drops the connections that imported it. ``stop(timeout)`` ends everything.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, busnum: int = 1):
        self.busnum = busnum
        self._lock = threading.Lock()
        self._devices: list[USBDevice] = []
        self._conns: dict[socket.socket, USBDevice | None] = {}
        self._threads: list[threading.Thread] = []
        self._next_devnum = 2
        self._stopped = False
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._srv.bind((host, port))
            self._srv.listen(8)
        except OSError:
            self._srv.close()
            raise
        self.address: tuple[str, int] = self._srv.getsockname()[:2]
        self._accepter = threading.Thread(target=self._accept_loop, name="usbip-accept",
                                          daemon=True)
        self._accepter.start()

    @property
    def url(self) -> str:
        """``usbip://host:port``: the ``[usb] backend`` value that reaches this server."""
        return f"usbip://{self.address[0]}:{self.address[1]}"

    def __repr__(self) -> str:
        return f"UsbipServer({self.url}, {len(self._devices)} devices)"

    # --- devices ---
    def add(self, device: USBDevice, busid: str | None = None) -> str:
        """Export ``device`` under ``busid`` (default ``<busnum>-<n>``); returns the busid."""
        device._check_endpoint_conflicts()
        with self._lock:
            if self._stopped:
                raise RuntimeError("USB/IP server is stopped")
            if device in self._devices:
                return device.busid
            taken = {d.busid for d in self._devices}
            if busid is None:
                busid = device.busid if device.busid and device.busid not in taken else None
            if busid is None:
                n = 1
                while f"{self.busnum}-{n}" in taken:
                    n += 1
                busid = f"{self.busnum}-{n}"
            elif busid in taken:
                raise ValueError(f"busid {busid} is already exported")
            device.busid, device.busnum, device.devnum = busid, self.busnum, self._next_devnum
            self._next_devnum = self._next_devnum + 1 if self._next_devnum < 127 else 2
            self._devices.append(device)
        return busid

    def remove(self, device: USBDevice) -> bool:
        """Unplug ``device``: gone from the device list, its connections dropped (the importer
        sees the device disconnect). False if it was not exported."""
        with self._lock:
            if device not in self._devices:
                return False
            self._devices.remove(device)
            conns = [c for c, d in self._conns.items() if d is device]
        for conn in conns:
            _shutdown(conn, close=False)  # its serving thread closes it
        device.reset_io()  # parked URBs die with the connection, as on a real unplug
        return True

    def devices(self) -> list[USBDevice]:
        with self._lock:
            return list(self._devices)

    def is_exported(self, device: USBDevice) -> bool:
        with self._lock:
            return device in self._devices

    # --- serving ---
    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _addr = self._srv.accept()
            except OSError:
                self._srv.close()
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopped:
                    _shutdown(conn)
                    return
                self._conns[conn] = None
                thread = threading.Thread(target=self._serve, args=(conn,), name="usbip-conn",
                                          daemon=True)
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        lock = threading.Lock()  # parked IN URBs complete from the device's thread

        def respond(urb) -> None:
            with lock:
                try:
                    protocol.write_ret(conn, urb)
                except OSError:
                    pass

        try:
            conn.settimeout(HANDSHAKE_TIMEOUT_S)
            dev = protocol.serve_handshake(conn, self.devices())
            if dev is None:
                return
            conn.settimeout(None)  # an attached client may stay idle as long as it likes
            with self._lock:
                if dev not in self._devices or conn not in self._conns:
                    return  # unplugged (or server stopped) during the handshake
                first = dev not in self._conns.values()
                self._conns[conn] = dev
            if first:
                dev.reset_io()  # a fresh attach is a bus reset; a second importer is not
            while True:
                urb = protocol.read_cmd(conn, dev)
                if urb is None:
                    return
                if urb.command == protocol.CMD_UNLINK:
                    dev.cancel_urb(urb.flags)  # flags carries the unlinked seqnum
                    with lock:
                        protocol.write_ret_unlink(conn, urb)
                    continue
                if dev.handle_urb(urb, respond) is not None:
                    respond(urb)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._conns.pop(conn, None)
            _shutdown(conn)

    def stop(self, timeout: float = 2.0) -> bool:
        """Close the listener and every connection; wait up to ``timeout`` s for the threads.
        True if every thread ended in time."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._stopped = True
            conns = list(self._conns)
            devices, self._devices = self._devices, []
        _shutdown(self._srv, close=False)  # wakes accept(); the accept loop closes it
        for conn in conns:
            _shutdown(conn, close=False)
        for dev in devices:
            dev.reset_io()
        ok = True
        for thread in [self._accepter, *self._threads]:
            thread.join(max(0.0, deadline - time.monotonic()))
            ok = ok and not thread.is_alive()
        self._srv.close()
        return ok

    def __enter__(self) -> UsbipServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _shutdown(sock: socket.socket, close: bool = True) -> None:
    """Wake any thread blocked on ``sock`` (shutdown), then close it unless that thread will."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    if close:
        try:
            sock.close()
        except OSError:
            pass
