"""udev rules that let a non-root technician open the bench's devices (``posbench udev-rules``).

The known set ships as ``posbench/udev/70-posbench.rules``; for a bench description, a rule per
device it names: its USB ids from bench.toml, or for a serial port, the ids of the adapter on it.
On a bench without ``[terminal]`` the unit is a card reader, and its USB ids come from its reader
profile (``[reader] usb``), whether or not bench.toml repeats them.
"""
from __future__ import annotations

import re
from importlib.resources import files

from posbench.setup.config import BenchConfig, UsbId

RULES = files("posbench.setup.udev") / "70-posbench.rules"
SERIAL = 'SUBSYSTEM=="tty", ATTRS{{idVendor}}=="{vid}", ATTRS{{idProduct}}=="{pid}", GROUP="dialout", ' \
         'MODE="0660", ENV{{ID_MM_DEVICE_IGNORE}}="1"'
USB = 'SUBSYSTEM=="usb", ATTR{{idVendor}}=="{vid}", ATTR{{idProduct}}=="{pid}", GROUP="plugdev", MODE="0660"'
PN533_BLACKLIST = ["# nfcpy drives a contactless reader on USB itself: the kernel's pn533_usb and pn533 modules",
                   "# must not claim it first (docs/bench-setup.md). Unload and blacklist them:",
                   "#   sudo modprobe -r pn533_usb pn533",
                   "#   printf 'blacklist pn533_usb\\nblacklist pn533\\n' | sudo tee /etc/modprobe.d/posbench-nfc.conf"]
"""Said with the rule of a contactless reader on USB (an ACR122U: a PN532 behind USB)."""
_NFC_USB = re.compile(r"usb:([0-9a-fA-F]{4}):([0-9a-fA-F]{4})")
_NFC_TTY = re.compile(r"tty:([A-Za-z0-9]+)(:[A-Za-z0-9]+)?")


def known_rules() -> str:
    return RULES.read_text(encoding="utf-8")


def _serial_ids(port: str) -> tuple[str, str] | None:
    from serial.tools import list_ports
    for info in list_ports.comports(include_links=True):
        if port in (info.device, *(getattr(info, "links", None) or ())) and info.vid is not None:
            return f"{info.vid:04x}", f"{info.pid:04x}"
    return None


def _nfc_port(path: str) -> str | None:
    """The serial port of a contactless reader's nfcpy path: a device path as it is,
    ``tty:USB0:pn532`` as /dev/ttyUSB0; None for one on USB or over the network."""
    if path.startswith("/"):
        return path
    m = _NFC_TTY.fullmatch(path)
    return f"/dev/tty{m[1]}" if m else None


def unit_reader(config: BenchConfig) -> tuple[str, str, UsbId | None] | None:
    """The card reader that is the unit of a bench without ``[terminal]``: its profile's model,
    interface and USB ids (None on a serial port); None on a terminal's bench."""
    if config.terminal is not None:
        return None
    from posbench.setup.profile import profile_for_bench
    profile = profile_for_bench(config)
    if profile is None or profile.reader is None:
        return None
    spec = profile.reader
    return profile.model, spec.interface, UsbId.parse(spec.usb) if spec.usb else None


def rules_for_bench(config: BenchConfig) -> tuple[str, list[str]]:
    """The rules for the devices ``config`` names, and the ports whose adapter was not found
    (not plugged in: the known set covers the usual adapters)."""
    lines = [f"# posbench: devices of {config.source}"]
    missing: list[str] = []
    unit = unit_reader(config)
    nfc_what = f"the unit, {unit[0]}" if unit and unit[1] == "uart" else "nfc reader"
    ports = [(what, port) for what, port in (
        ("terminal", config.terminal.port if config.terminal else None),
        ("power", config.power.port if config.power and config.power.driver in ("korad", "lcus-relay") else None),
        (nfc_what, _nfc_port(config.nfc.path) if config.nfc else None))
        if port and "://" not in port]
    for what, port in ports:
        if ids := _serial_ids(port):
            lines += [f"# {what} on {port}", SERIAL.format(vid=ids[0], pid=ids[1])]
        else:
            missing.append(f"{what} {port}")
    usb: list[tuple[str, UsbId | None]] = []
    if unit and unit[2] is not None:
        usb.append((f"the unit, {unit[0]} ({unit[1]}, from its reader profile)", unit[2]))
    usb += [("magstripe reader", config.usb.reader if config.usb else None),
            ("usb hub", config.power.hub if config.power else None)]
    if config.nfc and (m := _NFC_USB.fullmatch(config.nfc.path)):
        usb.append(("nfc reader", UsbId(int(m[1], 16), int(m[2], 16))))
    said: set[UsbId] = set()
    for what, usb_id in usb:
        if usb_id and usb_id not in said:
            said.add(usb_id)
            lines += [f"# {what} {usb_id}", USB.format(vid=f"{usb_id.vid:04x}", pid=f"{usb_id.pid:04x}")]
    if unit and unit[1] == "usb-ccid" or config.nfc and _NFC_USB.fullmatch(config.nfc.path):
        lines += PN533_BLACKLIST
    return "\n".join(lines) + "\n", missing
