"""The technician is not the unit: a card not presented is an operator event, never a failed read.

The HIL read tests (tests/hil/test_read_paths.py) run here on fakes: a reader that sees the
card only when the actuator really put it there, an actuator that is late on purpose and says so.
"""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from posbench.setup.cards import TEST_TAG_TEXT, load_deck
from posbench.drivers.actuator.base import Skipped, TechnicianGone
from posbench.drivers.terminal import SaleResult
from posbench.drivers.usb.magstripe import SwipeTimeout
from posbench.drivers.card.emv import BRAND_AIDS
from posbench.core.errors import BenchError
from posbench.spec.evidence import Recorder, RunRecord
from posbench.spec.measures import bind, declaration
from posbench.setup.profile import profile_for_model
from posbench.spec.readtest import MAX_INTERRUPTIONS, MAX_RETRIES, until_presented
from posbench.diagnosis.verdict import Verdict
from posbench.render.screen import details

pytestmark = pytest.mark.timeout(60)

HIL = Path(__file__).resolve().parents[1] / "hil" / "test_read_paths.py"


def _module():
    spec = importlib.util.spec_from_file_location("hil_read_paths_under_test", HIL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


read_paths = _module()


class Hand:
    """An actuator that is late ``late`` times for every read (the card never reaches the reader)
    and answers ``missed`` with ``answer`` (default: truthfully, "retry" when it was late)."""

    name = "fake"

    def __init__(self, late: int = 0, answer: str | None = None):
        self.late, self.answer = late, answer
        self.on_reader = False
        self.lates_left = late
        self.asked = 0

    def _present(self, card, n=1, total=1):
        if self.lates_left:
            self.lates_left -= 1
            self.on_reader = False
        else:
            self.on_reader = True

    swipe = tap = insert = _present

    def remove(self):
        self.on_reader = False

    def missed(self, kind):
        self.asked += 1
        if self.answer is not None:
            return self.answer
        return "presented" if self.on_reader else "retry"

    def done_reading(self):
        """A read happened (seen or not by a working reader): the next one is late again."""
        self.lates_left = self.late


class Reader:
    """The NFC reader: sees the card when it is on the reader and the antenna works."""

    def __init__(self, hand: Hand, antenna: bool = True):
        self.hand, self.antenna = hand, antenna

    def tap(self, timeout):
        seen = self.hand.on_reader and self.antenna
        if seen:
            self.hand.done_reading()
        return SimpleNamespace(ok=seen, reason="" if seen else "no_card", records=[TEST_TAG_TEXT],
                               status_word="9000", aids=list(BRAND_AIDS.values()))

    def reopen(self):
        pass


def recorder(test, params=None):
    profile = profile_for_model("PT100")
    run = RunRecord()
    return profile, Recorder(run, test.__name__, bind(declaration(test), profile, params or {}, test.__name__))


def sale_params(how: str) -> dict:
    """The parameters of ``test_card_reads_in_sales[how]``: how, the technology, the cause."""
    return next(dict(zip(("how", "technology", "cause"), p)) for p in read_paths.SALE_READS if p[0] == how)


UNIT = SimpleNamespace(reader_recovery=lambda record, reconnect=None, through_unit=False: (lambda exc: None),
                       ask=lambda record, fn, what, wait_out_silence=True: fn())


def run_tap(hand, antenna=True):
    profile, record = recorder(read_paths.test_tap)
    read_paths.test_tap(Reader(hand, antenna), hand, load_deck(), profile, record, UNIT)
    return record.run


def test_a_technician_late_twice_per_tap_is_no_fault_of_the_unit():
    hand = Hand(late=2)
    run = run_tap(hand)
    stats = run.read_paths["tap"]
    assert stats["verdict"] == "healthy" and stats["failures"] == 0, stats
    assert stats["operator_events"] == 2 * stats["trials"] == hand.asked
    assert not run.evidence


def test_a_dead_antenna_is_still_the_units_when_the_card_was_presented():
    hand = Hand(answer="presented")
    run = run_tap(hand, antenna=False)
    stats = run.read_paths["tap"]
    assert stats["verdict"] == "faulty" and stats["reasons"] == {"no_card": stats["trials"]}
    assert stats["operator_events"] == 0
    assert {e.cause for e in run.evidence} == {"nfc_antenna"}


def test_a_technician_who_never_presents_ends_the_test_as_a_bench_error():
    hand = Hand(late=10 ** 6)
    with pytest.raises(TechnicianGone, match="did not come back") as caught:
        run_tap(hand)
    assert isinstance(caught.value, BenchError)
    assert hand.asked == MAX_RETRIES + 1


def test_a_skip_leaves_the_path_unmeasured_saying_so():
    class Skipping(Hand):
        def missed(self, kind):
            raise Skipped("technician", kind, "skipped by the technician")

    with pytest.raises(pytest.skip.Exception, match="skipped by the technician"):
        run_tap(Skipping(late=1))


class MagReader:
    """The magstripe reader: a swipe arrives when the card went through and the head works."""

    def __init__(self, hand: Hand, head: bool = True):
        self.hand, self.head = hand, head
        self.deck = load_deck()

    def flush(self):
        pass

    def read_swipe(self, timeout):
        if not (self.hand.on_reader and self.head):
            raise SwipeTimeout("msr", "reading a swipe", f"no swipe in {timeout:g} s")
        self.hand.done_reading()
        card = self.deck[self.hand.card]
        data = SimpleNamespace(pan=card.pan, expiry=card.expiry, service_code=card.service_code)
        return SimpleNamespace(failures=dict, track_data=lambda track: data)


class Swiper(Hand):
    def swipe(self, card, n=1, total=1):
        self.card = card
        self._present(card)


@pytest.mark.parametrize("head", [True, False])
def test_swipes_late_are_read_again_and_a_dead_head_still_fails(head):
    hand = Swiper(late=2)
    profile, record = recorder(read_paths.test_swipe)
    terminal = SimpleNamespace(boot_timeout=1.0)
    read_paths.test_swipe(MagReader(hand, head), hand, load_deck(), profile, record, terminal, UNIT)
    stats = record.run.read_paths["swipe"]
    if head:
        assert stats["verdict"] == "healthy" and stats["operator_events"] == 2 * stats["trials"]
    else:  # late twice, then presented and still not read: the head's, reason "timeout"
        assert stats["verdict"] == "faulty" and stats["reasons"] == {"timeout": stats["trials"]}
        assert {e.cause for e in record.run.evidence} == {"msr_head"}


class Zvt:
    """A ZVT terminal whose sale aborts 6C (card wait timed out) when no card was presented."""

    protocol = "zvt"

    def __init__(self, hand: Hand):
        self.hand = hand

    def sale(self, amount):
        if not self.hand.on_reader:
            return SaleResult("05", False, "", "000001", "52000001", "", "", "abort", result_code=0x6C)
        self.hand.done_reading()
        return SaleResult("00", True, "00", "000001", "52000001", "411111******1111", "123456", "",
                          result_code=0, card_technology="chip")


def test_a_sale_whose_card_came_late_is_read_again_not_failed():
    hand = Hand(late=2)
    profile, record = recorder(read_paths.test_card_reads_in_sales, sale_params("insert"))
    read_paths.test_card_reads_in_sales(*sale_params("insert").values(), Zvt(hand), hand, profile, record, UNIT)
    stats = record.run.read_paths["sale_insert"]
    assert stats["verdict"] == "healthy" and stats["operator_events"] == 2 * stats["trials"]


class RefusingConcert:
    """A Concert terminal that refuses the sales listed in ``at_once`` before asking for a card
    (low voltage: status 7, a report without PAN), and reads the card in the others."""

    protocol = "concert"

    def __init__(self, hand: Hand, at_once: set[int]):
        self.hand, self.at_once, self.sales = hand, at_once, 0

    def sale(self, amount):
        self.sales += 1
        if self.sales in self.at_once:
            self.hand.refused = True  # ended before the card came: the hand still holds it
            return SaleResult("", False, "", "", "", "", "", "refused by the terminal, no card read",
                              details={"status": "7", "card_read": "no"})
        self.hand.refused = False
        self.hand.done_reading()
        return SaleResult("00", True, "00", "000001", "52000001", "411111******1111", "", "",
                          details={"status": "0", "card_read": "yes"})


class Punctual(Hand):
    """Presents every card in time; says "refused" when the terminal ended before it came."""

    refused = False

    def missed(self, kind):
        self.asked += 1
        return "refused" if self.refused else super().missed(kind)


def test_a_concert_refusal_before_the_card_came_is_neither_a_read_nor_the_technicians():
    """Concert gives no reason: a terminal refusing at once (low voltage) looks like a card not read.
    The technician, punctual, says the sale ended before the card came: the path is read again
    without counting it, and no "not presented in 4 tries" ends the test."""
    hand = Punctual()
    profile, record = recorder(read_paths.test_card_reads_in_sales, sale_params("insert"))
    terminal = RefusingConcert(hand, at_once={1, 2, 3, 4, 5 + 1, 9})
    read_paths.test_card_reads_in_sales(*sale_params("insert").values(), terminal, hand, profile, record, UNIT)
    stats = record.run.read_paths["sale_insert"]
    assert stats["verdict"] == "healthy" and stats["failures"] == 0, stats
    assert stats["refusals"] == 6 and stats["operator_events"] == 0, stats
    assert not record.run.evidence


def test_a_terminal_refusing_every_sale_at_once_leaves_the_path_undecided_not_faulty():
    hand = Punctual()
    profile, record = recorder(read_paths.test_card_reads_in_sales, sale_params("tap"))
    read_paths.test_card_reads_in_sales(*sale_params("tap").values(), RefusingConcert(hand, at_once=set(range(1, 100))), hand,
                                        profile, record, UNIT)
    stats = record.run.read_paths["sale_tap"]
    assert stats["verdict"] == "undecided" and stats["trials"] == 0, stats
    assert stats["refusals"] == MAX_INTERRUPTIONS
    assert not record.run.evidence
    doc = Verdict.model_validate({"unit": {}, "verdict": "inconclusive", "code01_origin": "none", "causes": [],
                                  "measurements": [], "tests": [], "started": "2026-01-01T00:00:00+00:00",
                                  "duration_s": 1.0, "read_paths": record.run.read_paths})
    text = " ".join(details(doc))
    assert "5 sale(s) the unit refused before the card could be presented, not reads of the path" in text


def test_until_presented_asks_again_and_stops_when_the_card_was_there():
    hand = Hand(late=2)
    seen = []

    def attempt():
        hand.tap("TAG")
        seen.append(hand.on_reader)
        return hand.on_reader

    assert until_presented(hand, "tap", attempt) == (True, 2)
    assert seen == [False, False, True]
    assert until_presented(Hand(answer="presented"), "tap", lambda: False) == (False, 0)
    assert until_presented(Hand(answer="refused"), "tap", lambda: False) == (False, 0)  # the unit's answer
    with pytest.raises(TechnicianGone):
        until_presented(Hand(answer="retry"), "tap", lambda: False)


# -- the load test, paced for a person (tests/hil/test_power.py::test_load) ---------------------
POWER = Path(__file__).resolve().parents[1] / "hil" / "test_power.py"


def test_the_load_test_asks_once_and_keeps_the_card_in():
    spec = importlib.util.spec_from_file_location("hil_power_under_test", POWER)
    power = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(power)
    said = []

    class Person:
        """Late the first time for each kind (the reader sees nothing), and says so when asked."""

        def __init__(self):
            self.on_reader, self.late = False, {"insert", "tap"}

        def _present(self, kind, card):
            said.append(f"{kind} {card}")
            self.on_reader = kind not in self.late
            self.late.discard(kind)

        def insert(self, card, n=1, total=1):
            self._present("insert", card)

        def tap(self, card, n=1, total=1):
            self._present("tap", card)

        def remove(self):
            said.append("remove")
            self.on_reader = False

        def missed(self, kind):
            said.append(f"missed {kind}")
            return "presented" if self.on_reader else "retry"

    hand = Person()
    chips = []

    class Terminal:
        capabilities = frozenset({"chip_diagnostic"})
        protocol = "agent"

        def chip(self):
            chips.append(hand.on_reader)
            return SimpleNamespace(present=hand.on_reader)

    class Nfc:
        lost = False

        def tap(self, timeout):
            return SimpleNamespace(reason="" if hand.on_reader else "no_card")

        def reopen(self):
            pass

    reading = SimpleNamespace(t=0.0, volts=11.9, amps=0.5)
    watch = SimpleNamespace(trace=SimpleNamespace(between=lambda t0, t1: [reading]))
    profile, record = recorder(power.test_load)
    profile = profile.model_copy(update={"read_paths": profile.read_paths.model_copy(update={
        "chip": profile.read_paths.chip.model_copy(update={"timeout_s": 0.01})})})
    unit = SimpleNamespace(open_reader=lambda reopen: None)
    power.test_load(watch, Terminal(), unit, hand, profile, record, SimpleNamespace(getfixturevalue=lambda name: Nfc()))
    chip, tag = profile.read_paths.chip.cards[0], profile.read_paths.tap.cards[0]
    assert said == [f"insert {chip}", "missed insert", f"insert {chip}", "remove",
                    f"tap {tag}", "missed tap", f"tap {tag}", "remove"]
    assert chips.count(True) > 1  # read again and again while the card stayed in
    assert {m.name for m in record.run.measurements} == {"supply_sag_v", "peak_current_a"}


# -- the code 01 sales (tests/hil/test_code01.py) --------------------------------------------------
CODE01 = Path(__file__).resolve().parents[1] / "hil" / "test_code01.py"


class CardSaleZvt(Zvt):
    capabilities = frozenset({"card_sale", "sale"})


class BareBench:
    """A request on a bench that lacks what is asked for (no [host] log, no contactless reader:
    a real terminal's bench)."""

    def getfixturevalue(self, name):
        pytest.skip(f"no {name}")


def test_a_code01_sale_whose_card_came_late_is_run_again_and_is_no_evidence():
    spec = importlib.util.spec_from_file_location("hil_code01_under_test", CODE01)
    code01 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code01)
    hand = Hand(late=1)
    profile, record = recorder(code01.test_code01_origin)
    unit = SimpleNamespace(garbles=lambda: 0, ready=lambda: True, silence=lambda *a, **k: None)
    code01.test_code01_origin(CardSaleZvt(hand), unit, profile, record, hand, BareBench())
    run = record.run
    assert run.code01_sales == len(profile.tests.sale_amounts)
    assert run.evidence == [], [(e.cause, e.note) for e in run.evidence]  # late cards are no one's fault
    assert hand.asked == len(profile.tests.sale_amounts)  # asked once per sale, each sale run again
    assert {m.name: m.value for m in run.measurements}["sale_host_answered_rate"] == 1.0


def test_the_load_test_of_a_terminal_with_its_readers_inside_reads_through_sales():
    """No contactless reader on the bench (a PCI terminal): chip and tap loads are sales, the card
    presented once each and asked about when the terminal waited for it in vain."""
    spec = importlib.util.spec_from_file_location("hil_power_under_test", POWER)
    power = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(power)
    hand = Hand(late=1)
    terminal = CardSaleZvt(hand)
    sales = []
    sale = terminal.sale
    terminal.sale = lambda amount: sales.append(hand.on_reader) or sale(amount)
    reading = SimpleNamespace(t=0.0, volts=11.9, amps=0.5)
    watch = SimpleNamespace(trace=SimpleNamespace(between=lambda t0, t1: [reading]))
    profile, record = recorder(power.test_load)
    power.test_load(watch, terminal, SimpleNamespace(), hand, profile, record, BareBench())
    assert hand.asked == 2  # late once for the insert, once for the tap: asked each time
    assert sales.count(True) > 2 and sales.count(False) == 2
    assert {m.name for m in record.run.measurements} == {"supply_sag_v", "peak_current_a"}
