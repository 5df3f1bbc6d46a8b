"""The session's terminal takes the bench's requests one at a time, from any thread: a second
request waits for the first (a sale a test left running in its thread) instead of colliding with
it, whatever the protocol. Against the real ZVT driver and a scripted PT on loopback TCP."""
from __future__ import annotations

import threading

import pytest

from posbench.core import progress
from posbench.drivers.ecr.zvt.client import ZvtTerminal
from posbench.drivers.ecr.zvt.tcp import TcpTransport
from posbench.fixtures.shown_terminal import ShownTerminal, TerminalQueueStuck

from .test_zvt_terminal import ACK, STATUS_DONE, TcpPT, h


class QueueWaits:
    """A progress listener: set when a call starts waiting for the bench's previous one."""

    def __init__(self):
        self.queued = threading.Event()
        self.what: list[str] = []

    def started(self, wait) -> None:
        if "to end first" in wait.what:
            self.what.append(wait.what)
            self.queued.set()

    def ended(self, wait) -> None:
        pass


@pytest.fixture
def queue_waits():
    listener = QueueWaits()
    progress.listen(listener)
    yield listener
    progress.unlisten(listener)


def _pt_with_a_sale_in_progress(release: threading.Event, card_wait: threading.Event):
    def script(pt: TcpPT) -> None:
        pt.exchange("06 01 0A 04 00 00 00 00 05 00 49 09 78", "04 FF 01 0A")  # waiting for the card
        card_wait.set()
        assert release.wait(5.0)
        pt.send("06 1E 01 6C")  # the sale ends (aborted)
        pt.expect(ACK)
        pt.exchange("05 01 05 12 34 56 03 04", STATUS_DONE)  # then the status enquiry, not before
    return TcpPT(script)


def test_a_status_enquiry_during_a_sale_in_another_thread_waits_for_it(queue_waits):
    release, card_wait = threading.Event(), threading.Event()
    pt = _pt_with_a_sale_in_progress(release, card_wait)
    driver = ZvtTerminal(TcpTransport("127.0.0.1", pt.port), password="123456")
    terminal = ShownTerminal(driver)
    results: dict[str, object] = {}

    def call(name, fn) -> threading.Thread:
        def run():
            try:
                results[name] = fn()
            except BaseException as exc:  # handed to the asserts below
                results[name] = exc
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    try:
        seller = call("sale", lambda: terminal.authorize(500))
        assert card_wait.wait(5.0)
        status = call("status", lambda: terminal.unshown.status_enquiry())
        assert queue_waits.queued.wait(5.0), f"the status enquiry did not wait: {results}"
        release.set()
        seller.join(5.0)
        status.join(5.0)
    finally:
        release.set()
        driver.close()
        pt.join()
    assert getattr(results["sale"], "result_code", results["sale"]) == 0x6C
    assert getattr(results["status"], "software_version", results["status"]) == "PT 1.0"
    assert queue_waits.what == ["the bench's own authorize on the unit to end first"]
    assert [m[:2] for m in pt.seen] == [h("06 01"), h("80 00"), h("80 00"), h("05 01"), h("80 00")]


def test_a_request_that_never_ends_is_a_bench_error_for_the_next(queue_waits):
    release, card_wait = threading.Event(), threading.Event()
    pt = _pt_with_a_sale_in_progress(release, card_wait)
    driver = ZvtTerminal(TcpTransport("127.0.0.1", pt.port), password="123456")
    terminal = ShownTerminal(driver, wait_s=0.2)
    seller = threading.Thread(target=lambda: terminal.authorize(500), daemon=True)
    try:
        seller.start()
        assert card_wait.wait(5.0)
        with pytest.raises(TerminalQueueStuck, match="the bench's own authorize .* still runs after 0.2 s"):
            terminal.status_enquiry()
    finally:
        release.set()
        seller.join(5.0)
        driver.close()
        pt.thread.join(5.0)
