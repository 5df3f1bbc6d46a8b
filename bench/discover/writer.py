"""bench.toml from what ``posbench discover --probe`` found: a complete, valid description with
a comment on every line the technician must still fill in. A terminal that answered is the unit
(its readers are then the bench's); with no terminal, a card reader found is the unit itself
(``readers``); with neither, nothing is written.

Every composed text is parsed back with ``tomllib`` and validated by ``posbench.setup.config``
before it is written, and it is created exclusively (never overwritten). The tables and their
comments are ``sections``'.
"""
from __future__ import annotations

import os
import tomllib
from datetime import datetime
from pathlib import Path

from posbench.setup.config import parse_bench
from posbench.core.errors import ConfigError

from posbench.drivers import registry
from posbench.drivers.probing import Answer

from . import readers
from .sections import Draft, Plan, answers, compose_power, toml_value
from .survey import Survey

__all__ = ["Plan", "compose", "toml_value", "validate", "write"]


def terminals(found: Survey) -> list[tuple[Answer, str, int | None]]:
    """Every terminal that answered: (answer, where, origin), serial ports first."""
    out = [(r.answer, p.path, p.origin) for p in found.ports
           if (r := found.results.get(p.path)) and r.answer and r.answer.kind == "terminal"]
    out += [(r.answer, r.address, place.origin) for place, results in found.addresses for r in results
            if r.answer and r.answer.kind == "terminal"]
    return out


def compose(found: Survey, now: datetime | None = None, announced: Path | None = None) -> Plan | None:
    """The bench.toml for the first terminal that answered and the bench devices beside it (of the
    same virtual bench, or real ones for a real terminal); with no terminal, the one for the first
    card reader a reader profile matches (``readers.compose``); None when there is neither."""
    answered = terminals(found)
    if not answered:
        return readers.compose(found, now, announced)
    terminal, where, origin = answered[0]
    draft = Draft(origin, announced)
    s, take, take_all = draft.s, draft.take, draft.take_all
    draft.used.append(f"terminal ({terminal.protocol}) at {where}")
    if not take_all("bench"):
        s["bench"].set("name", "bench", "FILL IN: a name for this bench (shown in reports)")
    # [unit]
    unit = s["unit"]
    if "model" in terminal.unit:
        unit.set("model", terminal.unit["model"], f"the terminal {terminal.how.split(':')[0]}")
    elif not take("unit", "model"):
        unit.commented.append('model = "..."  # FILL IN: the unit\'s model; selects its DUT profile '
                              "(fixtures/profiles/<model>.toml)")
    if "serial" in terminal.unit and origin is not None:  # the virtual unit is part of its bench
        unit.set("serial", terminal.unit["serial"], "as the terminal reports it")
    elif "serial" in terminal.unit:  # a real bench sees many units: a serial here would refuse the next one
        unit.commented.append(f"serial = {toml_value(terminal.unit['serial'])}  # the unit on the bench now; "
                              "uncomment to pin this file to it (or name each unit with --unit)")
    if not unit.keys:
        unit.notes.append("[unit] the unit under test")
    # [terminal]
    term = s["terminal"]
    for key, value in terminal.section.items():
        term.set(key, value, f"{terminal.how}" if key in ("port", "address") else "")
    for key in registry.section_model(terminal.protocol).FROM_SIM:  # what no probe can find
        take("terminal", key)
    for other, other_where, _ in answered[1:]:
        term.notes.append(f"also answered: {other.protocol} at {other_where} ({other.how})")
        draft.left.append(f"terminal ({other.protocol}) at {other_where}")
    # [host], [network], [sim], [actuator]
    take_all("sim")
    if not take_all("host"):
        s["host"].commented += ['address = "192.0.2.10:8583"  # FILL IN: where the acquirer host simulator '
                                "listens (`posbench host`), the address the unit is pointed at",
                                'log = "/var/lib/posbench/host.jsonl"  # FILL IN: its JSONL log, readable here']
    if not take_all("network"):
        s["network"].commented += ['unit_address = "192.0.2.50"  # FILL IN: the unit\'s IPv4 address on the bench LAN',
                                   'interface = "eth1"  # FILL IN: this PC\'s interface on that LAN']
    if not take_all("actuator"):
        s["actuator"].set("kind", "manual", "the technician presents the test cards when prompted")
    # [power]: a supply that measures, else a hub that switches port power, else nothing
    readers_found = [f for scan, o in found.usb if o == origin for f in scan.found
                     if f.kind.kind == "magstripe reader"]
    reader = next((f for f in readers_found if f.kind.flavour), None)
    compose_power(draft, found, reader.backend if reader is not None else None)
    # [usb]
    usb = s["usb"]
    if reader is not None:
        usb.set("backend", reader.backend, f"where the reader was found ({reader.where})")
        usb.set("reader", str(reader.usb_id), reader.kind.name)
        draft.used.append(f"reader {reader.usb_id} on {reader.backend}")
    elif draft.hub_backend is not None:
        usb.set("backend", draft.hub_backend, "where the hub was found")
    for f in readers_found:
        if f is not reader:
            usb.notes.append(f"also found: {f.kind.name} on {f.backend} (posbench's magstripe driver runs "
                             "MagTek-style HID and keyboard readers only)" if not f.kind.flavour else
                             f"also found: {f.kind.name} on {f.backend}")
    if not usb.keys and not usb.notes:
        usb.notes.append("[usb] no known card reader found on USB")
    # [nfc]
    nfc = s["nfc"]
    contactless = answers(found, "nfc reader", origin)
    if contactless:
        answer, at = contactless[0]
        nfc.set("path", answer.section["path"], answer.how)
        draft.used.append(f"nfc reader at {at}")
    elif origin is None and found.nfc.found:
        nfc.set("path", found.nfc.found[0].path, found.nfc.found[0].how)
        draft.used.append(f"nfc reader {found.nfc.found[0].path}")
    else:
        nfc.notes.append("[nfc] no contactless reader answered")
    return draft.plan(now)


def validate(text: str, path: Path) -> None:
    """``ConfigError`` unless ``text`` is a bench.toml ``posbench.setup.config`` accepts."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"discover composed invalid TOML: {exc}") from None
    parse_bench(data, path)


def write(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` after validating it; never overwrites (``FileExistsError``)."""
    validate(text, path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
