"""Virtual PT100 payment terminal speaking posbench's agent ECR protocol on a pseudo-terminal.

The unit itself (state machine, journal, faults, host link) is ``posbench.sim.unit.model.VirtualUnit``;
this module only turns agent-protocol requests (``drivers/ecr/agent/codec.py`` messages over
the ``enq_ack`` handshake) into calls on it and its results into replies.
"""
from __future__ import annotations

import random
import time

from posbench.core.errors import MessageError
from posbench.setup.profile import Profile
from posbench.drivers.transport.frame import MAX_MESSAGE
from posbench.drivers.ecr.agent.codec import Message, decode_message, encode_message
from posbench.drivers.transport.enq_ack import Link

from posbench.sim.unit.noisy_port import NoisyPort
from posbench.sim.devices.pty_port import PtyPort
from posbench.sim.unit.model import VirtualUnit
from posbench.sim.unit.front_end import UnitFrontEnd
from posbench.sim.unit.records import TEST_PAN, LogEntry, TerminalTiming, frame_error_rate

__all__ = ["VirtualTerminal", "TerminalTiming", "TEST_PAN"]
"""``TerminalTiming`` and ``TEST_PAN`` live in ``posbench.sim.unit.records``; importers of this module keep them."""

STATUS_COMMANDS = ("ST", "ID", "LOG")
"""Commands the ``application`` fault may crash the app on."""


class VirtualTerminal(UnitFrontEnd):
    """A terminal on a pty. ``faults`` maps cause id to severity in (0, 1]."""

    thread_name = "virtual-terminal"

    def __init__(self, host_address: tuple[str, int], profile: Profile,
                 faults: dict[str, float] | None = None, seed: int = 0,
                 serial: str = "PT100-0000123", terminal_id: str = "PT100123",
                 timing: TerminalTiming | None = None):
        self.unit = VirtualUnit(host_address, profile, faults, seed, serial, terminal_id, timing)
        self.pty = PtyPort()
        self.port: NoisyPort = NoisyPort(self.pty, random.Random(seed + 7),
                                         frame_error_rate(self.sev("pcb_intermittent")),
                                         powered=lambda: self.unit.powered)
        self.link = Link(self.port, device="virtual-terminal")
        self._init_thread()

    def _idle(self) -> None:
        self.port.discard_input()

    def _serve_next(self) -> None:
        if self.link.wait_enq(0.2):
            self._serve_one()

    def _close_transport(self) -> None:
        self.port.close()

    # -- command handling -------------------------------------------------------------------
    def _serve_one(self) -> None:
        unit = self.unit
        try:
            request = decode_message(self.link.receive_after_enq("reading an ECR request"))
        except MessageError:
            unit.err["err_comm"] += 1
            self.link.send(encode_message("ERR", {"rc": "ERR", "reason": "bad_message"}))
            return
        unit.begin_command()
        if request.command in STATUS_COMMANDS and unit.app_crashes():
            unit.app_restart()
            return  # the command is lost with the crash
        time.sleep(self._latency())
        alive = unit.watch_power()
        reply = self._dispatch(request)
        if unit.timing.reply_s:
            time.sleep(unit.timing.reply_s)
        if not alive():
            return  # the unit lost power while working on it: no reply ever leaves
        self.link.send(reply.encode(), f"replying to {request.command}")
        if request.command == "RBT":
            unit.reboot()
        else:
            unit.after_reply()

    def _latency(self) -> float:
        return self.unit.latency()

    def _dispatch(self, req: Message) -> Message:
        handlers = {"ID": self._identify, "ST": self._status, "SALE": self._sale,
                    "LOG": self._log_page, "RBT": lambda r: {}, "CHIP": self._chip,
                    "ECHO": self._echo}
        handler = handlers.get(req.command)
        if handler is None:
            return Message(req.command, [("rc", "ERR"), ("reason", "unknown_command")])
        try:
            fields = handler(req)
        except (ValueError, KeyError):
            return Message(req.command, [("rc", "ERR"), ("reason", "bad_field")])
        items = fields.items() if isinstance(fields, dict) else fields
        return Message(req.command, [("rc", "OK")] + [(k, str(v)) for k, v in items])

    def _identify(self, req: Message) -> dict:
        unit = self.unit
        return {"model": unit.profile.model, "serial": unit.serial, "firmware": unit.firmware,
                "components": ",".join(f"{k}:{v}" for k, v in unit.components.items())}

    def _status(self, req: Message) -> dict:
        unit = self.unit
        return {"uptime_s": f"{unit.uptime_s():.1f}", "boot_id": unit.boot_id, "restarts": unit.restarts,
                "free_mem_kib": unit.free_mem_kib, "total_mem_kib": unit.total_mem_kib,
                **unit.err, "cfg_crc": unit.cfg_crc(), "cfg_crc_stored": unit.cfg_crc_stored,
                "keys": ",".join(unit.keys), "last_maint": unit.last_maintenance,
                "clock": unit.clock().strftime("%Y-%m-%dT%H:%M:%SZ"), "log_seq": unit.log[-1].seq}

    def _log_page(self, req: Message) -> list[tuple[str, object]]:
        start = int(req.require("start"))
        page: list[LogEntry] = self.unit.log_page(start, int(req.require("max")))
        while page and len(encode_message("LOG", [("rec", e.encode()) for e in page])) > MAX_MESSAGE - 64:
            page.pop()
        nxt = page[-1].seq + 1 if page else start
        return [("count", len(page)), ("next", nxt)] + [("rec", e.encode()) for e in page]

    def _chip(self, req: Message) -> dict:
        """Chip diagnostic: power the card in the slot, read its ATR, SELECT PSE."""
        diag = self.unit.chip_diagnostic()
        return {"present": int(diag.present), "atr": diag.atr.hex().upper(),
                "sw": diag.sw.hex().upper(), "fci": diag.fci.hex().upper(), "reason": diag.reason}

    def _echo(self, req: Message) -> dict:
        """Network check from the unit: ``n`` 0800 echo requests (70=301) to its host."""
        n = int(req.require("n"))
        echo = self.unit.echo(n, float(req.get("timeout_ms") or 1e9) / 1000)
        return {"sent": echo.sent, "answered": echo.answered,
                "lat_ms": ",".join("-" if x is None else f"{x:.1f}" for x in echo.latencies_ms),
                "reconnects": echo.reconnects}

    def _sale(self, req: Message) -> dict:
        sale = self.unit.sale(int(req.require("amount")))
        return {"display": sale.display, "host": int(sale.host_answered), "host_rc": sale.host_rc,
                "stan": sale.stan, "tid": sale.tid, "pan": sale.pan, "auth": sale.auth,
                "reason": sale.reason}


# -- what the virtual bench asks of this protocol's module (``posbench.drivers.registry.virtual``) --
CARD_TIMEOUT_S: float | None = None
"""The agent unit waits for no card in a sale (the bench presents it before)."""
SALE_TIMEOUT_S = 5.0
"""bench.toml's ``sale_timeout`` for this virtual terminal (seconds)."""
TERMINAL_ID_PREFIX = "PT"
"""The agent protocol carries the terminal id as text."""


def front_end(name: str, host_address: tuple[str, int], profile: Profile, faults: dict[str, float], *, seed: int,
              serial: str, terminal_id: str, timing: TerminalTiming, currency: str) -> VirtualTerminal:
    """The virtual terminal of ``posbench sim --protocol NAME`` (the agent protocol has no currency)."""
    return VirtualTerminal(host_address, profile, faults, seed=seed, serial=serial, terminal_id=terminal_id,
                           timing=timing)


def terminal_toml(term: VirtualTerminal, currency: str) -> str:
    """The head of bench.toml's ``[terminal]`` for ``term``."""
    return f'[terminal]\nport = "{term.port.path}"\nbaudrate = 115200\n'
