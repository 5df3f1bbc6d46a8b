"""Concert V2 messages: the 34-character payment request and the terminal's answer.

Request (34 ASCII characters): POS number (2) · amount in minor units (8, zero padded) · answer
flag (1; "1" = include the 55-character report) · payment mode (1; "1" card) · transaction type
(1; "0" debit) · currency (3, ISO 4217 numeric) · private (10) · delay (4) · authorisation (4;
"B010", "B011" forces a call to the acquirer).

Answer: POS number (2) · status (1) · amount (8) · payment mode (1) · [report (55)] · currency
(3) · private (10): 25 or 80 characters, 28 or 83 bytes framed (the sizes pyTeliumManager reads).

Choices where the sources are *uncertain*:
- Delay "A010" asks for the answer at the end of the transaction, "A011" at once (as
  pyTeliumManager has it); the driver sends ``DELAY_AT_END``, configurable per bench
  (``[terminal] delay_code``) for a terminal that reads the codes the other way.
- Status "0" accepted, "7" refused, "9" handled without a verified result.
- The report's content is the terminal application's. posbench reads it as: masked PAN (19,
  left aligned; empty when no card was read) · expiry YYMM (4) · STAN of the acquirer request
  (6) · terminal id (8) · the acquirer's response code, ISO 8583 field 39 (2; blank when the
  host did not answer) · blank (16). A field that is blank or not digits is "not reported".
Card data: the PAN is masked (first 6 / last 4) whenever an answer is decoded or encoded.
"""
from __future__ import annotations

from dataclasses import dataclass

from posbench.core.errors import MessageError
from posbench.core.masking import mask_pan

REQUEST_LEN = 34
REPORT_LEN = 55
ANSWER_LEN = 25
"""Without the report; with it, ``ANSWER_LEN + REPORT_LEN``."""
MAX_AMOUNT = 10**8 - 1
"""Minor units (8 digits)."""
DELAY_AT_END, DELAY_AT_ONCE = "A010", "A011"
AUTH_NORMAL, AUTH_FORCED = "B010", "B011"
ACCEPTED, REFUSED, HANDLED = "0", "7", "9"
STATUS_MEANING = {ACCEPTED: "accepted", REFUSED: "refused", HANDLED: "handled, not verified"}
MODE_CARD, TYPE_DEBIT = "1", "0"
PRIVATE_BLANK = " " * 10


def _digits(text: str, size: int, what: str) -> str:
    if len(text) != size or not text.isdigit() or not text.isascii():
        raise MessageError(f"{what} must be {size} digits, got {text!r}")
    return text


@dataclass(frozen=True)
class Request:
    amount: int
    """Minor units, 1..99999999."""
    pos_number: str = "01"
    answer_flag: str = "1"
    mode: str = MODE_CARD
    transaction_type: str = TYPE_DEBIT
    currency: str = "978"
    private: str = PRIVATE_BLANK
    delay: str = DELAY_AT_END
    authorization: str = AUTH_NORMAL

    def encode(self) -> bytes:
        """The 34 characters; ``MessageError`` for a field that does not fit."""
        if not 0 < self.amount <= MAX_AMOUNT:
            raise MessageError(f"amount {self.amount} is outside 1..{MAX_AMOUNT} minor units")
        _digits(self.pos_number, 2, "POS number")
        _digits(self.currency, 3, "currency")
        if self.answer_flag not in "01" or len(self.answer_flag) != 1:
            raise MessageError(f"answer flag must be 0 or 1, got {self.answer_flag!r}")
        for value, size, what in ((self.mode, 1, "payment mode"), (self.transaction_type, 1, "transaction type"),
                                  (self.private, 10, "private"), (self.delay, 4, "delay"),
                                  (self.authorization, 4, "authorisation")):
            if len(value) != size or not (value.isascii() and value.isprintable()):
                raise MessageError(f"{what} must be {size} printable ASCII characters, got {value!r}")
        return (f"{self.pos_number}{self.amount:08d}{self.answer_flag}{self.mode}{self.transaction_type}"
                f"{self.currency}{self.private}{self.delay}{self.authorization}").encode("ascii")

    @classmethod
    def decode(cls, message: bytes) -> "Request":
        text = _text(message)
        if len(text) != REQUEST_LEN:
            raise MessageError(f"a request has {REQUEST_LEN} characters, got {len(text)}")
        amount = int(_digits(text[2:10], 8, "amount"))
        request = cls(amount, text[0:2], text[10], text[11], text[12], text[13:16], text[16:26], text[26:30],
                      text[30:34])
        request.encode()  # the same checks as for a request we send
        return request


@dataclass(frozen=True)
class Report:
    """The 55-character report, as posbench reads it (see the module docstring)."""
    pan: str = ""
    """Masked (first 6 / last 4); "" when the terminal read no card."""
    expiry: str = ""
    stan: str = ""
    terminal_id: str = ""
    host_code: str = ""
    """ISO 8583 field 39 the acquirer answered ("" when it did not answer)."""

    def __post_init__(self) -> None:
        if self.pan:  # masked whatever it was made from: a Report never holds a full PAN
            object.__setattr__(self, "pan", mask_pan(self.pan))

    def encode(self) -> str:
        text = (self.pan.ljust(19)[:19] + self.expiry.ljust(4)[:4] + self.stan.rjust(6)[-6:]
                + self.terminal_id.ljust(8)[:8] + self.host_code.ljust(2)[:2])
        return text.ljust(REPORT_LEN)

    @classmethod
    def decode(cls, text: str) -> "Report":
        if len(text) != REPORT_LEN:
            raise MessageError(f"a report has {REPORT_LEN} characters, got {len(text)}")

        def digits(part: str) -> str:
            part = part.strip()
            return part if part.isdigit() else ""
        pan = text[0:19].strip()
        return cls(mask_pan(pan) if pan else "", digits(text[19:23]), digits(text[23:29]),
                   text[29:37].strip(), digits(text[37:39]))


@dataclass(frozen=True)
class Answer:
    pos_number: str
    status: str
    amount: int
    mode: str
    report: Report | None
    currency: str
    private: str = PRIVATE_BLANK

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED

    def encode(self) -> bytes:
        _digits(self.pos_number, 2, "POS number")
        _digits(self.currency, 3, "currency")
        if self.status not in STATUS_MEANING:
            raise MessageError(f"unknown status {self.status!r}")
        if not 0 <= self.amount <= MAX_AMOUNT:
            raise MessageError(f"amount {self.amount} is outside 0..{MAX_AMOUNT}")
        report = self.report.encode() if self.report is not None else ""
        return (f"{self.pos_number}{self.status}{self.amount:08d}{self.mode[:1]:1}{report}{self.currency}"
                f"{self.private.ljust(10)[:10]}").encode("ascii")

    @classmethod
    def decode(cls, message: bytes) -> "Answer":
        """An answer of 25 or 80 characters; ``MessageError`` says what is wrong."""
        text = _text(message)
        if len(text) not in (ANSWER_LEN, ANSWER_LEN + REPORT_LEN):
            raise MessageError(f"an answer has {ANSWER_LEN} or {ANSWER_LEN + REPORT_LEN} characters, got {len(text)}")
        status = text[2]
        if status not in STATUS_MEANING:
            raise MessageError(f"unknown status {status!r}")
        report = Report.decode(text[12:12 + REPORT_LEN]) if len(text) > ANSWER_LEN else None
        tail = text[-13:]
        return cls(_digits(text[0:2], 2, "POS number"), status, int(_digits(text[3:11], 8, "amount")), text[11],
                   report, _digits(tail[:3], 3, "currency"), tail[3:])


def _text(message: bytes) -> str:
    try:
        text = bytes(message).decode("ascii")
    except UnicodeDecodeError:
        raise MessageError("a Concert message is ASCII") from None
    if not text.isprintable():
        raise MessageError("a Concert message holds only printable characters")
    return text
