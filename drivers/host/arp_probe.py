"""Address conflict detection: an RFC 5227 ARP probe for an IPv4 address, counting who answers.

A probe is an ARP request with sender IP 0.0.0.0, our MAC as sender MAC, target MAC zero and
the address in question as target IP, broadcast on the LAN. Every host that owns the address
answers; a healthy LAN gives exactly one MAC (the unit's), a duplicate address two or more.
ARP requests or probes from other hosts that claim the address are counted too (RFC 5227 2.1.1).

RFC 5227 sends PROBE_NUM = 3 probes 1..2 s apart (PROBE_MIN/PROBE_MAX) and then waits
ANNOUNCE_WAIT = 2 s. A bench test cannot wait that long per check, so the probes here are
spread evenly over the first half of ``timeout_s`` and the rest is listening time: the same
packets, shorter intervals.

The frames are built and parsed by hand with ``struct``: the ARP-over-Ethernet layout is fixed
at 42 bytes (RFC 826) and the project carries no packet library (scapy is not a dependency).
Needs an AF_PACKET raw socket, i.e. root or CAP_NET_RAW.
"""
from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from dataclasses import dataclass, field

from posbench.core.errors import BenchError

DEVICE = "arp probe"
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
ZERO_IP = b"\x00" * 4

_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")


@dataclass(frozen=True)
class ArpPacket:
    """One ARP-over-Ethernet frame. MACs are 6 bytes, IPs 4 bytes."""

    eth_src: bytes
    eth_dst: bytes
    op: int
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes

    @property
    def is_probe(self) -> bool:
        """An RFC 5227 probe: a request with sender IP 0.0.0.0."""
        return self.op == ARPOP_REQUEST and self.sender_ip == ZERO_IP


@dataclass
class ArpProbeResult:
    """``macs``: distinct MACs (``aa:bb:..``) that answered or claimed the address;
    ``replies``: how many such frames arrived; ``duration_s``: seconds the probe took."""

    address: str
    macs: set[str] = field(default_factory=set)
    replies: int = 0
    duration_s: float = 0.0
    probes_sent: int = 0

    @property
    def conflict(self) -> bool:
        """More than one MAC claims the address."""
        return len(self.macs) > 1


def mac_text(mac: bytes) -> str:
    """``b"\\x02\\x00..."`` -> ``"02:00:..."``."""
    return ":".join(f"{b:02x}" for b in mac)


def build_arp(op: int, sender_mac: bytes, sender_ip: bytes, target_mac: bytes, target_ip: bytes,
              eth_dst: bytes = BROADCAST) -> bytes:
    """An Ethernet frame carrying one ARP packet (42 bytes, no padding)."""
    for name, value, size in (("sender_mac", sender_mac, 6), ("target_mac", target_mac, 6),
                              ("eth_dst", eth_dst, 6), ("sender_ip", sender_ip, 4),
                              ("target_ip", target_ip, 4)):
        if len(value) != size:
            raise ValueError(f"{name} must be {size} bytes, got {len(value)}")
    return (_ETH.pack(eth_dst, sender_mac, ETH_P_ARP)
            + _ARP.pack(1, ETH_P_IP, 6, 4, op, sender_mac, sender_ip, target_mac, target_ip))


def build_probe(our_mac: bytes, address: bytes) -> bytes:
    """RFC 5227 probe for ``address`` (4 bytes) from ``our_mac``."""
    return build_arp(ARPOP_REQUEST, our_mac, ZERO_IP, ZERO_MAC, address)


def build_announcement(our_mac: bytes, address: bytes) -> bytes:
    """RFC 5227 announcement (gratuitous ARP request): sender IP = target IP = ``address``."""
    return build_arp(ARPOP_REQUEST, our_mac, address, ZERO_MAC, address)


def parse_arp(frame: bytes) -> ArpPacket | None:
    """The ARP packet in an Ethernet frame, or None for anything else or anything malformed.

    Only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, hlen 6, plen 4) with op request or reply is
    accepted; trailing padding is ignored. Never raises.
    """
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        return None
    frame = bytes(frame)
    if len(frame) < _ETH.size + _ARP.size:
        return None
    eth_dst, eth_src, ethertype = _ETH.unpack_from(frame, 0)
    if ethertype != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, _ETH.size)
    if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4) or op not in (ARPOP_REQUEST, ARPOP_REPLY):
        return None
    return ArpPacket(eth_src, eth_dst, op, sha, spa, tha, tpa)


def claims(packet: ArpPacket, address: bytes, our_mac: bytes) -> bool:
    """True when ``packet`` is another host saying it has (or wants) ``address``.

    A reply or request with that sender IP, or a probe for it from someone else.
    """
    if packet.sender_mac == our_mac or packet.eth_src == our_mac:
        return False
    if packet.sender_ip == address:
        return True
    return packet.is_probe and packet.target_ip == address


def open_arp_socket(interface: str, netns: str | None = None, timeout_s: float = 5.0) -> tuple[socket.socket, bytes]:
    """An AF_PACKET socket bound to ``interface`` for ARP frames, and that interface's MAC.

    ``netns``: a namespace name (``ip netns``) to open it in. ``BenchError`` without the right
    (root / CAP_NET_RAW) or when the interface does not exist.
    """
    def make() -> socket.socket:
        return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))

    try:
        if netns is None:
            sock = make()
        else:
            from posbench.core.netns import call_in  # the lab's helper: only needed with a namespace
            sock = call_in(netns, make, timeout=timeout_s)
    except PermissionError:
        raise BenchError(DEVICE, f"opening a raw ARP socket on {interface}",
                         "needs root or CAP_NET_RAW") from None
    except OSError as exc:
        raise BenchError(DEVICE, f"opening a raw ARP socket on {interface}", exc.strerror or str(exc)) from None
    try:
        sock.bind((interface, ETH_P_ARP))
        our_mac = sock.getsockname()[4]
    except OSError as exc:
        sock.close()
        raise BenchError(DEVICE, f"binding to interface {interface}", exc.strerror or str(exc)) from None
    if len(our_mac) != 6:
        sock.close()
        raise BenchError(DEVICE, f"binding to interface {interface}", "not an Ethernet interface")
    return sock, bytes(our_mac)


def arp_probe(interface: str, address: str, timeout_s: float = 2.0, count: int = 3,
              netns: str | None = None) -> ArpProbeResult:
    """Send ``count`` RFC 5227 probes for ``address`` on ``interface``, listen ``timeout_s`` seconds.

    Returns the distinct MACs that answered or claimed the address. ``netns``: run in that
    network namespace (the lab's bench PC). ``BenchError`` when the raw socket cannot be opened.
    """
    if count < 1 or timeout_s <= 0:
        raise ValueError("count must be >= 1 and timeout_s > 0")
    try:
        target = socket.inet_aton(address)
    except OSError:
        raise ValueError(f"not an IPv4 address: {address!r}") from None
    result = ArpProbeResult(address)
    start = time.monotonic()
    deadline = start + timeout_s
    sock, our_mac = open_arp_socket(interface, netns)
    probe = build_probe(our_mac, target)
    spacing = timeout_s / 2 / count
    next_probe = start
    try:
        sock.setblocking(False)
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if result.probes_sent < count and now >= next_probe:
                try:
                    sock.send(probe)
                except OSError as exc:
                    raise BenchError(DEVICE, f"sending an ARP probe on {interface}",
                                     exc.strerror or str(exc)) from None
                result.probes_sent += 1
                next_probe = start + result.probes_sent * spacing
            wake = deadline if result.probes_sent >= count else min(deadline, next_probe)
            ready, _, _ = select.select([sock], [], [], max(0.0, wake - time.monotonic()))
            if not ready:
                continue
            for _ in range(256):  # drain what is queued, bounded
                try:
                    frame = sock.recv(2048)
                except (BlockingIOError, InterruptedError):
                    break
                packet = parse_arp(frame)
                if packet is not None and claims(packet, target, our_mac):
                    result.replies += 1
                    result.macs.add(mac_text(packet.sender_mac))
    finally:
        with contextlib.suppress(OSError):
            sock.close()
    result.duration_s = time.monotonic() - start
    return result
