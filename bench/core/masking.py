"""Card data masking: never more than the first 6 and last 4 digits of a PAN leave a device."""
from __future__ import annotations

import re

_PAN_RE = re.compile(r"(?<!\d)(\d{6})(\d{3,})(\d{4})(?!\d)")


def mask_pan(pan: str) -> str:
    """Return ``pan`` with all but the first 6 and last 4 digits replaced by ``*``.

    A PAN shorter than 13 digits is masked whole: first 6 + last 4 would reveal most of it.
    A ``*`` counts as a (masked) digit, so an already masked PAN comes back unchanged.
    """
    digits = "".join(ch for ch in str(pan) if ch.isdigit() or ch == "*")
    if len(digits) < 13:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def scrub(text: str) -> str:
    """Mask every run of 13 or more digits in free text (log lines, exception messages).

    Runs longer than 19 digits are masked too: a PAN glued to other digits (an ISO 8583 LLVAR
    length prefix, a timestamp) must not slip through.
    """
    return _PAN_RE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
