"""ECR round trip: what the driver costs over the raw serial port.

One pseudo-terminal. On its master a responder thread speaks the ECR link protocol at byte
level with zero processing delay (no VirtualTerminal: its deliberate command delay would
dominate): ACK the ENQ, read the frame to ETX+LRC, ACK, read EOT; then ENQ, wait ACK, send the
reply frame, wait ACK, send EOT. On the slave, the same ``ST`` request is timed two ways:

  driver  ``AgentTerminal(url=slave).request("ST")`` (SerialBytePort + Link + message codec)
  raw     ``serial.Serial(slave)`` with plain write()/read() of the very same byte sequences

Both run in short interleaved blocks after a warm-up, so drift (CPU placement of the two
threads, other load on the machine) hits both alike; besides the pooled statistics the
ratio is also given paired: median over block pairs of driver-block median / raw-block median.

    .venv/bin/python benchmarks/agent_roundtrip.py [-n 500] [--repeat 3] [--warmup 50] [--block 10]
                                                 [--json FILE]
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
from _common import exit_cleanly_on_sigterm, machine, ms, run_and_print, summary, table  # noqa: E402

import serial  # noqa: E402

from drivers.serial.agent import AgentTerminal  # noqa: E402
from drivers.serial.agent_frame import (ACK, ENQ, EOT, ETX, STX, encode_frame,  # noqa: E402
                                      encode_message)

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


def other_openers(path: str) -> list[str]:
    """Other processes holding ``path`` open (a stale client that reopened a recycled pty)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
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


class RawClient:
    """The same exchange with nothing but pyserial write()/read()."""

    def __init__(self, path: str):
        self.ser = serial.Serial(path, timeout=1.0)

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
        if ser.read(len(REPLY_FRAME)) != REPLY_FRAME:
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


def one_run(n: int, warmup: int, block: int) -> dict:
    """One measurement on a fresh pty: ``n`` timed round trips per path, interleaved in blocks."""
    master = slave = -1
    responder = driver = raw = None
    try:
        master, slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)
        path = os.ttyname(slave)  # the slave fd stays open: the master never sees EIO
        os.set_blocking(master, False)
        responder = Responder(master)
        responder.start()
        driver = AgentTerminal(url=path).open()
        raw = RawClient(path)

        def check_peer() -> None:
            if responder.error is not None:
                raise RuntimeError(f"responder failed: {responder.error!r}")

        def driver_rt() -> None:
            reply = driver.request("ST")
            if reply.get("log_seq") != "212":
                raise RuntimeError("driver: wrong reply")

        samples: dict[str, list[float]] = {"driver": [], "raw": []}
        try:
            check_peer()
            pairs = timed_runs(driver_rt, raw.round_trip, n, warmup, block, samples)
            check_peer()
        except Exception as exc:
            others = other_openers(path)
            raise RuntimeError(
                f"round trip failed after {len(samples['driver'])} driver / {len(samples['raw'])} raw "
                f"timed round trips: {exc!r}; responder {responder.state}, served {responder.served}, "
                f"unread {bytes(responder.buf)!r}; driver link {driver.link.stats.snapshot()}; "
                f"other processes with {path} open: {others or 'none'}") from exc
        if responder.bad_requests:
            raise RuntimeError(f"{responder.bad_requests} requests differed from the expected frame")
        return {"samples": samples, "pairs": pairs, "served": responder.served,
                "link": driver.link.stats.snapshot()}
    finally:
        close_quietly(driver and driver.close, raw and raw.close, responder and responder.stop)
        for fd in (master, slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


def run(n: int = 500, warmup: int = 50, block: int = 10, repeat: int = 3) -> dict:
    """``repeat`` runs of ``one_run``; statistics over all samples, plus each run's paired ratio."""
    runs = [one_run(n, warmup, block) for _ in range(repeat)]
    return {
        "benchmark": "agent_roundtrip", "n": n, "repeat": repeat, "warmup": warmup, "block": block,
        "request_bytes": len(REQUEST_FRAME), "reply_bytes": len(REPLY_FRAME), **compare(runs),
        "process_cpu_s": time.process_time(), "machine": machine(),
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


def markdown(res: dict) -> str:
    return (
        f"{res['repeat']} runs, each on a fresh pty: {res['warmup']} warm-up round trips per path, then "
        f"{res['n']} timed per path, interleaved in blocks of {res['block']} "
        f"({res['repeat'] * res['n']} samples per path in all); request frame {res['request_bytes']} B, reply frame {res['reply_bytes']} B. "
        f"Times per round trip in ms.\n\n"
        + report(res, 'driver `AgentTerminal.request("ST")`', res["request_bytes"] + res["reply_bytes"] + CONTROL_BYTES,
                 10, "responder served", "no retries, NAKs or timeouts"))


def add_run_options(ap: argparse.ArgumentParser) -> None:
    """-n, --warmup, --block, --repeat and --json, as every round-trip benchmark takes them."""
    ap.add_argument("-n", type=int, default=500, help="timed round trips per path (default 500)")
    ap.add_argument("--warmup", type=int, default=50, help="untimed round trips per path first")
    ap.add_argument("--block", type=int, default=10, help="round trips per interleaved block")
    ap.add_argument("--repeat", type=int, default=3, help="runs, each on a fresh pty (default 3)")
    ap.add_argument("--json", type=Path, help="also write the results here")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_options(ap)
    args = ap.parse_args(argv)
    exit_cleanly_on_sigterm()
    return run_and_print(lambda: run(args.n, args.warmup, args.block, args.repeat), markdown,
                         args.json, "interrupted; pty and responder closed")


if __name__ == "__main__":
    sys.exit(main())
