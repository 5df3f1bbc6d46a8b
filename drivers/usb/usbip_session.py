"""The USB/IP wire under ``UsbipBackend``: the exported device as the server lists it
(``RemoteDevice``) and one imported device's connection (``UsbipSession``), which submits URBs,
unlinks one that timed out (``CMD_UNLINK``, as the kernel's vhci driver does) and keeps a
completion that raced the unlink for the next read. Times are seconds."""
from __future__ import annotations

import errno
import select
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass

import usb.core
from usbip import protocol as usbip_wire

USBIP_PORT = 3240
UNLINK_GRACE_S = 1.0
"""How long the server has to answer a ``CMD_UNLINK`` before the connection counts as dead."""
FRAME_TIMEOUT_S = 5.0
"""How long the rest of a reply may take once its first byte arrived."""

OP = struct.Struct(">HHI")
DEV = struct.Struct(">256s32sIIIHHHBBBBBB")
_CMD = struct.Struct(">IIIII Iiiii 8s")
_RET = struct.Struct(">IIIII iiiii 8s")
DIR_OUT, DIR_IN = 0, 1

# libusb error codes pyusb callers look at (backend_error_code)
LIBUSB_IO, LIBUSB_NO_DEVICE, LIBUSB_TIMEOUT, LIBUSB_PIPE = -1, -4, -7, -9
USB_SPEED = {1: 1, 2: 2, 3: 3, 5: 4, 6: 4}  # USB/IP wire speed -> pyusb SPEED_* constant


def no_device(detail: str) -> usb.core.USBError:
    return usb.core.USBError(f"No such device (it may have been disconnected): {detail}",
                             LIBUSB_NO_DEVICE, errno.ENODEV)


def _timeout() -> usb.core.USBTimeoutError:
    return usb.core.USBTimeoutError("Operation timed out", LIBUSB_TIMEOUT, errno.ETIMEDOUT)


def status_error(status: int) -> usb.core.USBError:
    code = -status if status < 0 else status
    if code == errno.EPIPE:
        return usb.core.USBError("Pipe error", LIBUSB_PIPE, errno.EPIPE)
    if code in (errno.ENODEV, errno.ESHUTDOWN):
        return no_device(f"URB status {status}")
    if code in (errno.ETIMEDOUT, errno.ETIME):
        return _timeout()
    return usb.core.USBError(f"Input/Output Error (URB status {status})", LIBUSB_IO, code or errno.EIO)


@dataclass(frozen=True)
class RemoteDevice:
    """One device a USB/IP server exports (from its device list); pyusb's opaque ``dev``."""

    busid: str
    path: str
    busnum: int
    devnum: int
    speed: int
    idVendor: int
    idProduct: int
    bcdDevice: int
    bDeviceClass: int
    bDeviceSubClass: int
    bDeviceProtocol: int
    bConfigurationValue: int
    bNumConfigurations: int
    interfaces: tuple[tuple[int, int, int], ...]

    @property
    def devid(self) -> int:
        return (self.busnum << 16) | self.devnum

    @property
    def port_numbers(self) -> tuple[int, ...]:
        """``"1-1.2"`` -> ``(1, 2)``: the hub ports from the root to the device."""
        _bus, _sep, chain = self.busid.partition("-")
        try:
            return tuple(int(p) for p in chain.split(".") if p)
        except ValueError:
            return ()


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def recv_exact(sock: socket.socket, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = sock.recv(size - len(out))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(out)} of {size} bytes")
        out += chunk
    return bytes(out)


def parse_device(raw: bytes) -> dict:
    (path, busid, busnum, devnum, speed, vid, pid, bcd, dcls, dsub, dproto, cfg, ncfg,
     nif) = DEV.unpack(raw)
    return dict(busid=_cstr(busid), path=_cstr(path), busnum=busnum, devnum=devnum, speed=speed,
                idVendor=vid, idProduct=pid, bcdDevice=bcd, bDeviceClass=dcls,
                bDeviceSubClass=dsub, bDeviceProtocol=dproto, bConfigurationValue=cfg,
                bNumConfigurations=ncfg, nif=nif)


class UsbipSession:
    """One imported device: a TCP connection carrying URBs, one transfer at a time."""

    def __init__(self, sock: socket.socket, dev: RemoteDevice):
        self.sock, self.dev = sock, dev
        self._lock = threading.Lock()
        self._seq = 0
        self._closed = False
        self._pending: dict[int, tuple[int, int]] = {}  # seqnum -> (direction, ep), unanswered
        self._replies: dict[int, tuple[int, bytes]] = {}  # seqnum -> (status, data), unclaimed
        self._abandoned: set[int] = set()  # unlinked URBs whose completion may still come
        self._late: dict[int, deque[bytes]] = {}  # ep -> IN data that completed after its unlink
        self._unlinked: dict[int, int | None] = {}  # unlink seqnum -> RET_UNLINK status (None: waiting)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Drop the connection (the server sees the device detached). Safe from any thread."""
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def _fail(self, detail: str) -> usb.core.USBError:
        self.close()
        return no_device(f"{self.dev.busid}: {detail}")

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    def _read_frame(self, deadline: float | None) -> bool:
        """Read and dispatch one reply if one arrives before ``deadline``; False on timeout."""
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            ready, _, _ = select.select([self.sock], [], [], remaining)
        except (OSError, ValueError):
            raise self._fail("connection closed") from None
        if not ready:
            return False
        try:
            self.sock.settimeout(FRAME_TIMEOUT_S)
            hdr = _RET.unpack(recv_exact(self.sock, _RET.size))
            command, seq, _devid, _dir, _ep, status, actual = hdr[:7]
            if command == usbip_wire.RET_SUBMIT:
                direction, ep = self._pending.pop(seq, (DIR_OUT, 0))
                data = b""
                if direction == DIR_IN and actual > 0:
                    data = recv_exact(self.sock, actual)
                if seq in self._abandoned:  # completed after its unlink: keep it for the next
                    self._abandoned.discard(seq)  # read on the endpoint, a report is never lost
                    if status == 0 and data and ep:
                        self._late.setdefault(ep, deque()).append(data)
                else:
                    self._replies[seq] = (status, data)
            elif command == usbip_wire.RET_UNLINK:
                self._unlinked[seq] = status
            else:
                raise ConnectionError(f"unexpected USB/IP reply 0x{command:08x}")
        except (OSError, ConnectionError) as exc:
            raise self._fail(f"reading a reply: {exc}") from None
        return True

    def submit(self, direction: int, ep: int, setup: bytes, length: int, payload: bytes = b"",
               timeout_ms: int | None = 1000, interval: int = 0) -> tuple[int, bytes]:
        """Send one URB and wait for it. Returns ``(status, data)``; ``USBTimeoutError`` after
        ``timeout_ms`` (0 or None waits until the device answers or goes away)."""
        with self._lock:
            if self._closed:
                raise no_device(f"{self.dev.busid}: connection closed")
            ep_num = ep & 0x0F
            if direction == DIR_IN and ep_num and self._late.get(ep_num):
                data = self._late[ep_num].popleft()
                return 0, data
            seq = self._next_seq()
            self._pending[seq] = (direction, ep_num)
            cmd = _CMD.pack(usbip_wire.CMD_SUBMIT, seq, self.dev.devid, direction, ep_num,
                            0, length, 0, 0, interval, setup)
            try:
                self.sock.sendall(cmd + (payload if direction == DIR_OUT else b""))
            except OSError as exc:
                raise self._fail(f"sending a URB: {exc}") from None
            deadline = None if not timeout_ms else time.monotonic() + timeout_ms / 1000.0
            while seq not in self._replies:
                if not self._read_frame(deadline):
                    return self._unlink(seq)
            return self._replies.pop(seq)

    def _unlink(self, seq: int) -> tuple[int, bytes]:
        """Cancel ``seq`` as the kernel's vhci does on a timeout; raise ``USBTimeoutError``
        unless the URB completed before the server saw the unlink (then return its reply)."""
        useq = self._next_seq()
        self._unlinked[useq] = None
        cmd = _CMD.pack(usbip_wire.CMD_UNLINK, useq, self.dev.devid, DIR_OUT, 0, seq, 0, 0, 0, 0,
                        bytes(8))
        try:
            self.sock.sendall(cmd)
        except OSError as exc:
            raise self._fail(f"sending an unlink: {exc}") from None
        deadline = time.monotonic() + UNLINK_GRACE_S
        while self._unlinked.get(useq) is None:
            if not self._read_frame(deadline):
                raise self._fail(f"no answer to an unlink within {UNLINK_GRACE_S:g} s")
        unlink_status = self._unlinked.pop(useq)
        if seq in self._replies:  # it completed before the server saw the unlink
            status, data = self._replies.pop(seq)
            if status == 0:
                return status, data
        elif unlink_status == -errno.ECONNRESET:  # Linux usbipd: cancelled, nothing follows
            self._pending.pop(seq, None)
        elif seq in self._pending:
            # A completion may still follow RET_UNLINK (the usbip package answers every unlink
            # with status 0, even while that URB's completion is in flight): _read_frame keeps
            # its data for the next read. Only the latest few are remembered.
            self._abandoned.add(seq)
            while len(self._abandoned) > 16:
                oldest = min(self._abandoned)
                self._abandoned.discard(oldest)
                self._pending.pop(oldest, None)
        raise _timeout()
