"""The Concert V2 link: ENQ / ACK / ``STX msg ETX LRC`` / ACK / EOT, in both directions.

The sender sends ENQ and waits for ACK, sends the frame (LRC = XOR of the message and ETX) and
waits for ACK, then sends EOT; the terminal answers the same way, starting with its own ENQ.
This is exactly the handshake of posbench's agent link (``posbench.drivers.transport.enq_ack``,
written by hand: no library implements it), so Concert uses that ``Link`` with Concert's timing
rather than a second copy. What is Concert's own lives here: the line settings (8N1 in the open
clients, 7E1 on terminals set to "native" serial, as pyTeliumManager's ``TeliumNativeSerial``
does), the timing (retries 1 s apart, 3 tries) and a probe for ``posbench discover``.
"""
from __future__ import annotations

import time

import serial

from posbench.drivers.transport.frame import ACK, ENQ, EOT
from posbench.drivers.transport.enq_ack import Link, LinkTiming
from posbench.drivers.serial.port import SerialBytePort

LINES: dict[str, tuple[int, str]] = {"8N1": (serial.EIGHTBITS, serial.PARITY_NONE),
                                     "7E1": (serial.SEVENBITS, serial.PARITY_EVEN)}
"""Line settings a Concert terminal may use -> (data bits, parity); one stop bit either way."""
BAUDRATE = 9600
TIMING = LinkTiming(enq_tries=3, enq_wait=1.0, frame_tries=3, ack_wait=1.0, inter_byte=0.5, eot_wait=0.5)
"""Concert timing in seconds: an unanswered ENQ or frame is repeated after 1 s, 3 tries each; a
NAKed frame is repeated at once (3 tries); 0.5 s between bytes of a frame and for the final EOT."""


def concert_port(url: str, line: str = "8N1", baudrate: int = BAUDRATE, device: str = "terminal") -> SerialBytePort:
    """A ``SerialBytePort`` (``serial_for_url``: a tty, ``socket://``, ``rfc2217://``) at ``line``
    ("8N1" or "7E1"); ``ValueError`` for another line setting."""
    if line not in LINES:
        raise ValueError(f"line must be one of {', '.join(LINES)}, got {line!r}")
    port = SerialBytePort(url, baudrate, device)
    port.bytesize, port.parity = LINES[line]
    port.label = "Concert ECR port"
    return port


def concert_link(port: SerialBytePort, timing: LinkTiming | None = None, device: str = "terminal") -> Link:
    return Link(port, timing or TIMING, device)


def handshake(port: SerialBytePort, timeout_s: float) -> bool:
    """Send ENQ and wait up to ``timeout_s`` s for ACK (other bytes are skipped); on ACK send EOT,
    so the terminal is left idle. True when it answered."""
    port.discard_input()
    port.write(bytes((ENQ,)), "sending ENQ")
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        if ACK in port.read(64, remaining, "waiting for ACK to ENQ"):
            port.write(bytes((EOT,)), "sending EOT")
            return True
    return False


def probe(url: str, line: str = "8N1", timeout_s: float = 1.0) -> bool:
    """Is a Concert terminal on ``url`` at 9600 ``line``? One ENQ answered by ACK (then EOT).

    False for a silent port (or one answering something else); ``PortUnavailable`` (a bench
    error) when the port cannot be opened, ``ValueError`` for an unknown ``line``."""
    port = concert_port(url, line)
    port.open()
    try:
        return handshake(port, timeout_s)
    finally:
        port.close()
