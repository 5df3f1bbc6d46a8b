"""The virtual bench whose unit is a card reader (a reader profile: ``kind = "reader"``).

No ECR link, no host, no network lab: the reader itself, on the transport its profile names (a
USB magstripe reader behind a hub port on the USB/IP server; a PN532 board on a pty), fed by the
bench supply (the Korad emulator) through its power model at the profile's 5 V, and the control
port through which the virtual actuator (or the simulated technician) swipes or taps deck cards.

The reader follows its supply: off, or sagging below the profile's ``min_input_v``, a USB reader
leaves the bus and a PN532 answers nothing; back on it re-enumerates after ``boot_time_s``. Its
causes (``posbench.sim.unit.faults.READER_CAUSES``) are shaped as a real reader shows them:
``msr_head`` bit errors on the head, ``nfc_antenna`` a weak field, ``pcb_intermittent`` a cracked
joint (the USB reader drops off the bus on a steady supply; the PN532 board's UART frames are
damaged and it drops out), ``power_supply`` a weak supply path that sags under the read load and
resets the reader, ``firmware_driver`` a firmware release the profile does not allow.
"""
from __future__ import annotations

import random
from collections.abc import Callable

from posbench.setup.profile import Profile

from posbench.sim.bench_base import BenchBase
from posbench.sim.devices.acr122u import VirtualAcr122u
from posbench.sim.devices.usb_hub import VirtualUsbHub
from posbench.sim.devices.usbip_server import UsbipServer
from posbench.sim.devices.pn532 import FIRMWARE as PN532_FIRMWARE
from posbench.sim.unit.faults import check_shape
from posbench.sim.unit.power import READER_LOAD_MA

FOREIGN_USB_FIRMWARE = 0x0130
"""``bcdDevice`` of a USB reader with the firmware_driver fault: "1.30", a release no reader profile allows."""
FOREIGN_ACR122U_FIRMWARE = 0x0201
"""An ACR122U's with the firmware_driver fault: "2.01", one nfcpy still drives (it refuses 1.x) and
the profile does not allow."""
FOREIGN_PN532_VERSION = (1, 4)
"""PN532 firmware (version, revision) with the firmware_driver fault: "1.4", not the v1.6 NXP ships."""
FRAME_ERRORS = 0.05
"""Share of a PN532 board's UART frames a cracked joint damages at pcb_intermittent severity 1."""


def bcd_release(version: str) -> int:
    """A "major.minor" release as the USB ``bcdDevice`` that ``describe`` reads back ("1.50" -> 0x0150)."""
    major, _, minor = version.partition(".")
    return int(major, 16) << 8 | int(minor.ljust(2, "0")[:2], 16)


def pn532_firmware(version: str) -> bytes:
    """GetFirmwareVersion's answer of a PN532 reporting ``version`` ("1.6": IC 0x32, Ver 1, Rev 6)."""
    ver, _, rev = version.partition(".")
    return bytes([PN532_FIRMWARE[0], int(ver), int(rev), PN532_FIRMWARE[3]])


def _usb_reader(bench: ReaderBench) -> None:
    """A USB magstripe reader (HID or keyboard) behind a hub port on the USB/IP server."""
    reader = bench.profile.reader
    assert reader is not None
    flavour = "hid" if reader.interface == "usb-hid" else "keyboard"
    allowed = bench.profile.components.get("firmware") or ["1.50"]
    bench._start_usb(flavour, FOREIGN_USB_FIRMWARE if "firmware_driver" in bench.faults else bcd_release(allowed[0]),
                     serial=bench.serial)
    bench._start_dropper(bench._unplug_reader, bench._plug_reader)


def _pn532_board(bench: ReaderBench) -> None:
    """A PN532 board on a pty: its UART damaged and its board dropping out with pcb_intermittent."""
    allowed = bench.profile.components.get("firmware") or ["1.6"]
    version = "{}.{}".format(*FOREIGN_PN532_VERSION) if "firmware_driver" in bench.faults else allowed[0]
    severity = bench.faults.get("pcb_intermittent", 0.0)
    bench._start_nfc(firmware=pn532_firmware(version), noisy=random.Random(bench.seed + 29),
                     frame_errors=FRAME_ERRORS * severity)
    bench._start_dropper(bench._chip_drops, bench._chip_back)


def _acr122u(bench: ReaderBench) -> None:
    """An ACR122U (a PN532 behind USB CCID) behind a hub port on the USB/IP server: the hub port
    is its power (off the bus when the supply is off), the chip inside answers only while powered;
    its cracked joint drops it off the bus like any USB reader."""
    allowed = bench.profile.components.get("firmware") or ["2.07"]
    release = FOREIGN_ACR122U_FIRMWARE if "firmware_driver" in bench.faults else bcd_release(allowed[0])
    bench.usb = UsbipServer()
    bench.hub = VirtualUsbHub(bench.usb, ports=4)
    acr = VirtualAcr122u(random.Random(bench.seed + 13), antenna_fault=bench.faults.get("nfc_antenna", 0.0),
                         serial=bench.serial, firmware=release)
    acr.set_powered(False)  # until the power model switches it on
    bench.reader, bench.nfc = acr, acr
    bench._start_dropper(bench._unplug_reader, bench._plug_reader)


SERIAL_PREFIX = {"usb-hid": "MSR", "usb-keyboard": "MSR", "usb-ccid": "ACR", "uart": "PN532-"}
"""How the made-up serial number of each ``[reader] interface``'s virtual reader starts."""

DEVICES: dict[str, Callable[[ReaderBench], None]] = {
    "usb-hid": _usb_reader,
    "usb-keyboard": _usb_reader,
    "usb-ccid": _acr122u,
    "uart": _pn532_board,
}
"""How the virtual reader of each ``[reader] interface`` is started on the bench."""


def buildable(profile: Profile) -> None:
    """``ValueError`` when the virtual bench cannot build this reader profile's reader."""
    assert profile.reader is not None
    interface = profile.reader.interface
    if interface not in DEVICES:
        raise ValueError(f"no virtual {interface} reader")


class ReaderBench(BenchBase):
    """Starts the virtual reader, its supply and the control port; ``close()`` removes all of it."""

    def __init__(self, profile: str, faults: dict[str, float] | None = None, seed: int | None = None,
                 serial: str | None = None, announce: bool = False):
        """``profile``: a reader profile (``ValueError`` for another, or a cause the reader
        cannot have: ``posbench.sim.unit.faults.READER_CAUSES``)."""
        super().__init__(profile, faults, seed, announce)
        if not self.profile.is_reader or self.profile.reader is None:
            raise ValueError(f"{self.profile_name} is not a reader profile")
        check_shape(self.faults, self.profile, self.profile_name)
        buildable(self.profile)
        self.spec = self.profile.reader
        # a USB reader's serial is its descriptor's (what the bench reads back); a PN532 has none
        made = SERIAL_PREFIX[self.spec.interface]
        self.serial = serial or f"{made}{random.Random(self.seed).randrange(10**8):08d}"

    def _start_unit(self) -> None:
        DEVICES[self.spec.interface](self)
        self._start_supply(self.profile.boot_time_s, nominal_v=self.profile.power.nominal_v
                           if self.profile.power else 5.0, load_ma=READER_LOAD_MA[self.spec.reads])

    def _chip_drops(self) -> bool:
        """The PN532 board's cracked joint opens: the chip stops answering (if it was powered)."""
        nfc = self.nfc
        if nfc is None or not nfc.powered:
            return False
        nfc.set_powered(False)
        return True

    def _chip_back(self) -> None:
        """The joint closes again: the chip answers, if its supply is on."""
        if self.nfc is not None and self.power is not None and self.power.state == "on":
            self.nfc.set_powered(True)

    def bench_toml(self) -> str:
        """[bench], [unit], [usb] or [nfc], [power], [actuator], [sim]: no [terminal], no [host]."""
        if self.spec.interface == "usb-ccid":  # nfcpy reaches an ACR122U by its USB id, over [usb]'s backend
            assert self.usb is not None and self.spec.usb is not None
            readers = f'[usb]\nbackend = "{self.usb.url}"\n\n[nfc]\npath = "usb:{self.spec.usb}"\n\n'
        else:
            readers = self._readers_toml(self.spec.usb or "")
        return self._unit_toml() + readers + self._power_toml() + self._control_toml()
