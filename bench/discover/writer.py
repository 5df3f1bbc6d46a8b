"""bench.toml from what ``posbench discover --probe`` found: a complete, valid description with
a comment on every line the technician must still fill in, or none when no terminal answered
(a bench.toml needs its ``[terminal]``).

Written by hand rather than with a TOML writer: the file is mostly comments placed between keys,
which only tomlkit (not a dependency) can produce; its values are strings, numbers, booleans
and lists of strings. Every composed text is parsed back with ``tomllib`` and validated by
``posbench.setup.config`` before it is written, and it is created exclusively (never overwritten).
"""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from posbench.setup.config import parse_bench
from posbench.core.errors import ConfigError

from posbench.drivers import registry
from posbench.drivers.probing import Answer

from .survey import Survey
from .usb import CH340
from .virtual import described

SECTIONS = ("bench", "unit", "terminal", "host", "usb", "nfc", "power", "network", "sim", "actuator")
"""bench.toml's sections in the order ``posbench.setup.config.BenchConfig`` declares them."""
FROM_SIM = "from the running virtual bench's own description (pid {pid}): no probe finds it"


def toml_value(value: Any) -> str:
    """One TOML value: a string (basic, escaped), bool, int, float, or a list of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    # JSON's string escapes are TOML's, except DEL, which TOML wants escaped too
    return json.dumps(str(value)).replace("\x7f", "\\u007f")


@dataclass
class Section:
    """One table of the file: ``keys`` (name -> (value, comment)) and comment lines before it."""

    name: str
    keys: dict[str, tuple[Any, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    commented: list[str] = field(default_factory=list)
    """Lines of a section left for the technician, written as comments (no table is made)."""

    def set(self, key: str, value: Any, comment: str = "") -> None:
        self.keys[key] = (value, comment)

    def render(self, common: str = "") -> str:
        """The table; a ``common`` comment that every key carries is said once above it."""
        lines = [f"# {n}" for n in self.notes]
        shared = bool(common) and bool(self.keys) and all(c == common for _, c in self.keys.values())
        if shared:
            lines.append(f"# [{self.name}] {common}")
        if self.keys:
            lines.append(f"[{self.name}]")
            for key, (value, comment) in self.keys.items():
                note = "" if shared or not comment else f"  # {comment}"
                lines.append(f"{key} = {toml_value(value)}{note}")
        if self.commented:
            lines += ([] if self.keys else [f"# [{self.name}]"]) + [f"# {c}" for c in self.commented]
        return "\n".join(lines)


@dataclass
class Plan:
    """What will be written: the text, the things found that it uses, and what it leaves out."""

    text: str
    origin: int | None
    """The virtual bench (pid) it describes, or None for a real bench."""
    used: list[str]
    left: list[str]


def _terminals(found: Survey) -> list[tuple[Answer, str, int | None]]:
    """Every terminal that answered: (answer, where, origin), serial ports first."""
    out = [(r.answer, p.path, p.origin) for p in found.ports
           if (r := found.results.get(p.path)) and r.answer and r.answer.kind == "terminal"]
    out += [(r.answer, r.address, place.origin) for place, results in found.addresses for r in results
            if r.answer and r.answer.kind == "terminal"]
    return out


def _answers(found: Survey, kind: str, origin: int | None) -> list[tuple[Answer, str]]:
    return [(r.answer, p.path) for p in found.ports if p.origin == origin
            and (r := found.results.get(p.path)) and r.answer and r.answer.kind == kind]


def compose(found: Survey, now: datetime | None = None, announced: Path | None = None) -> Plan | None:
    """The bench.toml for the first terminal that answered and the bench devices beside it (of the
    same virtual bench, or real ones for a real terminal); None when no terminal answered."""
    terminals = _terminals(found)
    if not terminals:
        return None
    terminal, where, origin = terminals[0]
    sim = described(origin, announced) if origin is not None else {}
    from_sim = FROM_SIM.format(pid=origin)
    s = {name: Section(name) for name in SECTIONS}
    used, left = [f"terminal ({terminal.protocol}) at {where}"], []
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    head = [f"bench.toml written by `posbench discover --probe` on {stamp}.",
            "Every device below answered a probe or was recognised on USB. Lines marked FILL IN",
            "are for you; check the whole file with `posbench triage --bench FILE`."]
    if origin is not None:
        head.append(f"A virtual bench (posbench sim, pid {origin}): the lines marked as taken from its own")
        head.append("description are what no probe can find; the file is valid while that process runs.")

    def take(section: str, key: str) -> bool:
        if key in sim.get(section, {}):
            s[section].set(key, sim[section][key], from_sim)
            return True
        return False

    def take_all(section: str) -> bool:
        """The whole section from the sim's description; False when it has none."""
        return [take(section, key) for key in sim.get(section, {})] != []

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
    for other, other_where, _ in terminals[1:]:
        term.notes.append(f"also answered: {other.protocol} at {other_where} ({other.how})")
        left.append(f"terminal ({other.protocol}) at {other_where}")
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
    power = s["power"]
    supplies = _answers(found, "supply", origin)
    hubs = [f for scan, o in found.usb if o == origin for f in scan.found if f.per_port_power]
    readers = [f for scan, o in found.usb if o == origin for f in scan.found
               if f.kind.kind == "magstripe reader"]
    reader = next((f for f in readers if f.kind.flavour), None)
    if supplies:
        answer, at = supplies[0]
        for key, value in answer.section.items():
            power.set(key, value, answer.how if key == "port" else "")
        used.append(f"supply at {at}")
        left += [f"supply at {other}" for _, other in supplies[1:]]
    elif hubs and (reader is None or hubs[0].backend == reader.backend):
        hub = hubs[0]
        power.set("driver", "usb-hub")
        power.set("port", str(hub.usb_id), f"{hub.kind.name}: {hub.note}")
        power.set("channel", 1, "FILL IN: the hub port the unit (or its reader) is on")
        used.append(f"hub {hub.usb_id} on {hub.backend}")
    else:
        power.notes.append("[power] no supply answered *IDN? and no hub switching port power was found.")
        silent_ch340 = [p.path for p in found.ports if p.origin == origin and p.adapter in CH340
                        and (r := found.results.get(p.path)) and not r.answer and not r.problem]
        if silent_ch340:  # the relay never answers: it cannot be told from a silent USB-serial cable
            power.commented += [f"driver = \"lcus-relay\"  # FILL IN if the LCUS relay is on a CH340 that answered "
                                f"nothing: {', '.join(silent_ch340)}", f'port = "{silent_ch340[0]}"', "channel = 1"]
        else:
            power.notes.append('An LCUS relay never answers: driver = "lcus-relay" and port = its CH340 port; '
                               'or driver = "manual" (the technician switches the unit).')
    # [usb]
    usb = s["usb"]
    if reader is not None:
        usb.set("backend", reader.backend, f"where the reader was found ({reader.where})")
        usb.set("reader", str(reader.usb_id), reader.kind.name)
        used.append(f"reader {reader.usb_id} on {reader.backend}")
    elif power.keys.get("driver", ("",))[0] == "usb-hub":
        usb.set("backend", hubs[0].backend, "where the hub was found")
    for f in readers:
        if f is not reader:
            usb.notes.append(f"also found: {f.kind.name} on {f.backend} (posbench's magstripe driver runs "
                             "MagTek-style HID and keyboard readers only)" if not f.kind.flavour else
                             f"also found: {f.kind.name} on {f.backend}")
    if not usb.keys and not usb.notes:
        usb.notes.append("[usb] no known card reader found on USB")
    # [nfc]
    nfc = s["nfc"]
    contactless = _answers(found, "nfc reader", origin)
    if contactless:
        answer, at = contactless[0]
        nfc.set("path", answer.section["path"], answer.how)
        used.append(f"nfc reader at {at}")
    elif origin is None and found.nfc.found:
        nfc.set("path", found.nfc.found[0].path, found.nfc.found[0].how)
        used.append(f"nfc reader {found.nfc.found[0].path}")
    else:
        nfc.notes.append("[nfc] no contactless reader answered")
    text = "\n".join(f"# {line}" for line in head) + "\n\n" + \
        "\n\n".join(r for r in (s[name].render(from_sim) for name in SECTIONS) if r) + "\n"
    return Plan(text, origin, used, left)


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
