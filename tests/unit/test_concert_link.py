"""The Concert link (drivers/ecr/concert/link.py): its timing on the agent link's handshake, both line
settings, and ``probe`` for ``posbench discover``, against a peer on a real pseudo-terminal that
answers (or not) byte by byte. Every thread and pty is closed even when a test fails."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import pytest
import serial

from posbench.drivers.ecr.concert.link import LINES, TIMING, concert_link, concert_port, probe
from posbench.drivers.ecr.concert.codec import Request
from posbench.drivers.transport.frame import ACK, ENQ, EOT, NAK, decode_frame
from posbench.drivers.transport.enq_ack import Link, LinkTiming
from posbench.core.errors import FrameError, PortUnavailable, UnitNotResponding
from posbench.sim.devices.pty_port import PtyPort

FAST = LinkTiming(enq_tries=3, enq_wait=0.2, frame_tries=3, ack_wait=0.2, inter_byte=0.2, eot_wait=0.2)
"""Concert's shape with shorter waits, so the retry tests stay cheap."""


@contextlib.contextmanager
def peer(behave: Callable[[PtyPort, threading.Event], None]) -> Iterator[PtyPort]:
    """A pty whose master end runs ``behave`` in a thread until the test ends."""
    pty = PtyPort()
    stop = threading.Event()
    thread = threading.Thread(target=behave, args=(pty, stop), daemon=True)
    thread.start()
    try:
        yield pty
    finally:
        stop.set()
        thread.join(2.0)
        pty.close()


@contextlib.contextmanager
def driver_link(behave: Callable[[PtyPort, threading.Event], None]) -> Iterator[Link]:
    """The driver's Concert link (fast timing) on a pty whose other end runs ``behave``."""
    with peer(behave) as pty:
        port = concert_port(pty.path)
        try:
            yield concert_link(port, FAST)
        finally:
            port.close()


def read_frame(pty: PtyPort, stop: threading.Event) -> bytes:
    buf = b""
    while not stop.is_set() and not (len(buf) >= 2 and buf[-2] == 0x03 and 0x02 in buf):
        buf += pty.read(64, 0.05)
    return buf[buf.index(0x02):]


def test_concert_timing_repeats_after_one_second_three_times():
    assert (TIMING.enq_tries, TIMING.enq_wait, TIMING.frame_tries, TIMING.ack_wait) == (3, 1.0, 3, 1.0)


def test_line_settings_reach_pyserial():
    assert LINES == {"8N1": (serial.EIGHTBITS, serial.PARITY_NONE), "7E1": (serial.SEVENBITS, serial.PARITY_EVEN)}
    port = concert_port("socket://127.0.0.1:1", "7E1")
    assert (port.bytesize, port.parity, port.stopbits) == (7, "E", 1)
    with pytest.raises(ValueError, match="8N1, 7E1"):
        concert_port("/dev/null", "8N2")


def test_a_nak_is_answered_by_repeating_the_frame():
    seen: list[bytes] = []

    def terminal(pty: PtyPort, stop: threading.Event) -> None:
        while not stop.is_set() and ENQ not in pty.read(1, 0.05):
            pass
        pty.write(bytes((ACK,)))
        for reply in (NAK, ACK):
            seen.append(read_frame(pty, stop))
            pty.write(bytes((reply,)))

    with driver_link(terminal) as link:
        link.send(Request(1250).encode())
        assert [decode_frame(f) for f in seen] == [Request(1250).encode()] * 2
        assert link.stats.naks_received == 1 and link.stats.retransmits == 1


def test_frames_naked_every_time_are_a_frame_error_after_three_tries():
    def terminal(pty: PtyPort, stop: threading.Event) -> None:
        while not stop.is_set():
            data = pty.read(64, 0.05)
            if ENQ in data:
                pty.write(bytes((ACK,)))
            if 0x03 in data:
                pty.write(bytes((NAK,)))

    with driver_link(terminal) as link, pytest.raises(FrameError, match="NAK 3 times"):
        link.send(Request(1250).encode())


def test_a_silent_terminal_is_unit_not_responding_after_three_enqs():
    enqs: list[int] = []

    def silent(pty: PtyPort, stop: threading.Event) -> None:
        while not stop.is_set():
            enqs.extend(b for b in pty.read(64, 0.05) if b == ENQ)

    with driver_link(silent) as link, pytest.raises(UnitNotResponding, match="3 tries"):
        link.send(Request(1250).encode())
    assert len(enqs) == 3


def test_probe_true_when_enq_is_acked_and_leaves_the_terminal_idle_with_eot():
    got: list[int] = []

    def terminal(pty: PtyPort, stop: threading.Event) -> None:
        while not stop.is_set():
            for byte in pty.read(64, 0.05):
                got.append(byte)
                if byte == ENQ:
                    pty.write(bytes((ACK,)))

    with peer(terminal) as pty:
        assert probe(pty.path, timeout_s=1.0)
        deadline = threading.Event()
        while EOT not in got and not deadline.wait(0.02):
            pass
    assert got[:2] == [ENQ, EOT]


def test_probe_false_for_a_silent_port_or_one_that_answers_nonsense():
    def nonsense(pty: PtyPort, stop: threading.Event) -> None:
        while not stop.is_set():
            if pty.read(64, 0.05):
                pty.write(b"\x15garbage")

    with peer(lambda pty, stop: stop.wait()) as pty:
        assert probe(pty.path, timeout_s=0.2) is False
    with peer(nonsense) as pty:
        assert probe(pty.path, timeout_s=0.2) is False


def test_probe_raises_the_bench_error_for_a_port_that_cannot_open(tmp_path):
    with pytest.raises(PortUnavailable, match="Concert ECR port"):
        probe(str(tmp_path / "no-such-tty"))
