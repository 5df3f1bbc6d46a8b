"""Faults the virtual bench can inject, by cause id, each with a severity in (0, 1]."""
from __future__ import annotations

from posbench.spec import taxonomy

NETWORK = ("ip_conflict", "firewall", "network_unstable")
"""Faults made with real Linux networking (the network lab): they need root."""
INJECTABLE = ("ip_conflict", "firewall", "network_unstable", "application", "firmware_driver", "resources", "data_loss", "maintenance", "chip_contacts", "msr_head",
              "nfc_antenna", "power_supply",
              "pcb_intermittent",
              "operator_error", "issuer_referral")
"""Cause ids the virtual bench can produce today."""


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
