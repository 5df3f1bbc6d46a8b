"""The virtual unit's host link: ISO 8583 echoes, sales, authorisations, reversals and
totals with its acquirer (the second layer of ``posbench.sim.unit.model.VirtualUnit``). Times are
seconds, amounts minor units."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Callable

from posbench.core.errors import ProtocolError
from posbench.core.masking import mask_pan

from posbench.sim.unit.records import ENTRY_MODES, MAX_ECHOES, TEST_PAN, EchoResult, ReversalResult, Authorisation, host_failure
from posbench.sim.unit.state import UnitState


class UnitHostLink(UnitState):
    """The unit's dealings with its acquirer, on its identity, journal and power state."""

    # -- the host link ----------------------------------------------------------------------
    def _next_stan(self) -> str:
        self._stan = self._stan % 999999 + 1
        return f"{self._stan:06d}"

    def echo(self, n: int, per_echo_s: float) -> EchoResult:
        """Network check from the unit: ``n`` (1..20) 0800 echo requests (70=301) to its host,
        each given at most ``per_echo_s`` seconds (and never more than the host timeout)."""
        n = min(MAX_ECHOES, max(1, n))
        per_echo_s = min(self.timing.host_timeout_s, per_echo_s)
        latencies: list[float | None] = []
        reconnects, failure = 0, ""
        for _ in range(n):
            now = datetime.now(timezone.utc)
            doc = {"t": "0800", "7": now.strftime("%m%d%H%M%S"), "11": self._next_stan(),
                   "41": self.terminal_id, "70": "301"}
            start = time.monotonic()
            try:
                if self._host is None:
                    if latencies or reconnects:
                        reconnects += 1
                    self._host = self.connect_host(self.host_address, per_echo_s)
                self._host.exchange(doc, timeout=per_echo_s)
                latencies.append((time.monotonic() - start) * 1000)
            except (OSError, ProtocolError) as exc:
                self._reset_host()
                latencies.append(None)
                failure = host_failure(exc)
        return EchoResult(tuple(latencies), reconnects, failure)

    def sale(self, amount: int) -> Authorisation:
        """A sale with the virtual cardholder's card (``TEST_PAN``, chip): read, then authorize."""
        if not 0 < amount < 10**12:
            raise ValueError("amount out of range")
        alive = self.watch_power()
        self.state = "sale"
        self.on_activity("reading")
        time.sleep(self.timing.card_read_s)  # the cardholder inserts the card, the unit reads it
        self.on_activity("idle")
        return self.authorize(amount, TEST_PAN, "chip", alive)

    def authorize(self, amount: int, pan: str, technology: str,
                  alive: Callable[[], bool] | None = None,
                  host_timeout_s: float | None = None,
                  on_online: Callable[[], None] = lambda: None) -> Authorisation:
        """Authorize ``amount`` for a card already read: local checks, journal, 0200 to the
        host (waiting at most ``host_timeout_s``, default the unit's), receipt. ``alive``: the
        power check taken when the sale began (``watch_power``); ``on_online`` is called just
        before the unit contacts its host."""
        if not 0 < amount < 10**12:
            raise ValueError("amount out of range")
        alive = alive or self.watch_power()
        stan = self._next_stan()
        result = Authorisation("", False, "", stan, self.terminal_id, mask_pan(pan))
        if not alive():
            result.completed = False
            return result  # the card read was cut off: nothing was journaled or sent
        local = self.profile.local_failure_code
        if "TAK" not in self.keys or "mid" not in self.config:
            reason = "no_keys" if "TAK" not in self.keys else "no_config"
        elif self.sev("firmware_driver") and self.rng.random() < 0.5 * self.sev("firmware_driver"):
            reason = "kernel_error"
        else:
            reason = ""
        entry = self.append("SALE", amount, "", "", ["IN_PROGRESS"], pan=pan, stan=stan)
        self._inflight = (entry, None)
        result.seq = entry.seq
        if reason:
            result.display, result.reason = local, reason
        else:
            self.state = "online"
            on_online()
            reply, reason = self._go_online(amount, pan, technology, stan, host_timeout_s)
            if not alive():
                result.completed = False
                return result  # power went while online: the journal recovers it at boot
            if reply is not None and self.sev("application") and \
                    self.rng.random() < 0.1 + 0.3 * self.sev("application"):
                reply, reason = None, "app_restart"  # crashed holding the host's answer
                self.restart_after_reply = True
            if reply is None:
                result.display, result.reason = local, reason
            else:
                rc = reply.get(39, "")
                result.display, result.host_answered, result.host_rc = rc, True, rc
                result.auth = reply.get(38, "")
                if rc == "00":
                    entry.display, entry.host_rc = rc, rc
                    self.on_activity("printing")
                    time.sleep(self.timing.print_s)
                    self.on_activity("idle")
                    if not alive():
                        result.completed = False
                        return result  # cut off while printing the receipt
        self.state = "result"
        entry.display, entry.host_rc = result.display, result.host_rc
        entry.events = [result.reason.upper()] if result.reason else []
        self._inflight = None
        self.state = "idle"
        return result

    def _go_online(self, amount: int, pan: str, technology: str, stan: str,
                   host_timeout_s: float | None) -> tuple[dict | None, str]:
        """Send a 0200 and wait; returns (reply fields by number, reason)."""
        wait = self.timing.host_timeout_s if host_timeout_s is None else host_timeout_s
        now = datetime.now(timezone.utc)
        doc = {"t": "0200", "2": pan, "3": "000000", "4": f"{amount:012d}",
               "7": now.strftime("%m%d%H%M%S"), "11": stan, "12": now.strftime("%H%M%S"),
               "13": now.strftime("%m%d"), "22": ENTRY_MODES[technology], "25": "00",
               "41": self.terminal_id, "42": self.config["mid"], "49": self.config["currency"]}
        try:
            if self._host is None:
                self._host = self.connect_host(self.host_address, wait)
            if self._pending_reversal:
                self._host.exchange(self._pending_reversal, timeout=wait)
                self._pending_reversal = None
            if self._inflight is not None:
                self._inflight = (self._inflight[0], doc)  # from here on the host may have it
            reply = self._host.exchange(doc, timeout=wait)
        except (OSError, ProtocolError) as exc:
            self._reset_host()
            if isinstance(exc, (TimeoutError, ProtocolError)):
                self._pending_reversal = {**doc, "t": "0400"}
            return None, host_failure(exc)
        return {int(k): v for k, v in reply.items() if k.isdigit()}, ""

    def reverse(self, seq: int, on_online: Callable[[], None] = lambda: None) -> ReversalResult:
        """Reverse the approved sale journaled as ``seq``: a 0400 with its STAN to the host
        (``on_online`` is called just before the unit contacts it)."""
        sale = next((e for e in self.log if e.seq == seq and e.type == "SALE"), None)
        if sale is None or sale.host_rc != "00" or not sale.stan:
            return ReversalResult("not_found")
        if any(e.type == "VOID" and e.stan == sale.stan for e in self.log):
            return ReversalResult("already_reversed", sale.amount)
        now = datetime.now(timezone.utc)
        doc = {"t": "0400", "2": sale.pan, "3": "000000", "4": f"{sale.amount:012d}",
               "7": now.strftime("%m%d%H%M%S"), "11": sale.stan, "41": self.terminal_id,
               "42": self.config.get("mid", ""), "49": self.config["currency"]}
        on_online()
        try:
            if self._host is None:
                self._host = self.connect_host(self.host_address, self.timing.host_timeout_s)
            reply = self._host.exchange(doc, timeout=self.timing.host_timeout_s)
        except (OSError, ProtocolError) as exc:
            self._reset_host()
            return ReversalResult(host_failure(exc), sale.amount)
        rc = str(reply.get("39", ""))
        if rc == "00":
            self.append("VOID", sale.amount, rc, rc, [], pan=sale.pan, stan=sale.stan)
        return ReversalResult("" if rc == "00" else "declined", sale.amount, rc)

    def totals(self, since: datetime | None = None) -> tuple[int, int]:
        """(count, sum in minor units) of approved, unreversed sales journaled since ``since``."""
        voided = {e.stan for e in self.log if e.type == "VOID" and e.stan}
        approved = [e for e in self.log if e.type == "SALE" and e.host_rc == "00"
                    and (since is None or e.ts >= since) and not (e.stan and e.stan in voided)]
        return len(approved), sum(e.amount for e in approved)

    def _send_pending_reversal(self) -> None:
        """A reversal left from before a reboot goes out at once, in the background so the ECR
        port answers meanwhile (one try on its own connection; else it goes with the next sale)."""
        reversal = self._pending_reversal
        if not reversal:
            return

        def send() -> None:
            try:
                with self.connect_host(self.host_address, self.timing.host_timeout_s) as client:
                    client.exchange(reversal, timeout=self.timing.host_timeout_s)
                if self._pending_reversal is reversal:
                    self._pending_reversal = None
            except (OSError, ProtocolError):
                pass

        threading.Thread(target=send, name="boot-reversal", daemon=True).start()

    def _reset_host(self) -> None:
        if self._host is not None:
            self._host.close()
            self._host = None
