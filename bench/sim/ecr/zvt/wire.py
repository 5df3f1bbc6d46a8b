"""What the virtual ZVT terminal (``posbench.sim.ecr.zvt``) puts on its ECR wire: its waits, the
result codes it answers with for each failure, the BMP and TLV pieces of its messages, and
``EcrPort``, the serial or TCP link it answers the ECR over. Times are seconds."""
from __future__ import annotations

import random
from datetime import datetime
from typing import Callable

from posbench.core.errors import UnitNotResponding
from posbench.core.masking import mask_pan
from posbench.drivers.ecr.zvt.codec import Tlv, bcd_encode, encode_apdu, encode_bmp
from posbench.drivers.ecr.zvt.codes import CARD_TECHNOLOGY, LOCK_BITS
from posbench.drivers.ecr.zvt.link import TransmissionFailed, ZvtLink

from posbench.sim.ecr.zvt.server import TcpServerTransport

DEVICE = "virtual ZVT terminal"
ECR_ANSWER_S = 5.0
"""Seconds the PT waits for the ECR's ``80 00 00`` after each message it sends as master (T3)."""
CARD_TIMEOUT_S = 5.0
"""Seconds a sale waits for a card when the ECR gives no timeout (BMP 01)."""
INSERT_CARD_REPEAT_S = 1.0
"""Seconds between repeats of the "insert card" intermediate status while the PT waits for a card."""
TCP_REST_S = 5.0
"""Seconds the rest of a TCP message may take once its first byte came."""
OK = encode_apdu(0x80, 0x00)
UNKNOWN = encode_apdu(0x84, 0x83)
TECH_CODE = {name: code for code, name in CARD_TECHNOLOGY.items()}
LOCK_BIT = {name: bit for bit, name in LOCK_BITS.items()}
HOST_FAILURE_RC = {"host_timeout": 0xA1, "host_unreachable": 0x9B, "host_format": 0x9B}
LOCAL_FAILURE_RC = {"no_keys": 0x85, "no_config": 0xE4, "app_restart": 0xFF}
CARD_FAILURES = {"unreadable": (0x0C, 0x64), "cleaning": (0xE2, 0x64), "chip_error": (None, 0x72),
                 "rf_error": (None, 0x64)}
"""Card read failure -> (intermediate status shown first or None, result code)."""
STATUS_COMMANDS = {(0x05, 0x01), (0x06, 0x70), (0x06, 0x1A)}
"""Commands the ``application`` fault may crash the app on (the PT never answers them then)."""
class Ended(Exception):
    """The transaction ends here: the ECR went silent, the link broke or the power went."""


def time_bmps(clock: datetime) -> bytes:
    """BMP 0C (HHMMSS) and 0D (MMDD) from the PT's own clock."""
    return (encode_bmp(0x0C, bcd_encode(clock.strftime("%H%M%S"), 3))
            + encode_bmp(0x0D, bcd_encode(clock.strftime("%m%d"), 2)))


def pan_bmp(pan: str) -> bytes:
    """BMP 22 with the masked PAN: hidden digits as 'E' nibbles, an odd length padded with F."""
    digits = mask_pan(pan).replace("*", "E")
    return encode_bmp(0x22, bytes.fromhex(digits + "F" * (len(digits) % 2)))


def tlv_bmp(*items: tuple[int, bytes]) -> bytes:
    """BMP 06: the TLV container of ``(tag, value)`` items."""
    return encode_bmp(0x06, [Tlv(tag, value) for tag, value in items])


def host_code(rc: str) -> int:
    """The host's field 39 as a ZVT result code: 01..99 pass through (binary), others are 83."""
    return int(rc) if rc.isdigit() and 1 <= int(rc) <= 99 else 0x83


class EcrPort:
    """The PT's end of its ECR link: ``ZvtLink`` on the pty (corrupted by ``NoisyPort`` when
    faulty) or ``TcpServerTransport`` (one ECR connection at a time; a cracked board,
    ``drop_rate``, drops the connection instead of sending a message)."""

    def __init__(self, transport: ZvtLink | TcpServerTransport, closer: Callable[[], None],
                 rng: random.Random | None = None, drop_rate: float = 0.0):
        self.transport, self._closer = transport, closer
        self.rng, self.drop_rate = rng, drop_rate
        self.drops = 0

    def receive(self, timeout_s: float) -> bytes | None:
        """One APDU, or None when none started within ``timeout_s`` (or the ECR hung up);
        ``TransmissionFailed`` / ``ZvtFrameError`` for a message the link could not take."""
        try:
            return self.transport.receive(timeout_s, "waiting for the ECR")
        except TransmissionFailed:
            raise
        except UnitNotResponding:
            return None

    def send(self, apdu: bytes) -> None:
        if isinstance(self.transport, TcpServerTransport) and self.drop_rate and self.rng \
                and self.rng.random() < self.drop_rate:
            self.drops += 1
            self.transport.hang_up()
            raise ConnectionResetError("connection dropped (intermittent board)")
        self.transport.send(apdu, "sending to the ECR")

    def idle(self) -> None:
        """The PT is off or rebooting: a serial link loses what was sent, a TCP connection drops."""
        if isinstance(self.transport, TcpServerTransport):
            self.transport.hang_up()
        else:
            self.transport.discard_input()

    def close(self) -> None:
        self._closer()
