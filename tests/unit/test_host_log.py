"""posbench.drivers.host.log: reading the host's JSONL log."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from posbench.core.errors import HostUnavailable
from posbench.drivers.host.log import HostLog

pytestmark = pytest.mark.timeout(10)


def rec(direction: str, mti: str, stan: str, seq: int, rc: str | None = None, action: str = "answered",
        tid: str | None = "TERM0001", run: str = "r1") -> dict:
    return {"ts": "2025-01-01T00:00:00.000+00:00", "dir": direction, "mti": mti, "stan": stan, "tid": tid,
            "amount": 1000, "pan": None, "rc": rc, "action": action, "delay_s": 0.0, "rule": None,
            "run": run, "seq": seq}


def write(path: Path, records: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_missing_file_is_empty(tmp_path: Path) -> None:
    log = HostLog(tmp_path / "none.jsonl")
    assert log.records() == []
    assert log.answer_for("TERM0001", "1") is None and not log.received("TERM0001", "1")


def test_truncated_last_line_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    write(path, [rec("in", "0200", "000001", 1)], tail='{"dir": "out", "mti": "02')
    assert len(HostLog(path).records()) == 1


def test_garbage_inside_is_host_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('not json\n{"dir": "in"}\n')
    with pytest.raises(HostUnavailable, match="line 1"):
        HostLog(path).records()
    path.write_text("[1, 2]\n")
    with pytest.raises(HostUnavailable, match="not an object"):
        HostLog(path).records()


def test_unreadable_is_host_unavailable(tmp_path: Path) -> None:
    with pytest.raises(HostUnavailable, match="reading the host log"):
        HostLog(tmp_path).records()  # a directory
    path = tmp_path / "h.jsonl"
    write(path, [])
    if os.geteuid() != 0:
        path.chmod(0)
        with pytest.raises(HostUnavailable):
            HostLog(path).records()


def test_answer_for_pairs_request_and_reply(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    write(path, [
        rec("in", "0200", "000001", 1),
        rec("in", "0200", "000002", 2, action="dropped"),
        rec("in", "0200", "000003", 3, action="delayed"),
        rec("out", "0210", "000001", 1, rc="01"),
        rec("in", "0400", "000001", 4),
        rec("out", "0410", "000001", 4, rc="00"),
        {"ts": "x", "event": "malformed", "run": "r1", "peer": "127.0.0.1:1", "detail": "zero-length"},
    ])
    log = HostLog(path)
    assert log.answer_for("TERM0001", "000001") == "01"  # the reversal's 00 does not hide it
    assert log.answer_for("TERM0001 ", 1) == "01"         # padded tid, numeric stan
    assert log.answer_for("TERM0001", "1", mti="0400") == "00"
    assert log.answer_for("TERM0001", "2") is None and log.received("TERM0001", "2")
    assert log.answer_for("TERM0001", "3") is None         # delayed, not sent yet
    assert log.answer_for("TERM0002", "1") is None and not log.received("TERM0002", "1")


def test_answer_for_uses_latest_request_and_run(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    write(path, [
        rec("in", "0200", "000001", 1, run="a"),
        rec("out", "0210", "000001", 1, rc="00", run="a"),
        rec("in", "0200", "000001", 1, run="b", action="dropped"),   # a later run, same seq
        rec("in", "0200", "000002", 2, run="b"),
        rec("out", "0210", "000002", 2, rc="05", run="b"),
        rec("in", "0200", "000003", 3, run="b"),
        rec("out", "0210", "000003", 3, rc="00", run="b"),
        {"event": "send_failed", "run": "b", "seq": 3},
    ])
    log = HostLog(path)
    assert log.answer_for("TERM0001", "1") is None
    assert log.answer_for("TERM0001", "2") == "05"
    assert log.answer_for("TERM0001", "3") is None  # logged, but the bytes never left


def test_a_sale_without_a_trace_number_is_found_by_amount_after_a_mark(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    earlier = {**rec("in", "0200", "000007", 7), "amount": 1250}
    write(path, [earlier, {**rec("out", "0210", "000007", 7, rc="00"), "amount": 1250}])
    log = HostLog(path)
    mark = log.mark()
    assert mark == 2 and log.answer_since(mark, 1250) is None  # the earlier sale of 1250 is before the mark
    write(path, [earlier, {**rec("out", "0210", "000007", 7, rc="00"), "amount": 1250},
                 {**rec("in", "0200", "000008", 8), "amount": 999},
                 {**rec("in", "0200", "000009", 9), "amount": 1250},
                 {**rec("out", "0210", "000009", 9, rc="01"), "amount": 1250}])
    assert log.answer_since(mark, 1250) == "01"
    assert log.answer_since(mark, 999) is None  # received, never answered
