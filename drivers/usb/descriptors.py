"""What a USB device says it is: its device descriptor's ids and release, and its strings."""
from __future__ import annotations

import usb.core
import usb.util

DESCRIPTOR_TIMEOUT_MS = 1000
"""Milliseconds a control transfer for a descriptor may take."""


def describe(dev: usb.core.Device) -> dict[str, object]:
    """vid, pid, manufacturer, product and serial (None where the device has no such string)
    and ``firmware``: ``bcdDevice`` as "major.minor" ("1.50"). Read afresh from the device
    (``usb.core.USBError`` when it cannot answer, ``ValueError`` for a malformed string)."""
    raw = bytes(dev.ctrl_transfer(0x80, 0x06, 0x0100, 0, 18, timeout=DESCRIPTOR_TIMEOUT_MS))
    if len(raw) < 18:
        raise ValueError(f"a device descriptor of {len(raw)} bytes (18 expected)")
    strings = {key: usb.util.get_string(dev, index) if index else None
               for key, index in (("manufacturer", raw[14]), ("product", raw[15]), ("serial", raw[16]))}
    bcd = raw[12] | raw[13] << 8
    return {"vid": raw[8] | raw[9] << 8, "pid": raw[10] | raw[11] << 8, **strings,
            "firmware": f"{bcd >> 8:x}.{bcd & 0xFF:02x}"}
