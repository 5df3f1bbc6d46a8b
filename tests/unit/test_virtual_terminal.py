"""The virtual PT100 (bench/sim/ecr/agent.py) on a pty, driven by the real ECR driver
(drivers/ecr/agent/adapter.py over pyserial) against the real ISO 8583 host simulator on 127.0.0.1.

Each ``SimBench`` lives in a module-scoped fixture that always closes it. A booting unit
ignores its ECR port for ``profile.boot_time_s`` seconds, so every fixture waits for it with
``AgentTerminal.wait_ready``.
"""
from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone

import pytest

from posbench.core.errors import MessageError, UnitNotResponding
from posbench.core.limits import Limit
from posbench.setup.profile import Profile, version_tuple
from posbench.sim.bench import SimBench
from posbench.sim.ecr.agent import TEST_PAN
from posbench.drivers.host.log import HostLog
from posbench.drivers.ecr.agent.adapter import AgentTerminal, UnitRejected
from posbench.drivers.transport.frame import ACK, ENQ, EOT, NAK, encode_frame
from posbench.drivers.ecr.agent.codec import decode_message
from posbench.drivers.transport.enq_ack import LinkTiming

SEED = 20240501
BOOT_TIMEOUT = 10.0
MASKED_PAN = "411111******1111"
# Short ENQ waits: a unit that is booting is seen as silent in well under its boot time.
FAST = LinkTiming(enq_tries=2, enq_wait=0.25, frame_tries=3, ack_wait=1.0, inter_byte=0.5, eot_wait=0.3)


@dataclass
class Rig:
    sim: SimBench
    term: AgentTerminal
    log: HostLog

    @property
    def profile(self) -> Profile:
        return self.sim.profile


@contextlib.contextmanager
def rig(faults: dict[str, float] | None = None, seed: int = SEED) -> Iterator[Rig]:
    sim = SimBench(faults, seed=seed)
    term: AgentTerminal | None = None
    try:
        sim.start()
        assert sim.terminal is not None
        term = AgentTerminal(sim.terminal.port.path, baudrate=115200, reply_timeout=1.0,
                           sale_timeout=10.0, boot_timeout=BOOT_TIMEOUT, timing=FAST).open()
        term.wait_ready(BOOT_TIMEOUT)
        yield Rig(sim, term, HostLog(sim.host_log))
    finally:
        try:
            if term is not None:
                term.close()
        finally:
            sim.close()


def read_byte(term: AgentTerminal, wanted: set[int], timeout: float = 2.0) -> int | None:
    """First byte in ``wanted`` read raw from the driver's port within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for byte in term.port.read(64, 0.1):
            if byte in wanted:
                return byte
    return None


# -- healthy unit ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def healthy() -> Iterator[Rig]:
    with rig() as r:
        yield r


@pytest.mark.timeout(30)
def test_identify_matches_profile(healthy):
    ident = healthy.term.identify()
    p = healthy.profile
    assert ident.model == p.model == "PT100"
    assert ident.serial == healthy.sim.serial
    assert ident.firmware == p.firmware.expected
    assert version_tuple(ident.firmware) >= version_tuple(p.firmware.minimum)
    assert set(ident.components) == set(p.components)
    for name, version in ident.components.items():
        assert version in p.components[name], name


@pytest.mark.timeout(20)
def test_status_fields_sane(healthy):
    st = healthy.term.status()
    p = healthy.profile
    assert 0 <= st.uptime_s < 3600
    assert re.fullmatch(r"[0-9a-f]{8}", st.boot_id)
    assert st.restarts == 0
    assert 0 < st.free_mem_kib <= st.total_mem_kib
    assert p.limit("free_memory_kib").check(st.free_mem_kib)
    assert set(st.error_counters) == {"err_comm", "err_reader", "err_app"}
    assert all(v >= 0 for v in st.error_counters.values())
    assert re.fullmatch(r"[0-9A-F]{8}", st.cfg_crc)
    assert st.cfg_crc == st.cfg_crc_stored
    assert set(p.keys_required) <= set(st.keys)
    last_maint = date.fromisoformat(st.last_maintenance)
    assert last_maint <= datetime.now(timezone.utc).date()
    clock = datetime.strptime(st.clock, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs((clock - datetime.now(timezone.utc)).total_seconds()) < 120
    assert st.log_seq >= p.tests.log_records


@pytest.mark.timeout(20)
def test_sale_approved_and_host_log_agrees(healthy):
    amount = healthy.profile.tests.sale_amounts[0]
    sale = healthy.term.sale(amount)
    assert sale.display_code == "00"
    assert sale.host_answered is True
    assert sale.host_code == "00"
    assert sale.reason == ""
    assert re.fullmatch(r"\d{6}", sale.stan)
    assert sale.terminal_id == healthy.sim.terminal_id
    assert re.fullmatch(r"\d{6}", sale.auth_code)
    assert sale.pan == MASKED_PAN
    assert healthy.log.answer_for(sale.terminal_id, sale.stan) == "00"
    request = healthy.log.request(sale.terminal_id, sale.stan)
    assert request is not None
    assert request["amount"] == amount and request["pan"] == MASKED_PAN


@pytest.mark.timeout(20)
def test_stans_increase(healthy):
    first = healthy.term.sale(310)
    second = healthy.term.sale(899)
    assert int(second.stan) == int(first.stan) % 999999 + 1
    assert healthy.log.answer_for(second.terminal_id, second.stan) == "00"


@pytest.mark.timeout(20)
def test_only_masked_pan_leaves_the_unit(healthy):
    reply = healthy.term.request("SALE", {"amount": 2275}, timeout=10.0)
    assert reply.get("pan") == MASKED_PAN
    assert all(TEST_PAN not in value for _, value in reply.fields)
    page = healthy.term.request("LOG", {"start": 1, "max": 20})
    recs = page.getall("rec")
    assert recs
    for rec in recs:
        assert TEST_PAN not in rec
        assert rec.split(";")[4] == MASKED_PAN
    # the host log is the host's word; it must not keep the PAN either
    assert TEST_PAN not in healthy.sim.host_log.read_text(encoding="utf-8")


@pytest.mark.timeout(20)
def test_transaction_log_pages_are_contiguous_and_include_the_sale(healthy):
    healthy.term.sale(4999)
    wanted = healthy.profile.tests.log_records
    records = healthy.term.transaction_log(wanted)
    assert len(records) == wanted  # more than one page of 20
    seqs = [r.seq for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + wanted))
    assert seqs[-1] == healthy.term.status().log_seq
    last = records[-1]
    assert (last.type, last.amount, last.display_code, last.host_code, last.events) == \
        ("SALE", 4999, "00", "00", ())
    assert all(r.pan == MASKED_PAN for r in records)
    assert all(r.type in ("SALE", "VOID") for r in records)
    # a later window ends where the earlier one did
    assert [r.seq for r in healthy.term.transaction_log(5)] == seqs[-5:]


@pytest.mark.timeout(20)
def test_unknown_command_rejected(healthy):
    with pytest.raises(UnitRejected) as info:
        healthy.term.request("FOO")
    assert "rc=ERR" in str(info.value) and "unknown_command" in str(info.value)
    assert healthy.term.status().boot_id  # still answers


@pytest.mark.timeout(20)
def test_bad_message_in_good_frame_rejected(healthy):
    link = healthy.term.link
    link.send(b"not a command", "sending garbage")
    reply = decode_message(link.receive(2.0, "waiting for the error reply"))
    assert (reply.command, reply.get("rc"), reply.get("reason")) == ("ERR", "ERR", "bad_message")
    with pytest.raises(MessageError):  # a field the protocol cannot carry: refused before sending
        healthy.term.request("ST", {"x": "\x7f"})
    assert healthy.term.status().boot_id


@pytest.mark.timeout(20)
def test_malformed_frame_is_naked_and_unit_still_answers(healthy):
    term = healthy.term
    term.port.discard_input()
    term.port.write(bytes([ENQ]))
    assert read_byte(term, {ACK, NAK}) == ACK
    bad = bytearray(encode_frame(b"ST"))
    bad[-1] ^= 0x5A  # wrong LRC
    term.port.write(bytes(bad))
    assert read_byte(term, {ACK, NAK}) == NAK
    term.port.write(bytes([EOT]))
    ident = term.identify()
    assert ident.serial == healthy.sim.serial
    assert term.status().log_seq > 0


@pytest.mark.timeout(30)
def test_reboot_silent_then_answers_within_boot_timeout(healthy):
    term = healthy.term
    before = term.status()
    term.request("RBT")
    with pytest.raises(UnitNotResponding):
        term.status()  # booting: the unit ignores its ECR port
    took = term.wait_ready(term.boot_timeout)
    assert took < term.boot_timeout
    after = term.status()
    assert after.boot_id != before.boot_id
    assert after.uptime_s < term.boot_timeout
    assert after.log_seq == before.log_seq  # the journal survives a reboot
    assert term.identify().serial == healthy.sim.serial


# -- faults ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_loss() -> Iterator[Rig]:
    with rig({"data_loss": 1.0}) as r:
        yield r


@pytest.fixture(scope="module")
def maintenance() -> Iterator[Rig]:
    with rig({"maintenance": 1.0}) as r:
        yield r


@pytest.fixture(scope="module")
def issuer() -> Iterator[Rig]:
    # 0.25 of the eight profile amounts: the issuer refers the two largest.
    with rig({"issuer_referral": 0.25}) as r:
        yield r


@pytest.fixture(scope="module")
def resources() -> Iterator[Rig]:
    with rig({"resources": 1.0}) as r:
        yield r


@pytest.fixture(scope="module")
def host_down() -> Iterator[Rig]:
    with rig() as r:
        yield r


@pytest.mark.timeout(30)
def test_data_loss_keys_missing_and_sale_fails_locally(data_loss):
    st = data_loss.term.status()
    missing = set(data_loss.profile.keys_required) - set(st.keys)
    assert "TAK" in missing
    assert st.cfg_crc != st.cfg_crc_stored  # the merchant record is gone
    sale = data_loss.term.sale(1250)
    assert sale.display_code == "01"
    assert sale.host_answered is False
    assert sale.host_code == ""
    assert sale.reason == "no_keys"
    assert data_loss.log.received(sale.terminal_id, sale.stan) is False
    assert data_loss.log.answer_for(sale.terminal_id, sale.stan) is None
    assert not [r for r in data_loss.log.records() if r.get("mti") == "0200"]


@pytest.mark.timeout(30)
def test_data_loss_journal_has_gaps(data_loss):
    newest = data_loss.term.status().log_seq
    records = data_loss.term.transaction_log(newest)
    seqs = [r.seq for r in records]
    assert seqs == sorted(seqs)
    assert len(seqs) < newest  # deleted records leave gaps in the sequence
    assert any(b - a > 1 for a, b in zip(seqs, seqs[1:]))


@pytest.mark.timeout(30)
def test_maintenance_firmware_below_minimum(maintenance):
    ident = maintenance.term.identify()
    p = maintenance.profile
    assert version_tuple(ident.firmware) < version_tuple(p.firmware.minimum)
    st = maintenance.term.status()
    age = (datetime.now(timezone.utc).date() - date.fromisoformat(st.last_maintenance)).days
    assert not p.limit("maintenance_age_days").check(age)


@pytest.mark.timeout(30)
def test_issuer_referral_largest_amount_gets_01(issuer):
    amounts = issuer.profile.tests.sale_amounts
    big = issuer.term.sale(max(amounts))
    assert big.display_code == "01"
    assert big.host_answered is True and big.host_code == "01" and big.reason == ""
    assert issuer.log.answer_for(big.terminal_id, big.stan) == "01"
    small = issuer.term.sale(min(amounts))
    assert small.display_code == "00"
    assert issuer.log.answer_for(small.terminal_id, small.stan) == "00"


@pytest.mark.timeout(30)
def test_resources_free_memory_below_limit(resources):
    st = resources.term.status()
    limit = resources.profile.limit("free_memory_kib")
    assert isinstance(limit, Limit) and limit.min is not None
    assert st.free_mem_kib < limit.min
    assert not limit.check(st.free_mem_kib)


@pytest.mark.timeout(30)
def test_host_stopped_sale_fails_locally(host_down):
    rig_ = host_down
    ok = rig_.term.sale(1250)
    assert ok.display_code == "00"  # the unit had a working host connection
    assert rig_.sim.host is not None
    rig_.sim.host.stop()
    local = rig_.profile.local_failure_code
    for amount in (899, 310):  # the open connection breaks, then reconnecting is refused
        sale = rig_.term.sale(amount)
        assert sale.display_code == local
        assert sale.host_answered is False
        assert sale.host_code == ""
        assert sale.reason in ("host_timeout", "host_unreachable")
        assert rig_.log.answer_for(sale.terminal_id, sale.stan) is None
    assert rig_.term.status().log_seq > 0  # the unit itself is fine


@pytest.fixture(scope="module")
def slow_host() -> Iterator[Rig]:
    """The issuer answers large amounts after 1.5 s; the unit waits only 0.5 s for the host."""
    from posbench.sim.ecr.agent import TerminalTiming
    from posbench.drivers.host.rules import Rule, RuleSet
    sim = SimBench(seed=SEED, timing=TerminalTiming(boot_s=0.3, host_timeout_s=0.5),
                   host_rules=RuleSet([Rule(code="00", min_amount=10000, delay_s=1.5, name="slow")]))
    term = None
    try:
        sim.start()
        term = AgentTerminal(sim.terminal.port.path, baudrate=115200, reply_timeout=1.0,
                           sale_timeout=10.0, boot_timeout=BOOT_TIMEOUT, timing=FAST).open()
        term.wait_ready(BOOT_TIMEOUT)
        yield Rig(sim, term, HostLog(sim.host_log))
    finally:
        if term is not None:
            term.close()
        sim.close()


@pytest.mark.timeout(30)
def test_host_answer_too_late_is_a_local_01_then_a_reversal(slow_host):
    """The TranzWare ambiguity: the host approved, but too late: the unit had already shown 01
    itself and hung up, so the host's answer never left it; the next sale reverses the first."""
    r = slow_host
    late = r.term.sale(15000)
    assert late.display_code == r.profile.local_failure_code and late.reason == "host_timeout"
    assert late.host_answered is False
    time.sleep(1.5)  # the host's late approval finds the unit has hung up
    request = r.log.request(late.terminal_id, late.stan)
    assert request is not None and r.log.answer_for(late.terminal_id, late.stan) is None
    assert any(rec.get("event") == "reply_lost" and rec.get("seq") == request["seq"]
               for rec in r.log.records())
    after = r.term.sale(1250)  # the unit first reverses the timed-out sale
    assert after.display_code == "00"
    reversal = r.log.request(late.terminal_id, late.stan, mti="0400")
    assert reversal is not None and reversal["amount"] == 15000
    assert r.log.answer_for(late.terminal_id, late.stan, mti="0400") == "00"
