"""The pieces of a bench.toml ``posbench discover --write`` composes, whatever the unit is (a
terminal on its ECR link: ``writer``; a card reader that is itself the unit: ``readers``): its
tables with their comments (``Section``), the draft a composition fills (``Draft``: what it
takes from a running virtual bench's own description, what it uses and leaves), and the
``[power]`` table, chosen alike for both.

Written by hand rather than with a TOML writer: the file is mostly comments placed between keys,
which only tomlkit (not a dependency) can produce; its values are strings, numbers, booleans
and lists of strings.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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


class Draft:
    """A bench.toml being composed for the devices of one bench: ``origin`` the pid of the
    virtual bench they belong to (None: a real bench), whose own description (announced in
    ``announced``) gives what no probe finds."""

    def __init__(self, origin: int | None, announced: Path | None = None):
        self.origin = origin
        self.sim = described(origin, announced) if origin is not None else {}
        self.from_sim = FROM_SIM.format(pid=origin)
        self.s = {name: Section(name) for name in SECTIONS}
        self.used: list[str] = []
        self.left: list[str] = []
        self.hub_backend: str | None = None
        """The USB backend of the hub ``[power]`` switches (None: no hub)."""

    def take(self, section: str, key: str) -> bool:
        """``key`` of ``section`` from the sim's description; False when it has none."""
        if key in self.sim.get(section, {}):
            self.s[section].set(key, self.sim[section][key], self.from_sim)
            return True
        return False

    def take_all(self, section: str) -> bool:
        """The whole section from the sim's description; False when it has none."""
        return [self.take(section, key) for key in self.sim.get(section, {})] != []

    def plan(self, now: datetime | None = None) -> Plan:
        """The file: a head saying when and how it was written, then every table that has something."""
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
        head = [f"bench.toml written by `posbench discover --probe` on {stamp}.",
                "Every device below answered a probe or was recognised on USB. Lines marked FILL IN",
                "are for you; check the whole file with `posbench triage --bench FILE`."]
        if self.origin is not None:
            head.append(f"A virtual bench (posbench sim, pid {self.origin}): the lines marked as taken from its own")
            head.append("description are what no probe can find; the file is valid while that process runs.")
        text = "\n".join(f"# {line}" for line in head) + "\n\n" + \
            "\n\n".join(r for r in (self.s[name].render(self.from_sim) for name in SECTIONS) if r) + "\n"
        return Plan(text, self.origin, self.used, self.left)


def answers(found: Survey, kind: str, origin: int | None) -> list[tuple[Answer, str]]:
    """Serial ports of bench ``origin`` where a device of ``kind`` answered: (answer, port)."""
    return [(r.answer, p.path) for p in found.ports if p.origin == origin
            and (r := found.results.get(p.path)) and r.answer and r.answer.kind == kind]


def compose_power(draft: Draft, found: Survey, reader_backend: str | None = None) -> None:
    """``[power]``: a supply that answered (it measures), else a hub that switches port power on
    the reader's USB backend (``reader_backend``; any when None), else what the technician can
    fill in."""
    power, origin = draft.s["power"], draft.origin
    supplies = answers(found, "supply", origin)
    hubs = [f for scan, o in found.usb if o == origin for f in scan.found if f.per_port_power]
    if supplies:
        answer, at = supplies[0]
        for key, value in answer.section.items():
            power.set(key, value, answer.how if key == "port" else "")
        draft.used.append(f"supply at {at}")
        draft.left += [f"supply at {other}" for _, other in supplies[1:]]
    elif hubs and (reader_backend is None or hubs[0].backend == reader_backend):
        hub = hubs[0]
        power.set("driver", "usb-hub")
        power.set("port", str(hub.usb_id), f"{hub.kind.name}: {hub.note}")
        power.set("channel", 1, "FILL IN: the hub port the unit (or its reader) is on")
        draft.used.append(f"hub {hub.usb_id} on {hub.backend}")
        draft.hub_backend = hub.backend
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

