"""The PPSE File Control Information a contactless card returns to SELECT 2PAY.SYS.DDF01.

Its BER-TLV is read by the one EMV parser (``posbench.drivers.card.emv.parse_tlv``); this module only knows
which objects a PPSE FCI must hold.
"""
from __future__ import annotations

from dataclasses import dataclass

from posbench.drivers.card.emv import TlvError, parse_tlv


class FciError(ValueError):
    """Bytes that are not valid BER-TLV, or an FCI missing a mandatory object."""


@dataclass(frozen=True)
class DirectoryEntry:
    """One application the PPSE lists: AID (tag 4F), label (50) and priority (87)."""

    aid: bytes
    label: str | None = None
    priority: int | None = None


@dataclass(frozen=True)
class PpseFci:
    df_name: bytes
    entries: tuple[DirectoryEntry, ...]

    @property
    def aids(self) -> tuple[str, ...]:
        return tuple(e.aid.hex().upper() for e in self.entries)


def parse_ppse_fci(data: bytes) -> PpseFci:
    """Parse the FCI a card answers to SELECT PPSE (status word removed).

    ``6F [84 DF name] [A5 [BF0C [61 [4F AID] [50 label] [87 priority]]...]]``; every entry must
    carry an AID of 5..16 bytes (ISO 7816-5 RID + PIX).
    """
    try:
        top = parse_tlv(data)
    except TlvError as exc:
        raise FciError(str(exc)) from None
    if len(top) != 1 or top[0].tag != 0x6F:
        raise FciError("the FCI is not a single 6F template")
    fci = top[0]
    name = fci.find(0x84)
    if name is None:
        raise FciError("FCI without DF name (84)")
    prop = fci.find(0xA5)
    if prop is None or not prop.constructed:
        raise FciError("FCI without proprietary template (A5)")
    directory = prop.find(0xBF0C)
    if directory is None or not directory.constructed:
        raise FciError("PPSE FCI without issuer discretionary data (BF0C)")
    entries = []
    for entry in directory.find_all(0x61):
        aid = entry.find(0x4F)
        if aid is None or not 5 <= len(aid.value) <= 16:
            raise FciError("directory entry (61) without a 5..16 byte AID (4F)")
        label = entry.find(0x50)
        prio = entry.find(0x87)
        entries.append(DirectoryEntry(
            aid.value,
            label.value.decode("ascii", "replace") if label else None,
            prio.value[0] if prio and len(prio.value) == 1 else None))
    if not entries:
        raise FciError("PPSE FCI lists no application (61)")
    return PpseFci(name.value, tuple(entries))
