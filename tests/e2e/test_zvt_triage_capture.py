"""tshark as a second opinion on a whole ``posbench triage`` over ZVT/TCP: Wireshark's ZVT
dissector reads every APDU the driver and the virtual terminal exchanged during all 19 HIL tests.

The virtual bench is started the way a user would (``posbench sim --protocol zvt-tcp
--write-bench FILE`` in the background; the PT's TCP port is its ``[terminal] address``), and
``posbench triage --bench FILE --log LOG`` runs against it while dumpcap captures that port on
loopback (``capture_tcp``). ``tshark -d tcp.port==PORT,zvt`` (``tshark_messages``) must find no
malformed frame, no expert error and no APDU shorter than its command, and name, message by
message and in order, the commands, answers (80 00 / 84 xx), result codes, intermediate statuses
and card types the driver logged (``posbench.zvt`` DEBUG lines, written by ``--log``).

The unit's issuer refers every sale (``issuer_referral``): the result code 01 of the bench's name
is on the wire twice per sale, in BMP 27 of the status information (04 0F) and in the abort
(06 1E); the unit itself is healthy (verdict pass, code 01 from the issuer).

Needs root and tshark like ``test_zvt_tshark``: skipped without them, failed in CI. One triage run
(about 25-60 s). Card data: the driver's log names commands and codes only; the test checks it
holds no PAN or track.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from posbench.sim.launcher import sim_workdir

from .conftest import assert_no_card_data, triage
from .test_zvt_tshark import UNKNOWN_TO_TSHARK, Message, capture_tcp, need_capture_tools, tshark_messages

SIM_ARGS = ("--protocol", "zvt-tcp", "--fault", "issuer_referral", "--seed", "42")
"""A unit whose issuer refers every sale (code 01 from the host, not the unit)."""
SIM_START_S = 20.0
"""Longest wait for ``posbench sim`` to write its bench file (seconds)."""
SIM_STOP_S = 10.0
"""Longest wait for ``posbench sim`` to exit after SIGTERM, and again after SIGKILL (seconds)."""
TRIAGE_S = 240.0
"""Longest the one triage run may take (seconds; it takes about 25-60)."""
HIL_TESTS = 19
"""Tests in the HIL suite when this was written: a run with fewer means the triage stopped short."""
LOG_LINE = re.compile(r" posbench\.zvt \S+: (ECR|PT)>(?:PT|ECR) ([0-9A-F]{2} [0-9A-F]{2})((?: rc=[0-9A-F]{2})*)"
                      r"(?: status=([0-9A-F]{2}))?(?: card type=(\d+))?$")
"""One APDU in the driver's log (``posbench.drivers.ecr.zvt.client.apdu_summary``)."""


# -- the virtual bench, run as a user runs it ---------------------------------------------------
def _stop_sim(proc: subprocess.Popen) -> None:
    """SIGTERM (the sim removes what it made), then SIGKILL to its process group; bounded."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(SIM_STOP_S)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what this test started
        except ProcessLookupError:
            pass
        proc.wait(SIM_STOP_S)


@contextmanager
def zvt_sim(tmp_path: Path) -> Iterator[Path]:
    """``posbench sim --protocol zvt-tcp ... --write-bench FILE`` in the background; yields FILE.
    Stopped on leaving, passed or failed (and, should pytest itself be killed, it exits on its
    own: ``POSBENCH_PARENT_PID``)."""
    bench = tmp_path / "sim-bench.toml"
    output = tmp_path / "sim.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "posbench.cli", "sim", *SIM_ARGS, "--write-bench", str(bench)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                                start_new_session=True, env={**os.environ, "POSBENCH_PARENT_PID": str(os.getpid())})
    workdir = None
    try:
        deadline = time.monotonic() + SIM_START_S
        while not bench.exists():
            if proc.poll() is not None:
                pytest.fail(f"posbench sim exited with {proc.returncode}: {output.read_text(errors='replace')[-800:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"posbench sim wrote no bench file within {SIM_START_S:g} s")
            time.sleep(0.05)
        workdir = sim_workdir(bench)
        yield bench
    finally:
        _stop_sim(proc)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)  # a killed sim cannot remove it itself


def pt_port(bench: Path) -> int:
    """The PT's TCP port from the bench file's ``[terminal] address`` (on loopback)."""
    host, port = tomllib.loads(bench.read_text(encoding="utf-8"))["terminal"]["address"].rsplit(":", 1)
    assert host == "127.0.0.1", f"the virtual PT listens on {host}, not on loopback"
    return int(port)


# -- what the driver logged ---------------------------------------------------------------------
def logged_messages(text: str) -> list[Message]:
    """The driver's ``posbench.zvt`` lines as messages; a line the test cannot read fails it."""
    messages = []
    for line in text.splitlines():
        if " posbench.zvt " not in line:
            continue
        m = LOG_LINE.search(line)
        assert m, f"a driver log line that names no whole APDU: {line!r}"
        codes = tuple(int(code, 16) for code in re.findall(r"rc=([0-9A-F]{2})", m[3]))
        messages.append(Message(m[1], m[2], codes, None if m[4] is None else int(m[4], 16),
                                None if m[5] is None else int(m[5])))
    return messages


def first_difference(ours: list[Message], theirs: list[Message]) -> str:
    """Where the driver's log and tshark part, with a few messages around it ("" if nowhere)."""
    for i in range(max(len(ours), len(theirs))):
        mine = ours[i] if i < len(ours) else None
        wire = theirs[i] if i < len(theirs) else None
        if mine != wire:
            around = "\n".join(f"  {j}: driver [{ours[j] if j < len(ours) else '-'}]  tshark "
                               f"[{theirs[j] if j < len(theirs) else '-'}]"
                               for j in range(max(0, i - 4), min(max(len(ours), len(theirs)), i + 4)))
            return f"message {i}: the driver logged [{mine}], tshark read [{wire}]\n{around}"
    return ""


def sales(messages: list[Message]) -> list[list[Message]]:
    """Each authorisation (06 01) with what followed it up to the ECR's next command."""
    found: list[list[Message]] = []
    current: list[Message] | None = None
    for m in messages:
        if m.sender == "ECR" and m.command[:2] not in ("80", "84"):
            current = [m] if m.command == "06 01" else None
            if current is not None:
                found.append(current)
        elif current is not None:
            current.append(m)
    return found


def shown(sale_list: list[list[Message]]) -> str:
    """Sales one per line, for a failure message."""
    return "\n".join(" | ".join(f"{m.sender} {m.command} {m.result_codes or ''}".strip() for m in sale)
                     for sale in sale_list)


# -- the test -----------------------------------------------------------------------------------
@pytest.mark.timeout(TRIAGE_S + 120)
def test_a_whole_zvt_triage_reads_the_same_in_tshark(tmp_path: Path) -> None:
    need_capture_tools()
    log = tmp_path / "zvt-driver.log"
    pcap = tmp_path / "zvt-triage.pcapng"
    with zvt_sim(tmp_path) as bench:
        port = pt_port(bench)
        r = capture_tcp(port, lambda: triage(tmp_path, "--bench", str(bench), "--log", str(log),
                                             timeout=TRIAGE_S), pcap)

    # the whole triage ran: every HIL test, none failed, the referral read as the issuer's
    assert r.code == 0 and r.doc is not None, r.out + r.err
    announced = re.search(r"running (\d+) HIL tests", r.out)
    assert announced and len(r.doc["tests"]) == int(announced[1]) >= HIL_TESTS, r.out
    assert {t["outcome"] for t in r.doc["tests"]} <= {"passed", "skipped"}, r.out
    assert (r.doc["verdict"], r.doc["code01_origin"]) == ("pass", "issuer"), r.out
    text = log.read_text(encoding="utf-8")
    assert_no_card_data(text)

    decoded = tshark_messages(pcap, port)
    assert decoded.malformed == [], f"tshark found malformed frames: {decoded.malformed} ({pcap})"
    assert decoded.expert_errors == [], decoded.expert_errors
    assert decoded.length_warnings == [], decoded.length_warnings
    assert set(decoded.unnamed) <= UNKNOWN_TO_TSHARK, f"tshark could not read {set(decoded.unnamed)}"

    ours, theirs = logged_messages(text), decoded.messages
    assert len(ours) > 300, f"only {len(ours)} APDUs in the driver's log {log}"
    assert ours == theirs, first_difference(ours, theirs) + f"\n(capture {pcap}, driver log {log})"

    # what the triage put on the wire: every command of a triage, and code 01 twice per sale
    sent = Counter(m.command for m in theirs if m.sender == "ECR" and m.command[:2] not in ("80", "84"))
    assert {"06 00", "05 01", "06 01", "06 70"} <= sent.keys(), sent
    assert {decoded.names[c] for c in ("06 00", "06 01", "06 70", "06 0F", "06 1E", "04 0F", "04 FF")} == {
        "Registration", "Authorisation", "Diagnosis", "Completion", "Abort", "Status Information",
        "Intermediate Status Information"}
    referred = [m for m in theirs if m.command == "04 0F"]
    aborts = [m for m in theirs if m.command == "06 1E"]
    assert referred and all(m.result_codes == (0x01,) for m in referred)
    assert len(aborts) == len(referred) and all(m.result_codes == (0x01,) for m in aborts), shown(sales(theirs))
    # every sale ends in the issuer's referral, but the one test_brownout cuts off: on a loaded
    # machine the supply drops before the PT's status information, and the PT says nothing more
    cut_off = [sale for sale in sales(theirs) if not any(m.command == "04 0F" for m in sale)]
    assert len(cut_off) <= 1 and len(referred) + len(cut_off) == sent["06 01"], shown(sales(theirs))
    assert not any(m.sender == "PT" and m.command in ("06 0F", "06 1E") for sale in cut_off for m in sale), \
        shown(cut_off)
    assert all(m.sender == "PT" for m in referred + aborts)
