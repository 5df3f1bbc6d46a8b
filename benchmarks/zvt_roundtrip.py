"""ZVT round trip: what the ZVT driver costs over the raw serial port.

The method of ``agent_roundtrip.py``: one pseudo-terminal, a peer on its master, the same
exchange timed two ways on its slave, in short interleaved blocks after a warm-up, the ratio
given pooled and paired (median over block pairs of driver-block median / raw-block median).
The exchange is one status enquiry with service byte 04, on the serial link (DLE STX framing,
CRC, ACKs):

  ECR  frame 05 01 (password, 03 04)       PT  ACK
  PT   frame 80 00 00                      ECR ACK
  PT   frame 06 0F (version, status, TLV)  ECR ACK
  ECR  frame 80 00 00                      PT  ACK

  driver  ``ZvtTerminal(SerialTransport(slave)).status_enquiry()`` (SerialBytePort + ZvtLink +
          APDU/BMP/TLV codec + Collector)
  raw     ``serial.Serial(slave)`` with plain write()/read() of the very same bytes, the answer
          lengths known up front

Two peers (``--peer``):

  virtual    the virtual ZVT terminal (``bench/sim/ecr/zvt/``) with its designed delays
             (command_s, jitter_s) set to 0; its own Python link and unit model run in both paths
  responder  a zero-delay responder speaking the link at byte level, as in ``agent_roundtrip.py``:
             the ratio then means what the agent benchmark's ratio means

Either peer runs in a process of its own (``--peer-in process``, the default), as a real PT is
never in the driver's process; ``--peer-in thread`` runs it in a thread of this process (the
method before 2026-11-28, where the peer's Python competes with the timed client's for the GIL).

    .venv/bin/python benchmarks/zvt_roundtrip.py [--peer virtual|responder|both] [-n 500] [--repeat 3]
                                                 [--warmup 50] [--block 10] [--peer-in process|thread]
                                                 [--raw-read known|frame-end] [--json FILE]

``--raw-read frame-end`` checks the method's fairness: the raw client then reads the PT's frames
until it sees their end (DLE ETX and the CRC), as the driver must, instead of by their known
lengths.
"""
from __future__ import annotations

import argparse
import os
import sys
import termios
import time
import tty
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import InMemoryPort, exit_cleanly_on_sigterm, machine, run_and_print  # noqa: E402

import serial  # noqa: E402

import agent_roundtrip  # noqa: E402
from agent_roundtrip import (add_run_options, close_quietly, compare, other_openers, peer_place,  # noqa: E402
                             raw_reading, read_to_frame_end, report, start_peer, timed_runs)
from posbench.setup.profile import profile_for_model  # noqa: E402
from posbench.sim.unit.records import TerminalTiming  # noqa: E402
from posbench.sim.ecr.zvt import VirtualZvtTerminal  # noqa: E402
from posbench.drivers.ecr.zvt.codec import Tlv, bcd_digits, bcd_encode, encode_apdu, encode_bmp, encode_lllvar  # noqa: E402
from posbench.drivers.ecr.zvt.client import ZvtTerminal  # noqa: E402
from posbench.drivers.ecr.zvt.link import ACK, DLE, ETX, STX, ZvtTiming, ZvtLink, encode_frame  # noqa: E402

PASSWORD = "123456"
SERIAL = "PT100-0000123"
REQUEST_FRAME = encode_frame(encode_apdu(0x05, 0x01, bcd_encode(PASSWORD, 3) + encode_bmp(0x03, b"\x04")))
ANSWER_FRAME = encode_frame(encode_apdu(0x80, 0x00))
"""80 00 00: the PT's answer to the command, and the ECR's to the completion."""
# What a healthy PT100 completes the enquiry with (the responder sends it; the virtual terminal's
# own is read once before timing).
COMPLETION_FRAME = encode_frame(encode_apdu(0x06, 0x0F, encode_lllvar(b"PT100 2.4.1") + b"\x00" + encode_bmp(
    0x06, [Tlv(0x1F55, b"\x00\x00"), Tlv(0xE4, children=(
        Tlv(0x1F40, b"PT100"), Tlv(0x1F41, b"2.4.1"), Tlv(0x1F42, bcd_digits(SERIAL)), Tlv(0x1F43, b"\x00")))])))
LINK_BYTES = 4
"""The four single-byte ACKs of one exchange."""
PEERS = ("virtual", "responder")


class Responder(agent_roundtrip.Responder):
    """The zero-delay PT on the pty master, one status enquiry after another (the agent
    benchmark's byte-level peer, speaking ZVT)."""

    def _frame(self) -> bytes:
        """DLE STX .. DLE ETX crc crc, as sent (DLE doubling kept)."""
        return read_frame(self._byte)

    def run(self) -> None:
        try:
            while True:
                self.state = "waiting for the command frame"
                self.bad_requests += self._frame() != REQUEST_FRAME
                self._write(bytes((ACK,)))
                self._write(ANSWER_FRAME)
                self._until(ACK)
                self._write(COMPLETION_FRAME)
                self._until(ACK)
                self.state = "waiting for the ECR's 80 00 00"
                self.bad_requests += self._frame() != ANSWER_FRAME
                self._write(bytes((ACK,)))
                self.served += 1
        except agent_roundtrip.Stopped:
            pass
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def zvt_frame_end(got: bytes | bytearray) -> int | None:
    """DLE STX .. DLE ETX crc crc: the length once both CRC bytes after the (undoubled) DLE ETX
    are in (a DLE in the CRC is never doubled by the peers here)."""
    scan = 2
    while (dle := got.find(DLE, scan)) >= 0 and dle + 1 < len(got):
        if got[dle + 1] == ETX:
            return dle + 4 if dle + 4 <= len(got) else None
        scan = dle + 2  # a doubled DLE
    return None


class RawClient:
    """The same exchange with nothing but pyserial write()/read(); the PT's frames read by their
    known length or, ``frame_end``, until their end is seen (``agent_roundtrip.RAW_READS``)."""

    def __init__(self, path: str, completion: bytes, frame_end: bool = False):
        self.ser = serial.Serial(path, baudrate=9600, stopbits=serial.STOPBITS_TWO, timeout=1.0)
        self.completion = completion
        self.frame_end = frame_end

    def _frame(self, size: int) -> bytes:
        return read_to_frame_end(self.ser, zvt_frame_end) if self.frame_end else self.ser.read(size)

    def round_trip(self) -> None:
        ser = self.ser
        ser.write(REQUEST_FRAME)
        if ser.read(1) != b"\x06":
            raise RuntimeError("raw: the command was not ACKed")
        if self._frame(len(ANSWER_FRAME)) != ANSWER_FRAME:
            raise RuntimeError("raw: no 80 00 00 frame from the PT")
        ser.write(b"\x06")
        if self._frame(len(self.completion)) != self.completion:
            raise RuntimeError("raw: completion frame short or wrong")
        ser.write(b"\x06")
        ser.write(ANSWER_FRAME)
        if ser.read(1) != b"\x06":
            raise RuntimeError("raw: our 80 00 00 was not ACKed")

    def close(self) -> None:
        self.ser.close()


def read_frame(next_byte: Callable[[], int]) -> bytes:
    """One serial frame from a byte source, as sent: bytes before DLE STX skipped, DLE doubling
    kept, up to DLE ETX and the two CRC bytes."""
    previous = None
    while True:
        byte = next_byte()
        if previous == DLE and byte == STX:
            break
        previous = byte
    frame = bytearray((DLE, STX))
    while True:
        byte = next_byte()
        frame.append(byte)
        if byte == DLE:
            follower = next_byte()
            frame.append(follower)
            if follower == ETX:
                frame += bytes((next_byte(), next_byte()))
                return bytes(frame)


def learn_completion(path: str) -> bytes:
    """One exchange with plain pyserial, reading the frames by their DLE ETX: the virtual
    terminal's completion frame, which the timed raw path then expects byte for byte."""
    with serial.Serial(path, baudrate=9600, stopbits=serial.STOPBITS_TWO, timeout=2.0) as ser:
        def next_byte() -> int:
            byte = ser.read(1)
            if not byte:
                raise RuntimeError("learning: the virtual terminal went silent in a frame")
            return byte[0]
        ser.reset_input_buffer()
        ser.write(REQUEST_FRAME)
        if ser.read(1) != b"\x06" or ser.read(len(ANSWER_FRAME)) != ANSWER_FRAME:
            raise RuntimeError("learning: the virtual terminal did not accept the status enquiry")
        ser.write(b"\x06")
        completion = read_frame(next_byte)
        ser.write(b"\x06")
        ser.write(ANSWER_FRAME)
        if ser.read(1) != b"\x06":
            raise RuntimeError("learning: our 80 00 00 was not ACKed")
        return completion


class Peer:
    """The PT on the pty master: ``path`` to open, ``served`` so far, ``check()`` raises if broken.
    In an ``agent_roundtrip.start_peer`` process it is the PT in a process of its own."""

    def __init__(self, kind: str):
        self.kind = kind
        self.pid = os.getpid()
        self.master = self.slave = -1
        self.responder: Responder | None = None
        self.virtual: VirtualZvtTerminal | None = None
        if kind == "responder":
            self.master, self.slave = os.openpty()
            tty.setraw(self.slave, termios.TCSANOW)
            self.path = os.ttyname(self.slave)  # the slave fd stays open: the master never sees EIO
            os.set_blocking(self.master, False)
            self.responder = Responder(self.master)
            self.responder.start()
        else:
            timing = TerminalTiming(command_s=0.0, jitter_s=0.0, boot_s=0.0)
            self.virtual = VirtualZvtTerminal(("127.0.0.1", 9), profile_for_model("PT100"), serial=SERIAL,
                                              timing=timing, password=PASSWORD)
            assert self.virtual.port is not None
            self.path = self.virtual.port.path
            self.virtual.start()

    @property
    def served(self) -> int:
        if self.responder is not None:
            return self.responder.served
        assert self.virtual is not None and self.virtual.link is not None
        return self.virtual.link.stats.frames_received // 2  # the command and our 80 00 00

    def check(self) -> None:
        if self.responder is not None and self.responder.error is not None:
            raise RuntimeError(f"responder failed: {self.responder.error!r}")
        if self.responder is not None and self.responder.bad_requests:
            raise RuntimeError(f"{self.responder.bad_requests} frames differed from the expected ones")

    def state(self) -> str:
        if self.responder is not None:
            return f"responder {self.responder.state}, served {self.responder.served}"
        assert self.virtual is not None and self.virtual.link is not None
        return f"virtual terminal link {self.virtual.link.stats.snapshot()}"

    def close(self) -> None:
        if self.responder is not None:
            self.responder.stop()
        if self.virtual is not None:
            self.virtual.stop(timeout=2.0)
        for fd in (self.master, self.slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


class InMemoryPT(InMemoryPort):
    """A byte source that answers the driver's frames at once from memory (no pty, no thread):
    the driver's own CPU per enquiry, with no I/O and no peer."""

    def __init__(self) -> None:
        super().__init__()
        self.completion_sent = False

    def write(self, data: bytes) -> None:
        if data == REQUEST_FRAME:
            self.pending += bytes((ACK,)) + ANSWER_FRAME
            self.completion_sent = False
        elif data == bytes((ACK,)) and not self.completion_sent:
            self.pending += COMPLETION_FRAME
            self.completion_sent = True
        elif data == ANSWER_FRAME:
            self.pending += bytes((ACK,))


def driver_cpu_s(n: int = 5000) -> float:
    """Seconds of the driver's own work per status enquiry against ``InMemoryPT`` (best of 3)."""
    driver = ZvtTerminal(ZvtLink(InMemoryPT(), ZvtTiming()), password=PASSWORD)
    for _ in range(200):
        driver.status_enquiry()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            driver.status_enquiry()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def one_run(kind: str, n: int, warmup: int, block: int, peer_in: str = "process", raw_read: str = "known") -> dict:
    """One measurement on a fresh pty and peer: ``n`` timed round trips per path, interleaved;
    the peer in its own process or in a thread of this one (``peer_in``)."""
    peer = driver = raw = None
    try:
        peer = start_peer(lambda: Peer(kind), peer_in)
        completion = COMPLETION_FRAME if kind == "responder" else learn_completion(peer.path)
        driver = ZvtTerminal.open_url(peer.path, 9600, ZvtTiming(), password=PASSWORD)
        raw = RawClient(peer.path, completion, frame_end=raw_read == "frame-end")

        def driver_rt() -> None:
            if driver.status_enquiry().terminal_status != 0:
                raise RuntimeError("driver: the PT is not ready")

        samples: dict[str, list[float]] = {"driver": [], "raw": []}
        try:
            peer.check()
            pairs = timed_runs(driver_rt, raw.round_trip, n, warmup, block, samples)
            peer.check()
        except Exception as exc:
            raise RuntimeError(
                f"round trip failed after {len(samples['driver'])} driver / {len(samples['raw'])} raw "
                f"timed round trips: {exc!r}; {peer.state()}; driver link "
                f"{driver.transport.stats.snapshot()}; other processes with {peer.path} open: "
                f"{other_openers(peer.path, peer.pid) or 'none'}") from exc
        return {"samples": samples, "pairs": pairs, "served": peer.served, "completion_bytes": len(completion),
                "link": driver.transport.stats.snapshot()}
    finally:
        close_quietly(driver and driver.close, raw and raw.close, peer and peer.close)


def run_peer(kind: str, n: int, warmup: int, block: int, repeat: int, peer_in: str = "process",
             raw_read: str = "known") -> dict:
    """``repeat`` runs of ``one_run``; statistics over all samples, plus each run's paired ratio."""
    runs = [one_run(kind, n, warmup, block, peer_in, raw_read) for _ in range(repeat)]
    return {
        "peer": kind, "peer_in": peer_in, "raw_read": raw_read, "n": n, "repeat": repeat, "warmup": warmup, "block": block,
        "request_bytes": len(REQUEST_FRAME), "answer_bytes": len(ANSWER_FRAME),
        "completion_bytes": runs[0]["completion_bytes"], **compare(runs),
    }


def run(n: int = 500, warmup: int = 50, block: int = 10, repeat: int = 3,
        peers: tuple[str, ...] = PEERS, peer_in: str = "process", raw_read: str = "known") -> dict:
    return {"benchmark": "zvt_roundtrip", "peer_in": peer_in, "raw_read": raw_read,
            "peers": {kind: run_peer(kind, n, warmup, block, repeat, peer_in, raw_read) for kind in peers},
            "driver_cpu_s": driver_cpu_s(), "process_cpu_s": time.process_time(), "machine": machine()}


def exchange_bytes(res: dict) -> int:
    return res["request_bytes"] + 2 * res["answer_bytes"] + res["completion_bytes"] + LINK_BYTES


def markdown_peer(res: dict) -> str:
    peer = ("the virtual ZVT terminal, designed delays 0" if res["peer"] == "virtual"
            else "a zero-delay byte-level responder")
    return (
        f"Peer: {peer}, {peer_place(res)}. {raw_reading(res)}{res['repeat']} runs, each on a fresh pty: {res['warmup']} "
        f"warm-up round trips per path, then {res['n']} timed per path, interleaved in blocks of {res['block']} "
        f"({res['repeat'] * res['n']} samples per path in all); frames: command {res['request_bytes']} B, "
        f"80 00 00 {res['answer_bytes']} B (twice), completion {res['completion_bytes']} B, plus 4 ACKs. "
        f"Times per round trip in ms.\n\n"
        + report(res, "driver `ZvtTerminal.status_enquiry()`", exchange_bytes(res), 11, "peer served",
                 "no repeats, NAKs or timeouts"))


def markdown(res: dict) -> str:
    return "\n".join([markdown_peer(res["peers"][kind]) for kind in PEERS if kind in res["peers"]] + [
        f"The driver's own work per enquiry, against an in-memory PT (no pty, no peer, best of "
        f"3 x 5000): **{res['driver_cpu_s'] * 1e6:.0f} µs**.\n"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peer", choices=(*PEERS, "both"), default="both", help="the PT on the pty (default both)")
    add_run_options(ap)
    args = ap.parse_args(argv)
    exit_cleanly_on_sigterm()
    peers = PEERS if args.peer == "both" else (args.peer,)
    return run_and_print(lambda: run(args.n, args.warmup, args.block, args.repeat, peers, args.peer_in,
                                     args.raw_read), markdown,
                         args.json, "interrupted; ptys, peers and ports closed")


if __name__ == "__main__":
    sys.exit(main())
