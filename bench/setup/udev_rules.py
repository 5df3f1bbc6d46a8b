"""udev rules that let a non-root technician open the bench's devices (``posbench udev-rules``).

The known set ships as ``posbench/udev/70-posbench.rules``; for a bench description, a rule per
device it names: its USB ids from bench.toml, or for a serial port, the ids of the adapter on it.
"""
from __future__ import annotations

import re
from importlib.resources import files

from posbench.setup.config import BenchConfig, UsbId

RULES = files("posbench.setup.udev") / "70-posbench.rules"
SERIAL = 'SUBSYSTEM=="tty", ATTRS{{idVendor}}=="{vid}", ATTRS{{idProduct}}=="{pid}", GROUP="dialout", ' \
         'MODE="0660", ENV{{ID_MM_DEVICE_IGNORE}}="1"'
USB = 'SUBSYSTEM=="usb", ATTR{{idVendor}}=="{vid}", ATTR{{idProduct}}=="{pid}", GROUP="plugdev", MODE="0660"'


def known_rules() -> str:
    return RULES.read_text(encoding="utf-8")


def _serial_ids(port: str) -> tuple[str, str] | None:
    from serial.tools import list_ports
    for info in list_ports.comports(include_links=True):
        if port in (info.device, *(getattr(info, "links", None) or ())) and info.vid is not None:
            return f"{info.vid:04x}", f"{info.pid:04x}"
    return None


def rules_for_bench(config: BenchConfig) -> tuple[str, list[str]]:
    """The rules for the devices ``config`` names, and the ports whose adapter was not found
    (not plugged in: the known set covers the usual adapters)."""
    lines = [f"# posbench: devices of {config.source}"]
    missing: list[str] = []
    ports = [(what, port) for what, port in (
        ("terminal", config.terminal.port if config.terminal else None),
        ("power", config.power.port if config.power and config.power.driver in ("korad", "lcus-relay") else None),
        ("nfc reader", config.nfc.path if config.nfc and config.nfc.path.startswith("/") else None))
        if port and "://" not in port]
    for what, port in ports:
        if ids := _serial_ids(port):
            lines += [f"# {what} {port}", SERIAL.format(vid=ids[0], pid=ids[1])]
        else:
            missing.append(f"{what} {port}")
    usb = [("magstripe reader", config.usb.reader if config.usb else None),
           ("usb hub", config.power.hub if config.power else None)]
    if config.nfc and (m := re.fullmatch(r"usb:([0-9a-fA-F]{4}):([0-9a-fA-F]{4})", config.nfc.path)):
        usb.append(("nfc reader", UsbId(int(m[1], 16), int(m[2], 16))))
    for what, usb_id in usb:
        if usb_id:
            lines += [f"# {what} {usb_id}", USB.format(vid=f"{usb_id.vid:04x}", pid=f"{usb_id.pid:04x}")]
    return "\n".join(lines) + "\n", missing
