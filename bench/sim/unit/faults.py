"""Faults the virtual bench can inject, by cause id, each with a severity in (0, 1]."""
from __future__ import annotations

from posbench.setup.profile import Profile
from posbench.spec import taxonomy

NETWORK = ("ip_conflict", "firewall", "network_unstable")
"""Faults made with real Linux networking (the network lab): they need root."""
INJECTABLE = ("ip_conflict", "firewall", "network_unstable", "application", "firmware_driver", "resources", "data_loss", "maintenance", "chip_contacts", "msr_head",
              "nfc_antenna", "power_supply",
              "pcb_intermittent",
              "operator_error", "issuer_referral")
"""Cause ids the virtual bench can produce today."""
READER_CAUSES: dict[str, tuple[str, ...]] = {
    "usb_magstripe": tuple(c for c in taxonomy.READER_CAUSES if c != "nfc_antenna"),
    "nfc": tuple(c for c in taxonomy.READER_CAUSES if c != "msr_head"),
}
"""The causes of a card reader that is itself the unit, by the kind of reader it is
(``posbench.setup.profile.ReaderSpec.reads``): its head or antenna, its board, its power, its
firmware. The virtual reader bench injects these and only these; ``posbench calibrate`` of a
reader profile runs over them."""


def injectable(profile: Profile) -> tuple[str, ...]:
    """The causes a virtual bench shaped like ``profile`` can inject."""
    if profile.is_reader:
        assert profile.reader is not None
        return READER_CAUSES[profile.reader.reads]
    return INJECTABLE


def check_shape(faults: dict[str, float], profile: Profile, name: str) -> None:
    """``FaultSpecError`` for a fault that a unit of ``profile`` (called ``name``) cannot have."""
    causes = injectable(profile)
    if other := [cause for cause in faults if cause not in causes]:
        raise FaultSpecError(f"{', '.join(other)} is not a cause of the reader {name}; "
                             f"a reader's causes: {', '.join(causes)}")


class FaultSpecError(ValueError):
    """A ``--fault`` argument that cannot be used."""


def parse_fault(text: str) -> tuple[str, float]:
    """``"resources=0.4"`` -> ``("resources", 0.4)``; severity defaults to 1."""
    cause, sep, sev_text = text.strip().partition("=")
    if cause not in taxonomy.CAUSES:
        raise FaultSpecError(f"unknown cause id {cause!r}; known: {', '.join(taxonomy.CAUSES)}")
    if cause not in INJECTABLE:
        raise FaultSpecError(f"the virtual bench cannot inject {cause!r} yet; "
                             f"injectable: {', '.join(INJECTABLE)}")
    severity = 1.0
    if sep:
        try:
            severity = float(sev_text)
        except ValueError:
            raise FaultSpecError(f"severity {sev_text!r} of {cause} is not a number") from None
    if not 0.0 < severity <= 1.0:
        raise FaultSpecError(f"severity of {cause} must be in (0, 1], got {severity:g}")
    if cause in NETWORK:
        from posbench.core.netns import have_netns
        ok, reason = have_netns()
        if not ok:
            raise FaultSpecError(f"{cause} is made in the network lab, which cannot run here: {reason}")
    return cause, severity


def parse_faults(texts: list[str] | tuple[str, ...]) -> dict[str, float]:
    faults: dict[str, float] = {}
    for text in texts:
        cause, severity = parse_fault(text)
        faults[cause] = severity
    return faults


def format_faults(faults: dict[str, float]) -> list[str]:
    return [f"{cause}={severity:g}" for cause, severity in sorted(faults.items())]
