"""pyusb backends for the bench: ``libusb1`` (local USB) or ``usbip://host:port`` (USB/IP).

``[usb] backend`` in bench.toml selects one; ``open_backend(spec)`` returns it and
``find_devices(backend, vid, pid)`` lists what it sees.

Why our own USB/IP backend and not ``pyusb-usbip-backend`` 0.0.1 (read in full before deciding):
- a read that times out raises a plain ``USBError`` (not ``USBTimeoutError``) only after the
  timeout *plus 2 s*, because it waits for the server to time the URB out itself; USB/IP
  servers (Linux usbipd, the ``usbip`` package) never do: an interrupt IN URB stays parked
  until data comes. It never sends ``CMD_UNLINK``, so it then drops the TCP connection and
  re-imports the device, and the re-import resets the device's endpoints (a queued swipe is lost);
- ``enumerate_devices`` caches the device list forever, so a device unplugged (a hub port
  powered off) or re-enumerated is never seen to change;
- ``close_device`` is a no-op: sockets live until the process ends.
This backend (hand-written, about 300 lines, on the ``usbip`` package's protocol constants)
keeps one TCP connection per opened device, times a transfer out by sending ``CMD_UNLINK``
like the kernel's vhci driver and raises ``usb.core.USBTimeoutError`` within the timeout,
keeps a completion that raced the unlink for the next read, lists devices afresh on every
enumeration and closes connections on ``close_device``/``dispose_resources``.
A device that goes away mid-transfer raises ``USBError`` with ``errno.ENODEV``.
The wire itself (an imported device's connection, its URBs and unlinks) is ``usbip_session``.
"""
from __future__ import annotations

import array
import errno
import socket
import struct
import threading
from types import SimpleNamespace
from urllib.parse import urlsplit

import usb.backend
import usb.core
from usbip import protocol as usbip_wire

from posbench.core.errors import ConfigError, PortUnavailable
from posbench.drivers.usb.usbip_session import (DEV, DIR_IN, DIR_OUT, LIBUSB_IO, OP, USB_SPEED, USBIP_PORT,
                                                RemoteDevice, UsbipSession, no_device, parse_device, recv_exact,
                                                status_error)


class UsbipBackend(usb.backend.IBackend):
    """pyusb backend speaking USB/IP to ``host:port`` (Linux usbipd or the virtual bench).

    ``timeout`` (seconds) bounds connecting, the device-list exchange and descriptor reads.
    """

    def __init__(self, host: str, port: int = USBIP_PORT, timeout: float = 2.0):
        self.host, self.port, self.timeout = host, int(port), float(timeout)
        self._sessions: set[UsbipSession] = set()
        self._descs: dict[tuple[str, int], dict[int, bytes]] = {}
        self._last_list: list[RemoteDevice] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"usbip://{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"UsbipBackend({self.url})"

    # --- connection handshake ---
    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def list_exported(self) -> list[RemoteDevice]:
        """OP_REQ_DEVLIST: what the server exports now. Raises ``OSError`` when unreachable."""
        with self._connect() as sock:
            sock.sendall(OP.pack(usbip_wire.VERSION, usbip_wire.OP_REQ_DEVLIST, 0))
            _ver, code, status = OP.unpack(recv_exact(sock, OP.size))
            if code != usbip_wire.OP_REP_DEVLIST or status != 0:
                raise ConnectionError(f"bad device-list reply (code 0x{code:04x}, status {status})")
            (count,) = struct.unpack(">I", recv_exact(sock, 4))
            devices = []
            for _ in range(count):
                info = parse_device(recv_exact(sock, DEV.size))
                nif = info.pop("nif")
                ifaces = tuple(struct.unpack(">BBBx", recv_exact(sock, 4)) for _ in range(nif))
                devices.append(RemoteDevice(interfaces=ifaces, **info))
        self._last_list = devices
        return devices

    def _import(self, dev: RemoteDevice) -> UsbipSession:
        try:
            sock = self._connect()
        except OSError as exc:
            raise no_device(f"{self.url}: {exc}") from None
        try:
            busid = dev.busid.encode()[:31].ljust(32, b"\0")
            sock.sendall(OP.pack(usbip_wire.VERSION, usbip_wire.OP_REQ_IMPORT, 0) + busid)
            _ver, code, status = OP.unpack(recv_exact(sock, OP.size))
            if code != usbip_wire.OP_REP_IMPORT or status != 0:
                raise ConnectionError(f"import of {dev.busid} refused (status {status})")
            info = parse_device(recv_exact(sock, DEV.size))
            if (info["busid"], info["devnum"]) != (dev.busid, dev.devnum):
                raise ConnectionError(f"{dev.busid} re-enumerated (now device {info['devnum']})")
        except (OSError, ConnectionError) as exc:
            sock.close()
            raise no_device(f"importing {dev.busid} from {self.url}: {exc}") from None
        session = UsbipSession(sock, dev)
        with self._lock:
            self._sessions = {s for s in self._sessions if not s.closed} | {session}
        return session

    def close(self) -> None:
        """Close every connection this backend opened."""
        with self._lock:
            sessions, self._sessions = self._sessions, set()
        for session in sessions:
            session.close()

    # --- descriptors ---
    def enumerate_devices(self):
        return self.list_exported()

    def get_parent(self, dev: RemoteDevice):
        head, dot, _last = dev.busid.rpartition(".")
        if not dot:
            return None
        return next((d for d in self._last_list if d.busid == head), None)

    def get_device_descriptor(self, dev: RemoteDevice):
        # From the device list, so enumerating never imports (importing claims a device and
        # resets its endpoints). String indexes are not in the list: read the device
        # descriptor with GET_DESCRIPTOR on an opened device when strings are needed.
        ports = dev.port_numbers
        return SimpleNamespace(
            bLength=18, bDescriptorType=1, bcdUSB=0x0300 if dev.speed >= 5 else 0x0200,
            bDeviceClass=dev.bDeviceClass,
            bDeviceSubClass=dev.bDeviceSubClass, bDeviceProtocol=dev.bDeviceProtocol,
            bMaxPacketSize0=64, idVendor=dev.idVendor, idProduct=dev.idProduct,
            bcdDevice=dev.bcdDevice, iManufacturer=0, iProduct=0, iSerialNumber=0,
            bNumConfigurations=dev.bNumConfigurations, bus=dev.busnum, address=dev.devnum,
            port_number=ports[-1] if ports else None, port_numbers=ports or None,
            speed=USB_SPEED.get(dev.speed, 0))

    def _session_for(self, dev: RemoteDevice) -> UsbipSession | None:
        with self._lock:
            return next((s for s in self._sessions if s.dev == dev and not s.closed), None)

    def _config_raw(self, dev: RemoteDevice, index: int) -> bytes:
        key = (dev.busid, dev.devnum)
        cache = self._descs.setdefault(key, {})
        if index not in cache:
            session = self._session_for(dev)
            temporary = session is None
            if session is None:
                session = self._import(dev)
            try:
                timeout_ms = int(self.timeout * 1000)
                setup = struct.pack("<BBHHH", 0x80, 0x06, 0x0200 | index, 0, 9)
                status, head = session.submit(DIR_IN, 0, setup, 9, timeout_ms=timeout_ms)
                if status or len(head) < 9:
                    raise status_error(status or -errno.EIO)
                total = struct.unpack_from("<H", head, 2)[0]
                setup = struct.pack("<BBHHH", 0x80, 0x06, 0x0200 | index, 0, total)
                status, raw = session.submit(DIR_IN, 0, setup, total, timeout_ms=timeout_ms)
                if status:
                    raise status_error(status)
            finally:
                if temporary:
                    session.close()
            cache[index] = raw
        return cache[index]

    def _parsed(self, dev: RemoteDevice, config: int):
        return _parse_config(self._config_raw(dev, config))

    def get_configuration_descriptor(self, dev, config):
        return self._parsed(dev, config)[0]

    def get_interface_descriptor(self, dev, intf, alt, config):
        _cfg, interfaces = self._parsed(dev, config)
        try:
            return interfaces[intf][alt][0]
        except IndexError:
            raise IndexError(f"no interface {intf} alternate setting {alt}") from None

    def get_endpoint_descriptor(self, dev, ep, intf, alt, config):
        _cfg, interfaces = self._parsed(dev, config)
        try:
            return interfaces[intf][alt][1][ep]
        except IndexError:
            raise IndexError(f"no endpoint {ep} on interface {intf}/{alt}") from None

    # --- device handles ---
    def open_device(self, dev):
        return self._import(dev)

    def close_device(self, dev_handle):
        dev_handle.close()

    def set_configuration(self, dev_handle, config_value):
        self._control_out(dev_handle, 0x00, 0x09, config_value, 0, b"", 1000)

    def get_configuration(self, dev_handle):
        data = self._control_in(dev_handle, 0x80, 0x08, 0, 0, 1, 1000)
        if not data:
            raise usb.core.USBError("Short GET_CONFIGURATION reply", LIBUSB_IO, errno.EIO)
        return data[0]

    def set_interface_altsetting(self, dev_handle, intf, altsetting):
        self._control_out(dev_handle, 0x01, 0x0B, altsetting, intf, b"", 1000)

    def claim_interface(self, dev_handle, intf):
        return None  # an imported device belongs to this connection alone

    def release_interface(self, dev_handle, intf):
        return None

    def _control_in(self, handle, rt, req, value, index, length, timeout):
        setup = struct.pack("<BBHHH", rt, req, value, index, length)
        status, data = handle.submit(DIR_IN, 0, setup, length, timeout_ms=timeout)
        if status:
            raise status_error(status)
        return data

    def _control_out(self, handle, rt, req, value, index, payload: bytes, timeout):
        setup = struct.pack("<BBHHH", rt, req, value, index, len(payload))
        status, _ = handle.submit(DIR_OUT, 0, setup, len(payload), payload, timeout_ms=timeout)
        if status:
            raise status_error(status)
        return len(payload)

    def ctrl_transfer(self, dev_handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        if bmRequestType & 0x80:
            got = self._control_in(dev_handle, bmRequestType, bRequest, wValue, wIndex,
                                   len(data) * data.itemsize, timeout)
            n = min(len(got), len(data))
            data[:n] = array.array("B", got[:n])
            return n
        return self._control_out(dev_handle, bmRequestType, bRequest, wValue, wIndex,
                                 data.tobytes(), timeout)

    def _read(self, handle, ep, buff, timeout, interval):
        length = len(buff) * buff.itemsize
        status, data = handle.submit(DIR_IN, ep, bytes(8), length, timeout_ms=timeout,
                                     interval=interval)
        if status:
            raise status_error(status)
        n = min(len(data), len(buff))
        buff[:n] = array.array("B", data[:n])
        return n

    def _write(self, handle, ep, data, timeout, interval):
        payload = data.tobytes()
        status, _ = handle.submit(DIR_OUT, ep, bytes(8), len(payload), payload,
                                  timeout_ms=timeout, interval=interval)
        if status:
            raise status_error(status)
        return len(payload)

    def bulk_read(self, dev_handle, ep, intf, buff, timeout):
        return self._read(dev_handle, ep, buff, timeout, 0)

    def bulk_write(self, dev_handle, ep, intf, data, timeout):
        return self._write(dev_handle, ep, data, timeout, 0)

    def intr_read(self, dev_handle, ep, intf, buff, timeout):
        return self._read(dev_handle, ep, buff, timeout, 1)

    def intr_write(self, dev_handle, ep, intf, data, timeout):
        return self._write(dev_handle, ep, data, timeout, 1)

    def clear_halt(self, dev_handle, ep):
        self._control_out(dev_handle, 0x02, 0x01, 0, ep, b"", 1000)

    def is_kernel_driver_active(self, dev_handle, intf):
        return False  # no kernel driver binds on this side of a USB/IP connection

    def detach_kernel_driver(self, dev_handle, intf):
        return None

    def attach_kernel_driver(self, dev_handle, intf):
        return None


def _parse_config(raw: bytes):
    """A configuration descriptor -> (config, [[(intf_desc, [ep_desc...]) per alt] per intf]).

    Class-specific descriptors (HID 0x21, hub ...) land in ``extra_descriptors`` of the
    interface or endpoint they follow, as libusb reports them.
    """
    if len(raw) < 9 or raw[1] != 2:
        raise usb.core.USBError("Malformed configuration descriptor", LIBUSB_IO, errno.EIO)
    (_bl, _bt, total, n_if, value, i_cfg, attrs, power) = struct.unpack_from("<BBHBBBBB", raw)
    cfg = SimpleNamespace(bLength=9, bDescriptorType=2, wTotalLength=total, bNumInterfaces=n_if,
                          bConfigurationValue=value, iConfiguration=i_cfg, bmAttributes=attrs,
                          bMaxPower=power, extra_descriptors=[])
    interfaces: list[list[tuple[SimpleNamespace, list[SimpleNamespace]]]] = []
    numbers: dict[int, int] = {}
    current: tuple[SimpleNamespace, list[SimpleNamespace]] | None = None
    last = cfg
    off = raw[0]
    while off + 2 <= len(raw):
        dlen, dtype = raw[off], raw[off + 1]
        if dlen < 2 or off + dlen > len(raw):
            break
        d = raw[off:off + dlen]
        if dtype == 4 and dlen >= 9:
            desc = SimpleNamespace(bLength=dlen, bDescriptorType=4, bInterfaceNumber=d[2],
                                   bAlternateSetting=d[3], bNumEndpoints=d[4],
                                   bInterfaceClass=d[5], bInterfaceSubClass=d[6],
                                   bInterfaceProtocol=d[7], iInterface=d[8], extra_descriptors=[])
            idx = numbers.setdefault(d[2], len(numbers))
            if idx == len(interfaces):
                interfaces.append([])
            current = (desc, [])
            interfaces[idx].append(current)
            last = desc
        elif dtype == 5 and dlen >= 7 and current is not None:
            addr, attrs_ep, mps, interval = struct.unpack_from("<BBHB", d, 2)
            desc = SimpleNamespace(bLength=dlen, bDescriptorType=5, bEndpointAddress=addr,
                                   bmAttributes=attrs_ep, wMaxPacketSize=mps, bInterval=interval,
                                   bRefresh=d[7] if dlen > 7 else 0,
                                   bSynchAddress=d[8] if dlen > 8 else 0, extra_descriptors=[])
            current[1].append(desc)
            last = desc
        else:
            last.extra_descriptors = list(last.extra_descriptors) + list(d)
        off += dlen
    for alts in interfaces:
        for desc, _eps in alts:
            desc.extralen = len(desc.extra_descriptors)
    return cfg, interfaces


def _parse_url(spec: str) -> tuple[str, int]:
    parts = urlsplit(spec)
    if parts.scheme != "usbip" or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError("bench description", "usb.backend",
                          f"'libusb1' or 'usbip://host:port', not {spec!r}")
    try:
        port = parts.port or USBIP_PORT
    except ValueError:
        raise ConfigError("bench description", "usb.backend",
                          f"a port number in 1..65535 in {spec!r}") from None
    return parts.hostname, port


def open_backend(spec: str, timeout: float = 2.0):
    """The pyusb backend for ``[usb] backend``: ``"libusb1"`` or ``"usbip://host:port"``.

    ``PortUnavailable`` (a bench error) when libusb is missing or the USB/IP server cannot be
    reached within ``timeout`` seconds; ``ConfigError`` for a spec that is neither.
    """
    spec = spec.strip()
    if spec == "libusb1":
        import usb.backend.libusb1

        backend = usb.backend.libusb1.get_backend()
        if backend is None:
            raise PortUnavailable("usb", "loading the libusb1 backend",
                                  "libusb-1.0 is not installed")
        return backend
    host, port = _parse_url(spec)
    backend = UsbipBackend(host, port, timeout)
    try:
        backend.list_exported()
    except (OSError, ConnectionError) as exc:
        raise PortUnavailable("usb", f"connecting to {backend.url}", str(exc)) from None
    return backend


def backend_name(backend) -> str:
    """A short name for messages: the USB/IP URL or the backend's class."""
    return getattr(backend, "url", None) or type(backend).__module__.rsplit(".", 1)[-1]


def find_devices(backend, vid: int | None = None, pid: int | None = None) -> list[usb.core.Device]:
    """Devices the backend sees, filtered by vendor/product id. ``PortUnavailable`` when the
    backend cannot enumerate (server gone, libusb failure)."""
    match = {}
    if vid is not None:
        match["idVendor"] = vid
    if pid is not None:
        match["idProduct"] = pid
    try:
        return list(usb.core.find(find_all=True, backend=backend, **match))
    except (OSError, ConnectionError) as exc:  # usb.core.USBError is an OSError too
        raise PortUnavailable("usb", f"enumerating devices on {backend_name(backend)}",
                              str(exc)) from None
