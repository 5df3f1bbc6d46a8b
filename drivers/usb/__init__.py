"""USB device drivers (pyusb): magstripe readers, hub port power, and the backends they run on
(``libusb1`` locally, ``usbip://host:port`` for a remote usbipd or the virtual bench)."""
from .backend import UsbipBackend, find_devices, open_backend

__all__ = ["UsbipBackend", "find_devices", "open_backend"]
