"""What every virtual bench has, whatever its unit: the DUT profile it is shaped like, its seed and
work directory, the bench supply (a Korad emulator on a pty) feeding the unit's power model, the
unit's USB side on a USB/IP server (a reader behind a hub port) or its PN532 on a pty, the
control port of the virtual actuator, and the bench file's common sections.

``posbench.sim.bench.SimBench`` (a payment terminal as the unit) and
``posbench.sim.reader_bench.ReaderBench`` (a card reader as the unit) build on it.
"""
from __future__ import annotations

import abc
import os
import random
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, Self

from posbench.core.errors import ConfigError
from posbench.setup.device_dir import Announcer
from posbench.setup.profile import Profile, find_profile, is_profile_name

from posbench.sim.actuator import BenchActuator
from posbench.sim.control import ControlServer
from posbench.sim.devices.korad import KoradEmulator
from posbench.sim.devices.magstripe import VirtualMagstripeReader
from posbench.sim.devices.pn532 import PN532Emulator
from posbench.sim.devices.usb_hub import VirtualUsbHub
from posbench.sim.devices.usbip_server import UsbipServer
from posbench.sim.unit.faults import format_faults
from posbench.sim.unit.intermittent import UsbDropper
from posbench.sim.unit.power import UnitPower

DEFAULT_PROFILE = "pt100"
"""The profile of ``posbench sim`` without ``--profile``: the PT100 and its bench readers."""
WORKDIR_PREFIX = "posbench-sim-"
READER_PORT = 1
"""The hub port the USB reader is plugged into."""


def sim_profile(ref: str) -> Profile:
    """The DUT profile ``ref`` names: a packaged one by name (e.g. "zvt-generic") or a profile
    file (relative to the working directory); ``ConfigError`` names the known ones."""
    return find_profile(ref, file="--profile", key="")


def profile_ref(ref: str) -> str:
    """How the bench file names the profile ``ref``: a packaged one by its name, a file by its
    absolute path (the bench file may be read from anywhere)."""
    return ref.lower() if is_profile_name(ref) else str(Path(ref).expanduser().resolve())


class BenchBase(BenchActuator, abc.ABC):
    """The parts every virtual bench starts; a subclass starts its unit and writes ``bench_toml``."""

    serial: str
    """The serial number the unit reports (the subclass chooses it)."""

    def __init__(self, profile: str, faults: dict[str, float] | None, seed: int | None, announce: bool):
        """``profile``: the DUT profile the bench is shaped like (``ValueError`` for an unknown one);
        ``seed``: of every random choice (default: a random one); ``announce``: make the devices
        findable by ``posbench discover`` (``posbench.setup.device_dir``)."""
        try:
            self.profile = sim_profile(profile)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        self.profile_name = profile_ref(profile)
        self.faults = dict(faults or {})
        self.seed = random.SystemRandom().randrange(2**31) if seed is None else seed
        self.terminal = None
        self.control: ControlServer | None = None
        self.usb: UsbipServer | None = None
        self.hub: VirtualUsbHub | None = None
        self.reader: VirtualMagstripeReader | None = None
        self.nfc: PN532Emulator | None = None
        self.power: UnitPower | None = None
        self.supply: KoradEmulator | None = None
        self.dropper: UsbDropper | None = None
        self._reader_lock = threading.Lock()
        self.bench_file: Path | None = None
        self.announcer: Announcer | None = Announcer() if announce else None
        self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        from posbench.setup.cards import load_deck
        self.deck = load_deck()

    # -- parts ------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the unit's parts (``_start_unit``), then the control port; announce them (with
        ``announce``). Whatever fails, what was started is stopped again."""
        try:
            self._start_unit()
            self.control = ControlServer(self._actions()).start()
            if self.announcer is not None:
                self._announce()
        except BaseException:
            self.close()
            raise
        return self

    @abc.abstractmethod
    def _start_unit(self) -> None:
        """Start the unit and the bench's devices (all but the control port)."""

    def _announce(self) -> None:
        """Put the bench's devices where ``posbench discover`` looks (the readers and the supply)."""
        self._announce_readers()

    def _start_supply(self, boot_s: float, **model) -> None:
        """The unit's power model (``UnitPower``: booting in ``boot_s`` s, the ``power_supply``
        fault, browning out below the profile's ``min_input_v``; ``model``: more of its keywords),
        fed by a Korad supply on a pty at the profile's nominal volts and current limit."""
        spec = self.profile.power
        self.power = UnitPower(boot_s, rng=random.Random(self.seed + 17),
                               supply_fault=self.faults.get("power_supply", 0.0),
                               brownout_v=spec.min_input_v if spec else 10.5, **model)
        self.power.on_change(self._on_power)
        self.power.start()
        self.supply = KoradEmulator(self.power, serial=f"{self.seed % 10**8:08d}",
                                    volts=spec.nominal_v if spec else 12.0,
                                    amps=spec.current_limit_a if spec else 2.0, output=True).start()

    def _start_usb(self, flavour: str = "hid", firmware: int = 0x0150, serial: str | None = None) -> None:
        """The unit's USB side on a USB/IP server: its magstripe reader (``flavour`` "hid" or
        "keyboard", ``bcdDevice`` ``firmware``, its ``serial`` string (default from the seed), the
        msr_head fault) behind a 4-port hub; the power model plugs it in when it is on."""
        self.usb = UsbipServer()
        self.hub = VirtualUsbHub(self.usb, ports=4)
        self.reader = VirtualMagstripeReader(flavour, rng=random.Random(self.seed + 11),
                                             head_fault=self.faults.get("msr_head", 0.0),
                                             serial=serial or f"MSR{self.seed % 10**8:08d}", firmware=firmware)

    def _start_nfc(self, **chip) -> None:
        """The PN532 on a pty (the nfc_antenna fault; ``chip``: more of ``PN532Emulator``'s
        keywords), unpowered until the power model switches it on."""
        self.nfc = PN532Emulator(random.Random(self.seed + 13), antenna_fault=self.faults.get("nfc_antenna", 0.0),
                                 **chip)
        self.nfc.set_powered(False)
        self.nfc.start()

    def _start_dropper(self, unplug: Callable[[], bool], replug: Callable[[], None]) -> None:
        """pcb_intermittent: a cracked joint drops a device (``unplug``) and it comes back (``replug``)."""
        self.dropper = UsbDropper(random.Random(self.seed + 19), self.faults.get("pcb_intermittent", 0.0),
                                  unplug, replug).start()

    def _on_power(self, state: str) -> None:
        """The bench's readers follow the unit's power: dead when off, back (re-enumerated) when on."""
        if state == "off":
            if self.nfc is not None:
                self.nfc.set_powered(False)
            self._unplug_reader()
        elif state == "on":
            if self.nfc is not None:
                self.nfc.set_powered(True)
            self._plug_reader()

    def _unplug_reader(self) -> bool:
        with self._reader_lock:
            return self.hub is not None and self.hub.detach(READER_PORT) is not None

    def _plug_reader(self) -> None:
        with self._reader_lock:
            if self.hub is not None and self.reader is not None and self.power is not None \
                    and self.power.state == "on":
                try:
                    self.hub.attach(READER_PORT, self.reader)
                except ValueError:
                    pass  # already plugged in

    def _announce_readers(self) -> None:
        """The readers and the supply where ``posbench discover`` looks (named by number only)."""
        assert self.announcer is not None and self.supply is not None
        if isinstance(self.nfc, PN532Emulator):  # on a pty (an ACR122U is on the USB/IP server)
            self.announcer.serial(self.nfc.path)
        self.announcer.serial(self.supply.path)
        if self.usb is not None:
            self.announcer.usbip(self.usb.url)

    # -- the bench file ----------------------------------------------------------------------------
    def _unit_toml(self) -> str:
        """The file's opening: [bench] and [unit] (its profile unless the default one)."""
        return ("# Written by `posbench sim`: the virtual bench. Valid while that process runs.\n"
                f'[bench]\nname = "virtual"\nvirtual = true\n\n'
                f'[unit]\nmodel = "{self.profile.model}"\nserial = "{self.serial}"\n'
                + (f'profile = "{self.profile_name}"\n' if self.profile_name != DEFAULT_PROFILE else "") + "\n")

    def _readers_toml(self, usb_id: str) -> str:
        """[usb] (the reader ``usb_id``, "vid:pid", on the USB/IP server) and [nfc], for those it has."""
        return ((f'[usb]\nbackend = "{self.usb.url}"\nreader = "{usb_id}"\n\n' if self.usb is not None else "")
                + (f'[nfc]\npath = "{self.nfc.path}"\n\n' if self.nfc is not None else ""))

    def _power_toml(self) -> str:
        assert self.supply
        return f'[power]\ndriver = "korad"\nport = "{self.supply.path}"\nchannel = 1\n\n'

    def _control_toml(self) -> str:
        """[actuator] (the control port, the simulated technician) and [sim]."""
        assert self.control
        control = "{}:{}".format(*self.control.address)
        faults = ", ".join(f'"{f}"' for f in format_faults(self.faults))
        return (f'[actuator]\nkind = "virtual"\naddress = "{control}"\n'
                + ("technician = true\n" if self.technician else "") + "\n"
                f"[sim]\npid = {os.getpid()}\nseed = {self.seed}\nfaults = [{faults}]\n"
                f'control = "{control}"\nworkdir = "{self.workdir}"\n')

    @abc.abstractmethod
    def bench_toml(self) -> str:
        """The bench file of this bench: what the bench reaches of its unit."""

    def write_bench(self, path: str | Path) -> Path:
        """Write the bench description atomically (readers never see half a file)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.bench_toml(), encoding="utf-8")
        os.replace(tmp, path)
        self.bench_file = path
        if self.announcer is not None:
            self.announcer.description(path)
        return path

    # -- the end -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every part and remove all the bench created."""
        self._stop_parts()
        self._remove_files()

    def _stop_parts(self) -> None:
        if self.announcer is not None:
            self.announcer.remove()
        self._stop("control", "dropper", "supply")
        if self.power:
            self.power.stop(timeout=2.0)
        if not isinstance(self.nfc, PN532Emulator):
            self.nfc = None  # a USB reader's chip (an ACR122U) stops with the USB/IP server
        self._stop("nfc", "usb")

    def _stop(self, *parts: str) -> None:
        """Stop each started part of these names (its ``stop(timeout=2.0)``) and forget it."""
        for name in parts:
            part = getattr(self, name)
            if part is not None:
                part.stop(timeout=2.0)
                setattr(self, name, None)

    def _remove_files(self) -> None:
        if self.bench_file is not None:
            self.bench_file.unlink(missing_ok=True)
            self.bench_file = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
