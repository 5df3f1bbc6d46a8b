"""ISO 8583 codec of the acquirer host link: pyiso8583's default spec without a header.

Fields are ASCII strings keyed by number (``"2"``, ``"39"``), the MTI is ``"t"``; binary fields
(52 PIN block, 55 ICC data) are hex strings in a document. Every codec failure is a
``ProtocolError`` naming the field at most: card data (2, 35, 45, 52) never reaches a message.
"""
from __future__ import annotations

import copy
import re
from typing import Any

import iso8583
from iso8583.decoder import DecodeError
from iso8583.encoder import EncodeError
from iso8583.specs import default

from posbench.core.errors import ProtocolError
from posbench.core.masking import scrub

DEVICE = "host"

SPEC: dict[str, dict[str, Any]] = copy.deepcopy(default)
SPEC["h"]["max_len"] = 0

_MTI_RE = re.compile(r"[0-9]{4}")


def encode(doc: dict[str, Any]) -> bytes:
    """Encode a document (``{"t": "0200", "4": "000000001000", ...}``) to wire bytes (no length header)."""
    work = copy.deepcopy(doc)  # iso8583.encode mutates its argument (adds "p")
    try:
        raw, _ = iso8583.encode(work, SPEC)
    except EncodeError as exc:
        raise ProtocolError(_describe(exc), DEVICE, "encoding an ISO 8583 message") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"cannot encode document ({type(exc).__name__})", DEVICE,
                            "encoding an ISO 8583 message") from None
    return bytes(raw)


def decode(raw: bytes) -> dict[str, Any]:
    """Decode wire bytes (no length header) to a document; the MTI must be 4 digits."""
    try:
        doc, _ = iso8583.decode(bytes(raw), SPEC)
    except DecodeError as exc:
        raise ProtocolError(_describe(exc), DEVICE, "decoding an ISO 8583 message") from None
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise ProtocolError(f"cannot decode message ({type(exc).__name__})", DEVICE,
                            "decoding an ISO 8583 message") from None
    if not _MTI_RE.fullmatch(doc.get("t", "")):
        raise ProtocolError("MTI is not 4 digits", DEVICE, "decoding an ISO 8583 message")
    return doc


def response_mti(mti: str) -> str:
    """The response MTI of a request MTI: ``"0200"`` -> ``"0210"`` (third digit + 1)."""
    if not _MTI_RE.fullmatch(mti):
        raise ValueError(f"not an MTI: {mti!r}")
    return mti[:2] + str((int(mti[2]) + 1) % 10) + mti[3]


def _describe(exc: EncodeError | DecodeError) -> str:
    # The library's templates quote lengths and positions only; scrub() is a second guard.
    where = f"field {exc.field}"
    pos = getattr(exc, "pos", None)
    if pos is not None:
        where += f" at byte {pos}"
    return f"{scrub(str(exc.msg))} ({where})"
