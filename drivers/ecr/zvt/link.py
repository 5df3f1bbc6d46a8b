"""ZVT's serial link (DLE STX framing, CRC, ACK/NAK, T1/T2, repeats); TCP is in ``tcp``.

Both offer ``send(apdu)``, ``receive(timeout_s) -> apdu``, ``discard_input()`` and ``close()``;
APDUs are whole encoded APDUs (``apdu.encode_apdu``). The framing helpers and ``ZvtLink`` work
on any byte port with ``read(size, timeout)`` / ``write(data)`` / ``discard_input()``
(``SerialBytePort``, the bench's ``PtyPort``), so the ECR driver and a PT emulator share them. Written by hand: no
maintained library implements the ZVT link layer [P16 3, 4].

Serial [P16 3]: ``DLE STX <APDU, 10 doubled> DLE ETX crc-lo crc-hi``; CRC-16/KERMIT (reflected
0x8408, init 0) over the unstuffed APDU + ETX. The receiver ACKs (06) a good frame, NAKs (15) a
bad CRC, a malformed frame or a gap between bytes above T1 (0.2 s); the sender waits T2 (5 s)
for the ACK and repeats at most twice, then both sides report a transmission error. CRC bytes
are sent undoubled (as ecrterm and Portalum do); a received CRC whose DLE was doubled is
accepted too (the spec leaves this open).

TCP [P16 4]: ``tcp.TcpTransport`` (the ECR's end); the PT's end is the virtual bench's.

Public API
  DLE STX ETX ACK NAK, T1_S T2_S REPEATS TCP_PORT      link constants (seconds)
  crc16_kermit(data) -> int                            CRC-16/KERMIT ("123456789" -> 0x2189)
  encode_frame(apdu) -> bytes                          APDU to a stuffed serial frame
  decode_frame(frame) -> bytes                         one whole serial frame to its APDU
  ZvtFrameError(FrameError)                            a bad frame (CRC, T1 gap, DLE misuse, length)
  TransmissionFailed(UnitError)                        NAKed / unacknowledged after 2 repeats
  LinkDamaged(TransmissionFailed, ProtocolError)       NAKed 3 times, or bad frames kept coming
  NoAcknowledge(TransmissionFailed, UnitNotResponding) no ACK nor NAK at all to 3 sends
  ConnectionClosed(UnitNotResponding)                  the peer closed the TCP connection (or none is open)
  ByteSource                                           enq_ack.BytePort: read(size, timeout) / write /
                                                       discard_input
  FrameReader(source, t1_s, stats)                     .read_frame(timeout_s) / .read_control(timeout_s)
  ZvtTiming(t1_s, t2_s, repeats)                      serial timing (seconds) and repeat count
  LinkStats                                            enq_ack's counters (.repeats = .retransmits)
  ZvtLink(source, timing, device)                      serial link on any ByteSource (ECR or PT)
  SerialTransport(url, baudrate=9600, ...)             ZvtLink on SerialBytePort, 8N2
  Transport                                            protocol both transports satisfy
"""
from __future__ import annotations

import binascii
import functools
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, TypeVar

from posbench.core.errors import FrameError, PortLost, PortUnavailable, ProtocolError, UnitError, UnitNotResponding
from posbench.drivers.transport import enq_ack
from posbench.drivers.transport.enq_ack import BytePort, LinkStats
from posbench.drivers.serial.port import SerialBytePort

from .codec import MAX_DATA, apdu_size, decode_apdu

DLE, STX, ETX, ACK, NAK = 0x10, 0x02, 0x03, 0x06, 0x15
T = TypeVar("T")
T1_S = 0.2
"""Longest gap between two bytes of a frame (seconds) [P16 3.4.1]."""
T2_S = 5.0
"""Longest wait for ACK/NAK after a frame (seconds) [P16 3.4.2]."""
REPEATS = 2
"""Repeats of a NAKed or unacknowledged frame before a transmission error [P16 3.5]."""
TCP_PORT = 20007
"""Default ZVT port, opened by the ECR [P16 2.2]."""


class ZvtFrameError(FrameError):
    """A serial frame is malformed: CRC mismatch, a gap above T1, a DLE not followed by DLE or
    ETX, or an APDU whose length field disagrees with its bytes."""

    def __init__(self, detail: str, device: str = "terminal", doing: str = "reading a ZVT frame"):
        super().__init__(detail, device, doing)


class TransmissionFailed(UnitError):
    """ZVT transmission error [P16 3.5]: a message still not transferred after 2 repeats."""


class LinkDamaged(TransmissionFailed, ProtocolError):
    """A frame stayed NAKed, or bad frames kept coming: the link damages what it carries (a
    ``ProtocolError``: the board's UART path, not a silent application)."""

    def __init__(self, device: str, doing: str, detail: str = ""):
        UnitError.__init__(self, device, doing, detail)


class NoAcknowledge(TransmissionFailed, UnitNotResponding):
    """A frame sent 1 + 2 times drew neither ACK nor NAK: the peer is silent."""


class ConnectionClosed(UnitNotResponding):
    """The peer closed the TCP connection (a PT rebooted, crashed or dropped the ECR; an ECR hung
    up), or the PT's end has no ECR connected."""


# -- serial framing --------------------------------------------------------------------------------
_BIT_REVERSED = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))
"""Each byte value with its bits in reverse order."""


def crc16_kermit(data: bytes) -> int:
    """CRC-16/KERMIT: reflected polynomial 0x8408, initial value 0, no final XOR.

    That is CRC-16/XMODEM (polynomial 0x1021, not reflected, initial value 0: the stdlib's
    ``binascii.crc_hqx``) over the bytes with their bits reversed, its result bit-reversed."""
    crc = binascii.crc_hqx(bytes(data).translate(_BIT_REVERSED), 0)
    return _BIT_REVERSED[crc >> 8] | _BIT_REVERSED[crc & 0xFF] << 8


_ETX_REVERSED = bytes((_BIT_REVERSED[ETX],))


def _frame_crc(apdu: bytes) -> int:
    """``crc16_kermit(apdu + ETX)`` without building that concatenation (``crc_hqx`` continues
    from a previous value)."""
    crc = binascii.crc_hqx(_ETX_REVERSED, binascii.crc_hqx(apdu.translate(_BIT_REVERSED), 0))
    return _BIT_REVERSED[crc >> 8] | _BIT_REVERSED[crc & 0xFF] << 8


def encode_frame(apdu: bytes) -> bytes:
    """``DLE STX <apdu, DLE doubled> DLE ETX crc-lo crc-hi`` for one well-formed APDU."""
    apdu = bytes(apdu)
    if apdu_size(apdu) != len(apdu):
        decode_apdu(apdu)  # raises the ApduError naming what is wrong, before anything is sent
    crc = _frame_crc(apdu)
    stuffed = apdu.replace(bytes((DLE,)), bytes((DLE, DLE)))
    return bytes((DLE, STX)) + stuffed + bytes((DLE, ETX, crc & 0xFF, crc >> 8))


@functools.lru_cache(maxsize=64)
def _encoded_frame(apdu: bytes) -> bytes:
    """``encode_frame`` remembered for the APDUs a link sends again and again (80 00 00, a status
    enquiry), so that they are not checked, CRC'd and stuffed anew each time."""
    return encode_frame(apdu)


def _check_apdu(apdu: bytes, crc_bytes: bytes | bytearray, expected: int | None = None) -> bytes:
    if expected is None:
        expected = _frame_crc(apdu)
    got = crc_bytes[0] | crc_bytes[1] << 8
    if got != expected:
        raise ZvtFrameError(f"CRC mismatch: got 0x{got:04X}, computed 0x{expected:04X}")
    total = apdu_size(apdu)
    if total is None or total != len(apdu):
        raise ZvtFrameError(f"APDU of {len(apdu)} bytes does not match its length field")
    return apdu


def decode_frame(frame: bytes) -> bytes:
    """The APDU inside one complete serial frame (a DLE in the CRC may be doubled)."""
    frame = bytes(frame)
    if frame[:2] != bytes((DLE, STX)):
        raise ZvtFrameError("frame does not start with DLE STX")
    apdu = bytearray()
    pos = 2
    while True:
        if pos + 1 >= len(frame):
            raise ZvtFrameError("frame has no DLE ETX")
        byte = frame[pos]
        if byte != DLE:
            apdu.append(byte)
            pos += 1
            continue
        follower = frame[pos + 1]
        pos += 2
        if follower == DLE:
            apdu.append(DLE)
        elif follower == ETX:
            break
        else:
            raise ZvtFrameError(f"DLE followed by 0x{follower:02X} inside a frame")
    tail = frame[pos:]
    if len(tail) > 2:  # a peer that doubled a DLE in the CRC
        tail = tail.replace(bytes((DLE, DLE)), bytes((DLE,)))
    if len(tail) != 2:
        raise ZvtFrameError(f"frame ends with {len(tail)} bytes after DLE ETX, expected the 2 CRC bytes")
    return _check_apdu(bytes(apdu), tail)


ByteSource = BytePort
"""What the serial link reads and writes: ``SerialBytePort``, ``PtyPort`` and test ports qualify."""


_DLE_STX = bytes((DLE, STX))
_ACK_OR_NAK = frozenset({ACK, NAK})
_DLE = bytes((DLE,))
_DLE_DLE = bytes((DLE, DLE))


class FrameReader(enq_ack.ReadAhead):
    """Reads frames and single ACK/NAK bytes from a ``ByteSource``, keeping bytes read ahead.

    Bytes are taken from the buffer by position and a frame's body is copied run by run between
    DLEs (a byte at a time costs more CPU than the link's own bytes take at 115200 baud)."""

    def __init__(self, source: ByteSource, t1_s: float = T1_S, stats: LinkStats | None = None):
        self.source, self.t1_s = source, t1_s
        self.stats = stats or LinkStats()
        """Counts ``noise_bytes``: bytes skipped while waiting for a frame or an ACK/NAK."""
        self._buffer = bytearray()
        self._pos = 0

    def clear(self) -> None:
        """Forget bytes read ahead."""
        self._buffer.clear()
        self._pos = 0

    def _refill(self, timeout_s: float) -> bool:
        """Read what arrives within ``timeout_s`` seconds after what is still unread; False when
        nothing came."""
        chunk = self.source.read(4096, max(0.0, timeout_s))
        if not chunk:
            return False
        if self._pos >= len(self._buffer):
            self._buffer[:] = chunk
        else:
            del self._buffer[:self._pos]
            self._buffer += chunk
        self._pos = 0
        return True

    def next_byte(self, timeout_s: float) -> int | None:
        """The next byte, or None when none arrives within ``timeout_s`` seconds."""
        if self._pos >= len(self._buffer) and not self._refill(timeout_s):
            return None
        self._pos += 1
        return self._buffer[self._pos - 1]

    def read_control(self, timeout_s: float) -> int | None:
        """The first ACK or NAK within ``timeout_s`` seconds (other bytes are noise), or None."""
        return self._wait_for(_ACK_OR_NAK, timeout_s)

    def read_frame(self, timeout_s: float) -> bytes | None:
        """One frame's APDU. None when no ``DLE STX`` starts within ``timeout_s`` seconds;
        ``ZvtFrameError`` for a bad frame (the caller NAKs it)."""
        deadline = time.monotonic() + timeout_s
        while True:  # a DLE right before STX starts a frame, whatever came before it
            buf, pos = self._buffer, self._pos
            start = buf.find(_DLE_STX, pos)
            if start >= 0:
                self.stats.noise_bytes += start - pos
                self._pos = start + 2
                return self._read_body()
            keep = 1 if buf[-1:] == b"\x10" and pos < len(buf) else 0  # a DLE whose STX may follow
            self.stats.noise_bytes += max(0, len(buf) - pos - keep)
            self._pos = len(buf) - keep
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._refill(remaining):
                return None

    def _byte_within_t1(self, got: int) -> int:
        byte = self.next_byte(self.t1_s)
        if byte is None:
            raise ZvtFrameError(f"gap above T1 ({self.t1_s:g} s) after {got} bytes of a frame")
        return byte

    def _whole_frame(self) -> bytes | None:
        """The frame's APDU when the buffer already holds all of it up to the CRC, with no DLE
        in the CRC's first byte (nearly every frame): found with one ``find`` per DLE and
        unstuffed with one ``replace``. None (nothing consumed) otherwise: ``_read_body`` then
        reads it byte run by byte run and words any error."""
        buf, pos = self._buffer, self._pos
        size, scan, doubled = len(buf), pos, False
        while True:
            dle = buf.find(DLE, scan)
            if dle < 0 or dle + 3 >= size:
                return None
            follower = buf[dle + 1]
            if follower == DLE:
                scan, doubled = dle + 2, True
                continue
            if follower != ETX or buf[dle + 2] == DLE:
                return None
            break
        body = buf[pos:dle]
        apdu = bytes(body.replace(_DLE_DLE, _DLE) if doubled else body)
        if len(apdu) > MAX_DATA + 5:
            return None
        self._pos = dle + 4
        return _check_apdu(apdu, buf[dle + 2:dle + 4])

    def _read_body(self) -> bytes:
        whole = self._whole_frame()
        if whole is not None:
            return whole
        apdu = bytearray()
        limit = MAX_DATA + 5
        while True:
            if self._pos >= len(self._buffer) and not self._refill(self.t1_s):
                raise ZvtFrameError(f"gap above T1 ({self.t1_s:g} s) after {len(apdu)} bytes of a frame")
            buf, pos = self._buffer, self._pos
            dle = buf.find(DLE, pos)
            end = len(buf) if dle < 0 else dle
            apdu += buf[pos:end]
            self._pos = end
            if len(apdu) > limit:
                raise ZvtFrameError(f"frame holds more than {limit} APDU bytes without DLE ETX")
            if dle < 0:
                continue
            self._pos = dle + 1
            follower = self._byte_within_t1(len(apdu))
            if follower == ETX:
                break
            if follower != DLE:
                raise ZvtFrameError(f"DLE followed by 0x{follower:02X} inside a frame")
            apdu.append(DLE)
        apdu_bytes = bytes(apdu)
        expected = _frame_crc(apdu_bytes)
        buf, pos = self._buffer, self._pos
        if pos + 2 <= len(buf) and buf[pos] != DLE:  # both CRC bytes read already, no DLE to undo
            self._pos = pos + 2
            return _check_apdu(apdu_bytes, buf[pos:pos + 2], expected)
        low = self._byte_within_t1(len(apdu))
        if low == DLE == expected & 0xFF and expected >> 8 != DLE:
            high = self._byte_within_t1(len(apdu))
            if high == DLE:  # the peer doubled the DLE in the CRC
                high = self._byte_within_t1(len(apdu))
        else:
            high = self._byte_within_t1(len(apdu))
        return _check_apdu(apdu_bytes, bytes((low, high)), expected)


# -- serial link -----------------------------------------------------------------------------------
@dataclass
class ZvtTiming:
    """Serial link timing in seconds, and the number of repeats [P16 3.4-3.5]."""

    t1_s: float = T1_S
    t2_s: float = T2_S
    repeats: int = REPEATS


@dataclass
class ZvtLink:
    """One end of a ZVT serial link over a ``ByteSource`` (the ECR's port or a PT emulator's pty)."""

    source: ByteSource
    timing: ZvtTiming = field(default_factory=ZvtTiming)
    device: str = "terminal"
    stats: LinkStats = field(default_factory=LinkStats)

    def __post_init__(self) -> None:
        self.reader = FrameReader(self.source, self.timing.t1_s, self.stats)

    def send(self, apdu: bytes, doing: str = "sending a ZVT message") -> None:
        """Send ``apdu`` and wait T2 for its ACK, repeating at most ``repeats`` times;
        ``NoAcknowledge`` when nothing answered, ``TransmissionFailed`` when it stayed NAKed."""
        self.send_then(apdu, doing, _nothing)

    def send_then(self, apdu: bytes, doing: str, work: Callable[[], T]) -> T:
        """``send(apdu)``, running ``work()`` once, after the first write and before waiting for
        the ACK: the sender's own work done while the PT checks the frame and answers. What
        ``work`` returns or raises is returned or raised once the frame is acknowledged; a link
        error is raised as ``send`` raises it."""
        frame = _encoded_frame(apdu) if type(apdu) is bytes else encode_frame(apdu)
        t = self.timing
        naks = 0
        failure: Exception | None = None
        for attempt in range(1 + t.repeats):
            if attempt:
                self.stats.retransmits += 1
            self.source.write(frame)
            if not attempt:
                try:
                    result = work()
                except Exception as exc:
                    failure = exc
            reply = self.reader.read_control(t.t2_s)
            if reply == ACK:
                self.stats.frames_sent += 1
                if failure is not None:
                    raise failure
                return result
            if reply == NAK:
                naks += 1
                self.stats.naks_received += 1
            else:
                self.stats.ack_timeouts += 1
        sends = 1 + t.repeats
        if not naks:
            raise NoAcknowledge(self.device, doing,
                                f"no ACK within T2 = {t.t2_s:g} s to {sends} sends (transmission error)")
        raise LinkDamaged(self.device, doing,
                          f"frame not acknowledged after {sends} sends: {naks} NAK, {sends - naks} without answer")

    def receive(self, timeout_s: float, doing: str = "waiting for a ZVT message") -> bytes:
        """Receive one APDU, waiting ``timeout_s`` seconds for its frame to start; a bad frame is
        NAKed and its repeat awaited (T2), the third bad one is a ``TransmissionFailed``."""
        t = self.timing
        wait = timeout_s
        for attempt in range(1 + t.repeats):
            try:
                apdu = self.reader.read_frame(wait)
            except ZvtFrameError as exc:
                self.stats.naks_sent += 1
                self._write(bytes((NAK,)))
                last = exc.detail
                wait = t.t2_s + t.t1_s
                continue
            if apdu is None:
                if attempt:
                    raise LinkDamaged(self.device, doing, f"bad frame NAKed ({last}) and not repeated within {wait:g} s")
                raise UnitNotResponding(self.device, doing, f"no message within {timeout_s:g} s")
            self._write(bytes((ACK,)))
            self.stats.frames_received += 1
            return apdu
        raise LinkDamaged(self.device, doing, f"{1 + t.repeats} bad frames in a row, last: {last}")

    def _write(self, data: bytes) -> None:
        self.source.write(data)

    def discard_input(self) -> None:
        """Drop bytes received but not read (stale ACKs, late repeats)."""
        self.reader.clear()
        self.source.discard_input()


def _nothing() -> None:
    return None


class SerialTransport(ZvtLink):
    """The ZVT serial link on a ``SerialBytePort``: ``/dev/ttyUSB0``, ``/dev/pts/N``,
    ``rfc2217://host:port``, ``socket://``; 9600 baud (115200 optional), 8 data bits, no parity,
    2 stop bits."""

    def __init__(self, url: str, baudrate: int = 9600, timing: ZvtTiming | None = None,
                 device: str = "terminal", reopen_s: float = 3.0):
        port = SerialBytePort(url, baudrate, device, reopen_s)
        port.label = "ZVT port"
        port.stopbits = 2
        self.port = port
        super().__init__(port, timing or ZvtTiming(), device)

    def open(self) -> "SerialTransport":
        self.port.open()
        return self

    def close(self) -> None:
        self.port.close()


class Transport(Protocol):
    """What ``ZvtTerminal`` needs from a transport (``SerialTransport`` or ``TcpTransport``)."""

    def send(self, apdu: bytes, doing: str = ...) -> None: ...
    def receive(self, timeout_s: float, doing: str = ...) -> bytes: ...
    def discard_input(self) -> None: ...
    def close(self) -> None: ...

