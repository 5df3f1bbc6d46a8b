"""The virtual Concert terminal (bench/sim/ecr/concert.py) in the virtual bench, driven by the
real Concert driver (drivers/ecr/concert/adapter.py) over its pty, cards presented through
the bench's control port, against the real ISO 8583 host simulator: each fault shows the way a
Concert terminal shows it (a refusal, silence, a garbled frame), and what the driver parsed
matches the host log and the unit's journal.

Every rig is a context manager that closes the driver and the bench (threads, ptys, sockets)
even when a test fails; seeds make every draw repeatable; no test asserts a duration.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from posbench.drivers.actuator.virtual import request as control
from posbench.drivers.ecr.concert.codec import DELAY_AT_ONCE, Answer, Request
from posbench.drivers.ecr.concert.adapter import ConcertPaymentTerminal
from posbench.drivers.host.log import HostLog
from posbench.drivers.terminal import SaleResult, Terminal, Unsupported
from posbench.core.errors import UnitError, UnitNotResponding
from posbench.sim.bench import SimBench
from posbench.sim.devices.serial_bridge import SerialBridge
from posbench.sim.ecr.agent import TerminalTiming

SEED = 20240611
READY_S = 10.0
TIMING = TerminalTiming(boot_s=0.5, app_restart_s=0.5)


@dataclass
class Rig:
    sim: SimBench
    term: ConcertPaymentTerminal
    log: HostLog

    def sale(self, amount: int, action: str = "insert", card: str = "VISA-T1") -> SaleResult:
        assert self.sim.control is not None
        reply = control(self.sim.control.address, {"action": action, "card": card})
        assert reply["ok"], reply
        try:
            return self.term.sale(amount, timeout=6.0)
        finally:
            control(self.sim.control.address, {"action": "remove"})

    def sales(self, n: int, action: str = "insert",
              until: Callable[[SaleResult | UnitError], bool] = lambda result: False) -> list[SaleResult | UnitError]:
        """``n`` sales over the profile's amounts, or fewer once one is ``until``; one the unit
        never answers gives its error (and the unit is given time to come back)."""
        amounts = self.sim.profile.tests.sale_amounts
        out: list[SaleResult | UnitError] = []
        for i in range(n):
            try:
                out.append(self.sale(amounts[i % len(amounts)], action))
            except UnitError as exc:
                out.append(exc)
                with contextlib.suppress(UnitNotResponding):  # a unit browning out may stay down a while
                    self.term.wait_ready(READY_S)
            if until(out[-1]):
                break
        return out


@contextlib.contextmanager
def rig(faults: dict[str, float] | None = None, seed: int = SEED, url: str | None = None,
        line: str = "8N1") -> Iterator[Rig]:
    with contextlib.ExitStack() as stack:  # closes the driver, then the bench, even on failure
        sim = stack.enter_context(SimBench(faults, seed=seed, netlab=False, protocol="concert", timing=TIMING))
        assert sim.terminal is not None and sim.terminal.port is not None
        sim.terminal.card_timeout_s = 1.0
        term = ConcertPaymentTerminal(url or sim.terminal.port.path, line, sale_timeout=6.0).open()
        stack.callback(term.close)
        term.wait_ready(READY_S)
        yield Rig(sim, term, HostLog(sim.host_log))


def refused_unread(result: SaleResult | UnitError) -> bool:
    return isinstance(result, SaleResult) and result.details.get("card_read") == "no" and result.display_code != "00"


@pytest.fixture(scope="module")
def healthy() -> Iterator[Rig]:
    with rig() as r:
        yield r


@pytest.mark.timeout(60)
@pytest.mark.parametrize("action", ["insert", "swipe", "tap"])
def test_healthy_sales_match_host_log_and_journal(healthy, action):
    sale = healthy.sale(1250, action)
    assert (sale.display_code, sale.host_code, sale.details) == ("00", "00", {"status": "0", "card_read": "yes"})
    assert sale.pan == "411111******1111"
    assert healthy.log.answer_for(sale.terminal_id, sale.stan) == "00"
    entry = healthy.sim.terminal.unit.log[-1]
    assert (entry.stan, entry.amount, entry.host_rc) == (sale.stan, 1250, "00")


@pytest.mark.timeout(60)
def test_no_card_is_refused_without_a_pan(healthy):
    assert healthy.sim.terminal is not None
    sale = healthy.term.sale(1250, timeout=6.0)
    assert refused_unread(sale) and sale.stan == "" and "no card read" in sale.reason


@pytest.mark.timeout(60)
def test_the_other_delay_code_is_answered_at_once_with_status_9(healthy):
    link = healthy.term.link
    link.send(Request(1250, delay=DELAY_AT_ONCE).encode())
    answer = Answer.decode(link.receive(5.0))
    assert answer.status == "9" and answer.report is not None and answer.report.pan == ""


@pytest.mark.timeout(60)
def test_answer_flag_0_gives_the_short_answer(healthy):
    link = healthy.term.link
    link.send(Request(1250, answer_flag="0").encode())
    raw = link.receive(5.0)
    assert len(raw) == 25 and Answer.decode(raw).report is None


def test_questions_concert_cannot_answer_are_unsupported(healthy):
    assert isinstance(healthy.term, Terminal)
    assert healthy.term.capabilities == {"sale", "card_sale", "link_counters"}
    for ask in (healthy.term.identify, healthy.term.status, healthy.term.reboot, healthy.term.chip,
                healthy.term.host_check, healthy.term.abort, healthy.term.reverse_last):
        with pytest.raises(Unsupported, match="the concert protocol cannot"):
            ask()


@pytest.mark.timeout(60)
def test_7e1_driver_over_a_raw_socket_bridge():
    """7E1 on the ECR side, through a terminal server (``socket://``, a raw ser2net port): the
    line setting is the server's business, the bytes are Concert's."""
    with rig() as r:
        assert r.sim.terminal is not None
        with SerialBridge(r.sim.terminal.port.path, raw=True) as bridge:
            r.term.close()
            with ConcertPaymentTerminal(bridge.url.replace("rfc2217://", "socket://"), "7E1",
                                        sale_timeout=6.0) as term:
                r.term = term
                term.wait_ready(READY_S)
                assert r.sale(1250).display_code == "00"


# -- faults, each as a Concert terminal shows it --------------------------------------------------
@pytest.mark.timeout(120)
@pytest.mark.parametrize("cause, action", [("msr_head", "swipe"), ("chip_contacts", "insert"),
                                           ("nfc_antenna", "tap")])
def test_reader_faults_refuse_the_card_of_their_technology_without_a_pan(cause, action):
    with rig({cause: 1.0}) as r:
        faulty = r.sales(6, action)
        assert sum(map(refused_unread, faulty)) >= 3, faulty
        other = "tap" if action != "tap" else "insert"
        assert not any(map(refused_unread, r.sales(3, other)))


@pytest.mark.timeout(120)
def test_issuer_referral_is_a_refusal_carrying_the_acquirers_01():
    with rig({"issuer_referral": 1.0}) as r:
        referred = [s for s in r.sales(8, until=lambda s: isinstance(s, SaleResult) and s.host_code == "01")
                    if isinstance(s, SaleResult) and s.host_code == "01"]
        assert referred
        for sale in referred:
            assert sale.details["status"] == "7" and sale.display_code == "01"
            assert r.log.answer_for(sale.terminal_id, sale.stan) == "01"
            assert sale.acquirer_code == "01"  # the report's field 39: told without the host log


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cause", ["data_loss", "firmware_driver"])
def test_local_failures_after_the_read_are_refusals_with_a_pan_and_no_acquirer_code(cause):
    with rig({cause: 1.0}) as r:
        def local_failure(s: SaleResult | UnitError) -> bool:
            return isinstance(s, SaleResult) and s.details == {"status": "7", "card_read": "yes"} and not s.host_code

        local = [s for s in r.sales(6, until=local_failure) if local_failure(s)]
        assert local
        assert all(r.log.answer_for(s.terminal_id, s.stan) is None for s in local)
        assert all(s.acquirer_code == "" for s in local)  # the report says the host gave none


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cause", ["resources", "maintenance", "operator_error"])
def test_refusals_at_once_or_at_the_counter(cause):
    with rig({cause: 1.0}) as r:
        results = r.sales(12, until=lambda s: isinstance(s, SaleResult) and s.details["status"] == "7")
        assert isinstance(results[-1], SaleResult) and results[-1].details["status"] == "7", results


@pytest.mark.timeout(120)
def test_power_supply_resets_mid_sale_or_refuses_at_once():
    # At severity 1 most boots fail too: seed 5 is one whose first boot succeeds.
    with rig({"power_supply": 1.0}, seed=5) as r:
        results = r.sales(10, until=lambda s: isinstance(s, UnitError) or s.details["status"] == "7")
        assert isinstance(results[-1], UnitError) or results[-1].details["status"] == "7", results
        if any(isinstance(s, UnitError) for s in results):
            assert r.sim.terminal is not None and r.sim.terminal.power_losses > 0


@pytest.mark.timeout(120)
def test_application_fault_is_silence_then_the_terminal_comes_back():
    with rig({"application": 1.0}) as r:
        results = r.sales(12, until=lambda s: isinstance(s, UnitNotResponding))
        assert isinstance(results[-1], UnitNotResponding)
        assert r.sim.terminal is not None and r.sim.terminal.unit.restarts > 0
        assert isinstance(r.sale(1250), SaleResult)  # back after its restart


@pytest.mark.timeout(120)
def test_pcb_intermittent_garbles_the_terminals_frames():
    with rig({"pcb_intermittent": 1.0}) as r:
        r.sales(8, until=lambda s: r.term.link_counters()["naks_sent"] > 0)
        assert r.term.link_counters()["naks_sent"] > 0
        assert r.sim.terminal is not None and r.sim.terminal.port.corrupted > 0


@pytest.mark.timeout(60)
def test_a_host_that_does_not_answer_is_a_refusal_with_a_pan_and_no_acquirer_code():
    """What the network faults look like over Concert (their lab needs root; the host gone is
    the same answer)."""
    with rig() as r:
        assert r.sim.host is not None
        r.sim.host.stop(timeout=2.0)
        sale = r.sale(1250)
        assert (sale.details, sale.host_code, sale.host_answered) == ({"status": "7", "card_read": "yes"}, "", False)


@pytest.mark.timeout(60)
def test_an_unpowered_terminal_is_silent():
    with rig() as r:
        assert r.sim.terminal is not None
        r.sim.terminal.set_powered(False)  # at once: an unpowered UART sends not even an ACK
        with pytest.raises(UnitNotResponding):
            r.term.wait_ready(1.5)
