"""ECR link layer: the ENQ/ACK handshake, framed transfer with bounded retransmits, EOT.

Both ends use it: the driver sends a request and receives the reply; the virtual terminal
receives and sends. Every wait has a deadline. Written by hand: no library implements the
Concert-style handshake.

Sender:   ENQ -> ACK (3 tries, ``enq_wait`` s each, EOT between failures)
          STX msg ETX LRC -> ACK | NAK (retransmit, 3 tries) ; EOT
Receiver: ENQ -> ACK ; frame -> ACK (or NAK on a bad LRC, up to 3) ; EOT
"""
from __future__ import annotations

import abc
import functools
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, TypeVar, overload

from posbench.core.errors import FrameError, UnitNotResponding

from posbench.drivers.transport.frame import ACK, ENQ, EOT, ETX, MAX_MESSAGE, NAK, STX, decode_frame, encode_frame


T = TypeVar("T")

SETTLE_S = 0.05
"""Seconds to wait for a late ACK after an ENQ retry succeeded."""
_ENQ, _ACK, _NAK, _EOT = bytes((ENQ,)), bytes((ACK,)), bytes((NAK,)), bytes((EOT,))
_ACK_ONLY, _ACK_OR_NAK, _EOT_ONLY = frozenset({ACK}), frozenset({ACK, NAK}), frozenset({EOT})


@functools.lru_cache(maxsize=64)
def _encoded_frame(message: bytes) -> bytes:
    """``encode_frame`` remembered for messages sent again and again (``ST``, ``ID``), so that
    they are not checked and LRC'd anew each time."""
    return encode_frame(message)


class BytePort(Protocol):
    """What the link needs from a transport."""

    def read(self, size: int, timeout: float) -> bytes:
        """Return 1..size bytes, or b"" when nothing arrived within ``timeout`` seconds."""

    def write(self, data: bytes) -> None:
        """Write all of ``data``."""

    def discard_input(self) -> None:
        """Drop bytes received but not read."""


@dataclass
class LinkTiming:
    """Protocol timing in seconds."""

    enq_tries: int = 3
    enq_wait: float = 1.0
    frame_tries: int = 3
    ack_wait: float = 3.0
    inter_byte: float = 0.5
    eot_wait: float = 0.5


@dataclass
class LinkStats:
    """Counters of link trouble since the link was made."""

    enq_retries: int = 0
    retransmits: int = 0
    naks_sent: int = 0
    naks_received: int = 0
    ack_timeouts: int = 0
    noise_bytes: int = 0
    frames_sent: int = 0
    frames_received: int = 0

    def snapshot(self) -> dict[str, int]:
        return dict(self.__dict__)

    @property
    def repeats(self) -> int:
        """ZVT's name for a retransmission [P16 3.5]."""
        return self.retransmits


class ReadAhead(abc.ABC):
    """Bytes read ahead from a port and taken by position: what the serial link layers (this
    one's ``Link`` and ZVT's frame reader) wait in for single control bytes."""

    _buffer: bytearray
    _pos: int
    stats: LinkStats

    @abc.abstractmethod
    def _refill(self, timeout: float) -> bool:
        """Read what arrives within ``timeout`` s (the buffer used up); False if nothing came."""

    def _wait_for(self, wanted: frozenset[int], timeout: float) -> int | None:
        """Return the first byte in ``wanted`` within ``timeout`` s; other bytes count as noise.
        Bytes already read are looked at first; the deadline is kept from the first refill on."""
        deadline = None
        while True:
            buf, pos = self._buffer, self._pos
            if pos < len(buf):
                byte = buf[pos]
                self._pos = pos + 1
                if byte in wanted:
                    return byte
                self.stats.noise_bytes += 1
                continue
            if deadline is None:
                deadline, remaining = time.monotonic() + timeout, timeout
            else:
                remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._refill(remaining):
                return None


@dataclass
class Link(ReadAhead):
    """One end of an ECR link over a ``BytePort``."""

    port: BytePort
    timing: LinkTiming = field(default_factory=LinkTiming)
    device: str = "ecr"
    stats: LinkStats = field(default_factory=LinkStats)
    _buffer: bytearray = field(default_factory=bytearray, repr=False)
    _pos: int = field(default=0, repr=False)

    # -- byte level ---------------------------------------------------------------------------
    def _refill(self, timeout: float) -> bool:
        """Replace the (used up) buffer with what arrives within ``timeout`` s; False if nothing."""
        chunk = self.port.read(512, max(0.0, timeout))
        if not chunk:
            return False
        self._buffer[:] = chunk
        self._pos = 0
        return True

    def _byte(self, timeout: float) -> int | None:
        if self._pos >= len(self._buffer) and not self._refill(timeout):
            return None
        self._pos += 1
        return self._buffer[self._pos - 1]

    def _drop_buffered(self) -> None:
        self._buffer.clear()
        self._pos = 0

    def _byte_until(self, deadline: float) -> int | None:
        """Next byte, or None once ``deadline`` (monotonic s) has passed, even under a stream of noise."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        if self._pos >= len(self._buffer) and not self._refill(remaining):  # ``_byte``, inlined
            return None
        self._pos += 1
        return self._buffer[self._pos - 1]

    def _write(self, data: bytes) -> None:
        self.port.write(data)

    # -- sender -------------------------------------------------------------------------------
    def send(self, message: bytes, doing: str = "sending a message") -> None:
        """Deliver ``message``; ``UnitNotResponding`` or ``FrameError`` when the peer will not take it."""
        t = self.timing
        # before the ENQ: a bad message must not open a session
        frame = _encoded_frame(message) if type(message) is bytes else encode_frame(message)
        self._drop_buffered()
        self.port.discard_input()
        for attempt in range(t.enq_tries):
            self._write(_ENQ)
            if self._wait_for(_ACK_ONLY, t.enq_wait) == ACK:
                if attempt:
                    self._settle()
                break
            self.stats.enq_retries += 1
            self._write(_EOT)
        else:
            raise UnitNotResponding(self.device, doing, f"no ACK to ENQ after {t.enq_tries} tries")
        naks = 0
        for attempt in range(t.frame_tries):
            if attempt:
                self.stats.retransmits += 1
            self._write(frame)
            reply = self._wait_for(_ACK_OR_NAK, t.ack_wait)
            if reply == ACK:
                self.stats.frames_sent += 1
                self._write(_EOT)
                return
            if reply == NAK:
                naks += 1
                self.stats.naks_received += 1
            else:
                self.stats.ack_timeouts += 1
        self._write(_EOT)
        if naks == t.frame_tries:
            raise FrameError(f"frame rejected with NAK {naks} times", self.device, doing)
        raise UnitNotResponding(self.device, doing, f"frame not acknowledged after {t.frame_tries} tries")

    def _settle(self) -> None:
        """After a retried ENQ the ACK may have answered an earlier one, with the ACK for the
        latest still on its way; left in the input it would pass for the frame's ACK. Wait a
        moment and drop any such late ACKs."""
        deadline = time.monotonic() + min(SETTLE_S, self.timing.enq_wait)
        while (byte := self._byte_until(deadline)) is not None:
            if byte != ACK:
                self.stats.noise_bytes += 1

    # -- receiver -----------------------------------------------------------------------------
    def wait_enq(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the peer's ENQ and acknowledge it; False when none came."""
        deadline = time.monotonic() + timeout
        while True:
            byte = self._byte_until(deadline)
            if byte is None:
                return False
            if byte == ENQ:
                self._write(_ACK)
                return True
            if byte != EOT:
                self.stats.noise_bytes += 1

    def receive(self, timeout: float, doing: str = "waiting for a message") -> bytes:
        """Receive one message, waiting up to ``timeout`` s for it to start."""
        return self.receive_as(bytes, timeout, doing)

    def receive_as(self, parse: Callable[[bytes], T], timeout: float, doing: str = "waiting for a message") -> T:
        """``parse(receive(...))``, the parsing done while the peer sends its EOT (see
        ``receive_after_enq``)."""
        if not self.wait_enq(timeout):
            raise UnitNotResponding(self.device, doing, f"no ENQ within {timeout:g} s")
        return self.receive_after_enq(doing, parse)

    @overload
    def receive_after_enq(self, doing: str = ...) -> bytes: ...
    @overload
    def receive_after_enq(self, doing: str, parse: Callable[[bytes], T]) -> T: ...

    def receive_after_enq(self, doing: str = "waiting for a message",
                          parse: Callable[[bytes], object] = bytes) -> object:
        """Receive the frame that follows an acknowledged ENQ, NAKing bad ones; ``parse(message)``
        is what it returns (the message itself by default). The parsing runs between our ACK and
        the peer's EOT, while the peer works anyway; an error it raises comes after the EOT, as
        if it had run after the exchange."""
        t = self.timing
        last_error: FrameError | None = None
        for _ in range(t.frame_tries):
            try:
                frame = self._read_frame(t.ack_wait, doing)
                message = decode_frame(frame)
            except FrameError as exc:
                last_error = exc
                self.stats.naks_sent += 1
                self._write(_NAK)
                continue
            self._write(_ACK)
            self.stats.frames_received += 1
            try:
                return parse(message)
            finally:
                self._wait_for(_EOT_ONLY, t.eot_wait)
        assert last_error is not None
        raise FrameError(f"{t.frame_tries} bad frames in a row, last: {last_error.detail}",
                         self.device, doing)

    def _read_frame(self, timeout: float, doing: str) -> bytes:
        """Read STX .. ETX LRC. ``UnitNotResponding`` when no frame starts, ``FrameError`` when cut."""
        deadline = time.monotonic() + timeout
        while True:
            byte = self._byte_until(deadline)
            if byte is None:
                raise UnitNotResponding(self.device, doing, f"no frame within {timeout:g} s of ACK")
            if byte == STX:
                break
            if byte == ENQ:  # the peer restarted its handshake: acknowledge it again
                self._write(_ACK)
                continue
            self.stats.noise_bytes += 1
        # The body is copied run by run up to ETX (a call per byte cost more CPU than the bytes
        # take on the wire at 115200 baud); each refill still waits at most ``inter_byte``.
        frame = bytearray([STX])
        limit = MAX_MESSAGE + 2
        while True:
            if self._pos >= len(self._buffer) and not self._refill(self.timing.inter_byte):
                raise FrameError(f"frame cut off after {len(frame)} bytes", self.device, doing)
            buf, pos = self._buffer, self._pos
            etx = buf.find(ETX, pos)
            end = len(buf) if etx < 0 else etx
            frame += buf[pos:end]
            if len(frame) > limit:
                self._drop_buffered()
                raise FrameError(f"frame longer than {MAX_MESSAGE} bytes", self.device, doing)
            if etx < 0:
                self._pos = end
                continue
            self._pos = etx + 1
            frame.append(ETX)
            lrc_byte = self._byte(self.timing.inter_byte)
            if lrc_byte is None:
                raise FrameError("frame ends without LRC", self.device, doing)
            frame.append(lrc_byte)
            return bytes(frame)
