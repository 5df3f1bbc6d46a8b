"""The network lab: a LAN and an acquirer network of Linux namespaces, with real network faults.

Topology (every address exists only inside the lab's namespaces)::

    unit 10.231.1.10 ─┐
    neighbour .20 ────┤ bridge (lan ns) ── router .1 │ 10.231.2.1 ── host 10.231.2.10
    bench .30 ────────┘                    (forwarding, nftables)

The unit (virtual terminal's host link), a LAN neighbour and the bench PC (where the bench's
own probes run) share a bridged LAN; the router is a real hop to the acquirer host's subnet,
so a firewall or a bad link "in the path" sits on it. Each namespace is named
``<prefix>-<pid>-<n>-<role>`` so ``sweep_stale`` can remove what a killed process left.

Faults (``faults`` maps cause id to severity in (0, 1]; other cause ids are ignored):

- ``ip_conflict``: the neighbour configures the unit's address too (its kernel answers ARP for
  it) and announces itself with gratuitous ARP every ``2.0 - 1.75 * severity`` seconds, which
  flips the router's ARP entry for the unit to the neighbour: the host's replies to the unit go
  to the neighbour (which resets them) until the unit's own ARP traffic wins the entry back.
- ``firewall``: table ``pbl_firewall`` on the router for the host port (tcp dport), in its
  forward chain (and its input chain for connections redirected to the delay relay).
  ``firewall_mode``: ``"drop"`` (the port looks filtered), ``"reject"`` (TCP reset:
  ECONNREFUSED) or ``"prohibit"`` (ICMP admin-prohibited: EHOSTUNREACH). Without an explicit
  mode, severity >= 0.5 drops (the harder case: every attempt waits for its timeout) and a
  lower severity rejects.
- ``network_unstable``: table ``pbl_unstable`` on the router drops ``round(20 * severity)`` %
  of the host-port packets in each direction (``numgen random``), and a dnat sends the host
  port to a ``DelayRelay`` in the router that holds each chunk ``0.5 * severity`` s +- half of
  that, per direction (no netem in this kernel). The host then sees the router's address as
  the peer of relayed connections, as behind a proxy.

Faults that need the host port (firewall, network_unstable) are applied by ``apply_faults``
once the host simulator listens (or at ``start`` when ``host_port`` was given).
"""
from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from posbench.core.errors import BenchError
from posbench.core.procs import pid_alive
from posbench.drivers.host.arp_probe import build_announcement, open_arp_socket

from posbench.core import netns
from posbench.sim.net.delay_relay import DelayRelay

DEVICE = "network lab"
T = TypeVar("T")

NETWORK_FAULTS = ("ip_conflict", "firewall", "network_unstable")
FIREWALL_MODES = ("drop", "reject", "prohibit")

UNIT_IP = "10.231.1.10"
NEIGHBOUR_IP = "10.231.1.20"
BENCH_IP = "10.231.1.30"
ROUTER_LAN_IP = "10.231.1.1"
ROUTER_ACQ_IP = "10.231.2.1"
HOST_IP = "10.231.2.10"
LAN_PREFIXLEN = ACQ_PREFIXLEN = 24

LAN_IFACE = "lan0"
"""Interface facing the LAN in the unit, neighbour, bench and router namespaces."""
ACQ_IFACE = "acq0"
"""Interface facing the acquirer subnet in the router and host namespaces."""
BRIDGE = "pblbr0"
_ROLES = ("lan", "unit", "nbr", "bench", "rtr", "host")
_LAN_MEMBERS = {"unit": UNIT_IP, "nbr": NEIGHBOUR_IP, "bench": BENCH_IP, "rtr": ROUTER_LAN_IP}
_ROOT_NAMES = frozenset({LAN_IFACE, ACQ_IFACE, BRIDGE, *(f"pblp-{r}" for r in _LAN_MEMBERS)})
_NFT_TABLES = ("pbl_firewall", "pbl_unstable")

_counter = itertools.count(1)
_open_labs: set[NetLab] = set()
"""Started, not yet closed labs: closed at interpreter exit."""


def _mac(ip: str) -> str:
    """A locally administered MAC that spells the address: 10.231.1.10 -> 02:00:0a:e7:01:0a."""
    return "02:00:" + ":".join(f"{int(part):02x}" for part in ip.split("."))


UNIT_MAC = _mac(UNIT_IP)
NEIGHBOUR_MAC = _mac(NEIGHBOUR_IP)


class NetLab:
    """Namespaces, links and faults of one lab. ``seed`` makes the random draws repeatable.

    After ``start``: ``unit_ns``, ``host_ns``, ``bench_ns``, ``neighbour_ns``, ``router_ns``
    (namespace names for ``netns.socket_in`` / ``call_in`` / ``ip -n``), ``unit_ip``,
    ``host_ip``, ``bench_ip``, ``bench_iface``; ``host_port`` after ``apply_faults``.
    """

    def __init__(self, seed: int, faults: dict[str, float], name_prefix: str = "pbl", *,
                 host_port: int | None = None, firewall_mode: str | None = None):
        if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", name_prefix):
            raise ValueError("name_prefix: 1..8 lower-case letters/digits, starting with a letter")
        for cause, severity in faults.items():
            if cause in NETWORK_FAULTS and not 0.0 < float(severity) <= 1.0:
                raise ValueError(f"severity of {cause} must be in (0, 1], got {severity}")
        if firewall_mode is not None and firewall_mode not in FIREWALL_MODES:
            raise ValueError(f"firewall_mode must be one of {FIREWALL_MODES}, got {firewall_mode!r}")
        self.seed = seed
        self.faults = {c: float(s) for c, s in faults.items() if c in NETWORK_FAULTS}
        self.name_prefix = name_prefix
        self._rng = random.Random(seed)
        self._tag = f"{name_prefix}-{os.getpid()}-{next(_counter)}"
        names = {role: f"{self._tag}-{role}" for role in _ROLES}
        self.lan_ns, self.unit_ns, self.neighbour_ns = names["lan"], names["unit"], names["nbr"]
        self.bench_ns, self.router_ns, self.host_ns = names["bench"], names["rtr"], names["host"]
        self.unit_ip, self.neighbour_ip, self.bench_ip = UNIT_IP, NEIGHBOUR_IP, BENCH_IP
        self.router_ip, self.host_ip = ROUTER_LAN_IP, HOST_IP
        self.unit_mac, self.neighbour_mac = UNIT_MAC, NEIGHBOUR_MAC
        self.bench_iface = self.unit_iface = LAN_IFACE
        self.host_port = host_port
        if firewall_mode is None and "firewall" in self.faults:
            firewall_mode = "drop" if self.faults["firewall"] >= 0.5 else "reject"
        self.firewall_mode = firewall_mode
        sev = self.faults.get("network_unstable", 0.0)
        self.loss_pct = max(1, round(20 * sev)) if sev else 0
        self.delay_s = 0.5 * sev
        self.jitter_s = self.delay_s / 2
        sev = self.faults.get("ip_conflict", 0.0)
        self.announce_interval_s = 2.0 - 1.75 * sev if sev else 0.0
        self._started = False
        self._closed = False
        self._applied = False
        self._relay: DelayRelay | None = None
        self._announcer: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def namespaces(self) -> list[str]:
        """Every namespace name of this lab."""
        return [f"{self._tag}-{role}" for role in _ROLES]

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> NetLab:
        """Remove stale labs, build the namespaces and links, inject the faults.

        ``BenchError`` (with ``have_netns``'s reason) when the lab cannot run here; a failed
        build removes whatever was made.
        """
        ok, reason = netns.have_netns()
        if not ok:
            raise BenchError(DEVICE, "starting", reason)
        if self._started:
            raise RuntimeError("network lab already started")
        self._started = True
        _open_labs.add(self)
        try:
            sweep_stale(self.name_prefix)
            self._build()
            if "ip_conflict" in self.faults:
                self._inject_conflict()
            if self.host_port is not None:
                self.apply_faults(self.host_port)
        except BaseException:
            self.close()
            raise
        return self

    def apply_faults(self, host_port: int) -> None:
        """Inject the faults that act on the host port (firewall, network_unstable). Once only."""
        if not self._started or self._closed:
            raise RuntimeError("network lab not running")
        with self._lock:
            if self._applied:
                if host_port != self.host_port:
                    raise RuntimeError(f"faults already applied for port {self.host_port}")
                return
            self._applied = True
            self.host_port = int(host_port)
        script: list[str] = []
        if "network_unstable" in self.faults:
            self._relay = self._start_relay()
            relay_ip, relay_port = self._relay.address
            n, port, host = self.loss_pct, self.host_port, self.host_ip
            script += [
                "table ip pbl_unstable {",
                "  chain loss {",
                "    type filter hook prerouting priority -150;",
                f'    iifname "{LAN_IFACE}" ip daddr {host} tcp dport {port} numgen random mod 100 < {n} drop',
                f'    iifname "{ACQ_IFACE}" ip saddr {host} tcp sport {port} numgen random mod 100 < {n} drop',
                "  }",
                "  chain relay {",
                "    type nat hook prerouting priority -100;",
                f'    iifname "{LAN_IFACE}" ip daddr {host} tcp dport {port} dnat to {relay_ip}:{relay_port}',
                "  }",
                "}",
            ]
        if "firewall" in self.faults:
            verdict = {"drop": "drop", "reject": "reject with tcp reset",
                       "prohibit": "reject with icmp type admin-prohibited"}[self.firewall_mode or "drop"]
            script += [
                "table ip pbl_firewall {",
                "  chain forward {",
                "    type filter hook forward priority 0;",
                f"    ip daddr {self.host_ip} tcp dport {self.host_port} {verdict}",
                "  }",
                "  chain input {",  # connections the unstable link redirected to its relay
                "    type filter hook input priority 0;",
                f"    meta l4proto tcp ct original ip daddr {self.host_ip} "
                f"ct original proto-dst {self.host_port} {verdict}",
                "  }",
                "}",
            ]
        if script:
            netns.run(["ip", "netns", "exec", self.router_ns, "nft", "-f", "-"],
                      input="\n".join(script) + "\n", timeout=5.0)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the lab's threads and delete its namespaces within ``timeout`` seconds.

        Deleting a namespace removes its veths, bridge and nftables tables. Idempotent.
        ``BenchError`` when something of the lab is still there afterwards (see ``leftovers``).
        """
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._relay is not None:
            self._relay.stop(min(2.0, max(0.1, deadline - time.monotonic())))
        if self._announcer is not None:
            self._announcer.join(min(2.0, max(0.1, deadline - time.monotonic())))
        for name in reversed(self.namespaces):
            if netns.ns_exists(name):
                remaining = deadline - time.monotonic()
                netns.run(["ip", "netns", "del", name], timeout=max(0.5, min(3.0, remaining)), check=False)
        _open_labs.discard(self)
        left = self.leftovers()
        if left:
            raise BenchError(DEVICE, "removing the lab", f"still present: {', '.join(left)}")

    def leftovers(self) -> list[str]:
        """What of this lab still exists: its namespaces, and in the root namespace any link
        with a lab name or any lab nftables table (the lab never makes them there)."""
        left = [f"namespace {n}" for n in self.namespaces if netns.ns_exists(n)]
        left += [f"root link {n}" for n in root_links() if n in _ROOT_NAMES or n.startswith("pblp-")]
        left += [f"root nft table {t}" for t in root_nft_tables() if t.startswith("pbl_")]
        return left

    def __enter__(self) -> NetLab:
        return self.start() if not self._started else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers for callers ---------------------------------------------------------------
    def call_in(self, ns_name: str, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """``netns.call_in`` for one of this lab's namespaces."""
        return netns.call_in(ns_name, fn, timeout)

    def socket_in(self, ns_name: str, family: int = socket.AF_INET,
                  type: int = socket.SOCK_STREAM) -> socket.socket:
        """A socket in one of this lab's namespaces."""
        return netns.socket_in(ns_name, family, type)

    def host_listen_socket(self) -> socket.socket:
        """An unbound TCP socket in the host namespace, for ``HostSimulator(listen=(lab.host_ip, 0),
        listen_sock=...)``."""
        return netns.socket_in(self.host_ns, socket.AF_INET, socket.SOCK_STREAM)

    def ip(self, ns_name: str, *args: str, timeout: float = 5.0) -> str:
        """``ip -n ns_name args...``; its output."""
        return netns.run(["ip", "-n", ns_name, *args], timeout=timeout).stdout

    # -- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        for name in self.namespaces:
            netns.run(["ip", "netns", "add", name])
        for role, name in zip(_ROLES, self.namespaces):
            settings = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
            if role == "rtr":
                settings.append("net.ipv4.ip_forward=1")
            netns.run(["ip", "netns", "exec", name, "sysctl", "-q", "-w", *settings])
        lan = ["link set lo up", f"link add {BRIDGE} type bridge stp_state 0 forward_delay 0",
               f"link set {BRIDGE} up"]
        for role, ip in _LAN_MEMBERS.items():
            port = f"pblp-{role}"
            lan += [f"link add {port} type veth peer name {LAN_IFACE} address {_mac(ip)} "
                    f"netns {self._tag}-{role}",
                    f"link set {port} master {BRIDGE}", f"link set {port} up"]
        self._batch(self.lan_ns, lan)
        self._batch(self.router_ns, [
            f"link add {ACQ_IFACE} address {_mac(ROUTER_ACQ_IP)} type veth "
            f"peer name {ACQ_IFACE} address {_mac(HOST_IP)} netns {self.host_ns}",
        ])
        for role, ip in _LAN_MEMBERS.items():
            cmds = ["link set lo up", f"addr add {ip}/{LAN_PREFIXLEN} dev {LAN_IFACE}",
                    f"link set {LAN_IFACE} up"]
            if role == "rtr":
                cmds += [f"addr add {ROUTER_ACQ_IP}/{ACQ_PREFIXLEN} dev {ACQ_IFACE}",
                         f"link set {ACQ_IFACE} up"]
            else:
                cmds.append(f"route add default via {ROUTER_LAN_IP}")
            if role == "unit":
                # A chatty embedded stack: the unit re-checks its gateway's MAC within ~2 s when
                # its traffic stalls, and that ARP request wins the router's entry back during
                # an address conflict (so the conflict breaks the link intermittently).
                cmds.append(f"ntable change name arp_cache dev {LAN_IFACE} base_reachable 1000 delay_probe 1000")
            self._batch(f"{self._tag}-{role}", cmds)
        self._batch(self.host_ns, ["link set lo up", f"addr add {HOST_IP}/{ACQ_PREFIXLEN} dev {ACQ_IFACE}",
                                   f"link set {ACQ_IFACE} up", f"route add default via {ROUTER_ACQ_IP}"])

    def _batch(self, ns_name: str, commands: list[str]) -> None:
        netns.run(["ip", "-n", ns_name, "-batch", "-"], input="\n".join(commands) + "\n", timeout=10.0)

    def _inject_conflict(self) -> None:
        self.ip(self.neighbour_ns, "addr", "add", f"{self.unit_ip}/{LAN_PREFIXLEN}", "dev", LAN_IFACE)
        sock, mac = open_arp_socket(LAN_IFACE, self.neighbour_ns)
        frame = build_announcement(mac, socket.inet_aton(self.unit_ip))
        self._announcer = threading.Thread(target=self._announce, args=(sock, frame),
                                           name="netlab-conflict", daemon=True)
        self._announcer.start()

    def _announce(self, sock: socket.socket, frame: bytes) -> None:
        """The conflicting neighbour's gratuitous ARP, every ``announce_interval_s`` seconds."""
        try:
            while not self._stop.is_set():
                with contextlib.suppress(OSError):
                    sock.send(frame)
                self._stop.wait(self.announce_interval_s)
        finally:
            sock.close()

    def _start_relay(self) -> DelayRelay:
        listen = netns.socket_in(self.router_ns, socket.AF_INET, socket.SOCK_STREAM)
        try:
            listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listen.bind((self.router_ip, 0))
        except OSError as exc:
            listen.close()
            raise BenchError(DEVICE, "binding the delay relay", exc.strerror or str(exc)) from None
        router_ns = self.router_ns
        relay = DelayRelay(listen, (self.host_ip, int(self.host_port or 0)),
                           random.Random(self._rng.getrandbits(64)), self.delay_s, self.jitter_s,
                           connect=lambda: netns.socket_in(router_ns, socket.AF_INET, socket.SOCK_STREAM))
        return relay.start()


def sweep_stale(prefix: str = "pbl", timeout: float = 10.0) -> list[str]:
    """Delete lab namespaces ``<prefix>-<pid>-<n>-<role>`` whose owning process is gone.

    Returns the names removed. A pid that was reused by an unrelated process keeps its
    namespaces until that process ends (they are inert: nothing in them reaches outside).
    """
    # also the probe namespace of a have_netns() check that was killed half-way
    pattern = re.compile(rf"{re.escape(prefix)}-(\d+)-\d+-[a-z]+|pblcheck-(\d+)")
    deadline = time.monotonic() + timeout
    removed = []
    for name in netns.list_netns():
        match = pattern.fullmatch(name)
        if match is None or pid_alive(int(match.group(1) or match.group(2))):
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        done = netns.run(["ip", "netns", "del", name], timeout=min(3.0, remaining), check=False)
        if done.returncode == 0:
            removed.append(name)
    return removed


def root_links() -> list[str]:
    """Names of the links in the root (this process's) namespace."""
    out = netns.run(["ip", "-o", "link", "show"], timeout=5.0).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def root_nft_tables() -> list[str]:
    """Names of the nftables tables in the root namespace."""
    out = netns.run(["nft", "list", "tables"], timeout=5.0).stdout
    return [line.split()[-1] for line in out.splitlines() if line.startswith("table ")]


@atexit.register
def _close_open_labs() -> None:
    """A lab still open at interpreter exit is removed (a SIGKILL leaves it to ``sweep_stale``)."""
    for lab in list(_open_labs):
        with contextlib.suppress(Exception):
            lab.close(timeout=5.0)
