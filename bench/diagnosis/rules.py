"""Rules that turn what a terminal reported into evidence.

Protocol rules: what a code the unit reported (an agent failure reason, a ZVT result code,
terminal status or lock bit, a Caisse-AP AF reason) says about the causes of code 01; tests call
them and stay free of cause tables. The bench rules, which read a whole run, are in
``posbench.diagnosis.bench_rules``.
"""
from __future__ import annotations

from posbench.spec.evidence import Recorder

# -- protocol rules -----------------------------------------------------------------------------
AGENT_REASON_CAUSE = {"no_keys": "data_loss", "no_config": "data_loss", "app_restart": "application",
                      "kernel_error": "firmware_driver"}
"""Local failure reasons the agent reports for a sale it failed itself, and the cause each points to."""

READ_PATH_CAUSE = {"magstripe": "msr_head", "chip": "chip_contacts", "contactless": "nfc_antenna"}
"""A card read failure points at the reader of the technology that read it."""

ZVT_RESULT_CAUSE: dict[int, tuple[str, str]] = {
    **{rc: ("chip_contacts", "moderate") for rc in (0x72, 0x7B, 0x7C, 0x7E, 0xC0, 0xDD, 0xDE, 0xE3)},
    **{rc: ("pcb_intermittent", "weak") for rc in (0x89, 0xED, 0xFC, 0xE2)},
    0xBF: ("power_supply", "moderate"),
    **{rc: ("firmware_driver", "moderate") for rc in (0x9A, 0xC4, 0xFD)},
    **{rc: ("application", "moderate") for rc in (0x83, 0xFE, 0xFF)},
    **{rc: ("resources", "strong") for rc in (0xB1, 0xB2, 0x6A)},
    **{rc: ("network_unstable", "weak") for rc in (0x7D, 0x9B, 0xA0, 0xA1, 0xA3)},
    **{rc: ("maintenance", "moderate") for rc in (0xC2, 0xF0, 0xE0, 0xCC, 0x78, 0x79)},
    **{rc: ("data_loss", "strong") for rc in (0x85, 0x74, 0xE4, 0xF6, 0xFB)},
    **{rc: ("operator_error", "weak") for rc in (0xC3, 0xC8, 0xDC)},
}
"""ZVT result codes of a failed payment and the cause each points to (reference map, calibrated
in docs/diagnosis.md). Card read errors (64, 65, 73) depend on the card technology and 6C on the
intermediate statuses before it: ``zvt_failure_cause`` decides those."""

ZVT_READ_ERRORS = (0x64, 0x65, 0x66, 0x73)
"""Result codes of a card that could not be read; the technology (TLV 1F12) says which reader."""
ZVT_WAITING_FOR_HOST = 0x04
"""Intermediate status "waiting for host": a 6C after it is the host link timing out."""
ZVT_PIN_MISTAKES = (0x15, 0x18)
"""Intermediate statuses "incorrect PIN" and "PIN try limit exceeded": the cardholder's doing."""

ZVT_TERMINAL_STATUS_CAUSE: dict[int, tuple[str, str]] = {
    0x51: ("data_loss", "strong"), 0xE4: ("data_loss", "strong"), 0xF6: ("data_loss", "strong"),
    0x62: ("maintenance", "moderate"), 0xC2: ("maintenance", "moderate"), 0xF0: ("maintenance", "weak"),
    0xB1: ("resources", "strong"), 0xB2: ("resources", "strong"),
    0xBF: ("power_supply", "moderate"),
    0xDF: ("pcb_intermittent", "weak"), 0xE2: ("pcb_intermittent", "weak"),
    0xC0: ("chip_contacts", "moderate"), 0xE1: ("chip_contacts", "weak"),
}
"""ZVT terminal status bytes (status enquiry) and the cause each points to."""

ZVT_LOCK_CAUSE: dict[str, tuple[str, str]] = {
    "transaction log defective": ("data_loss", "strong"),
    "initialisation lock": ("data_loss", "moderate"),
    "low battery power": ("power_supply", "moderate"),
    "contactless reader not initialised": ("nfc_antenna", "strong"),
    "card reader not found": ("pcb_intermittent", "moderate"),
    "diagnosis lock": ("maintenance", "moderate"),
}
"""ZVT lock bits (TLV 1F55) and the cause each points to."""


ZVT_SALE_CAUSES = tuple(sorted({cause for cause, _ in ZVT_RESULT_CAUSE.values()} | set(READ_PATH_CAUSE.values())
                               | {"operator_error", "network_unstable"}))
"""Causes a ZVT sale's result code can speak to."""
ZVT_STATUS_CAUSES = tuple(sorted({c for c, _ in ZVT_TERMINAL_STATUS_CAUSE.values()} | {c for c, _ in ZVT_LOCK_CAUSE.values()}))
"""Causes a ZVT terminal status byte or lock bit can speak to."""


def zvt_failure_cause(result_code: int, technology: str | None, intermediates: tuple[int, ...]) -> tuple[str, str] | None:
    """The cause a failed ZVT payment points to, with its strength, or None (an issuer's answer,
    a healthy refusal, or a code that says nothing about the unit)."""
    if result_code in ZVT_READ_ERRORS:
        return (READ_PATH_CAUSE[technology], "moderate") if technology in READ_PATH_CAUSE else None
    if result_code == 0x6C:
        if any(code in ZVT_PIN_MISTAKES for code in intermediates):
            return "operator_error", "moderate"
        if ZVT_WAITING_FOR_HOST in intermediates:
            return "network_unstable", "weak"
        return "operator_error", "weak"  # aborted at the counter (the abort key, or no card in time)
    return ZVT_RESULT_CAUSE.get(result_code)


CAISSE_AP_NOT_ENDED = 7
"""AF 07 "not ended": the terminal gave up on the card before going online (a card it could not
read; its message, field 44, says how). Caisse-AP names no reason per reader: the read path is
the one the bench presented the card on (or CC's contactless application)."""
CAISSE_AP_REASON_CAUSE: dict[int, tuple[str, str]] = {
    0: ("application", "moderate"),         # unknown: the terminal cannot say what became of the sale
    5: ("data_loss", "moderate"),           # forbidden: the terminal will not pay (keys, merchant record)
    10: ("firmware_driver", "moderate"),    # bad selection: the kernel could not select the application
    11: ("network_unstable", "weak"),       # acquirer abandon: the host did not answer
    6: ("operator_error", "moderate"),      # abandon: the abort key, the PIN try limit
    8: ("operator_error", "weak"),          # no card or PIN in time
}
"""Caisse-AP AF reasons of a sale the terminal did not do, and the cause each points to. 02
(phone call) and 04 (refused) carry the issuer's decision (field 39); 09, 12 and 13 answer a
request the bench got wrong."""
CAISSE_AP_SALE_CAUSES = tuple(sorted({c for c, _ in CAISSE_AP_REASON_CAUSE.values()} | set(READ_PATH_CAUSE.values())))
"""Causes a Caisse-AP sale's AF reason can speak to."""

SALE_CAUSES = {"agent": tuple(sorted(set(AGENT_REASON_CAUSE.values()))), "zvt": ZVT_SALE_CAUSES,
               "caisse-ap": CAISSE_AP_SALE_CAUSES, "concert": ()}
"""Causes a sale the unit failed itself can speak to, per protocol. A Concert refusal gives no
reason (status 7): it speaks to no cause by itself; the read-path sales and the host log do."""


def sale_failure_cause(protocol: str, sale) -> tuple[str, str] | None:
    """What a sale the unit failed itself (``posbench.drivers.terminal.SaleResult``) points to."""
    if protocol == "zvt" and sale.result_code is not None:
        return zvt_failure_cause(sale.result_code, sale.card_technology, sale.intermediates)
    if protocol == "caisse-ap":
        if sale.result_code == CAISSE_AP_NOT_ENDED:
            return (READ_PATH_CAUSE[sale.card_technology], "moderate") if sale.card_technology in READ_PATH_CAUSE \
                else None
        return CAISSE_AP_REASON_CAUSE.get(sale.result_code) if sale.result_code is not None else None
    if protocol == "concert":
        return None  # a refusal without a reason
    cause = AGENT_REASON_CAUSE.get(sale.reason)
    return (cause, "moderate") if cause else None


def sale_read_failure(protocol: str, sale, technology: str) -> str:
    """Why a sale did not read the card presented by ``technology`` ("" when it read it): the
    protocol's code with the technology the terminal reported (else the one presented). A
    refusal for another reason (host, keys) is no read error, nor is an abort before any card
    was read (ZVT 6C, Caisse-AP AF 08): a cashier's abort or a missed presentation is no reader
    fault. Concert has no result code: a refusal whose report carries no PAN is a card not read."""
    if protocol == "concert":
        return f"refused_unread_{technology}" if sale.details.get("card_read") == "no" and sale.display_code != "00" \
            else ""
    if sale.result_code is None or sale.result_code == 0 or sale.display_code == "00":
        return ""
    tech = sale.card_technology or technology
    if protocol == "caisse-ap":
        return f"af07_{tech}" if sale.result_code == CAISSE_AP_NOT_ENDED else ""
    if sale.result_code in ZVT_READ_ERRORS or sale.result_code in (0x72, 0xE2) or "contactless_error" in sale.details:
        return f"rc_{sale.result_code:02X}_{tech}" + ("_rf" if "contactless_error" in sale.details else "")
    return ""


def judge_terminal_status(record: Recorder, protocol: str, status) -> None:
    """A terminal status code and lock bits (``posbench.drivers.terminal.Status``) as the declared
    measurements ``terminal_status`` and ``locks``, and the evidence each code gives."""
    code = status.terminal_status
    if code is None:
        record.unmeasured("terminal_status", "the terminal's status enquiry gave no terminal status byte")
    else:
        record.measure("terminal_status", f"{code:02X}",
                       note=f"the terminal reports status {code:02X}: {status.terminal_status_text}")
        if (found := ZVT_TERMINAL_STATUS_CAUSE.get(code) if protocol == "zvt" else None):
            record.evidence(found[0], found[1], f"the terminal reports status {code:02X}: "
                            f"{status.terminal_status_text}", measurement="terminal_status",
                            value=f"{code:02X}", limit=str(record.limit("terminal_status")))
    record.measure("locks", len(status.locks), note="locks set: " + (", ".join(status.locks) or "none"))
    for lock in status.locks:
        if (found := ZVT_LOCK_CAUSE.get(lock) if protocol == "zvt" else None):
            record.evidence(found[0], found[1], f"the terminal has the lock \"{lock}\" set",
                            measurement="locks", value=lock, limit="none set")
