"""What no probe can find on a virtual bench, taken from the running ``posbench sim``'s own
description (announced in the device directory, ``posbench.setup.device_dir``).

Only the keys in ``FROM_DESCRIPTION`` are read: where the acquirer host simulator listens and its
log, the network lab, the actuator, the virtual bench's own state, the unit's model and profile, and the
virtual unit's timeouts and ZVT password. Every device (the terminal's port or address, the
supply, the NFC reader, the USB backend and reader) is found by probing, never read from here.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from posbench.setup.device_dir import entries

FROM_DESCRIPTION: dict[str, frozenset[str] | None] = {
    "bench": None,
    "unit": frozenset({"model", "profile"}),
    "terminal": frozenset({"password", "currency", "reply_timeout", "sale_timeout", "boot_timeout"}),
    "host": None,
    "network": None,
    "actuator": None,
    "sim": None,
}
"""Section -> the keys taken from a sim's description (None: the whole section)."""


def described(pid: int, root: Path | None = None) -> dict[str, dict[str, Any]]:
    """The ``FROM_DESCRIPTION`` part of the description announced by the sim with ``pid``
    ({} when there is none or it cannot be read)."""
    for entry in entries("virtual", root):
        if entry.pid != pid:
            continue
        try:
            data = tomllib.loads(Path(entry.value).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return {}
        out: dict[str, dict[str, Any]] = {}
        for section, keys in FROM_DESCRIPTION.items():
            table = data.get(section)
            if isinstance(table, dict):
                kept = {k: v for k, v in table.items() if keys is None or k in keys}
                if kept:
                    out[section] = kept
        return out
    return {}
