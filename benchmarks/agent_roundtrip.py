"""ECR round trip: what the driver costs over the raw serial port.

One pseudo-terminal. On its master a responder speaks the ECR link protocol at byte level with
zero processing delay (no VirtualTerminal: its deliberate command delay would dominate): ACK the
ENQ, read the frame to ETX+LRC, ACK, read EOT; then ENQ, wait ACK, send the reply frame, wait
ACK, send EOT. On the slave, the same ``ST`` request is timed two ways:

  driver  ``AgentTerminal(url=slave).request("ST")`` (SerialBytePort + Link + message codec)
  raw     ``serial.Serial(slave)`` with plain write()/read() of the very same byte sequences

The responder runs in a process of its own (``--peer-in process``, the default), as a real
terminal is never in the driver's process; ``--peer-in thread`` runs it in a thread of this
process, the method before 2026-11-28, where its Python competes with the timed client's for
the GIL. Both paths run in short interleaved blocks after a warm-up, so drift (CPU placement,
other load on the machine) hits both alike; besides the pooled statistics the ratio is also
given paired: median over block pairs of driver-block median / raw-block median.

    .venv/bin/python benchmarks/agent_roundtrip.py [-n 500] [--repeat 3] [--warmup 50] [--block 10]
                                                 [--peer-in process|thread] [--raw-read known|frame-end]
                                                 [--json FILE]

``--raw-read frame-end`` checks the method's fairness: the raw client then reads the reply frame
until it sees its end (ETX and the LRC), as the driver must, instead of by its known length.
"""
from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import termios
import threading
import time
import tty
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (PEER_PLACES, InMemoryPort, PeerProcess, exit_cleanly_on_sigterm, machine, ms,  # noqa: E402
                     run_and_print, summary, table)

import serial  # noqa: E402

from posbench.drivers.ecr.agent.adapter import AgentTerminal  # noqa: E402
from posbench.drivers.transport.enq_ack import Link  # noqa: E402
from posbench.drivers.transport.frame import ACK, ENQ, EOT, ETX, STX, encode_frame  # noqa: E402
from posbench.drivers.ecr.agent.codec import encode_message  # noqa: E402

REQUEST_FRAME = encode_frame(encode_message("ST", {}))
# A full-size ST reply, field for field what the virtual PT100 sends (247 bytes framed).
REPLY_FRAME = encode_frame(encode_message("ST", [
    ("rc", "OK"), ("uptime_s", "1234.5"), ("boot_id", "9f3c21ab"), ("restarts", "0"),
    ("free_mem_kib", "21873"), ("total_mem_kib", "65536"), ("err_comm", "2"), ("err_reader", "1"),
    ("err_app", "0"), ("cfg_crc", "5A1F0C3E"), ("cfg_crc_stored", "5A1F0C3E"),
    ("keys", "TMK,TPK,TAK"), ("last_maint", "2025-01-31"), ("clock", "2025-06-01T12:00:00Z"),
    ("log_seq", "212")]))
CONTROL_BYTES = 8
"""ENQ ACK (request) ACK EOT, ENQ ACK (reply) ACK EOT."""


class Stopped(Exception):
    """The responder was told to stop."""


def other_openers(path: str, peer_pid: int | None = None) -> list[str]:
    """Other processes holding ``path`` open (a stale client that reopened a recycled pty); not
    this one, nor the peer's (``peer_pid``)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) in (os.getpid(), peer_pid):
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"pid {pid}: {cmd.strip()[:160]}")
                    break
            except OSError:
                continue
    return found


class Responder(threading.Thread):
    """The peer: a zero-delay ECR responder on the pty master, one round trip after another."""

    def __init__(self, master: int):
        super().__init__(name="ecr-responder", daemon=True)
        self.master = master
        self.stopping = threading.Event()
        self.buf = bytearray()
        self.served = 0
        self.bad_requests = 0
        self.state = "idle"
        self.error: BaseException | None = None

    def _byte(self) -> int:
        while not self.buf:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if self.stopping.is_set():
                raise Stopped
            if ready:
                try:
                    self.buf += os.read(self.master, 4096)
                except (BlockingIOError, InterruptedError):
                    pass
        byte = self.buf[0]
        del self.buf[0]
        return byte

    def _until(self, wanted: int) -> None:
        self.state = f"waiting for 0x{wanted:02X}"
        while self._byte() != wanted:
            pass

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.master, view):]
            except BlockingIOError:
                select.select([], [self.master], [], 0.1)

    def run(self) -> None:
        try:
            while True:
                self._until(ENQ)                 # a stray EOT before it is ignored
                self._write(bytes([ACK]))
                self._until(STX)
                self.state = "reading the request frame"
                frame = bytearray([STX])
                while frame[-1] != ETX:
                    frame.append(self._byte())
                frame.append(self._byte())       # LRC
                self.bad_requests += bytes(frame) != REQUEST_FRAME
                self._write(bytes([ACK]))
                self._until(EOT)
                self._write(bytes([ENQ]))
                self._until(ACK)
                self._write(REPLY_FRAME)
                self._until(ACK)
                self._write(bytes([EOT]))
                self.served += 1
        except Stopped:
            pass
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def stop(self) -> None:
        self.stopping.set()
        self.join(2.0)


class ResponderPeer:
    """A fresh pty with a ``Responder`` thread on its master: ``path`` (the slave) for the
    clients, ``served``, ``check()`` (raises if the responder failed or got a wrong request),
    ``state()``, ``close()``. In a ``PeerProcess`` it is the peer in a process of its own."""

    def __init__(self, responder: type[Responder] = Responder):
        self.master, self.slave = os.openpty()
        try:
            tty.setraw(self.slave, termios.TCSANOW)
            self.path = os.ttyname(self.slave)  # the slave fd stays open: the master never sees EIO
            os.set_blocking(self.master, False)
            self.responder = responder(self.master)
            self.responder.start()
        except BaseException:
            self._close_fds()
            raise
        self.pid = os.getpid()

    @property
    def served(self) -> int:
        return self.responder.served

    def check(self) -> None:
        if self.responder.error is not None:
            raise RuntimeError(f"responder failed: {self.responder.error!r}")
        if self.responder.bad_requests:
            raise RuntimeError(f"{self.responder.bad_requests} requests differed from the expected frame")

    def state(self) -> str:
        r = self.responder
        return f"responder {r.state}, served {r.served}, unread {bytes(r.buf)!r}"

    def close(self) -> None:
        try:
            self.responder.stop()
        finally:
            self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self.master = self.slave = -1


def start_peer(make: Callable[[], "ResponderPeer"], peer_in: str):
    """``make()`` here (``peer_in`` "thread") or in a ``PeerProcess`` of its own ("process")."""
    if peer_in not in PEER_PLACES:
        raise ValueError(f"peer_in must be one of {PEER_PLACES}, got {peer_in!r}")
    return make() if peer_in == "thread" else PeerProcess(make)


RAW_READS = ("known", "frame-end")
"""How the raw client reads a frame: ``known``, its length known up front (one ``read(n)``, the
method of docs/benchmarks.md), or ``frame-end``, as a client that cannot know it must (what has
arrived, ``in_waiting``, until the frame's end is seen; no check of its content)."""


def read_to_frame_end(ser: serial.Serial, frame_end: Callable[[bytes | bytearray], int | None]) -> bytes:
    """Read what has arrived until ``frame_end(bytes so far)`` gives the frame's length; the frame.
    Nothing follows a frame in these exchanges before the client answers it."""
    got = bytearray()
    while (end := frame_end(got)) is None:
        chunk = ser.read(max(1, ser.in_waiting))
        if not chunk:
            raise RuntimeError(f"raw: frame cut off after {len(got)} bytes")
        got += chunk
    return bytes(got[:end])


def agent_frame_end(got: bytes | bytearray) -> int | None:
    """STX .. ETX LRC: the length once the LRC after the ETX is in."""
    etx = got.find(ETX)
    return etx + 2 if 0 <= etx < len(got) - 1 else None


class RawClient:
    """The same exchange with nothing but pyserial write()/read(); the reply frame read by its
    known length or, ``frame_end``, until its end is seen (see ``RAW_READS``)."""

    def __init__(self, path: str, frame_end: bool = False):
        self.ser = serial.Serial(path, timeout=1.0)
        self.frame_end = frame_end

    def round_trip(self) -> None:
        ser = self.ser
        ser.write(b"\x05")                                   # ENQ
        if ser.read(1) != b"\x06":
            raise RuntimeError("raw: no ACK to ENQ")
        ser.write(REQUEST_FRAME)
        if ser.read(1) != b"\x06":
            raise RuntimeError("raw: request frame not ACKed")
        ser.write(b"\x04")                                   # EOT
        if ser.read(1) != b"\x05":
            raise RuntimeError("raw: no ENQ from the peer")
        ser.write(b"\x06")
        reply = read_to_frame_end(ser, agent_frame_end) if self.frame_end else ser.read(len(REPLY_FRAME))
        if reply != REPLY_FRAME:
            raise RuntimeError("raw: reply frame short or wrong")
        ser.write(b"\x06")
        if ser.read(1) != b"\x04":
            raise RuntimeError("raw: no EOT after the reply")

    def close(self) -> None:
        self.ser.close()


def close_quietly(*closers: Callable[[], object] | None) -> None:
    """Call every closer given (None skipped), whatever the others raise: cleanup after a run."""
    for closer in closers:
        if closer:
            try:
                closer()
            except Exception:
                pass


def time_block(fn: Callable[[], object], count: int, into: list[float] | None) -> None:
    """Call ``fn`` ``count`` times, appending each call's seconds to ``into`` (None: warm-up)."""
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        if into is not None:
            into.append(dt)


def timed_runs(driver_rt: Callable[[], object], raw_rt: Callable[[], object], n: int, warmup: int,
               block: int, samples: dict[str, list[float]]) -> list[tuple[float, float]]:
    """Warm both paths up, then time ``n`` round trips each in interleaved blocks of ``block``
    into ``samples["driver"]`` / ``samples["raw"]``; the (driver, raw) block medians in order."""
    for fn in (driver_rt, raw_rt):  # warm-up: imports, caches, branch predictors
        time_block(fn, warmup, None)
    done = 0
    while done < n:
        k = min(block, n - done)
        time_block(driver_rt, k, samples["driver"])
        time_block(raw_rt, k, samples["raw"])
        done += k
    d, r = samples["driver"], samples["raw"]
    return [(statistics.median(d[i:i + block]), statistics.median(r[i:i + block])) for i in range(0, n, block)]


def compare(runs: list[dict]) -> dict:
    """Statistics over ``runs`` (each with "samples", "pairs", "served", "link"): pooled per path,
    the driver/raw ratios, the paired ratio and difference, each run's, the summed counters."""
    pooled = {k: [x for r in runs for x in r["samples"][k]] for k in ("driver", "raw")}
    pairs = [p for r in runs for p in r["pairs"]]
    stats = {name: summary(s) for name, s in pooled.items()}
    link: dict[str, int] = {}
    for r in runs:
        for k, v in r["link"].items():
            link[k] = link.get(k, 0) + v
    return {
        "stats": stats,
        "ratio": {k: stats["driver"][k] / stats["raw"][k] for k in ("median", "p95", "mean")},
        "paired": {"blocks": len(pairs),
                   "ratio_median": statistics.median(a / b for a, b in pairs),
                   "extra_s_median": statistics.median(a - b for a, b in pairs)},
        "per_run": [{"driver_median": statistics.median(r["samples"]["driver"]),
                     "raw_median": statistics.median(r["samples"]["raw"]),
                     "paired_ratio": statistics.median(a / b for a, b in r["pairs"])} for r in runs],
        "served": sum(r["served"] for r in runs), "driver_link_stats": link,
    }


def one_run(n: int, warmup: int, block: int, peer_in: str = "process", raw_read: str = "known") -> dict:
    """One measurement on a fresh pty: ``n`` timed round trips per path, interleaved in blocks;
    the peer in its own process or in a thread of this one (``peer_in``)."""
    peer = driver = raw = None
    try:
        peer = start_peer(ResponderPeer, peer_in)
        path = peer.path
        driver = AgentTerminal(url=path).open()
        raw = RawClient(path, frame_end=raw_read == "frame-end")

        def driver_rt() -> None:
            reply = driver.request("ST")
            if reply.get("log_seq") != "212":
                raise RuntimeError("driver: wrong reply")

        samples: dict[str, list[float]] = {"driver": [], "raw": []}
        try:
            peer.check()
            pairs = timed_runs(driver_rt, raw.round_trip, n, warmup, block, samples)
            peer.check()
        except Exception as exc:
            others = other_openers(path, peer.pid)
            raise RuntimeError(
                f"round trip failed after {len(samples['driver'])} driver / {len(samples['raw'])} raw "
                f"timed round trips: {exc!r}; {peer.state()}; driver link {driver.link.stats.snapshot()}; "
                f"other processes with {path} open: {others or 'none'}") from exc
        return {"samples": samples, "pairs": pairs, "served": peer.served,
                "link": driver.link.stats.snapshot()}
    finally:
        close_quietly(driver and driver.close, raw and raw.close, peer and peer.close)


class InMemoryUnit(InMemoryPort):
    """A byte port that answers the driver's link at once from memory (no pty, no peer): the
    driver's own CPU per request, with no I/O."""

    def __init__(self) -> None:
        super().__init__()
        self.reply_sent = False

    def write(self, data: bytes) -> None:
        if data in (bytes([ENQ]), REQUEST_FRAME):
            self.pending.append(ACK)
        elif data == bytes([EOT]):
            self.pending.append(ENQ)  # the driver's request is in: the unit's turn
        elif data == bytes([ACK]):
            if self.reply_sent:
                self.pending.append(EOT)
            else:
                self.pending += REPLY_FRAME
            self.reply_sent = not self.reply_sent


def driver_cpu_s(n: int = 5000) -> float:
    """Seconds of the driver's own work per ``ST`` request against ``InMemoryUnit`` (best of 3)."""
    driver = AgentTerminal(url="in-memory")
    driver.port = InMemoryUnit()  # type: ignore[assignment]
    driver.link = Link(driver.port, driver.timing, driver.device)
    for _ in range(200):
        if driver.request("ST").get("log_seq") != "212":
            raise RuntimeError("driver: wrong reply from the in-memory unit")
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            driver.request("ST")
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def run(n: int = 500, warmup: int = 50, block: int = 10, repeat: int = 3, peer_in: str = "process",
        raw_read: str = "known") -> dict:
    """``repeat`` runs of ``one_run``; statistics over all samples, plus each run's paired ratio."""
    runs = [one_run(n, warmup, block, peer_in, raw_read) for _ in range(repeat)]
    return {
        "benchmark": "agent_roundtrip", "n": n, "repeat": repeat, "warmup": warmup, "block": block,
        "peer_in": peer_in, "raw_read": raw_read, "request_bytes": len(REQUEST_FRAME), "reply_bytes": len(REPLY_FRAME),
        **compare(runs), "driver_cpu_s": driver_cpu_s(), "process_cpu_s": time.process_time(),
        "machine": machine(),
    }


def report(res: dict, driver_path: str, wire_bytes: int, bits_per_byte: int, served: str,
           quiet: str) -> str:
    """The table, the paired ratio, each run's figures and the link counters of a ``compare``
    result; ``wire_bytes`` of one exchange at ``bits_per_byte`` give the wire time for scale."""
    def wire(baud: int) -> str:
        return f"{wire_bytes * bits_per_byte / baud * 1e3:.1f}"
    st, ratio = res["stats"], res["ratio"]
    rows = [[name, ms(st[key]["median"]), ms(st[key]["p95"]), ms(st[key]["mean"]), ms(st[key]["min"]),
             ms(st[key]["max"])] for name, key in ((driver_path, "driver"), ("raw pyserial write()/read()", "raw"))]
    rows.append(["ratio driver / raw", f"{ratio['median']:.2f}x", f"{ratio['p95']:.2f}x",
                 f"{ratio['mean']:.2f}x", "", ""])
    paired = res["paired"]
    trouble = {k: v for k, v in res["driver_link_stats"].items() if k not in ("frames_sent", "frames_received") and v}
    framing = "8N1, 10 bits a byte" if bits_per_byte == 10 else f"8N2, {bits_per_byte} bits a byte"
    return (
        table(["path", "median", "p95", "mean", "min", "max"], rows)
        + f"\n\nPaired over {paired['blocks']} adjacent block pairs: driver/raw = "
        f"**{paired['ratio_median']:.2f}x**, the driver adds **{paired['extra_s_median'] * 1e6:.0f} µs** "
        f"per round trip (medians). For scale: the {wire_bytes} bytes of one exchange take {wire(9600)} ms "
        f"on the wire at 9600 baud, {wire(115200)} ms at 115200 ({framing}).\n\nPer run (median driver / "
        "median raw, paired ratio): "
        + "; ".join(f"{ms(r['driver_median'])} / {ms(r['raw_median'])} ms, {r['paired_ratio']:.2f}x"
                    for r in res["per_run"])
        + f".\n\nThe {served} {res['served']} round trips; driver link counters: "
        + (", ".join(f"{k}={v}" for k, v in trouble.items()) if trouble else quiet)
        + ".\n")


def peer_place(res: dict) -> str:
    """Where the peer ran, for the text (results from before ``peer_in`` existed: a thread)."""
    return ("in a process of its own" if res.get("peer_in", "thread") == "process"
            else "in a thread of the benchmark's process")


def raw_reading(res: dict) -> str:
    """How the raw client read frames, for the text (results from before ``raw_read``: known)."""
    return ("" if res.get("raw_read", "known") == "known"
            else "The raw client reads each frame until it sees its end, not knowing its length. ")


def markdown(res: dict) -> str:
    return (
        f"Peer {peer_place(res)}. {raw_reading(res)}"
        f"{res['repeat']} runs, each on a fresh pty: {res['warmup']} warm-up round trips per path, then "
        f"{res['n']} timed per path, interleaved in blocks of {res['block']} "
        f"({res['repeat'] * res['n']} samples per path in all); request frame {res['request_bytes']} B, reply frame {res['reply_bytes']} B. "
        f"Times per round trip in ms.\n\n"
        + report(res, 'driver `AgentTerminal.request("ST")`', res["request_bytes"] + res["reply_bytes"] + CONTROL_BYTES,
                 10, "responder served", "no retries, NAKs or timeouts")
        + (f"\nThe driver's own work per request, against an in-memory unit (no pty, no peer, best of 3 x "
           f"5000): **{res['driver_cpu_s'] * 1e6:.0f} µs**.\n" if "driver_cpu_s" in res else ""))


def add_run_options(ap: argparse.ArgumentParser) -> None:
    """-n, --warmup, --block, --repeat, --peer-in and --json, as every round-trip benchmark takes them."""
    ap.add_argument("-n", type=int, default=500, help="timed round trips per path (default 500)")
    ap.add_argument("--warmup", type=int, default=50, help="untimed round trips per path first")
    ap.add_argument("--block", type=int, default=10, help="round trips per interleaved block")
    ap.add_argument("--repeat", type=int, default=3, help="runs, each on a fresh pty (default 3)")
    ap.add_argument("--peer-in", choices=PEER_PLACES, default="process",
                    help="where the peer runs: a process of its own (default), or a thread of this "
                         "process (the method before 2026-11-28; it shares the GIL with the client)")
    ap.add_argument("--raw-read", choices=RAW_READS, default="known",
                    help="the raw client reads a frame by its length known up front (default, the "
                         "documented method) or until its end is seen, as the driver must")
    ap.add_argument("--json", type=Path, help="also write the results here")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_options(ap)
    args = ap.parse_args(argv)
    exit_cleanly_on_sigterm()
    return run_and_print(lambda: run(args.n, args.warmup, args.block, args.repeat, args.peer_in, args.raw_read),
                         markdown,
                         args.json, "interrupted; pty and responder closed")


if __name__ == "__main__":
    sys.exit(main())
