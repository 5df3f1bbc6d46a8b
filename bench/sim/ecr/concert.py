"""Virtual Concert V2 payment terminal on a pseudo-terminal, over the unit model.

The terminal's end of the link is posbench's ``Link`` with Concert timing
(``posbench.drivers.ecr.concert.link``), so the NAKs, repeats and EOTs are the driver's own. It takes
a 34-character request, runs a card debit through the unit (``posbench.sim.unit.model.VirtualUnit``:
state, readers, journal, ISO 8583 host, power) and answers with its own ENQ, the status and,
when the request's answer flag asks for it, the 55-character report (masked PAN, expiry, STAN,
terminal id, the acquirer's field 39; see ``posbench.drivers.ecr.concert.codec``).

Concert has a status and little else, so every fault shows as a refusal, silence, a reset or a
garbled frame:
- msr_head / chip_contacts / nfc_antenna: a card that the reader of its technology could not read
  is refused (status 7) with no PAN in the report
- power_supply: resets mid-transaction (silence; the bench's power model), refusals at once (low
  voltage) now and then
- pcb_intermittent: the frames it sends are corrupted (the ECR NAKs, the terminal repeats)
- network_unstable / firewall / ip_conflict: refused with the PAN but no acquirer code (the host
  did not answer)
- resources: refusals at once (memory full) and answers slower with every command
- data_loss (no keys), firmware_driver (kernel error): refused after the card was read, no
  acquirer code
- maintenance: refusals at once (diagnosis required)
- application: silence (the app crashes with the request and restarts) or a refusal after which
  it restarts
- issuer_referral: refused, the report carrying the acquirer's 01 (the host log has 39 = 01)
- operator_error: refused at the counter (abort key, wrong PIN: the card was read)
A request with the other delay code (answer at once) is answered at once with status 9
(handled, not verified) and runs no sale. Amounts are minor units, times seconds.
"""
from __future__ import annotations

import random
import time

from posbench.setup.cards import Card
from posbench.drivers.ecr.concert.link import TIMING
from posbench.drivers.ecr.concert.codec import (ACCEPTED, DELAY_AT_END, HANDLED, MODE_CARD, REFUSED, TYPE_DEBIT,
                                               Answer, Report, Request)
from posbench.drivers.transport.enq_ack import Link, LinkTiming
from posbench.core.errors import FrameError, MessageError, UnitError, UnitNotResponding
from posbench.setup.profile import Profile

from posbench.sim.unit.noisy_port import NoisyPort
from posbench.sim.devices.pty_port import PtyPort
from posbench.sim.unit.model import VirtualUnit
from posbench.sim.unit.front_end import PresentedCard, ReadsPresentedCards, UnitFrontEnd
from posbench.sim.unit.records import TerminalTiming, frame_error_rate

DEVICE = "virtual Concert terminal"
CARD_TIMEOUT_S = 3.0
"""Seconds a sale waits for a card before it is refused."""


class VirtualConcertTerminal(ReadsPresentedCards, UnitFrontEnd):
    """A Concert V2 terminal on a pty (``.port.path``; 9600 baud, any line setting: a pty has no
    parity). ``faults`` maps cause id to severity in (0, 1]; ``currency`` is ISO 4217 numeric;
    ``delay_at_end`` is the delay code it reads as "answer at the end of the sale"."""

    thread_name = "virtual-concert-terminal"

    def __init__(self, host_address: tuple[str, int], profile: Profile,
                 faults: dict[str, float] | None = None, seed: int = 0,
                 serial: str = "PT100-0000123", terminal_id: str = "52100123",
                 timing: TerminalTiming | None = None, currency: str = "978",
                 card_timeout_s: float = CARD_TIMEOUT_S, delay_at_end: str = DELAY_AT_END,
                 link_timing: LinkTiming | None = None):
        self.unit = VirtualUnit(host_address, profile, faults, seed, serial, terminal_id, timing)
        self.currency, self.card_timeout_s, self.delay_at_end = currency, card_timeout_s, delay_at_end
        self.rng = random.Random(seed + 29)
        """The terminal's own draws (its refusals), apart from the unit's."""
        self.port: NoisyPort = NoisyPort(PtyPort(), random.Random(seed + 7),
                                         frame_error_rate(self.sev("pcb_intermittent")),
                                         powered=lambda: self.unit.powered)
        self.link = Link(self.port, link_timing or TIMING, DEVICE)
        self.card = PresentedCard()
        self._alive = self.unit.watch_power()
        self._init_thread()

    # -- the serving loop -------------------------------------------------------------------
    def _idle(self) -> None:
        self.port.discard_input()

    def _close_transport(self) -> None:
        self.port.close()

    def _serve_next(self) -> None:
        unit = self.unit
        try:
            raw = self.link.receive(0.2, "waiting for the ECR")
            request = Request.decode(raw)
        except UnitNotResponding:
            return
        except (FrameError, MessageError):
            unit.err["err_comm"] += 1  # NAKed three times, or not a request: nothing is answered
            return
        unit.begin_command()
        if unit.app_crashes():
            unit.app_restart()
            return  # the app died with the request: no answer ever comes
        time.sleep(unit.latency())
        self._alive = unit.watch_power()
        answer = self._answer(request)
        if answer is not None and self._alive():
            try:
                self.link.send(answer.encode(), "answering the ECR")
            except UnitError:
                unit.err["err_comm"] += 1  # the ECR stopped listening
        unit.after_reply()

    # -- the sale ---------------------------------------------------------------------------
    def _answer(self, request: Request) -> Answer | None:
        """The answer to ``request``; None when the terminal has nothing to say (power lost)."""
        def answer(status: str, report: Report | None = None) -> Answer:
            return Answer(request.pos_number, status, request.amount, request.mode,
                          (report or Report()) if request.answer_flag == "1" else None, request.currency)

        if request.delay != self.delay_at_end:
            return answer(HANDLED)
        if request.currency != self.currency or request.mode != MODE_CARD \
                or request.transaction_type != TYPE_DEBIT or self._refuses():
            return answer(REFUSED)
        presented = self._wait_card(time.monotonic() + self.card_timeout_s)
        if presented is None:
            return answer(REFUSED) if self._alive() else None
        card, technology = presented
        read = self.unit.read_card(card.pan, card.expiry, technology)
        if not self._alive():
            return None
        if not read.ok:
            return answer(REFUSED)  # "carte illisible": no PAN to report
        if self._pin_fails():
            return answer(REFUSED, Report(card.pan, card.expiry, terminal_id=self.unit.terminal_id))
        result = self.unit.authorize(request.amount, card.pan, technology, self._alive)
        if not result.completed:
            return None
        report = Report(card.pan, card.expiry, result.stan, self.unit.terminal_id,
                        result.host_rc if result.host_answered else "")
        return answer(ACCEPTED if result.host_answered and result.host_rc == "00" else REFUSED, report)

    def _refuses(self) -> bool:
        """Does the terminal refuse at once, before asking for a card (low voltage, memory full,
        diagnosis required, the cashier's abort key)? Never when healthy."""
        sev, rng = self.sev, self.rng
        return any(s and rng.random() < base + slope * s for s, base, slope in (
            (sev("power_supply"), 0.0, 0.15), (sev("resources"), 0.1, 0.3),
            (sev("maintenance"), 0.1, 0.3), (sev("operator_error"), 0.05, 0.15)))

    def _pin_fails(self) -> bool:
        """With ``operator_error``, the cardholder runs out of PIN tries now and then."""
        s = self.sev("operator_error")
        return bool(s) and self.rng.random() < 0.05 + 0.15 * s

    def _wait_card(self, deadline: float) -> tuple[Card, str] | None:
        """The card presented before ``deadline`` (monotonic s); None on timeout or power loss."""
        while (presented := self.card.take()) is None:
            if time.monotonic() >= deadline or not self._alive() or self._stop.is_set():
                return None
            time.sleep(0.02)
        return presented


# -- what the virtual bench asks of this protocol's module (``posbench.drivers.registry.virtual``) --
SALE_TIMEOUT_S = 10.0
"""bench.toml's ``sale_timeout`` for this virtual terminal (seconds). A Concert request carries no
timeout (ZVT's BMP 01 cuts the PT's host wait short): the ECR waits for the terminal's worst case,
a queued reversal and the sale each given the unit's host timeout."""
TERMINAL_ID_PREFIX = "52"


def front_end(name: str, host_address: tuple[str, int], profile: Profile, faults: dict[str, float], *, seed: int,
              serial: str, terminal_id: str, timing: TerminalTiming, currency: str) -> VirtualConcertTerminal:
    """The virtual terminal of ``posbench sim --protocol NAME``."""
    return VirtualConcertTerminal(host_address, profile, faults, seed=seed, serial=serial,
                                  terminal_id=terminal_id, timing=timing, currency=currency)


def terminal_toml(term: VirtualConcertTerminal, currency: str) -> str:
    """The head of bench.toml's ``[terminal]`` for ``term``."""
    return (f'[terminal]\nprotocol = "concert"\nport = "{term.port.path}"\nbaudrate = 9600\n'
            f'line = "8N1"\ncurrency = "{currency}"\n')
