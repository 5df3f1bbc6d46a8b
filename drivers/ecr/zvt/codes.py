"""ZVT code tables with their meanings (PA00P015 rev. 13.08, chapters 9.4, 10, 11 and 3.7).

Public API
  RESULT_CODES          result code (BMP 27, 06 1E, 84 xx) -> meaning; 01-63 are host codes
  result_meaning(code)  meaning of any result code byte, host codes included
  is_host_code(code)    True for 0x01..0x63 (codes passed through from the host, binary 1..99)
  TERMINAL_STATUS       terminal status byte (status enquiry completion) -> meaning
  terminal_status_meaning(code)
  INTERMEDIATE_STATUS   intermediate status byte (04 FF) -> meaning
  intermediate_meaning(code)
  CARD_TECHNOLOGY       TLV 1F12 value -> "magstripe" / "chip" / "contactless"
  CONTACTLESS_ERRORS    TLV 1F47 value -> meaning
  DEVICE_STATE          TLV 1F43 value -> meaning
  LOCK_BITS             TLV 1F55 (2 bytes) bit -> lock name; bit 15 = byte 1 b7, bit 0 = byte 2 b0
  lock_names(raw)       names of the locks set in a 1F55 value, most significant first
  REGISTRATION_STATUS_BITS  BMP 19 of the registration completion: bit -> meaning
  registration_status_names(byte)  meanings of the bits set in that byte
  CARD_TYPES            ZVT card-type ID (BMP 8A, TLV 41) -> card name, IDs in decimal
  CARD_TYPE_IN_TLV      8A value 0xFF: the ID is above 255 and travels in TLV tag 41
  SCHEME_CARD_TYPES     card scheme (brand) name -> ZVT card-type ID
  card_type_name(code)  name of a card-type ID ("unknown card type 123")
  meaning(table, code, kind)  lookup that never fails ("unknown <kind> 0xNN")

Host codes: the spec numbers them "01-63 (hex) = 1-99 (decimal)", so they travel binary
(host code 51 arrives as 0x33); this settles the reference's *uncertain* note. Written by hand:
no library holds ZVT's tables.
"""
from __future__ import annotations

import re
from typing import Mapping

from posbench.drivers.terminal import READ_PATH_CAUSE, SaleResult

RESULT_CODES: dict[int, str] = {
    0x00: "no error",
    0x64: "card not readable (LRC/parity error)",
    0x65: "card data not present (neither track data nor chip found)",
    0x66: "processing error (also card reader mechanism problems)",
    0x67: "function not permitted for ec and Maestro cards",
    0x68: "function not permitted for credit and tank cards",
    0x6A: "turnover file full",
    0x6B: "function deactivated (PT not registered)",
    0x6C: "abort via timeout or abort key",
    0x6E: "card in blocked list",
    0x6F: "wrong currency",
    0x71: "credit not sufficient (chip card)",
    0x72: "chip error",
    0x73: "card data incorrect (e.g. country key check, checksum error)",
    0x74: "DUKPT engine exhausted",
    0x75: "text not authentic",
    0x76: "PAN not in white list",
    0x77: "end-of-day batch not possible",
    0x78: "card expired",
    0x79: "card not yet valid",
    0x7A: "card unknown",
    0x7B: "fallback to magnetic stripe for girocard not possible",
    0x7C: "fallback to magnetic stripe not possible",
    0x7D: "communication error (communication module does not answer or is not present)",
    0x7E: "fallback to magnetic stripe not possible, debit advice possible",
    0x83: "function not possible",
    0x85: "key missing",
    0x89: "PIN pad defective",
    0x9A: "ZVT protocol error",
    0x9B: "error from dial-up / communication fault",
    0x9C: "please wait",
    0xA0: "receiver not ready",
    0xA1: "remote station does not respond",
    0xA3: "no connection",
    0xA4: "submission of GeldKarte not possible",
    0xA5: "function not allowed due to PCI-DSS/P2PE rules",
    0xB1: "memory full",
    0xB2: "merchant journal full",
    0xB4: "already reversed",
    0xB5: "reversal not possible",
    0xB7: "pre-authorisation incorrect (amount too high) or amount wrong",
    0xB8: "error pre-authorisation",
    0xBF: "voltage supply too low (external power supply)",
    0xC0: "card locking mechanism defective",
    0xC1: "merchant card locked",
    0xC2: "diagnosis required",
    0xC3: "maximum amount exceeded",
    0xC4: "card profile invalid, new card profiles must be loaded",
    0xC5: "payment method not supported",
    0xC6: "currency not applicable",
    0xC8: "amount too small",
    0xC9: "max. transaction amount too small",
    0xCB: "function only allowed in EURO",
    0xCC: "printer not ready",
    0xCD: "cashback not possible",
    0xD2: "function not permitted for service cards / bank customer cards",
    0xDC: "card inserted",
    0xDD: "error during card eject (motor reader)",
    0xDE: "error during card insertion (motor reader)",
    0xE0: "remote maintenance activated",
    0xE2: "card reader does not answer / card reader defective",
    0xE3: "shutter closed",
    0xE4: "terminal activation required",
    0xE7: "min. one goods group not found",
    0xE8: "no goods groups table loaded",
    0xE9: "restriction code not permitted",
    0xEA: "card code not permitted",
    0xEB: "function not executable (PIN algorithm unknown)",
    0xEC: "PIN processing not possible",
    0xED: "PIN pad defective",
    0xF0: "open end-of-day batch present",
    0xF1: "ec-cash/Maestro offline error",
    0xF5: "OPT error",
    0xF6: "OPT data not available (OPT personalisation required)",
    0xFA: "error transmitting offline transactions (clearing error)",
    0xFB: "turnover data set defective",
    0xFC: "necessary device not present or defective",
    0xFD: "baud rate not supported",
    0xFE: "register unknown",
    0xFF: "system error (details in TLV 1F16 / 1F17)",
}
"""Result codes other than the host codes 01-63 [P15 10]."""

TERMINAL_STATUS: dict[int, str] = {
    0x00: "PT ready",
    0x51: "initialisation required",
    0x62: "date/time incorrect",
    0x9C: "please wait (e.g. software update still running)",
    0x9D: "partial issue of goods",
    0xB1: "memory full",
    0xB2: "merchant journal full",
    0xBF: "voltage supply too low (external power supply)",
    0xC0: "card locking mechanism defect",
    0xC1: "merchant card locked",
    0xC2: "diagnosis required",
    0xC4: "card profile invalid, new card profiles must be loaded",
    0xCC: "printer not ready",
    0xDC: "card inserted",
    0xDF: "out of order",
    0xE0: "remote maintenance activated",
    0xE1: "card not completely removed",
    0xE2: "card reader does not answer / card reader defective",
    0xE3: "shutter closed",
    0xE4: "terminal activation required",
    0xF0: "reconciliation required",
    0xF6: "OPT data not available (OPT personalisation required)",
}
"""Terminal status codes [P15 11]."""

_INTERMEDIATE_BASE: dict[int, str] = {
    0x00: "PT is waiting for amount confirmation",
    0x01: "please watch PIN pad",
    0x02: "please watch PIN pad",
    0x03: "not accepted",
    0x04: "PT is waiting for response from FEP (host)",
    0x05: "PT is sending auto-reversal",
    0x06: "PT is sending post-bookings",
    0x07: "card not admitted",
    0x08: "card unknown / undefined",
    0x09: "expired card",
    0x0A: "insert card",
    0x0B: "please remove card",
    0x0C: "card not readable",
    0x0D: "processing error",
    0x0E: "please wait",
    0x0F: "PT is commencing an automatic end-of-day batch",
    0x10: "invalid card",
    0x11: "balance display",
    0x12: "system malfunction",
    0x13: "payment not possible",
    0x14: "credit not sufficient",
    0x15: "incorrect PIN",
    0x16: "limit not sufficient",
    0x17: "please wait",
    0x18: "PIN try limit exceeded",
    0x19: "card data incorrect",
    0x1A: "service mode",
    0x1B: "approved, please fill up",
    0x1C: "approved, please take goods",
    0x1D: "declined",
    0x26: "PT is waiting for input of the mobile number",
    0x27: "PT is waiting for repeat of mobile number",
}


def _intermediate_table() -> dict[int, str]:
    table = dict(_INTERMEDIATE_BASE)
    # 41..67 repeat 01..27 with "please remove card" [P15 3.7]; 4A has no text in the spec.
    for code, text in _INTERMEDIATE_BASE.items():
        if code and code + 0x40 != 0x4A:
            table[code + 0x40] = f"{text}; please remove card"
    table.update({
        0x28: "currency selection, please wait",
        0x29: "language selection, please wait",
        0x2A: "for loading please insert card",
        0x2B: "emergency transaction, please wait",
        0x2C: "application selection, please wait",
        0x68: "PT has detected customer card insertion",
        0x69: "please select DCC",
        0xC7: "PT is waiting for input of the mileage",
        0xC8: "PT is waiting for cashier",
        0xC9: "PT is commencing an automatic diagnosis",
        0xCA: "PT is commencing an automatic initialisation",
        0xCB: "merchant journal full",
        0xCC: "debit advice not possible, PIN required",
        0xD2: "connecting dial-up",
        0xD3: "dial-up connection made",
        0xE0: "PT is waiting for application selection",
        0xE1: "PT is waiting for language selection",
        0xE2: "PT requests a cleaning card",
        0xF1: "offline",
        0xF2: "online",
        0xF3: "offline transaction",
        0xFF: "no ZVT status code matches (text in TLV 24 / 07)",
    })
    table[0x4B] = "please remove card"
    return table


INTERMEDIATE_STATUS: dict[int, str] = _intermediate_table()
"""Intermediate status bytes of 04 FF [P15 3.7 table 17]."""

CARD_TECHNOLOGY: dict[int, str] = {0x00: "magstripe", 0x01: "chip", 0x02: "contactless"}
"""TLV 1F12 card technology [P15 9.4, p.160]."""

CONTACTLESS_ERRORS: dict[int, str] = {
    0x01: "contactless level 1 transmission error",
    0x02: "contactless level 1 protocol error",
    0x03: "contactless level 1 timeout",
    0x04: "contactless collision detected",
    0x05: "command not allowed due to whitelist check",
    0xFF: "unknown card reader error (details in 1F16 / 1F17)",
}
"""TLV 1F47 card read error code [P15 9.4, p.165]."""

DEVICE_STATE: dict[int, str] = {
    0x00: "ready", 0x01: "initialisation needed", 0x02: "no keys loaded", 0x03: "fraud",
}
"""TLV 1F43 device state [P15 9.4.12]."""

LOCK_BITS: dict[int, str] = {
    15: "reconciliation with closure lock",
    14: "initialisation lock",
    13: "diagnosis lock",
    12: "service lock",
    11: "out of order",
    10: "printer lock",
    9: "terminal start up needed",
    8: "secure module changed",
    7: "transaction log defective",
    6: "card reader not found",
    5: "card still inserted",
    4: "secure link not ready",
    3: "activation needed",
    2: "low battery power",
    1: "contactless reader not initialised",
    0: "MDB not ready",
}
"""TLV 1F55 terminal locks, a 2-byte bit field [P15 9.4.12.1, p.179]: bit 15..8 are byte 1
b7..b0, bit 7..0 byte 2 b7..b0. Every position is from the spec's table, none assumed."""

CARD_TYPES: dict[int, str] = {
    1: "DouglasCard", 2: "ec-card (obsolete)", 3: "Miles&More", 4: "(RFU)", 5: "girocard",
    6: "Mastercard", 7: "EAPS", 8: "American Express",
    9: "Debit advice based on track 2 or EMV chip (e.g. EuroELV)", 10: "Visa", 11: "VISA electron",
    12: "Diners", 13: "V PAY", 14: "JCB", 15: "REKA Card", 16: "Esso fleet-card",
    17: "Happiness Cards", 18: "DKV/SVG", 19: "Transact Geschenkkarte", 20: "Shell fleet-card",
    21: "Payeasy", 22: "DEA", 23: "boncard POINTS", 24: "Leaseplan", 25: "boncard PAY", 26: "OK",
    27: "Klarmobil", 28: "UTA", 29: "Mobile World",
    30: "Geldkarte (formerly also: ec-cash with Chip)", 31: "Ukash", 32: "Hessol", 33: "Wallie",
    34: "Lomo", 35: "MyOne", 36: "Woehrl", 37: "Gutscheinkarte DOUGLAS Gruppe", 38: "Breuninger",
    39: "ABO Card", 40: "BSW", 41: "BonusCard", 42: "Comfort Card", 43: "CCC Commit Card",
    44: "YESSS", 45: "DataStandards (DAS)", 46: "Maestro (formerly: edc)", 47: "GiftCard",
    48: "Easycard", 49: "Jelmoli Card", 50: "CitiShopping", 51: "J-Geschenkkarte",
    52: "EuroReal (TeleCash)", 53: "Jubin", 54: "Hertie", 55: "ManorCard", 56: "Goertz",
    57: "Power Card", 58: "Lafayette", 59: "Supercard plus", 60: "Heinemann", 61: "SwissBonus Card",
    62: "Harley Davidson", 63: "SwissCadeau", 64: "Shopping Plus", 65: "Tetora",
    66: "Family Dent Card", 67: "WIRcard", 68: "Karstadt Club", 69: "Postcard (Postfinance Card)",
    70: "Hagebau Partner Card", 71: "Lebara", 72: "Lycamobile", 73: "GT Mobile", 74: "HP",
    75: "epay Gutscheinkarte", 76: "IKEA Family Plus", 77: "Karstadt Bonus Card",
    78: "Koch Card Plus", 79: "Yapital", 80: "XTRA Card", 81: "Pay-At-Match", 82: "Optimus",
    83: "Lunch-Check Card", 84: "VW Club", 85: "Tankstellen-Netz-Deutschland", 86: "Scandlines",
    87: "Bancontact-MisterCash", 88: "Cast Customer-Card, Payment-function", 89: "PAYBACK PAY",
    90: "Cast Customer-Card, Bonus-capture", 91: "ValueMaster", 92: "ECMcard",
    93: "Orlen Flottenkarte", 94: "Solitair Card", 95: "Orlen Star-Card", 96: "Blauworld",
    97: "ALIPAY", 98: "REA Gutschein- und Bonuskarte", 99: "Roth", 100: "Roth TP", 101: "EuroWAG",
    102: "Porsche-card", 103: "ARBÖ-card", 104: "ÖAMTC-card", 105: "Netto-App", 106: "GroupCard",
    107: "ALIPAY @POS-Model 2", 108: "Cheque Dejeuner / UP Slovensko", 109: "Callio Gastro",
    110: "DOXX", 111: "Instant Payment", 112: "AVIA PrePaid Karte", 127: "AirPlus",
    137: "Hornbach Profi", 138: "Hornbach Projektwelt", 142: "Weat fleet-card",
    144: "GDB fleet-card", 146: "DKV blue fleet-card", 148: "Conoco/Jet fleet-card",
    149: "Gulf card", 150: "Eurotrafic fleet-card", 152: "Westfalen fleet-card",
    154: "Elf fleet-card", 155: "Präsentcard", 156: "Agip fleet-card",
    157: "Hornbach Gutscheinkarte", 158: "Total fleet-card", 160: "AVIA", 162: "BFT fleet-card",
    164: "Routex fleet-card", 166: "PAN-Diesel fleet-card", 176: "BayWa",
    177: "GAZ-card/Roadrunner-Card", 178: "Go-Card", 179: "XNet-Card", 180: "PaysafeCard Blue",
    181: "PaysafeCard Red", 182: "Tele 2", 183: "Sunrise", 184: "Sorena ZED", 185: "Quam now-card",
    186: "Mox Universal", 187: "Mox Calling Card", 188: "Loop Card", 189: "Go Bananas",
    190: "Free & Easy card", 191: "Callya-Card", 192: "VCS-DAFA", 193: "Caravaning-Card",
    194: "AirPlus Cargo", 195: "HEM-card", 196: "Dankort", 197: "VISA/Dankort", 198: "CUP-card",
    199: "Mango-card", 200: "Payback payment-card", 201: "Lunch Card",
    202: "Payback (without payment function)", 203: "Micromoney", 204: "T-Card", 205: "Blau",
    206: "BILDMobil", 207: "Congstar", 208: "C3 Bestminutes", 209: "C3 Bestcard",
    210: "C3 Callingcard", 211: "EDEKAMOBIL", 212: "XTRA-PIN", 213: "Klimacard",
    214: "ICP-International-Fleet-Card", 215: "ICP-Gutscheinkarte", 216: "ICP-Bonuskarte",
    217: "Austria Card", 218: "ConCardis Geschenkkarte", 219: "TeleCash Gutscheinkarte",
    220: "Shell private label credit card", 221: "ADAC", 222: "Shell Clubsmart",
    223: "Shell Pre-Paid-Card", 224: "Shell Master-Card", 225: "bauMax Zahlkarte",
    226: "Fiat-Lancia-Alfa Servicecard", 227: "Nissan-Karte", 228: "ÖBB Vorteilskarte",
    229: "Österreich Ticket", 230: "Shopin-Karte", 231: "Tlapa-Karte", 232: "Discover Card",
    233: "f+f-Karte (frei & flott - Karte)", 234: "Syrcon", 235: "Citybike Card",
    238: "IKEA FAMILY Bezahlkarte", 239: "Ikano Shopping Card", 240: "Intercard Gutscheinkarte",
    241: "Intercard Kundenkarte", 242: "M&M-Gutscheinkarte", 243: "Montrada card",
    244: "CP Customer Card", 245: "AmexMembershipReward", 246: "FONIC", 247: "OTELO DE",
    248: "SIMYO", 249: "Schlecker Smobil", 250: "Schlecker Zusatzprodukte",
    251: "CHRIST Gutscheinkarte", 252: "IQ-Card", 253: "AVS Gutscheinkarte (Pontos)",
    254: "Novofleet Card", 256: "MiFare NFC cards", 257: "myCard4u", 258: "Ratenkauf",
    259: "AVIA Prepaid", 260: "BlueCode",
}
"""ZVT card-type IDs [P15 12, pp.185-189], decimal as the spec lists them. BMP 8A carries the ID as
one binary byte [P15 13, BMP 8A, p.117]: Visa 10 travels as 0x0A, Diners 12 as 0x0C. IDs the spec
leaves unassigned (113-126, ...) or withdrew (236, 237) are absent; 255 is ``CARD_TYPE_IN_TLV``."""

CARD_TYPE_IN_TLV = 0xFF
"""BMP 8A value telling that the ID is above 255 and sent in TLV tag 41 (binary, variable length)
[P15 13, BMP 8A, p.117; 9.4, tag 41]."""

SCHEME_CARD_TYPES: dict[str, int] = {
    "Visa": 10, "Mastercard": 6, "American Express": 8, "Diners Club": 12, "Discover": 232,
    "JCB": 14, "Maestro": 46, "V PAY": 13, "girocard": 5, "UnionPay": 198,
}
"""Card schemes by their usual (and the card deck's) brand name -> ZVT card-type ID from
``CARD_TYPES`` ("Diners" 12, "Discover Card" 232, "CUP-card" 198, "Maestro (formerly: edc)" 46)."""


def card_type_name(code: int) -> str:
    """Name of ZVT card-type ID ``code`` (as read from BMP 8A or TLV 41)."""
    if code == CARD_TYPE_IN_TLV:
        return "card type in TLV tag 41"
    return CARD_TYPES.get(code, f"unknown card type {code}")


def meaning(table: Mapping[int, str], code: int, kind: str) -> str:
    """``table[code]``, or "unknown <kind> 0xNN" for a code the spec does not define."""
    return table.get(code, f"unknown {kind} 0x{code:02X}")


def is_host_code(code: int) -> bool:
    """True for result codes 0x01..0x63: the host's (network operator's) own codes 1..99."""
    return 0x01 <= code <= 0x63


def result_meaning(code: int) -> str:
    """Meaning of a result code byte; host codes read "host code NN" (NN decimal)."""
    if is_host_code(code):
        return "refer to card issuer (host code 01)" if code == 0x01 else f"host code {code:02d}"
    return meaning(RESULT_CODES, code, "result code")


def terminal_status_meaning(code: int) -> str:
    return meaning(TERMINAL_STATUS, code, "terminal status")


def intermediate_meaning(code: int) -> str:
    return meaning(INTERMEDIATE_STATUS, code, "intermediate status")


def lock_names(raw: bytes) -> tuple[str, ...]:
    """Names of the locks set in a 1F55 value (2 bytes; a shorter value is read as its high bytes,
    a longer one has its extra bytes ignored), most significant bit first."""
    value = int.from_bytes(bytes(raw[:2]).ljust(2, b"\0"), "big")
    if not value:  # a healthy PT: no lock set
        return ()
    return tuple(name for bit, name in LOCK_BITS.items() if value >> bit & 1)


REGISTRATION_STATUS_BITS: dict[int, str] = {
    0: "PT initialisation necessary",
    1: "diagnosis necessary",
    2: "OPT action necessary",
    3: "PT functions in filling station mode",
    4: "PT functions in vending machine mode",
}
"""BMP 19 status byte of the registration completion, by bit number [P15 2.1 table 3]."""


def registration_status_names(byte: int) -> tuple[str, ...]:
    """Meanings of the bits set in a registration status byte (RFU bits are left out)."""
    return tuple(name for bit, name in REGISTRATION_STATUS_BITS.items() if byte >> bit & 1)


# -- the causes the codes point to ----------------------------------------------------------------
RESULT_CAUSE: dict[int, tuple[str, str]] = {
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
"""Result codes of a failed payment and the cause each points to (reference map, calibrated
in docs/diagnosis.md). Card read errors (64, 65, 73) depend on the card technology and 6C on the
intermediate statuses before it: ``failure_cause`` decides those."""

READ_ERRORS = (0x64, 0x65, 0x66, 0x73)
"""Result codes of a card that could not be read; the technology (TLV 1F12) says which reader."""
WAITING_FOR_HOST = 0x04
"""Intermediate status "waiting for host": a 6C after it is the host link timing out."""
PIN_MISTAKES = (0x15, 0x18)
"""Intermediate statuses "incorrect PIN" and "PIN try limit exceeded": the cardholder's doing."""

TERMINAL_STATUS_CAUSE: dict[int, tuple[str, str]] = {
    0x51: ("data_loss", "strong"), 0xE4: ("data_loss", "strong"), 0xF6: ("data_loss", "strong"),
    0x62: ("maintenance", "moderate"), 0xC2: ("maintenance", "moderate"), 0xF0: ("maintenance", "weak"),
    0xB1: ("resources", "strong"), 0xB2: ("resources", "strong"),
    0xBF: ("power_supply", "moderate"),
    0xDF: ("pcb_intermittent", "weak"), 0xE2: ("pcb_intermittent", "weak"),
    0xC0: ("chip_contacts", "moderate"), 0xE1: ("chip_contacts", "weak"),
}
"""Terminal status bytes (status enquiry) and the cause each points to."""

LOCK_CAUSE: dict[str, tuple[str, str]] = {
    "transaction log defective": ("data_loss", "strong"),
    "initialisation lock": ("data_loss", "moderate"),
    "low battery power": ("power_supply", "moderate"),
    "contactless reader not initialised": ("nfc_antenna", "strong"),
    "card reader not found": ("pcb_intermittent", "moderate"),
    "diagnosis lock": ("maintenance", "moderate"),
}
"""Lock bits (TLV 1F55) and the cause each points to."""


SALE_CAUSES = tuple(sorted({cause for cause, _ in RESULT_CAUSE.values()} | set(READ_PATH_CAUSE.values())
                               | {"operator_error", "network_unstable"}))
"""Causes a ZVT sale's result code can speak to."""
STATUS_CAUSES = tuple(sorted({c for c, _ in TERMINAL_STATUS_CAUSE.values()} | {c for c, _ in LOCK_CAUSE.values()}))
"""Causes a ZVT terminal status byte or lock bit can speak to."""


def failure_cause(result_code: int, technology: str | None, intermediates: tuple[int, ...]) -> tuple[str, str] | None:
    """The cause a failed ZVT payment points to, with its strength, or None (an issuer's answer,
    a healthy refusal, or a code that says nothing about the unit)."""
    if result_code in READ_ERRORS:
        return (READ_PATH_CAUSE[technology], "moderate") if technology in READ_PATH_CAUSE else None
    if result_code == 0x6C:
        if any(code in PIN_MISTAKES for code in intermediates):
            return "operator_error", "moderate"
        if WAITING_FOR_HOST in intermediates:
            return "network_unstable", "weak"
        return "operator_error", "weak"  # aborted at the counter (the abort key, or no card in time)
    return RESULT_CAUSE.get(result_code)


def sale_failure_cause(sale: SaleResult) -> tuple[str, str] | None:
    """What a sale the PT failed itself points to (``failure_cause`` of its result code)."""
    if sale.result_code is None:
        return None
    return failure_cause(sale.result_code, sale.card_technology, sale.intermediates)


def sale_read_failure(sale: SaleResult, technology: str) -> str:
    """The result code of a card not read, with the technology the PT reported (else the one
    presented); a refusal for another reason (host, keys) or an abort before any card was read
    (6C) is no read error."""
    if sale.result_code is None or sale.result_code == 0 or sale.display_code == "00":
        return ""
    tech = sale.card_technology or technology
    if sale.result_code in READ_ERRORS or sale.result_code in (0x72, 0xE2) or "contactless_error" in sale.details:
        return f"rc_{sale.result_code:02X}_{tech}" + ("_rf" if "contactless_error" in sale.details else "")
    return ""


def read_failure_words(code: str) -> str | None:
    """A read failure code of ``sale_read_failure`` (``rc_64_chip``, ``rc_64_contactless_rf``) in
    words: the result code's meaning; None for another code."""
    if m := re.fullmatch(r"rc_([0-9A-F]{2})_(\w+?)(_rf)?", code):
        meaning = RESULT_CODES.get(int(m.group(1), 16), f"result code {m.group(1)}")
        return meaning + (" (contactless)" if m.group(3) else "")
    return None


def saw_no_card(sale: SaleResult) -> bool:
    """6C (abort) with no card technology: the PT's card wait ended without a card to read."""
    return sale.result_code == 0x6C and not sale.card_technology


def status_cause(code: int) -> tuple[str, str] | None:
    return TERMINAL_STATUS_CAUSE.get(code)


def lock_cause(lock: str) -> tuple[str, str] | None:
    return LOCK_CAUSE.get(lock)
