"""A Caisse-AP payment terminal behind the neutral ``posbench.drivers.terminal.Terminal``.

Caisse-AP tells very little: a sale's answer says done or not (AE), why not (AF: a reason code,
the issuer's field 39 where the terminal passes it, the message it displayed), the payment
application (CC: contact or contactless) and the authorisation number (AC). It has no serial
number, status enquiry, journal, counters or clock. Its status question here is the probe (a
request the terminal refuses at once, ``client.probe``): it tells a terminal that answers from
one that does not, and how long it takes. Everything else raises ``Unsupported``; the bench's
own instruments (supply, readers, network lab, host log) carry the diagnosis there.
"""
from __future__ import annotations

import time

from posbench.core.errors import UnitNotResponding
from posbench.core.masking import mask_pan
from posbench.drivers.terminal import FewAnswers, SaleResult, Status

from .client import PROBE_FIELDS, TCP_PORT, Answer, CaisseApClient
from .codec import APPLICATIONS, CONTACTLESS_APPLICATIONS
from .section import Section

CAISSE_AP_CAPABILITIES = frozenset({"status", "sale", "card_sale"})
POLL_S = 0.3
"""Seconds between probes while waiting for a terminal to come up."""
CASH_REGISTER_ID = "POSBENCH0001"
"""CJ: the ECR's 12-character identifier (the bench is the cash register)."""
HOST_DECISIONS = ("02", "04")
"""AF reasons that carry an issuer's decision (phone call = refer to issuer, refused)."""


def display_code(answer: Answer) -> str:
    """What the ECR shows: "00" for a sale done, the issuer's field 39 where the terminal passes
    it, else ``AFnn`` (the terminal's own refusal has no response code; written with its tag so
    it is never mistaken for an issuer's code such as 01)."""
    if answer.done:
        return "00"
    reason = answer.reason
    if reason is None:
        return "AF"
    return reason.field39 or f"AF{reason.code}"


def caisse_ap_acquirer_code(answer: Answer) -> str | None:
    """The issuer's field 39 the terminal passes on in AF; "" for a reason of the terminal's own
    without one (AF 00, 05-13: the host gave no answer to pass on); None where AF cannot say: a
    sale done (AE 10 has no AF), no AF at all, or a host's decision (AF 02 phone call, 04
    refused) the terminal passed on without its code."""
    reason = answer.reason
    if reason is None:
        return None
    if reason.field39:
        return reason.field39
    return None if reason.code in HOST_DECISIONS else ""


def sale_result(answer: Answer) -> SaleResult:
    """A Caisse-AP answer in the neutral form (the card number, AA, masked again to 6 / 4)."""
    reason = answer.reason
    field39 = reason.field39 if reason else ""
    host_code = "00" if answer.done else field39
    application = answer.fields.get("CC", "")
    details = {}
    if application:
        details["application"] = APPLICATIONS.get(application, application)
    if reason is not None:
        details["af"] = reason.code
        for name, value in (("message", reason.message), ("ff50", reason.ff50)):
            if value:
                details[name] = value
    why = ""
    if reason is not None and not (reason.code in HOST_DECISIONS and field39):
        why = reason.meaning + (f": {reason.message}" if reason.message else "")
    return SaleResult(
        display_code=display_code(answer), host_answered=bool(host_code), host_code=host_code, stan="",
        terminal_id="", pan=mask_pan(answer.fields.get("AA", "").replace("#", "*")),
        auth_code=answer.fields.get("AC", "").strip(), reason=why,
        result_code=int(reason.code) if reason is not None else (0 if answer.done else None),
        acquirer_code=caisse_ap_acquirer_code(answer),
        card_technology="contactless" if application in CONTACTLESS_APPLICATIONS else None,
        details=details)


class CaisseApPaymentTerminal(FewAnswers):
    """``Terminal`` over Caisse-AP at ``address`` ("host" or "host:port", port 8888 by default);
    ``model`` is what bench.toml says the unit is (Caisse-AP names none). Every question but the
    status probe and the sale raises ``Unsupported`` (``FewAnswers``). Times are seconds, amounts
    minor units."""

    protocol = "caisse-ap"
    capabilities = CAISSE_AP_CAPABILITIES

    def __init__(self, address: str, currency: str = "978", model: str | None = None,
                 reply_timeout: float = 3.0, sale_timeout: float = 40.0, boot_timeout: float = 30.0,
                 pos_number: str = "01", device: str = "terminal"):
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            host, port = address, str(TCP_PORT)
        self.client = CaisseApClient(host.strip("[]"), int(port), connect_timeout_s=min(3.0, reply_timeout),
                                     device=device)
        self.currency, self.model, self.pos_number, self.device = currency, model, pos_number, device
        self.reply_timeout, self.sale_timeout, self.boot_timeout = reply_timeout, sale_timeout, boot_timeout

    # -- life cycle (a connection per request: nothing to hold open) ---------------------------
    def open(self) -> "CaisseApPaymentTerminal":
        return self

    def close(self) -> None:
        """Nothing to close: every request closes its own connection."""

    def __enter__(self) -> "CaisseApPaymentTerminal":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float) -> float:
        """Probe until the terminal answers; seconds waited. Once it has been reached, a refused
        connection meanwhile is a unit still booting, not a wrong address."""
        start = time.monotonic()
        deadline = start + timeout
        self.client.tolerate_refusal = self.client.reached
        try:
            while True:
                try:
                    self.status()
                    return time.monotonic() - start
                except UnitNotResponding as exc:
                    if time.monotonic() + POLL_S >= deadline:
                        raise UnitNotResponding(self.device, "waiting for the terminal to answer",
                                                f"no answer within {timeout:g} s ({exc.detail})") from None
                    time.sleep(POLL_S)
        finally:
            self.client.tolerate_refusal = False

    # -- questions ----------------------------------------------------------------------------
    def _request(self, fields: dict[str, str], timeout: float, doing: str) -> Answer:
        return self.client.request({"CJ": CASH_REGISTER_ID, "CA": self.pos_number, **fields}, timeout, doing)

    def status(self) -> Status:
        """The probe (a debit request without amount, refused at once): a ``Status`` with no
        fields, since Caisse-AP reports none; raises when the terminal does not answer."""
        self._request({**PROBE_FIELDS, "CJ": CASH_REGISTER_ID, "CA": self.pos_number, "CE": self.currency},
                      self.reply_timeout, "asking for the terminal's status")
        return Status()

    def sale(self, amount: int, timeout: float | None = None) -> SaleResult:
        """A debit of ``amount`` (minor units), the answer at the end of the transaction (BA 0);
        the card must already be presented (the actuator's job)."""
        if not 0 < amount < 10**12:
            raise ValueError("amount out of range (1 .. 999999999999 minor units)")
        answer = self._request({"CB": f"{amount:02d}", "CD": "0", "CE": self.currency, "BA": "0"},
                               timeout or self.sale_timeout, f"a sale of {amount}")
        return sale_result(answer)

    def last_heard(self) -> float | None:
        """When the terminal last answered (``time.monotonic`` s); None before its first answer."""
        return self.client.heard_at

    def link_counters(self) -> dict[str, int]:
        """Requests the terminal hung up on ("hangups"): TCP has no link layer of its own to
        count, but a connection dropped mid-request is a broken link, not a silent unit."""
        return {"hangups": self.client.hangups}


CANNOT_TELL_APART = ("Caisse-AP answers a sale (done or not, an AF reason, the issuer's field 39) and nothing "
                     "else: no serial number, firmware, memory, counters, journal, clock, terminal status or "
                     "host check. `maintenance` (stale firmware, overdue care, a drifting clock) shows only on "
                     "its receipts and is not decided. `resources` is told only by answers that slow down "
                     "request after request (there is no memory figure or memory-full code), `data_loss` only "
                     "by sales refused as forbidden (AF 05, which a terminal also gives for an operation it is "
                     "not allowed), `firmware_driver` only by AF 10 (bad selection). A card the terminal could "
                     "not read is AF 07 (not ended) whatever the reader: the read path is the one the bench "
                     "presented the card on. A sale carries no trace number, so the host log is searched by "
                     "amount after the sale began. `operator_error` shows only in sales the cashier or "
                     "cardholder abandoned (AF 06, AF 08; wrong PINs before the try limit never reach the ECR): "
                     "at low severity a short run may see none. `power_supply` and `pcb_intermittent` rest on "
                     "the bench's supply trace and USB reader (a terminal that hangs up on requests is the "
                     "board, one that goes silent the app or the supply), `network_unstable` on the bench's "
                     "own echoes from the unit's LAN (the terminal cannot echo or check its host).")
"""What Caisse-AP is known not to tell apart, stated under its calibration table."""


def open_terminal(section: Section, model: str | None = None) -> CaisseApPaymentTerminal:
    """The driver of a validated ``[terminal]`` section, opened; ``model`` is ``[unit] model``."""
    if section.address is None:  # TerminalSection refuses this when bench.toml is read
        raise ValueError("the caisse-ap protocol needs an address")
    return CaisseApPaymentTerminal(section.address, section.currency, model, section.reply_timeout,
                                   section.sale_timeout, section.boot_timeout).open()


def capabilities(section: Section) -> frozenset[str]:
    return CAISSE_AP_CAPABILITIES
