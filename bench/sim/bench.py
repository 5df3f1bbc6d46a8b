"""The virtual bench: host simulator and virtual terminal, and the bench.toml that reaches them.

Its shape follows a DUT profile (``--profile``): the PT100 (default) has its USB magstripe reader
and PN532 on the bench and is pointed at posbench's host simulator, whose log the bench reads; a
generic payment terminal (zvt-generic, concert-generic, caisse-ap-generic) reads cards with its
own readers only and talks to its own acquirer (still a host simulator here): the bench file names
only its address, as a technician reads it from the terminal's configuration, and no log.
"""
from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, cast

from posbench.setup.device_dir import Announcer
from posbench.core.errors import ConfigError
from posbench.setup.profile import Profile, find_profile, is_profile_name
from posbench.drivers import registry
from posbench.drivers.host.rules import Rule, RuleSet
from posbench.drivers.host.simulator import HostSimulator

from posbench.sim import PROTOCOLS, ecr
from posbench.sim.actuator import BenchActuator
from posbench.sim.control import ControlServer
from posbench.sim.unit.faults import format_faults
from posbench.sim.unit.intermittent import UsbDropper
from posbench.sim.devices.korad import KoradEmulator
from posbench.sim.devices.magstripe import VirtualMagstripeReader
from posbench.sim.devices.pn532 import PN532Emulator
from posbench.sim.unit.power import UnitPower
from posbench.sim.devices.usbip_server import UsbipServer
from posbench.sim.devices.usb_hub import VirtualUsbHub
from posbench.sim.unit.front_end import UnitFrontEnd as FrontEnd
from posbench.sim.unit.records import TerminalTiming

if TYPE_CHECKING:
    from posbench.sim.net.netlab import NetLab  # imported where it starts: it needs root

MODEL = "PT100"
DEFAULT_PROFILE = "pt100"
"""The profile of ``posbench sim`` without ``--profile``: the PT100 and its bench readers."""
WORKDIR_PREFIX = "posbench-sim-"
CURRENCY = "978"


def sim_profile(ref: str) -> Profile:
    """The DUT profile ``ref`` names: a packaged one by name (e.g. "zvt-generic") or a profile
    file (relative to the working directory); ``ConfigError`` names the known ones."""
    return find_profile(ref, file="--profile", key="")


def profile_ref(ref: str) -> str:
    """How the bench file names the profile ``ref``: a packaged one by its name, a file by its
    absolute path (the bench file may be read from anywhere)."""
    return ref.lower() if is_profile_name(ref) else str(Path(ref).expanduser().resolve())


def sim_protocol(profile: Profile, protocol: str | None) -> str:
    """The ECR protocol a virtual unit of ``profile`` speaks: ``protocol`` if the profile lists it,
    else (None) the profile's first; ``ValueError`` says which it speaks."""
    spoken: list[str] = [*profile.protocols] or [*PROTOCOLS]
    if protocol is None:
        return spoken[0]
    if protocol not in spoken:
        name = profile.source.stem if profile.source else profile.model
        raise ValueError(f"a {name} unit does not speak {protocol!r}; it speaks {', '.join(spoken)}")
    return protocol


CARD_WAIT_S = {name: wait for name in PROTOCOLS if (wait := registry.virtual(name).CARD_TIMEOUT_S) is not None}
"""Seconds each virtual terminal waits in a sale for the card to be presented."""
TECHNICIAN_MARGIN_S = 0.5
"""Seconds of a card wait the simulated technician's slowest presentation must leave free."""


def technician_fits(slowest_s: float, profile: Profile, protocol: str) -> str | None:
    """Why a simulated technician whose slowest presentation is ``slowest_s`` seconds cannot serve
    a virtual bench of ``profile`` over ``protocol`` (None: it can). A punctual technician
    presents within every wait of the unit (a sale's card wait, the bench's own readers' read
    timeouts): only then is a card still on its way when the read ended the unit's doing
    (``Technician.missed`` says "refused"), not the technician's lateness."""
    waits = {f"the virtual {protocol} terminal's card wait": CARD_WAIT_S[protocol]} if protocol in CARD_WAIT_S else {}
    if (profile.exposes or profile.is_reader) and profile.read_paths is not None:
        paths = profile.read_paths
        waits |= {f"the {name} read timeout of the profile": path.timeout_s
                  for name, path in (("swipe", paths.swipe), ("chip", paths.chip), ("tap", paths.tap)) if path}
    if not waits:
        return None
    what, wait = min(waits.items(), key=lambda item: item[1])
    if slowest_s + TECHNICIAN_MARGIN_S <= wait:
        return None
    return (f"the technician's slowest presentation ({slowest_s:g} s) must end {TECHNICIAN_MARGIN_S:g} s inside "
            f"{what} ({wait:g} s): at most {wait - TECHNICIAN_MARGIN_S:g} s")


def boot_timeout_s(boot_s: float) -> float:
    """Seconds the bench file lets the virtual unit take to answer after power-on: room for the
    retried boots of a weak supply (``unit.power.MAX_BOOT_ATTEMPTS``), at least 10 s."""
    return max(10.0, 6 * boot_s)


def issuer_rules(profile: Profile, severity: float) -> RuleSet:
    """The issuer refers (01) the largest ``severity`` share of the profile's test amounts."""
    amounts = sorted(profile.tests.sale_amounts, reverse=True)
    count = max(1, round(severity * len(amounts)))
    threshold = amounts[count - 1]
    return RuleSet([Rule(code="01", min_amount=threshold, name="issuer refers large amounts")])


class SimBench(BenchActuator):
    """Starts every emulator of the virtual bench; ``close()`` removes all it created."""

    def __init__(self, faults: dict[str, float] | None = None, seed: int | None = None,
                 serial: str | None = None, timing: TerminalTiming | None = None,
                 host_rules: RuleSet | None = None, netlab: bool | None = None,
                 protocol: str | None = None, announce: bool = False, profile: str = DEFAULT_PROFILE):
        """``timing`` overrides the virtual unit's step times (default: ``TerminalTiming.for_profile``);
        ``host_rules`` come before the rules the faults add (a training bench's own issuer
        behaviour). ``netlab``: put the unit, the host and the bench in network namespaces
        (default: when this host can, i.e. as root; network faults need it); False keeps
        everything on loopback. ``profile``: the packaged DUT profile whose unit and bench this
        is (its ``protocols``, ``exposes``, ``acquirer``, ``[power]``). ``protocol``: the ECR
        protocol the unit speaks, one of the profile's (default its first); ``ValueError``
        otherwise. ``announce``: make the devices findable by ``posbench discover``
        (``posbench.setup.device_dir``)."""
        if protocol is not None and protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
        try:
            self.profile = sim_profile(profile)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        self.profile_name = profile_ref(profile)
        self.protocol = protocol = sim_protocol(self.profile, protocol)
        self.exposes = frozenset(self.profile.exposes)
        self.faults = dict(faults or {})
        self.want_lab = netlab
        self.lab: NetLab | None = None
        self.timing, self.host_rules = timing or TerminalTiming.for_profile(self.profile), host_rules
        self.seed = random.SystemRandom().randrange(2**31) if seed is None else seed
        rng = random.Random(self.seed)
        self.serial = serial or f"{self.profile.model}-{rng.randrange(10**7):07d}"
        virtual = registry.virtual(protocol)  # the protocol's virtual terminal module
        self.serial = ecr.unit_serial(virtual, self.serial, given=bool(serial))  # e.g. ZVT's BCD digits
        self.terminal_id = f"{virtual.TERMINAL_ID_PREFIX}{rng.randrange(10**6):06d}"
        self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        self.host_log = self.workdir / "host.jsonl"
        self.host: HostSimulator | None = None
        self.terminal: FrontEnd | None = None
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
        from posbench.setup.cards import load_deck
        self.deck = load_deck()

    def start(self) -> "SimBench":
        try:
            rules = RuleSet(list(self.host_rules.rules) if self.host_rules else [],
                            self.host_rules.default_code if self.host_rules else "00")
            if "issuer_referral" in self.faults:
                rules.rules += issuer_rules(self.profile, self.faults["issuer_referral"]).rules
            self._start_lab()
            if self.lab is not None:
                self.host = HostSimulator((self.lab.host_ip, 0), rules=rules, log_path=self.host_log,
                                          seed=self.seed + 1, listen_sock=self.lab.host_listen_socket())
            else:
                self.host = HostSimulator(("127.0.0.1", 0), rules=rules, log_path=self.host_log,
                                          seed=self.seed + 1)
            self.host.start()
            if self.lab is not None:
                self.lab.apply_faults(self.host.address[1])
            self.terminal = self._make_terminal()
            self.terminal.set_powered(False)  # the power model switches it on below
            if self.lab is not None:
                from posbench.drivers.host.client import HostClient

                from posbench.core.netns import socket_in
                unit_ns = self.lab.unit_ns  # the unit's host link starts in its own namespace
                self.terminal.connect_host = lambda address, timeout: HostClient(
                    address, timeout=timeout, sock_factory=lambda: socket_in(unit_ns))
            # The readers the bench reaches; a PCI terminal's are inside it (its unit model reads
            # the presented cards, msr_head / chip_contacts / nfc_antenna fail its own reads).
            if "usb_magstripe" in self.exposes:
                self._start_usb()
            if "nfc" in self.exposes:
                self.nfc = PN532Emulator(random.Random(self.seed + 13),
                                         antenna_fault=self.faults.get("nfc_antenna", 0.0))
                self.nfc.set_powered(False)
                self.nfc.start()
            self._start_power()
            self.terminal.start()
            if self.reader is not None:  # pcb_intermittent: the board's joint drops the USB reader;
                # on any shape it also damages the unit's ECR frames (its front end's noisy link)
                self.dropper = UsbDropper(random.Random(self.seed + 19), self.faults.get("pcb_intermittent", 0.0),
                                          self._unplug_reader, self._plug_reader).start()
            self.control = ControlServer(self._actions()).start()
            self._announce()
        except BaseException:
            self.close()
            raise
        return self

    def _make_terminal(self) -> FrontEnd:
        assert self.host
        return cast(FrontEnd, registry.virtual(self.protocol).front_end(
            self.protocol, self.host.address, self.profile, self.faults, seed=self.seed, serial=self.serial,
            terminal_id=self.terminal_id, timing=self.timing, currency=CURRENCY))

    def _announce(self) -> None:
        """Put every device where ``posbench discover`` looks, as a real bench's would be: the
        serial ones as links beside /dev/serial/by-id's, a TCP terminal's endpoint, the USB/IP
        server. Named by number only: discover finds out what each is by probing it."""
        if self.announcer is None:
            return
        assert self.terminal and self.supply
        term = self.terminal
        address = getattr(term, "address", None)  # a terminal on TCP (ZVT, and any later one)
        if address:
            self.announcer.tcp(*address)
        elif term.port is not None:
            self.announcer.serial(term.port.path)
        if self.nfc is not None:
            self.announcer.serial(self.nfc.path)
        self.announcer.serial(self.supply.path)
        if self.usb is not None:
            self.announcer.usbip(self.usb.url)

    def _start_usb(self) -> None:
        """The unit's USB side on a USB/IP server: its magstripe reader behind a 4-port hub."""
        self.usb = UsbipServer()
        self.hub = VirtualUsbHub(self.usb, ports=4)
        self.reader = VirtualMagstripeReader("hid", rng=random.Random(self.seed + 11),
                                             head_fault=self.faults.get("msr_head", 0.0),
                                             serial=f"MSR{self.seed % 10**8:08d}")

    def _start_lab(self) -> None:
        from posbench.sim.unit.faults import NETWORK
        from posbench.core.netns import have_netns
        wanted = self.want_lab
        if wanted is None:
            wanted = have_netns()[0]
        if not wanted:
            if any(f in self.faults for f in NETWORK):
                raise RuntimeError("network faults need the network lab (root)")
            return
        from posbench.sim.net.netlab import NetLab
        self.lab = NetLab(self.seed, self.faults).start()

    def _start_power(self) -> None:
        """One power model of the unit, fed by a Korad supply on a pty (the bench's own link)."""
        assert self.terminal
        spec = self.profile.power
        self.power = UnitPower(self.terminal.timing.boot_s, rng=random.Random(self.seed + 17),
                               supply_fault=self.faults.get("power_supply", 0.0),
                               brownout_v=spec.min_input_v if spec else 10.5)
        self.power.on_change(self._on_power)
        self.terminal.on_activity = self.power.set_activity
        self.power.start()
        self.supply = KoradEmulator(self.power, serial=f"{self.seed % 10**8:08d}",
                                    volts=spec.nominal_v if spec else 12.0,
                                    amps=spec.current_limit_a if spec else 2.0, output=True).start()

    def _on_power(self, state: str) -> None:
        """The unit's parts follow its power: dead when off, back (devices re-enumerated) when on."""
        assert self.terminal
        if state == "off":
            self.terminal.set_powered(False)
            if self.nfc is not None:
                self.nfc.set_powered(False)
            self._unplug_reader()
        elif state == "on":
            self.terminal.set_powered(True, boot_s=0.0)  # the power model timed the boot
            if self.nfc is not None:
                self.nfc.set_powered(True)
            self._plug_reader()

    def _unplug_reader(self) -> bool:
        with self._reader_lock:
            return self.hub is not None and self.hub.detach(1) is not None

    def _plug_reader(self) -> None:
        with self._reader_lock:
            if self.hub is not None and self.reader is not None and self.power is not None \
                    and self.power.state == "on":
                try:
                    self.hub.attach(1, self.reader)
                except ValueError:
                    pass  # already plugged in

    def bench_toml(self) -> str:
        """The bench file: only what the bench reaches. [usb] and [nfc] for the readers the
        profile ``exposes``; [host] with its log when the unit uses the bench's acquirer
        (``acquirer = "bench"``); one with its own acquirer still sends its sales to a host
        simulator, of which the bench knows the address (the terminal's configuration says
        it) but sees no log: the bench probes its port and sends it nothing."""
        assert self.host and self.terminal and self.control and self.supply
        host, port = self.host.address
        control = "{}:{}".format(*self.control.address)
        faults = ", ".join(f'"{f}"' for f in format_faults(self.faults))
        return (
            "# Written by `posbench sim`: the virtual bench. Valid while that process runs.\n"
            f'[bench]\nname = "virtual"\nvirtual = true\n\n'
            f'[unit]\nmodel = "{self.profile.model}"\nserial = "{self.serial}"\n'
            + (f'profile = "{self.profile_name}"\n' if self.profile_name != DEFAULT_PROFILE else "")
            + "\n"
            + self._terminal_toml()
            + (f'[host]\naddress = "{host}:{port}"\nlog = "{self.host_log}"\n'
               f'terminal_id = "{self.terminal_id}"\n\n' if self.profile.acquirer == "bench" else
               f'[host]  # the terminal\'s own acquirer, as its configuration names it: no log\n'
               f'address = "{host}:{port}"\n\n')
            + (f'[usb]\nbackend = "{self.usb.url}"\nreader = "0801:0002"\n\n' if self.usb is not None else "")
            + (f'[nfc]\npath = "{self.nfc.path}"\n\n' if self.nfc is not None else "")
            + f'[power]\ndriver = "korad"\nport = "{self.supply.path}"\nchannel = 1\n\n'
            + (f'[network]\nunit_address = "{self.lab.unit_ip}"\ninterface = "{self.lab.bench_iface}"\n'
               f'netns = "{self.lab.bench_ns}"\n\n' if self.lab is not None else "")
            + f'[actuator]\nkind = "virtual"\naddress = "{control}"\n'
            + ("technician = true\n" if self.technician else "") + "\n"
            f"[sim]\npid = {os.getpid()}\nseed = {self.seed}\nfaults = [{faults}]\n"
            f'control = "{control}"\nworkdir = "{self.workdir}"\n')

    def _terminal_toml(self) -> str:
        """The [terminal] section: where the unit's ECR link is and the protocol it speaks."""
        term = self.terminal
        assert term is not None
        virtual = registry.virtual(self.protocol)
        head = virtual.terminal_toml(term, CURRENCY)
        sale_s = virtual.SALE_TIMEOUT_S
        boot_s = boot_timeout_s(self.timing.boot_s)
        return head + f"reply_timeout = 1.0\nsale_timeout = {sale_s:g}\nboot_timeout = {boot_s:g}\n\n"

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

    def close(self) -> None:
        if self.announcer is not None:
            self.announcer.remove()
        if self.control:
            self.control.stop(timeout=2.0)
            self.control = None
        if self.dropper:
            self.dropper.stop(timeout=2.0)
            self.dropper = None
        if self.supply:
            self.supply.stop(timeout=2.0)
            self.supply = None
        if self.power:
            self.power.stop(timeout=2.0)
        if self.nfc:
            self.nfc.stop(timeout=2.0)
            self.nfc = None
        if self.usb:
            self.usb.stop(timeout=2.0)
            self.usb = None
        if self.terminal:
            self.terminal.stop(timeout=2.0)
            self.terminal = None
        if self.host:
            self.host.stop(timeout=2.0)
            self.host = None
        if self.bench_file is not None:
            self.bench_file.unlink(missing_ok=True)
            self.bench_file = None
        if self.lab is not None:  # last: the host and the unit had sockets in it
            try:
                self.lab.close(timeout=10.0)
            finally:
                self.lab = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "SimBench":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
