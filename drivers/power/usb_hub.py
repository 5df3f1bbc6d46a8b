"""USB hub per-port power as a ``PowerSwitch``: the unit (or its reader) on one hub port.

The hub protocol (uhubctl-compatible control transfers) lives in ``posbench.drivers.usb.hub``; this only
binds one port of one hub to the switch a test asks for.
"""
from __future__ import annotations

import time

from posbench.drivers.usb.hub import UsbHubPower


class HubPortPower:
    """Port ``port`` of the hub ``vid:pid`` reached through pyusb ``backend``."""

    def __init__(self, backend, hub: str | None, port: int):
        vid = pid = None
        if hub:
            vid, pid = (int(x, 16) for x in hub.split(":"))
        self.hub = UsbHubPower(backend, vid=vid, pid=pid)
        self.port = port
        self.name = f"usb-hub port {port}"

    def on(self) -> None:
        self.hub.power(self.port, True)

    def off(self) -> None:
        self.hub.power(self.port, False)

    def is_on(self) -> bool:
        return self.hub.is_powered(self.port)

    def cycle(self, off_s: float) -> None:
        self.off()
        time.sleep(off_s)
        self.on()
