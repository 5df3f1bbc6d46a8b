"""Reader of the host simulator's JSONL log: what the acquirer host really received and said.

Message records carry ``dir`` ("in"/"out"), ``mti``, ``stan``, ``tid``, ``rc``, ``action`` and
``run``/``seq`` (an out record has the run and seq of the request it answers); event records carry ``event``
("malformed", "reply_lost", "send_failed", ...). The file may be read while it is written.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from posbench.core.errors import HostUnavailable

from .iso_spec import response_mti

DEVICE = "host simulator"


class HostLog:
    """Queries over a host log file at ``path``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def records(self) -> list[dict[str, Any]]:
        """Every complete record; a truncated last line is skipped, a missing file is empty."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise HostUnavailable(DEVICE, "reading the host log", f"{self.path}: {exc.strerror}") from None
        lines = data.split(b"\n")
        out: list[dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if number == len(lines):  # no newline yet: the writer is mid-line
                    break
                raise HostUnavailable(DEVICE, "reading the host log",
                                      f"{self.path}: line {number} is not JSON") from None
            if not isinstance(record, dict):
                raise HostUnavailable(DEVICE, "reading the host log",
                                      f"{self.path}: line {number} is not an object")
            out.append(record)
        return out

    def request(self, tid: str | None, stan: str | int, mti: str = "0200") -> dict[str, Any] | None:
        """The latest request record ``mti`` with terminal id ``tid`` and STAN ``stan``."""
        return self._latest_request(self.records(), tid, stan, mti)

    def answer_for(self, tid: str | None, stan: str | int, mti: str = "0200") -> str | None:
        """Field 39 the host sent in reply to the latest ``mti`` request (tid, stan).

        ``tid`` is field 41 ("" or None for a message without one, such as a bare echo);
        ``stan`` is field 11, compared as a number.
        None when that request was never received, was dropped, its reply is still delayed,
        or the reply could not be sent. ``mti`` is the request MTI (default 0200, financial).
        """
        records = self.records()
        request = self._latest_request(records, tid, stan, mti)
        if request is None:
            return None
        key = (request.get("run"), request.get("seq"))
        if any(r.get("event") == "send_failed" and (r.get("run"), r.get("seq")) == key for r in records):
            return None
        reply_mti = response_mti(mti)
        for record in records:
            if (record.get("dir") == "out" and record.get("mti") == reply_mti
                    and (record.get("run"), record.get("seq")) == key):
                rc = record.get("rc")
                return str(rc) if rc is not None else None
        return None

    def mark(self) -> int:
        """How many records the log holds now: ``answer_since`` looks only after it."""
        return len(self.records())

    def answer_since(self, mark: int, amount: int, mti: str = "0200") -> str | None:
        """Field 39 the host sent to the first ``mti`` request for ``amount`` (minor units)
        logged after ``mark`` (``mark()`` taken before the sale): how a sale is found when the
        terminal's protocol carries no trace number (Caisse-AP). The bench's host serves the unit
        under test alone, so the amount and the moment identify the sale. None as ``answer_for``."""
        records = self.records()
        request = next((r for r in records[mark:] if r.get("dir") == "in" and r.get("mti") == mti
                        and r.get("amount") == amount), None)
        if request is None:
            return None
        return self.answer_for(request.get("tid"), request.get("stan") or "", mti)

    def received(self, tid: str | None, stan: str | int, mti: str = "0200") -> bool:
        """True when the host received an ``mti`` request (tid, stan)."""
        return self.request(tid, stan, mti) is not None

    @staticmethod
    def _latest_request(records: list[dict[str, Any]], tid: str | None, stan: str | int,
                        mti: str) -> dict[str, Any] | None:
        found = None
        for record in records:
            if (record.get("dir") == "in" and record.get("mti") == mti
                    and _same_tid(record.get("tid"), tid) and _same_stan(record.get("stan"), stan)):
                found = record
        return found


def _same_tid(logged: Any, wanted: str | None) -> bool:
    """Field 41 is fixed 8 characters, often space-padded; "" or None match a message without it."""
    if logged is None or wanted is None:
        return not logged and not wanted
    return isinstance(logged, str) and logged.strip() == str(wanted).strip()


def _same_stan(logged: Any, wanted: str | int) -> bool:
    """STANs compare as numbers: "000042" == "42" == 42."""
    if not isinstance(logged, str):
        return False
    a, b = logged.strip(), str(wanted).strip()
    return a == b or (a.isdigit() and b.isdigit() and int(a) == int(b))
