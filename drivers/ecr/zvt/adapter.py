"""A ZVT payment terminal behind the neutral ``posbench.drivers.terminal.Terminal`` interface.

ZVT tells little about a terminal's insides: its status enquiry gives a terminal status byte,
lock bits and a software version; a sale gives a result code, intermediate statuses and the card
technology; diagnosis checks the host link. No free memory, no journal, no chip diagnostic, no
echo timing: those questions raise ``Unsupported`` and the tests asking them are listed as
unmeasured. The bench's own instruments carry the diagnosis there.
"""
from __future__ import annotations

import time

from posbench.core.errors import UnitError
from posbench.drivers.terminal import FewAnswers, HostCheck, Identity, SaleResult, Status

from . import codes
from .results import ZvtResult
from .client import ZvtTerminal
from .section import Section

ZVT_CAPABILITIES = frozenset({"identity", "status", "terminal_status", "sale", "card_sale", "reversal",
                              "host_diagnosis", "link_counters", "reboot", "abort"})
TECHNOLOGY = {0: "magstripe", 1: "chip", 2: "contactless"}
"""TLV 1F12 card technology -> the read path it names."""
POLL_S = 0.3
"""Seconds between status enquiries while waiting for a terminal to come up."""


def display_code(result_code: int) -> str:
    """The code a technician sees: host codes (01-63, sent binary) as two decimal digits, the
    terminal's own codes (64-FF) as two hex digits, as ZVT documentation writes them."""
    return f"{result_code:02d}" if codes.is_host_code(result_code) or result_code == 0 else f"{result_code:02X}"


class ZvtPaymentTerminal(FewAnswers):
    """``Terminal`` over a ``ZvtTerminal``; ``model`` is what bench.toml says the unit is (ZVT has
    no model field of its own; the software version is the firmware). What ZVT cannot answer
    (journal, chip diagnostic, echo timing) raises ``Unsupported`` (``FewAnswers``)."""

    protocol = "zvt"
    capabilities = ZVT_CAPABILITIES

    def __init__(self, url: str, password: str = "123456", currency: str = "978", baudrate: int = 9600,
                 model: str | None = None, sale_timeout: float = 40.0, boot_timeout: float = 30.0,
                 device: str = "terminal"):
        self.url, self.password, self.currency, self.baudrate = url, password, currency, baudrate
        self.model, self.sale_timeout, self.boot_timeout, self.device = model, sale_timeout, boot_timeout, device
        if url.startswith("tcp://"):  # no link layer of its own over TCP: nothing to count
            self.capabilities = ZVT_CAPABILITIES - {"link_counters"}
        self.driver: ZvtTerminal | None = None
        self._registered = False
        self._last_receipt: int | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def open(self) -> "ZvtPaymentTerminal":
        if self.driver is None:
            self.driver = ZvtTerminal.open_url(self.url, baudrate=self.baudrate, password=self.password,
                                               currency=int(self.currency), device=self.device)
        return self

    def close(self) -> None:
        if self.driver is not None:
            self.driver.close()
            self.driver = None
            self._registered = False

    def __enter__(self) -> "ZvtPaymentTerminal":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _zvt(self) -> ZvtTerminal:
        driver = self.open().driver
        assert driver is not None  # open() sets it
        return driver

    def _ensure_registered(self) -> None:
        """Register once (after every restart the PT needs it again: ``wait_ready`` resets it)."""
        if not self._registered:
            self._zvt().register()
            self._registered = True

    def wait_ready(self, timeout: float) -> float:
        """Until the PT answers a status enquiry (then register); seconds waited."""
        waited = self._zvt().wait_ready(timeout, POLL_S)
        self._registered = False
        self._ensure_registered()
        return waited

    # -- questions ----------------------------------------------------------------------------
    def _enquiry(self) -> ZvtResult:
        return self._zvt().status_enquiry()

    def identify(self) -> Identity:
        """Serial number (TLV 1F42) and software version from a status enquiry."""
        result = self._enquiry()
        version = result.software_version.strip()
        parts = version.split()
        firmware = parts[-1] if parts else ""
        model = self.model or (parts[0] if len(parts) > 1 else "")
        if not result.serial_number:
            raise UnitError(self.device, "identifying the unit", "its status enquiry carries no serial number (TLV 1F42)")
        return Identity(model=model, serial=result.serial_number, firmware=firmware, components={})

    def status(self) -> Status:
        result = self._enquiry()
        return Status(terminal_status=result.terminal_status, terminal_status_text=result.terminal_status_meaning,
                      locks=tuple(result.locks))

    def sale(self, amount: int, timeout: float | None = None) -> SaleResult:
        """One authorization; the card must already be presented (the actuator's job)."""
        self._ensure_registered()
        driver = self._zvt()
        saved = driver.t3_s, driver.t4_s
        limit = timeout or self.sale_timeout  # a PT that went dark mid-sale is not waited on for T4
        driver.t3_s, driver.t4_s = min(saved[0], limit), min(saved[1], limit)
        try:
            result = driver.authorize(amount)
        finally:
            driver.t3_s, driver.t4_s = saved
        if not result.aborted and result.receipt_no is not None:
            self._last_receipt = result.receipt_no
        return sale_result(result)

    def reverse_last(self) -> SaleResult:
        if self._last_receipt is None:
            raise UnitError(self.device, "reversing the last sale", "no approved sale with a receipt number yet")
        self._ensure_registered()
        return sale_result(self._zvt().reverse(self._last_receipt))

    def host_check(self) -> HostCheck:
        start = time.monotonic()
        self._ensure_registered()
        result = self._zvt().diagnosis()
        ok = not result.aborted and result.result_code == 0
        return HostCheck(ok, result.result_code, "" if ok else result.result_meaning, time.monotonic() - start)

    def last_heard(self) -> float | None:
        """When the PT last sent a message (``time.monotonic`` s); None before its first."""
        return self.driver.heard_at if self.driver is not None else None

    def link_counters(self) -> dict[str, int]:
        stats = getattr(self._zvt().transport, "stats", None)
        return stats.snapshot() if stats is not None else {}

    def reboot(self) -> None:
        self._zvt().reset()
        self._registered = False
        time.sleep(POLL_S)  # the PT goes down after confirming; do not catch it still up
        self.wait_ready(self.boot_timeout)

    def abort(self) -> None:
        self._zvt().abort()


def acquirer_code(result: ZvtResult) -> str | None:
    """The authorisation system's code as the PT reports it: BMP A0 (result-code-AS) when sent;
    else a result code 01-63, which ZVT reserves for codes from the network operator /
    authorisation system [P15 rev. 13.08, 10]; "" for the PT's own codes (64-FF: the host gave
    none); None for a completion without A0 (approved online or by the PT's own limits: the
    report does not say)."""
    if result.host_result is not None:
        return f"{result.host_result:02d}"
    rc = result.result_code
    if codes.is_host_code(rc):
        return f"{rc:02d}"
    return "" if rc else None


def sale_result(result: ZvtResult) -> SaleResult:
    """A ZVT payment's outcome in the neutral form (card data already masked by the driver)."""
    rc = result.result_code
    host = result.host_result
    host_code = f"{host:02d}" if host is not None else (f"{rc:02d}" if rc and codes.is_host_code(rc) else "")
    if not result.aborted and rc == 0 and host is None:
        host_code = "00"  # a completed payment was authorised (online or by the PT's own limits)
    reason = "" if (rc == 0 or codes.is_host_code(rc)) else result.result_meaning
    details = {}
    if result.contactless_error is not None:
        details["contactless_error"] = result.contactless_error_meaning or f"{result.contactless_error:02X}"
    if result.vendor_error_code:
        details["vendor_error"] = f"{result.vendor_error_code} {result.vendor_error_text}".strip()
    return SaleResult(
        display_code=display_code(rc), host_answered=bool(host_code), host_code=host_code,
        acquirer_code=acquirer_code(result),
        stan=f"{result.trace:06d}" if result.trace is not None else "", terminal_id=result.terminal_id,
        pan=result.pan, auth_code="", reason=reason, result_code=rc,
        card_technology=TECHNOLOGY.get(result.card_technology) if result.card_technology is not None else None,
        intermediates=tuple(i.code for i in result.intermediate), details=details)


CANNOT_TELL_APART = ("On a serial link a garbled frame and a silent PT look alike to the ECR (no ACK in time). "
                     "posbench tells `pcb_intermittent` from `application` by what the link counted meanwhile: "
                     "a no-answer while the link NAKed or skipped damaged bytes, and frames that stay NAKed, "
                     "point at the board; a no-answer on a clean link at the application. A PT whose link "
                     "damages nothing that the bench can see (a board fault away from its UART) is told "
                     "only by the bench's own readers dropping on a steady supply. With `chip_contacts` at "
                     "severity 1, sales fail before they go online, so a `network_unstable` beside it is "
                     "seen only by the bench's echoes and the PT's host checks (missed in one pair run).")
"""What ZVT is known not to tell apart, stated under its calibration table."""


def open_terminal(section: Section, model: str | None = None) -> ZvtPaymentTerminal:
    """The driver of a validated ``[terminal]`` section, opened; ``model`` is ``[unit] model`` (a PT
    reports none)."""
    return ZvtPaymentTerminal(section.url, section.password, section.currency, section.baudrate, model,
                              section.sale_timeout, section.boot_timeout).open()


def capabilities(section: Section) -> frozenset[str]:
    """What the driver can answer, without opening it (ZVT over TCP has no link layer to count)."""
    return frozenset(ZvtPaymentTerminal(section.url).capabilities)
