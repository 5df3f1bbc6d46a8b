"""One look at the whole bench: serial ports (probed with the probe table), TCP addresses, USB
backends, contactless readers on USB; ``Survey`` holds what each answered or what was tried.

Serial ports are what ``serial.tools.list_ports`` lists, the links in /dev/serial/by-id and in
the device directory where a virtual bench announces its own (``posbench.setup.device_dir``), and ports
named on the command line; one entry per device (a link and its target are probed once), each
port probed in its own thread so a bench of silent ports costs one port's probing time.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from posbench.setup import device_dir
from posbench.setup.config import UsbId

from .nfc import NfcScan, scan_usb
from .probes import PortResult, TcpResult, probe_address, probe_port, split_address
from .usb import Scan, scan

BY_ID = Path("/dev/serial/by-id")
"""udev's stable names of serial adapters: the name written to bench.toml when there is one."""


@dataclass
class SerialPort:
    """A serial port to look at: ``path`` is what is probed and written (a /dev/serial/by-id
    link when there is one, a pseudo-terminal by its own path), ``about`` what the OS says,
    ``adapter`` its USB adapter's ids, ``origin`` the pid of the virtual bench that announced it."""

    path: str
    about: str = ""
    adapter: UsbId | None = None
    origin: int | None = None


def _is_pty(path: str) -> bool:
    return path.startswith("/dev/pts/")


def serial_ports(extra: tuple[str, ...] | list[str] = (), by_id: Path = BY_ID,
                 announced: Path | None = None) -> list[SerialPort]:
    """Every serial port once (see the module's docstring), sorted by path, extras last."""
    from serial.tools import list_ports
    ports: dict[str, SerialPort] = {}
    for info in list_ports.comports():
        adapter = UsbId(info.vid, info.pid) if info.vid is not None and info.pid is not None else None
        about = "  ".join(t for t in (info.description, info.hwid) if t and t != "n/a")
        ports[os.path.realpath(info.device)] = SerialPort(info.device, about, adapter)
    try:
        links = sorted(by_id.iterdir())
    except OSError:
        links = []
    for link in links:
        real = os.path.realpath(link)
        known = ports.get(real)
        if known is not None:
            known.path = str(link)  # the stable name
        elif os.path.exists(real):
            ports[real] = SerialPort(str(link), f"-> {real}")
    for entry in device_dir.entries("serial", announced):
        real = os.path.realpath(entry.path)
        path = real if _is_pty(real) else str(entry.path)
        ports.setdefault(real, SerialPort(path, f"announced by the virtual bench (pid {entry.pid})",
                                          origin=entry.pid))
    found = sorted(ports.values(), key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.path)])
    for name in extra:
        real = name if "://" in name else os.path.realpath(name)
        if real not in ports:
            ports[real] = SerialPort(name, "named on the command line")
            found.append(ports[real])
    return found


@dataclass
class Address:
    """A TCP place to probe: ``host`` and ``port`` (None: each protocol's usual port)."""

    host: str
    port: int | None = None
    origin: int | None = None


@dataclass
class Survey:
    probed: bool
    ports: list[SerialPort] = field(default_factory=list)
    results: dict[str, PortResult] = field(default_factory=dict)
    """By ``SerialPort.path``; empty without probing."""
    addresses: list[tuple[Address, list[TcpResult]]] = field(default_factory=list)
    usb: list[tuple[Scan, int | None]] = field(default_factory=list)
    """Each backend's scan and the virtual bench that announced it (None: a real one)."""
    nfc: NfcScan = field(default_factory=NfcScan)


def usb_backends(extra: tuple[str, ...] | list[str] = (), announced: Path | None = None) -> list[tuple[str, int | None]]:
    """``libusb1``, the USB/IP servers named on the command line, those a virtual bench announced."""
    specs: list[tuple[str, int | None]] = [("libusb1", None)]
    specs += [(s, None) for s in extra]
    specs += [(e.value, e.pid) for e in device_dir.entries("usbip", announced)
              if e.value not in {s for s, _ in specs}]
    return specs


def addresses(named: tuple[str, ...] | list[str] = (), announced: Path | None = None,
              probe: bool = False) -> list[Address]:
    """``--address`` values, and with probing the TCP endpoints a virtual bench announced."""
    found = [Address(*split_address(text)) for text in named]
    if probe:
        for entry in device_dir.entries("tcp", announced):
            host, port = split_address(entry.value)
            found.append(Address(host, port, entry.pid))
    return found


def survey(probe: bool, extra_ports: tuple[str, ...] | list[str] = (),
           named_addresses: tuple[str, ...] | list[str] = (), extra_usb: tuple[str, ...] | list[str] = (),
           announced: Path | None = None) -> Survey:
    """Look at everything; with ``probe``, ask every serial port and announced TCP endpoint."""
    result = Survey(probe, serial_ports(extra_ports, announced=announced))
    places = addresses(named_addresses, announced, probe)
    with ThreadPoolExecutor(max_workers=max(1, len(result.ports) + len(places) + 2),
                            thread_name_prefix="discover") as pool:
        ports = {p.path: pool.submit(probe_port, p.path, p.adapter) for p in result.ports} if probe else {}
        tcp = [(a, pool.submit(probe_address, a.host, a.port)) for a in places]
        usb = [(pool.submit(scan, spec), origin) for spec, origin in usb_backends(extra_usb, announced)]
        nfc = pool.submit(scan_usb)
        result.results = {path: future.result() for path, future in ports.items()}
        result.addresses = [(a, future.result()) for a, future in tcp]
        result.usb = [(future.result(), origin) for future, origin in usb]
        result.nfc = nfc.result()
    return result
