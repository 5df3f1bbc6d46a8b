"""A Concert V2 payment terminal behind the neutral ``posbench.drivers.terminal.Terminal``.

Concert says very little: a sale and its status (accepted / refused), and in the report the
masked PAN of the card it read, the acquirer request's STAN and terminal id and the acquirer's
response code (see ``codec``). No identity, no status enquiry, no journal, no reboot, no
abort: those questions raise ``Unsupported`` and the tests asking them are listed as
unmeasured; the bench's own instruments carry the diagnosis there. A refusal without a PAN in
the report is a sale whose card the terminal did not read (``details["card_read"] == "no"``).
"""
from __future__ import annotations

import time

from posbench.drivers.terminal import FewAnswers, SaleResult
from posbench.core.errors import MessageError, UnitNotResponding

from .link import BAUDRATE, concert_link, concert_port, handshake
from .codec import DELAY_AT_END, STATUS_MEANING, Answer, Request
from .section import Section

CONCERT_CAPABILITIES = frozenset({"sale", "card_sale", "link_counters"})
POLL_S = 0.3
"""Seconds between handshakes while waiting for a terminal to come up."""


class ConcertPaymentTerminal(FewAnswers):
    """``Terminal`` over a Concert V2 link on ``url`` (anything ``serial_for_url`` opens); the
    questions Concert cannot answer raise ``Unsupported`` (``FewAnswers``)."""

    protocol = "concert"
    capabilities = CONCERT_CAPABILITIES

    def __init__(self, url: str, line: str = "8N1", currency: str = "978", baudrate: int = BAUDRATE,
                 pos_number: str = "01", delay_code: str = DELAY_AT_END, sale_timeout: float = 40.0,
                 boot_timeout: float = 30.0, device: str = "terminal"):
        """``delay_code``: the request's delay field asking for the answer at the end of the sale."""
        self.url, self.line, self.currency, self.pos_number = url, line, currency, pos_number
        self.delay_code, self.sale_timeout, self.boot_timeout, self.device = delay_code, sale_timeout, boot_timeout, device
        self.port = concert_port(url, line, baudrate, device)
        self.link = concert_link(self.port, device=device)

    def open(self) -> "ConcertPaymentTerminal":
        self.port.open()
        return self

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> "ConcertPaymentTerminal":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float) -> float:
        """Until the terminal answers ENQ with ACK (then EOT); seconds waited. Concert has no
        status command: a terminal that takes the handshake is taken as ready."""
        start = time.monotonic()
        while True:
            if handshake(self.port, min(self.link.timing.enq_wait, max(0.05, timeout))):
                return time.monotonic() - start
            if time.monotonic() - start >= timeout:
                raise UnitNotResponding(self.device, "waiting for the terminal",
                                        f"no ACK to ENQ within {timeout:g} s")
            time.sleep(POLL_S)

    def sale(self, amount: int, timeout: float | None = None) -> SaleResult:
        """One debit by card, the answer (with its report) at the end; the card must already be
        presented (the actuator's job). ``UnitNotResponding`` when no answer starts within
        ``timeout`` (default ``sale_timeout``) seconds."""
        request = Request(amount, self.pos_number, "1", currency=self.currency, delay=self.delay_code)
        self.link.send(request.encode(), f"sending a sale of {amount}")
        raw = self.link.receive(timeout or self.sale_timeout, f"waiting for the answer to a sale of {amount}")
        answer = Answer.decode(raw)
        if answer.pos_number != self.pos_number:
            raise MessageError(f"answer for POS {answer.pos_number}, the sale was sent as POS {self.pos_number}",
                               self.device, "reading a sale's answer")
        return sale_result(answer)

    def link_counters(self) -> dict[str, int]:
        return self.link.stats.snapshot()


def sale_result(answer: Answer) -> SaleResult:
    """A Concert answer in the neutral form. The code shown is the acquirer's where the report
    has it ("00" for an accepted sale without one); a refusal the terminal made itself shows ""
    and says so in ``reason``."""
    report = answer.report
    host_code = report.host_code if report is not None else ""
    if answer.accepted and not host_code:
        host_code = "00"
    read = report is not None and bool(report.pan)
    reason = ""
    if not answer.accepted and not host_code:
        reason = f"{STATUS_MEANING[answer.status]} by the terminal" + ("" if read else ", no card read")
    details = {"status": answer.status}
    if report is not None:
        details["card_read"] = "yes" if read else "no"
    # the report's field 39 is blank when the host did not answer; a short answer has no report
    return SaleResult(display_code=host_code, host_answered=bool(report and report.host_code), host_code=host_code,
                      acquirer_code=report.host_code if report is not None else None,
                      stan=report.stan if report else "", terminal_id=report.terminal_id if report else "",
                      pan=report.pan if report else "", auth_code="", reason=reason, details=details)


CANNOT_TELL_APART = ("Concert V2 answers a sale with a status (accepted / refused) and a report, nothing "
                     "else: no identity, status, journal, restart count, chip diagnostic, echo or host "
                     "check, and no reason for a refusal. posbench reads the report as masked PAN, STAN, "
                     "terminal id and the acquirer's code: a refusal without a PAN is a card the terminal "
                     "did not read (judged per read path), one with the acquirer's code is the issuer's "
                     "(the host log confirms it), one with a PAN and no acquirer code failed locally or on "
                     "the host link. So the readers, `issuer_referral`, the supply (`power_supply`), the "
                     "board (`pcb_intermittent`: garbled frames, the bench's USB reader dropping), "
                     "`application` (a unit silent on a clean link and a steady supply) and the network "
                     "(the bench's own probes) can be decided; `data_loss`, `firmware_driver`, "
                     "`maintenance`, `resources` and `operator_error` show only as refusals without a "
                     "reason and Concert cannot tell them apart: they are left undecided (unmeasured, "
                     "the verdict inconclusive or pass), never counted as healthy. A refusal at once (low "
                     "voltage, memory full, diagnosis required, the cashier's abort key) carries no PAN "
                     "either. A technician "
                     "presenting the cards sees the terminal refuse before the card is presented and says "
                     "so: that sale is read again and counted apart, not as a read of the path. A card "
                     "robot (the PT100 shape) presents at once and cannot tell: the refusal counts "
                     "against the read path of the card presented; when every path fails alike that is "
                     "taken as the terminal's refusal, not three readers, but when chance makes one or "
                     "two paths fail a reader is blamed (`operator_error` named `msr_head` on the PT100 "
                     "shape).")
"""What Concert V2 is known not to tell apart, stated under its calibration table."""


def open_terminal(section: Section, model: str | None = None) -> ConcertPaymentTerminal:
    """The driver of a validated ``[terminal]`` section, opened."""
    if section.port is None:  # TerminalSection refuses this when bench.toml is read
        raise ValueError("the concert protocol needs a port")
    return ConcertPaymentTerminal(section.port, section.line, section.currency, section.baudrate,
                                  section.pos_number, section.delay_code, section.sale_timeout,
                                  section.boot_timeout).open()


def capabilities(section: Section) -> frozenset[str]:
    return CONCERT_CAPABILITIES
