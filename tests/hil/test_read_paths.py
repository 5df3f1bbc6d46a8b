"""Card read paths: magstripe over USB, contactless over NFC, chip through the terminal, and a
terminal's own readers through sales (ZVT: a deck card presented, the read judged by the result
code, the intermediate statuses and the card technology; Caisse-AP: by the AF reason).

Each path is judged by an SPRT (healthy failure rate p0 vs faulty p1 from the profile): it reads
until the decision is clear, then states the reads used, the observed failure rate with its
95% interval, and why each failed read failed.

A read that saw no card asks whoever presented it (``posbench.spec.readtest.no_card``): a card not
presented in time or the right way is an operator event and is read again, never a failed read;
a read the unit ended before the card could be presented (a terminal refusing a sale at once) is
read again and counted apart, never a failed read of the path; a technician's "skip" leaves the
path unmeasured.
"""
import contextlib
import time

import pytest

from posbench.setup.cards import TEST_TAG_ID, TEST_TAG_TEXT
from posbench.diagnosis.rules import sale_read_failure
from posbench.drivers.card.emv import BRAND_AIDS, PSE, AtrError, TlvError, fci_df_name, parse_atr
from posbench.core.errors import PortLost, UnitNotResponding
from posbench.spec.measures import measures
from posbench.spec.readtest import ReadInterrupted, decide_path, no_card, path_measures, record_path, sale_saw_no_card
from posbench.drivers.actuator.base import Skipped
from posbench.drivers.card.tracks import TrackError, luhn_valid
from posbench.drivers.usb.magstripe import SwipeTimeout
from posbench.drivers.usb.reconnecting import UsbGone


def _spec(profile, path):
    if profile.read_paths is None:
        pytest.skip(f"the DUT profile of {profile.model} names no read paths")
    return getattr(profile.read_paths, path)


@contextlib.contextmanager
def technician_may_skip():
    """A technician's "skip" (``Skipped``) leaves the test's measurements unmeasured, saying so."""
    try:
        yield
    except Skipped as exc:
        pytest.skip(f"skipped by the technician ({exc.doing})")


def spec_of(path: str):
    """The profile's SPRT for ``path`` (None: the profile names no read paths)."""
    return lambda profile, **params: getattr(profile.read_paths, path) if profile.read_paths else None


def swipe_failure(swipe, card) -> str:
    """Why a swipe of ``card`` failed ("" when it read right): the reader's per-track reason,
    an invalid track, a PAN failing Luhn, or data that differs from the deck."""
    if failures := swipe.failures():
        track, reason = next(iter(failures.items()))
        return f"t{track}_{reason}"
    for track in (1, 2):
        try:
            data = swipe.track_data(track)
        except TrackError as exc:
            return f"t{track}_{exc.reason}"
        if not luhn_valid(data.pan):
            return "luhn"
        if (data.pan, data.expiry, data.service_code) != (card.pan, card.expiry, card.service_code):
            return "mismatch"
    return ""


@measures(*path_measures("swipe", spec_of("swipe"), "msr_head"), readers=True)
def test_swipe(mag_reader, actuator, deck, profile, record, terminal, unit):
    spec = _spec(profile, "swipe")
    mag_reader.flush()

    def read_once(n: int) -> str:
        card = deck[spec.cards[(n - 1) % len(spec.cards)]]
        t0 = time.monotonic()
        actuator.swipe(card.id, n, spec.max_trials)
        try:
            swipe = mag_reader.read_swipe(spec.timeout_s)
        except SwipeTimeout:
            return no_card(actuator, "swipe", "timeout")
        except UsbGone:
            raise ReadInterrupted("a swipe was cut off: the reader left the USB bus", t0, time.monotonic())
        return swipe_failure(swipe, card)

    with technician_may_skip():
        reads = decide_path(spec, read_once, unit.reader_recovery(
            record, lambda: mag_reader.connect(terminal.boot_timeout)), what="swipes")
    record_path(record, "swipe", reads, spec)


def tap_failure(tap, card) -> str:
    """Why a tap failed ("" when it read right): no card seen, an RF error in the exchange, a
    bad status word, or data that differs from what the card carries."""
    if not tap.ok:
        return tap.reason
    if card is None:
        return "" if TEST_TAG_TEXT in tap.records else "mismatch"
    if tap.status_word.upper() != "9000":
        return f"sw_{tap.status_word or 'none'}"
    return "" if BRAND_AIDS[card.brand] in (a.upper() for a in tap.aids) else "mismatch"


@measures(*path_measures("tap", spec_of("tap"), "nfc_antenna"), readers=True)
def test_tap(nfc_reader, actuator, deck, profile, record, unit):
    spec = _spec(profile, "tap")

    def read_once(n: int) -> str:
        card_id = spec.cards[(n - 1) % len(spec.cards)]
        card = None if card_id == TEST_TAG_ID else deck[card_id]
        t0 = time.monotonic()
        actuator.tap(card_id, n, spec.max_trials)
        try:
            tap = nfc_reader.tap(spec.timeout_s)
        except PortLost:  # the reader went silent: the unit lost power under it
            raise ReadInterrupted("a tap was cut off: the contactless reader stopped answering",
                                  t0, time.monotonic()) from None
        finally:
            actuator.remove()
        if tap.reason == "link_error":  # the reader's own link damaged a frame: no read over the air
            raise ReadInterrupted(f"a tap was cut off: {tap.detail}", t0, time.monotonic())
        if tap.reason == "no_card":
            return no_card(actuator, "tap")
        return tap_failure(tap, card)

    with technician_may_skip():
        reads = decide_path(spec, read_once, unit.reader_recovery(record, nfc_reader.reopen), what="taps")
    record_path(record, "tap", reads, spec)


CHIP_POLL_S = 0.5
"""Seconds between chip diagnostics while waiting for an inserted card (the diagnostic itself
does not wait for one: a technician takes seconds to insert it)."""


@measures(*path_measures("chip", spec_of("chip"), "chip_contacts"), needs="chip_diagnostic")
def test_chip(terminal, actuator, unit, profile, record):
    spec = _spec(profile, "chip")
    cards = spec.cards

    def diagnose():
        """The chip diagnostic once a card is in the slot, or the last one after ``timeout_s``."""
        deadline = time.monotonic() + spec.timeout_s
        while True:
            result = unit.ask(record, terminal.chip, "chip diagnostic", wait_out_silence=False)
            if result.present or time.monotonic() + CHIP_POLL_S > deadline:
                return result
            time.sleep(CHIP_POLL_S)

    def read_once(n: int) -> str:
        card = cards[(n - 1) % len(cards)]
        actuator.insert(card, n, spec.max_trials)
        t0 = time.monotonic()
        try:
            result = diagnose()
        except UnitNotResponding:  # the unit itself went silent: no chip read happened
            raise ReadInterrupted("a chip read was cut off: the unit stopped answering", t0,
                                  time.monotonic()) from None
        finally:
            actuator.remove()
        if not result.present:
            return no_card(actuator, "insert")
        if not result.atr:
            return result.reason or "no_atr"
        try:
            parse_atr(result.atr)
        except AtrError as exc:
            return f"atr_{exc.reason}"
        if result.status_word != "9000":
            return f"sw_{result.status_word or 'none'}"
        try:
            if fci_df_name(result.fci) != PSE:
                return "wrong_df_name"
        except TlvError:
            return "bad_fci"
        return ""

    with technician_may_skip():
        reads = decide_path(spec, read_once, unit.reader_recovery(record, through_unit=True), what="chip reads")
    record_path(record, "chip", reads, spec)


SALE_READS = [("swipe", "magstripe", "msr_head"), ("insert", "chip", "chip_contacts"),
              ("tap", "contactless", "nfc_antenna")]
"""How a card is presented for a sale, the technology the terminal must report, the cause a
failing path points to."""
SPEC_OF = {"swipe": "swipe", "insert": "chip", "tap": "tap"}
"""Which read path's SPRT limits of the profile apply."""


def _spec_of_sale(profile, how, **params):
    return spec_of(SPEC_OF[how])(profile)


@pytest.mark.parametrize("how, technology, cause", SALE_READS, ids=[how for how, *_ in SALE_READS])
@measures(*path_measures("sale_{how}", _spec_of_sale, "{cause}"), needs="card_sale")
def test_card_reads_in_sales(how, technology, cause, terminal, actuator, profile, record, unit):
    """The terminal's own reader for ``how``, judged through sales with a deck card presented."""
    path = f"sale_{how}"
    spec = _spec(profile, SPEC_OF[how])
    amount = profile.tests.sale_amounts[0]
    present = {"swipe": actuator.swipe, "insert": actuator.insert, "tap": actuator.tap}[how]

    def read_once(n: int) -> str:
        card = spec.cards[(n - 1) % len(spec.cards)]
        if card not in profile.read_paths.chip.cards + profile.read_paths.swipe.cards:
            card = profile.read_paths.chip.cards[0]  # a payment card, not an NDEF tag
        t0 = time.monotonic()
        present(card, n, spec.max_trials)
        try:
            sale = terminal.sale(amount)
        except UnitNotResponding:
            raise ReadInterrupted(f"a sale by {how} was cut off: the unit stopped answering", t0,
                                  time.monotonic()) from None
        finally:
            actuator.remove()
        failure = sale_read_failure(terminal.protocol, sale, technology)
        if sale_saw_no_card(terminal.protocol, sale):
            no_card(actuator, how)  # not presented: read again; presented: judged as the protocol says
        return failure

    with technician_may_skip():
        reads = decide_path(spec, read_once, unit.reader_recovery(record, through_unit=True), what=f"sales by {how}")
    record_path(record, path, reads, spec)
