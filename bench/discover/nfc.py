"""Contactless readers on USB, found by nfcpy's own device search (its ``usb`` path and the USB
ids its drivers serve: ACR122U, PN533 boards, SCL3711, Sony RC-S380, ...) and each opened once
through the bench's ``NfcReader`` to confirm it answers. PN532 boards on a UART are found by the
serial probe table (``probes.ask_pn532``: nfcpy's ``tty`` path)."""
from __future__ import annotations

from dataclasses import dataclass, field

from posbench.core.errors import PortUnavailable


@dataclass
class NfcFound:
    path: str
    """The nfcpy path to write (``usb:072f:2200``)."""
    how: str


@dataclass
class NfcScan:
    found: list[NfcFound] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)
    problem: str = ""


def scan_usb(timeout_s: float = 3.0) -> NfcScan:
    """Every USB device nfcpy has a driver for, opened and described."""
    import nfc.clf.device
    import nfc.clf.transport
    from posbench.drivers.nfc.reader import NfcReader
    result = NfcScan()
    try:
        devices = nfc.clf.transport.USB.find("usb") or []
    except Exception as exc:  # noqa: BLE001 - libusb missing or failing: nfcpy raises anything
        result.problem = f"nfcpy cannot search USB: {exc}"
        return result
    for vid, pid, bus, dev in devices:
        if (vid, pid) not in nfc.clf.device.usb_device_map:
            continue
        by_id, by_bus = f"usb:{vid:04x}:{pid:04x}", f"usb:{int(bus):03d}:{int(dev):03d}"
        try:
            reader = NfcReader(by_bus, timeout=timeout_s)
        except PortUnavailable as exc:
            result.tried.append(f"{by_id} at {by_bus}: {exc.detail}")
            continue
        try:
            result.found.append(NfcFound(by_id, f"opened by nfcpy: {reader.describe()}"))
        finally:
            reader.close()
    return result
