"""A card reader that is itself the unit: when no terminal answered, the readers discover found
(on USB, by nfcpy's search, a PN532 answering on a serial port), each with the reader profile it
takes, and the bench.toml for the first one a profile matches.

A reader's profile is the packaged profile (``kind = "reader"``) whose ``[reader] usb`` is the
device's vid:pid, or for a reader on a serial port, the one with ``interface = "uart"`` whose
``product`` is the chip that answered ("PN532"): the profiles are the one table of readers.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from posbench.setup.config import UsbId
from posbench.setup.profile import Profile, find_profile, known_profiles

from .sections import Draft, Plan, compose_power, toml_value
from .survey import Survey
from .usb import READERS, Found


@dataclass(frozen=True)
class ReaderFound:
    """One card reader found: ``name`` what it is, ``where`` it was found, ``origin`` the
    virtual bench it belongs to (None: a real one), and how the bench reaches it: ``usb``
    (the USB scan's find) and/or ``nfc_path`` (nfcpy's path of a contactless reader)."""

    name: str
    where: str
    origin: int | None
    usb: Found | None = None
    nfc_path: str | None = None
    chip: str = ""
    """The chip that answered on a serial port (``pn532``); "" for a USB reader."""

    @property
    def serial(self) -> str:
        return self.usb.serial if self.usb else ""

    def profile(self, profiles: dict[str, Profile]) -> str | None:
        """The name of the reader profile it takes, None when none describes it."""
        for name, profile in profiles.items():
            spec = profile.reader
            assert spec is not None  # reader_profiles keeps readers only
            if self.usb is not None and spec.usb == str(self.usb.usb_id):
                return name
            if self.usb is None and self.chip and spec.interface == "uart" and spec.product.lower() == self.chip:
                return name
        return None


def reader_profiles() -> dict[str, Profile]:
    """The packaged reader profiles by name (in name order)."""
    loaded = {name: find_profile(name) for name in known_profiles()}
    return {name: profile for name, profile in loaded.items() if profile.is_reader and profile.reader is not None}


def found_readers(found: Survey) -> list[ReaderFound]:
    """Every card reader found: USB readers in scan order, then contactless readers nfcpy found
    on this host's USB and the USB scan did not (its libusb1 scan failed), then PN532 boards that
    answered on a serial port."""
    out = [ReaderFound(f.kind.name, f"{f.usb_id} on {f.backend}, {f.where}", origin, usb=f,
                       nfc_path=f"usb:{f.usb_id}" if f.kind.kind == "nfc reader" else None)
           for scan, origin in found.usb for f in scan.found if f.kind.kind in READERS]
    local = {str(r.usb.usb_id) for r in out if r.usb and r.usb.backend == "libusb1" and r.origin is None}
    for nfc in found.nfc.found:
        ids = nfc.path.removeprefix("usb:")
        if ids not in local:
            usb_id = UsbId.parse(ids)
            out.append(ReaderFound(nfc.how, nfc.path, None, usb=Found("libusb1", usb_id, _nfc_kind(usb_id)),
                                   nfc_path=nfc.path))
    out += [ReaderFound(f"{r.answer.protocol.upper()} on a serial port", p.path, p.origin,
                        nfc_path=r.answer.section["path"], chip=r.answer.protocol)
            for p in found.ports if (r := found.results.get(p.path)) and r.answer and r.answer.kind == "nfc reader"]
    return out


def _nfc_kind(usb_id: UsbId):
    from .usb import Kind, classify
    return classify(usb_id, 0, ()) or Kind("nfc reader", f"contactless reader {usb_id}", None, "nfcpy")


def described(readers: list[ReaderFound], profiles: dict[str, Profile]) -> list[str]:
    """A line per reader: what it is, where, and the profile it takes (or that none does)."""
    out = []
    for r in readers:
        name = r.profile(profiles)
        takes = f"profile {name}" if name else \
            f"no reader profile matches it (posbench has: {', '.join(profiles) or 'none'})"
        out.append(f"{r.name} at {r.where}: {takes}")
    return out


def compose(found: Survey, now: datetime | None = None, announced: Path | None = None) -> Plan | None:
    """The bench.toml whose unit is the first reader found that a reader profile matches (the
    others are listed in the file and in ``Plan.left``); None when no reader has a profile."""
    profiles = reader_profiles()
    readers = found_readers(found)
    matched = [(r, name) for r in readers if (name := r.profile(profiles))]
    if not matched:
        return None
    reader, name = matched[0]
    profile = profiles[name]
    draft = Draft(reader.origin, announced)
    s = draft.s
    if not draft.take_all("bench"):
        s["bench"].set("name", "bench", "FILL IN: a name for this bench (shown in reports)")
    # [unit]: the reader is the unit; its profile, by the identity it was found by
    unit = s["unit"]
    unit.notes.append("[unit] a card reader that is itself the unit: no [terminal], no sale, no acquirer")
    by = f"its USB id {reader.usb.usb_id}" if reader.usb else f"a {reader.chip.upper()} answered at {reader.where}"
    unit.set("profile", name, f"the reader profile of {by}")
    unit.set("model", profile.model, "the profile's model")
    if reader.serial and reader.origin is not None:  # the virtual reader is part of its bench
        unit.set("serial", reader.serial, "from its USB descriptor")
    elif reader.serial:  # a real bench sees many readers: a serial here would refuse the next one
        unit.commented.append(f"serial = {toml_value(reader.serial)}  # from its USB descriptor: the reader on the "
                              "bench now; uncomment to pin this file to it (or name each unit with --unit)")
    draft.used.append(f"reader {reader.name} at {reader.where} (profile {name})")
    # [usb] and [nfc]: how the bench reaches it
    if reader.usb is not None:
        s["usb"].set("backend", reader.usb.backend, f"where the reader was found ({reader.usb.where or 'nfcpy'})")
        if profile.reader is not None and profile.reader.interface in ("usb-hid", "usb-keyboard"):
            s["usb"].set("reader", str(reader.usb.usb_id), reader.name)
    if reader.nfc_path is not None:
        s["nfc"].set("path", reader.nfc_path, "nfcpy's path of the reader")
    compose_power(draft, found, reader.usb.backend if reader.usb else None)
    draft.take_all("sim")
    if not draft.take_all("actuator"):
        s["actuator"].set("kind", "manual", "the technician swipes or taps the test cards when prompted")
    others = [r for r in readers if r is not reader]
    for line in described(others, profiles):
        s["unit"].notes.append(f"also found: {line}")
        draft.left.append(f"reader {line}")
    return draft.plan(now)
