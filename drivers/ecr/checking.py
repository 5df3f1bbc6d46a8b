"""What a protocol's preflight check (``posbench.drivers.ecr.<protocol>.check``) says of a unit
that answered.

A check is ``answer(section, model, probe_s) -> str``: one short question through the protocol's
driver, every wait at most ``probe_s`` seconds; it returns what was found and raises
``UnitError`` (silent, it may be booting: asked again) or ``PortUnavailable``."""
from __future__ import annotations

from posbench.drivers.terminal import Identity


def identity_said(protocol: str, ident: Identity) -> str:
    """A unit's identity as the preflight states it."""
    if not ident.serial:  # its protocol tells neither serial number nor firmware (Caisse-AP)
        return f"{protocol} unit answers (its protocol tells no serial number or firmware)"
    return f"{protocol} unit {ident.model or '?'} serial {ident.serial} firmware {ident.firmware}"
