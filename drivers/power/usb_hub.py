"""USB hub per-port power as a ``PowerSwitch``: the unit (or its reader) on one hub port.

The hub protocol (uhubctl-compatible control transfers) lives in ``posbench.drivers.usb.hub``; this only
binds one port of one hub to the switch a test asks for.
"""
from __future__ import annotations

import time

from posbench.drivers.usb.hub import UsbHubPower


class HubPortPower:
    """Port ``port`` of the hub ``hub`` = (vid, pid) (None: the first hub that switches port
    power) reached through pyusb ``backend``; ``close()`` releases the hub and the backend."""

    def __init__(self, backend, hub: tuple[int, int] | None, port: int):
        self.backend = backend
        self.hub = UsbHubPower(backend, vid=hub[0] if hub else None, pid=hub[1] if hub else None)
        self.port = port
        self.name = f"usb-hub port {port}"

    def close(self) -> None:
        self.hub.close()
        getattr(self.backend, "close", lambda: None)()

    def on(self) -> None:
        self.hub.power(self.port, True)

    def off(self) -> None:
        self.hub.power(self.port, False)

    def is_on(self) -> bool:
        return self.hub.is_powered(self.port)

    def cycle(self, off_s: float) -> None:
        """Off, ``off_s`` seconds, on; switched back on whatever ends the wait (a stop signal too)."""
        self.off()
        try:
            time.sleep(max(0.0, off_s))
        finally:
            self.on()
