"""What ``posbench discover`` prints for a person: per device class, what was found and how it
answered, and where nothing answered, what was tried there. Plain text lines (no markup)."""
from __future__ import annotations

from .probes import summary
from .readers import described, found_readers, reader_profiles
from .survey import Survey


def _origin(origin: int | None) -> str:
    return f"  (virtual bench, pid {origin})" if origin is not None else ""


def lines(found: Survey) -> list[str]:
    out = ["Serial ports" + ("" if found.probed else " (not probed: --probe asks each one which "
                                                     "protocol it speaks)")]
    if not found.ports:
        out.append("  none found (name one with --port)")
    for port in found.ports:
        out.append(f"  {port.path}" + (f"  {port.about}" if port.about else ""))
        result = found.results.get(port.path)
        if result is None:
            continue
        if result.answer:
            a = result.answer
            out.append(f"    {a.kind}: {a.protocol} at {a.settings}, {a.how}")
        elif result.problem:
            out.append(f"    cannot be opened: {result.problem}")
        else:
            out.append(f"    nothing answered; tried {summary(result.tried)}")
            if result.tried:
                out.append(f"    (the last one said: {result.tried[-1].detail})")
    if found.addresses:
        out.append("TCP")
    for place, results in found.addresses:
        for r in results:
            if r.answer:
                out.append(f"  {r.address}{_origin(place.origin)}  {r.answer.kind}: {r.answer.protocol}, "
                           f"{r.answer.how}")
            else:
                out.append(f"  {r.address}{_origin(place.origin)}  nothing answered; tried "
                           f"{'; '.join(str(t) for t in r.tried)}")
    for scan, origin in found.usb:
        head = f"USB ({scan.backend}){_origin(origin)}"
        if scan.problem:
            out.append(f"{head}: cannot enumerate: {scan.problem}")
            continue
        out.append(f"{head}: {scan.seen} device(s), {len(scan.found)} the bench uses"
                   + ("" if scan.found else " (no known card reader, switching hub or CH340)"))
        for f in scan.found:
            flavour = f" (posbench's driver: {f.kind.flavour})" if f.kind.flavour else ""
            note = f"; {f.note}" if f.note else ""
            out.append(f"  {f.usb_id}  {f.kind.kind}: {f.kind.name}{flavour}, by {f.kind.by}, "
                       f"{f.where}{note}")
    nfc = found.nfc
    if nfc.problem:
        out.append(f"NFC readers on USB (nfcpy): cannot search: {nfc.problem}")
    else:
        out.append(f"NFC readers on USB (nfcpy): {len(nfc.found) or 'none'}")
    out += [f"  {f.path}  {f.how}" for f in nfc.found] + [f"  {t}" for t in nfc.tried]
    return out + _reader_units(found)


def _reader_units(found: Survey) -> list[str]:
    """With no terminal answering, the card readers found, each with the reader profile it takes
    as the unit (the first one with a profile is the unit ``--write`` describes)."""
    from .writer import terminals
    readers = found_readers(found)
    if not found.probed or not readers or terminals(found):
        return []
    return ["Card readers (no terminal answered: a reader is the unit)"] + \
        [f"  {line}" for line in described(readers, reader_profiles())]
