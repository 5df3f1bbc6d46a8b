"""Checked by a client posbench did not write: pyTeliumManager's own ``Telium`` (PyPI
``pyTeliumManager``, MIT; a Concert V2 ECR client) drives the virtual Concert terminal on its
pseudo-terminal through an approved sale, a refused sale and a timeout (the terminal never
answers within the client's wait), and what it parsed matches what the unit model decided: the
unit's journal and the host simulator's log. Nothing of pyTeliumManager is used by posbench's own
Concert driver; it only talks to the same terminal.

pyTeliumManager's ``TeliumNativeSerial`` (7E1) is not used: on this kernel a pseudo-terminal
refuses a second 7-bit/parity setting (termios EINVAL), so the client talks 8N1, its default.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import telium  # the dev extra's pyTeliumManager: missing, the check fails rather than skips

from posbench.setup.cards import load_deck
from posbench.drivers.host.log import HostLog
from posbench.drivers.host.rules import Rule, RuleSet
from posbench.drivers.host.simulator import HostSimulator
from posbench.setup.profile import profile_for_model
from posbench.sim.ecr.concert import VirtualConcertTerminal
from posbench.sim.unit.records import TerminalTiming

REFUSED_FROM = 5000
"""Minor units from which the host simulator answers 05 (do not honour)."""


@dataclass
class Rig:
    terminal: VirtualConcertTerminal
    client: "telium.Telium"
    log: HostLog


@contextlib.contextmanager
def rig(tmp_path) -> Iterator[Rig]:
    with contextlib.ExitStack() as stack:  # everything closed even when a test fails
        host = HostSimulator(rules=RuleSet([Rule(code="05", min_amount=REFUSED_FROM)]),
                             log_path=tmp_path / "host.jsonl", seed=3)
        host.start()
        stack.callback(host.stop, 2.0)
        terminal = VirtualConcertTerminal(host.address, profile_for_model("PT100"), seed=3, terminal_id="52000042",
                                          timing=TerminalTiming(boot_s=0.0), card_timeout_s=3.0)
        terminal.start()
        stack.callback(terminal.stop, 2.0)
        client = telium.Telium(terminal.port.path, timeout=2)
        stack.callback(client.close)
        yield Rig(terminal, client, HostLog(host.log_path))


def pay(r: Rig, amount: float, card: bool = True, wait_s: float = 5.0):
    """One payment as pyTeliumManager's README does it: ask, then verify."""
    if card:
        r.terminal.present(load_deck()["VISA-T1"], "chip")
    ask = telium.TeliumAsk.new_payment(amount, payment_mode="debit", target_currency="EUR",
                                       wait_for_transaction_to_end=True, collect_payment_source_info=True)
    try:
        assert r.client.ask(ask), "the terminal did not take the request"
        return r.client.verify(ask, waiting_timeout=wait_s)
    finally:
        r.terminal.remove()  # an inserted card stays in the slot until taken out


@pytest.mark.timeout(60)
def test_approved_refused_and_timeout_as_pytelium_parses_them(tmp_path):
    with rig(tmp_path) as r:
        journal = r.terminal.unit.log
        # approved
        before = len(journal)
        answer = pay(r, 12.50)
        assert answer is not None and answer.has_succeeded and answer.transaction_result == 0
        sale = journal[-1]
        assert len(journal) == before + 1 and (sale.amount, sale.host_rc) == (1250, "00")
        assert answer.amount == sale.amount / 100 and answer.currency_numeric == "978"
        assert r.log.answer_for("52000042", sale.stan) == "00"
        assert answer.repport.startswith("411111******1111")  # masked: pyTeliumManager sees no full PAN
        assert answer.card_type is None
        # refused by the host
        answer = pay(r, 64.00)
        sale = journal[-1]
        assert answer is not None and not answer.has_succeeded and answer.transaction_result == 7
        assert (sale.amount, sale.host_rc) == (6400, "05") and r.log.answer_for("52000042", sale.stan) == "05"
        assert answer.amount == 64.0
        # no card: the terminal waits for one longer than the client waits for its answer
        before, requests = len(journal), len(r.log.records())
        assert pay(r, 9.99, card=False, wait_s=1.0) is None
        assert len(journal) == before and len(r.log.records()) == requests  # nothing reached the host
