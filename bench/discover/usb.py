"""USB devices a bench uses, found through pyusb on the backends the drivers use (``libusb1``, a
USB/IP server): card readers by vid:pid and by class, hubs that switch port power one by one,
CH340 adapters (the LCUS relay's chip, also in USB-serial cables).

``classify`` is the pure part (ids and classes in, what it is out); ``scan`` enumerates a
backend and, for a hub, asks its hub descriptor through the hub driver (``UsbHubPower``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import usb.core

from posbench.setup.config import UsbId
from posbench.core.errors import BenchError, ConfigError, PortUnavailable

HID, SMART_CARD, HUB, VENDOR = 0x03, 0x0B, 0x09, 0xFF
BOOT_KEYBOARD = (1, 1)
"""HID interface subclass 1 (boot), protocol 1 (keyboard): what a keyboard-wedge reader is."""


@dataclass(frozen=True)
class Known:
    name: str
    kind: str
    flavour: str | None = None
    """``hid`` or ``keyboard`` for a reader posbench's magstripe driver runs (MagTek-style)."""


# Names and ids from the usb.ids database (linux-usb.org, version 2025.07.26, as shipped in
# Debian's usbutils: /usr/share/misc/usb.ids); the flavour of the two MagTek ids from MagTek's
# own names ("Keyboard Emulation" for 0001) and posbench's magstripe driver.
KNOWN: dict[UsbId, Known] = {
    UsbId(0x0801, 0x0001): Known("MagTek Mini Swipe Reader (keyboard emulation)", "magstripe reader", "keyboard"),
    UsbId(0x0801, 0x0002): Known("MagTek Mini Swipe Reader (HID)", "magstripe reader", "hid"),
    UsbId(0x0801, 0x0003): Known("MagTek Magstripe Insert Reader", "magstripe reader"),
    UsbId(0x0801, 0x0011): Known("MagTek Mini Swipe Reader", "magstripe reader"),
    UsbId(0x0ACD, 0x2030): Known("ID TECH ValueMag Magnetic Stripe Reader", "magstripe reader"),
    UsbId(0x0ACD, 0x0630): Known("ID TECH Spectrum III Mag-Only Insert Reader (USB CDC)", "magstripe reader"),
    UsbId(0x0ACD, 0x0401): Known("ID TECH Spectrum III Hybrid Smartcard Reader", "card reader"),
    UsbId(0x0D3A, 0x0500): Known("Posiflex Magnetic Stripe Reader", "magstripe reader"),
    UsbId(0x0404, 0x0328): Known("NCR K016 USB-MSR ISO 3-track (HID POS)", "magstripe reader"),
    UsbId(0x0404, 0x032A): Known("NCR K016 USB-MSR ISO 3-track (HID keyboard)", "magstripe reader"),
    UsbId(0x03F0, 0x1539): Known("HP Mini Magnetic Stripe Reader", "magstripe reader"),
    UsbId(0x03F0, 0x2724): Known("HP Magnetic Stripe Reader IDRA-334133-HP", "magstripe reader"),
    UsbId(0x0AA7, 0x0402): Known("Wincor Nixdorf MSRP-USB magnetic swipe reader", "magstripe reader"),
    UsbId(0x5131, 0x2007): Known("MSR-101U Mini HID magnetic card reader", "magstripe reader"),
    UsbId(0xC216, 0x0180): Known("Card Device Expert MSR90 MagStripe reader", "magstripe reader"),
    UsbId(0x072F, 0x2200): Known("ACS ACR122U (PN533 inside)", "nfc reader"),
    UsbId(0x1A86, 0x7523): Known("QinHeng CH340 serial: an LCUS relay board or a USB-serial cable", "ch340"),
    UsbId(0x1A86, 0x5523): Known("QinHeng CH341 serial: a USB-serial adapter or relay board", "ch340"),
}
"""Devices known by vid:pid."""

CH340 = frozenset(usb_id for usb_id, known in KNOWN.items() if known.kind == "ch340")
"""The CH340/CH341 ids: the LCUS relay's chip, also in many USB-serial cables."""

READER_VENDORS: dict[int, str] = {0x0801: "MagTek", 0x0ACD: "ID TECH", 0xC216: "Card Device Expert",
                                  0x5131: "MSR", 0x0D3A: "Posiflex"}
"""Makers of card readers (usb.ids): a HID device of theirs with an id not listed above is taken
for a reader of theirs, a keyboard-wedge one when its interface is a boot keyboard."""


@dataclass(frozen=True)
class Kind:
    """What a USB device is: ``kind`` (``magstripe reader``, ``card reader``, ``nfc reader``,
    ``hub``, ``ch340``), a name, the driver's ``flavour`` for readers posbench runs, and
    ``by`` what it was recognised (``vid:pid`` or ``class``)."""

    kind: str
    name: str
    flavour: str | None
    by: str


def classify(usb_id: UsbId, device_class: int, interfaces: tuple[tuple[int, int, int], ...]) -> Kind | None:
    """What the device with ``usb_id``, ``device_class`` and ``interfaces`` ((class, subclass,
    protocol) each) is for the bench, or None when it is nothing the bench uses."""
    known = KNOWN.get(usb_id)
    if known:
        return Kind(known.kind, known.name, known.flavour, "vid:pid")
    if device_class == HUB:
        return Kind("hub", f"USB hub {usb_id}", None, "class")
    classes = {i[0] for i in interfaces}
    maker = READER_VENDORS.get(usb_id.vid)
    if maker and HID in classes:
        wedge = any(i[0] == HID and (i[1], i[2]) == BOOT_KEYBOARD for i in interfaces)
        flavour = "keyboard" if wedge and maker == "MagTek" else None
        what = "keyboard-wedge" if wedge else "HID"
        return Kind("magstripe reader", f"{maker} {what} reader {usb_id}", flavour, "class")
    if device_class == SMART_CARD or SMART_CARD in classes:
        return Kind("card reader", f"smart card (CCID) reader {usb_id}", None, "class")
    return None


@dataclass
class Found:
    """One device of interest on ``backend``; ``note`` what more was learned (a hub's power switching)."""

    backend: str
    usb_id: UsbId
    kind: Kind
    where: str = ""
    note: str = ""
    per_port_power: bool = False
    serial: str = ""
    """A card reader's serial number from its USB descriptor ("" where it has none or it could
    not be read)."""


@dataclass
class Scan:
    """What one backend showed, or why it could not be asked (``problem``)."""

    backend: str
    found: list[Found] = field(default_factory=list)
    seen: int = 0
    problem: str = ""


def _interfaces(dev: usb.core.Device) -> tuple[tuple[int, int, int], ...]:
    """(class, subclass, protocol) of each interface: from the USB/IP device list where the
    backend has it (reading a configuration there would import the device), else configuration 1."""
    listed = getattr(getattr(getattr(dev, "_ctx", None), "dev", None), "interfaces", None)
    if isinstance(listed, tuple):  # a RemoteDevice of the USB/IP backend
        return tuple((int(i[0]), int(i[1]), int(i[2])) for i in listed)
    try:
        return tuple((i.bInterfaceClass, i.bInterfaceSubClass, i.bInterfaceProtocol) for i in dev[0])
    except (usb.core.USBError, NotImplementedError, IndexError, OSError):
        return ()


def _where(dev: usb.core.Device) -> str:
    ports = getattr(dev, "port_numbers", None)
    chain = ".".join(str(p) for p in ports) if ports else ""
    return f"bus {dev.bus} port {chain}" if chain else f"bus {dev.bus} device {dev.address}"


READERS = frozenset({"magstripe reader", "card reader", "nfc reader"})
"""The kinds that are card readers (a unit of their own on a bench without a terminal)."""


def _serial(dev: usb.core.Device) -> str:
    """The device's serial number string ("" when it has none, or its descriptor cannot be read:
    no permission on a local bus, a device that does not answer)."""
    from posbench.drivers.usb.descriptors import describe
    try:
        return str(describe(dev)["serial"] or "")
    except (usb.core.USBError, ValueError, NotImplementedError, OSError, PortUnavailable):
        return ""


def _hub_power(found: Found, dev: usb.core.Device) -> None:
    from posbench.drivers.usb.hub import HubPowerUnsupported, UsbHubPower
    try:
        hub = UsbHubPower(device=dev, name=f"usb hub {found.usb_id}")
    except HubPowerUnsupported as exc:
        found.note = f"no per-port power switching ({exc.detail})"
        return
    except BenchError as exc:
        found.note = f"its hub descriptor could not be read ({exc.detail or exc})"
        return
    try:
        found.per_port_power = True
        found.note = f"switches port power one by one ({hub.ports} ports)"
    finally:
        hub.close()


def scan(spec: str) -> Scan:
    """Enumerate the pyusb backend ``spec`` (``libusb1`` or ``usbip://host:port``, opened as the
    drivers open it) and keep what ``classify`` knows."""
    from posbench.drivers.usb.backend import find_devices, open_backend
    result = Scan(spec)
    try:
        backend = open_backend(spec)
    except (PortUnavailable, ConfigError) as exc:
        result.problem = exc.detail if isinstance(exc, PortUnavailable) else exc.expected
        return result
    try:
        devices = find_devices(backend)
        result.seen = len(devices)
        for dev in devices:
            usb_id = UsbId(dev.idVendor, dev.idProduct)
            kind = classify(usb_id, dev.bDeviceClass, _interfaces(dev))
            if kind is None:
                continue
            found = Found(spec, usb_id, kind, _where(dev))
            if kind.kind == "hub":
                _hub_power(found, dev)
            elif kind.kind in READERS:
                found.serial = _serial(dev)
            result.found.append(found)
    except PortUnavailable as exc:
        result.problem = exc.detail
    finally:
        getattr(backend, "close", lambda: None)()
    return result
