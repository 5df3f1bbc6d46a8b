"""The virtual bench: host simulator and virtual terminal, and the bench.toml that reaches them.

Its shape follows a DUT profile (``--profile``): the PT100 (default) has its USB magstripe reader
and PN532 on the bench and is pointed at posbench's host simulator, whose log the bench reads; a
generic payment terminal (zvt-generic, concert-generic, caisse-ap-generic) reads cards with its
own readers only and talks to its own acquirer (still a host simulator here): the bench file names
only its address, as a technician reads it from the terminal's configuration, and no log.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, cast

from posbench.setup.profile import Profile
from posbench.drivers import registry
from posbench.drivers.host.rules import Rule, RuleSet
from posbench.drivers.host.simulator import HostSimulator

from posbench.sim import PROTOCOLS, ecr
from posbench.sim.bench_base import (DEFAULT_PROFILE, WORKDIR_PREFIX, BenchBase, profile_ref,  # noqa: F401
                                     sim_profile)
from posbench.sim.unit.front_end import UnitFrontEnd as FrontEnd
from posbench.sim.unit.records import TerminalTiming

if TYPE_CHECKING:
    from posbench.sim.net.netlab import NetLab  # imported where it starts: it needs root

MODEL = "PT100"
CURRENCY = "978"


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


class SimBench(BenchBase):
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
        super().__init__(profile, faults, seed, announce)
        self.protocol = protocol = sim_protocol(self.profile, protocol)
        self.exposes = frozenset(self.profile.exposes)
        self.want_lab = netlab
        self.lab: NetLab | None = None
        self.timing, self.host_rules = timing or TerminalTiming.for_profile(self.profile), host_rules
        rng = random.Random(self.seed)
        self.serial = serial or f"{self.profile.model}-{rng.randrange(10**7):07d}"
        virtual = registry.virtual(protocol)  # the protocol's virtual terminal module
        self.serial = ecr.unit_serial(virtual, self.serial, given=bool(serial))  # e.g. ZVT's BCD digits
        self.terminal_id = f"{virtual.TERMINAL_ID_PREFIX}{rng.randrange(10**6):06d}"
        self.host_log = self.workdir / "host.jsonl"
        self.host: HostSimulator | None = None
        self.terminal: FrontEnd | None = None

    def _start_unit(self) -> None:
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
            self._start_nfc()
        self._start_power()
        self.terminal.start()
        if self.reader is not None:  # pcb_intermittent: the board's joint drops the USB reader;
            # on any shape it also damages the unit's ECR frames (its front end's noisy link)
            self._start_dropper(self._unplug_reader, self._plug_reader)

    def _make_terminal(self) -> FrontEnd:
        assert self.host
        return cast(FrontEnd, registry.virtual(self.protocol).front_end(
            self.protocol, self.host.address, self.profile, self.faults, seed=self.seed, serial=self.serial,
            terminal_id=self.terminal_id, timing=self.timing, currency=CURRENCY))

    def _announce(self) -> None:
        """Put every device where ``posbench discover`` looks, as a real bench's would be: the
        serial ones as links beside /dev/serial/by-id's, a TCP terminal's endpoint, the USB/IP
        server. Named by number only: discover finds out what each is by probing it."""
        assert self.announcer and self.terminal and self.supply
        term = self.terminal
        address = getattr(term, "address", None)  # a terminal on TCP (ZVT, and any later one)
        if address:
            self.announcer.tcp(*address)
        elif term.port is not None:
            self.announcer.serial(term.port.path)
        self._announce_readers()

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
        self._start_supply(self.terminal.timing.boot_s)
        assert self.power
        self.terminal.on_activity = self.power.set_activity

    def _on_power(self, state: str) -> None:
        """The unit's parts follow its power: dead when off, back (devices re-enumerated) when on."""
        assert self.terminal
        if state == "off":
            self.terminal.set_powered(False)
        elif state == "on":
            self.terminal.set_powered(True, boot_s=0.0)  # the power model timed the boot
        super()._on_power(state)

    def bench_toml(self) -> str:
        """The bench file: only what the bench reaches. [usb] and [nfc] for the readers the
        profile ``exposes``; [host] with its log when the unit uses the bench's acquirer
        (``acquirer = "bench"``); one with its own acquirer still sends its sales to a host
        simulator, of which the bench knows the address (the terminal's configuration says
        it) but sees no log: the bench probes its port and sends it nothing."""
        assert self.host and self.terminal
        host, port = self.host.address
        return (
            self._unit_toml()
            + self._terminal_toml()
            + (f'[host]\naddress = "{host}:{port}"\nlog = "{self.host_log}"\n'
               f'terminal_id = "{self.terminal_id}"\n\n' if self.profile.acquirer == "bench" else
               f'[host]  # the terminal\'s own acquirer, as its configuration names it: no log\n'
               f'address = "{host}:{port}"\n\n')
            + self._readers_toml("0801:0002")
            + self._power_toml()
            + (f'[network]\nunit_address = "{self.lab.unit_ip}"\ninterface = "{self.lab.bench_iface}"\n'
               f'netns = "{self.lab.bench_ns}"\n\n' if self.lab is not None else "")
            + self._control_toml())

    def _terminal_toml(self) -> str:
        """The [terminal] section: where the unit's ECR link is and the protocol it speaks."""
        term = self.terminal
        assert term is not None
        virtual = registry.virtual(self.protocol)
        head = virtual.terminal_toml(term, CURRENCY)
        sale_s = virtual.SALE_TIMEOUT_S
        boot_s = boot_timeout_s(self.timing.boot_s)
        return head + f"reply_timeout = 1.0\nsale_timeout = {sale_s:g}\nboot_timeout = {boot_s:g}\n\n"

    def close(self) -> None:
        self._stop_parts()
        self._stop("terminal", "host")
        if self.lab is not None:  # last: the host and the unit had sockets in it
            try:
                self.lab.close(timeout=10.0)
            finally:
                self.lab = None
        self._remove_files()
