"""The magstripe test deck (``fixtures/cards/deck.toml``): published test PANs only.

``load_deck()`` validates every card on load: each expected track parses (sentinels, Luhn,
expiry, service code) and agrees with the card's fields, so a typo in the deck is a
``ConfigError`` at start-up, not a mysterious swipe failure. A ``Card``'s repr masks the PAN.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from posbench.core.errors import ConfigError
from posbench.core.masking import mask_pan
from posbench.drivers.card.tracks import TrackError, parse_track1, parse_track2

DECK_PATH = Path(str(files("posbench.fixtures"))) / "cards" / "deck.toml"
"""The deck shipped as package data (the repository's ``fixtures/cards/deck.toml``)."""


@dataclass(frozen=True)
class Card:
    """One test card. ``track1``/``track2`` are what a healthy reader reports (start to end
    sentinel, no LRC); ``expiry`` is ``YYMM``."""

    id: str
    brand: str
    pan: str = field(repr=False)
    name: str
    expiry: str
    service_code: str
    track1: str = field(repr=False)
    track2: str = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return (f"Card(id={self.id!r}, brand={self.brand!r}, pan={mask_pan(self.pan)!r}, "
                f"expiry={self.expiry!r}, service_code={self.service_code!r})")

    __str__ = __repr__

    @property
    def masked_pan(self) -> str:
        return mask_pan(self.pan)

    def tracks(self) -> dict[int, str]:
        """Track number -> text written on the stripe (without the LRC)."""
        return {1: self.track1, 2: self.track2}


_FIELDS = ("id", "brand", "pan", "name", "expiry", "service_code", "track1", "track2")


def _card(path: Path, index: int, raw: object) -> Card:
    where = f"card[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(path, where, "a table")
    for key in _FIELDS:
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(path, f"{where}.{key}", "a non-empty string")
    unknown = set(raw) - set(_FIELDS) - {"source"}
    if unknown:
        raise ConfigError(path, f"{where}", f"no unknown keys (found {', '.join(sorted(unknown))})")
    card = Card(**{k: raw[k] for k in _FIELDS}, source=str(raw.get("source", "")))
    try:
        t1, t2 = parse_track1(card.track1), parse_track2(card.track2)
    except TrackError as exc:
        raise ConfigError(path, f"{where} ({card.id})", f"valid track data: {exc}") from None
    for label, got in (("track1", t1), ("track2", t2)):
        if (got.pan, got.expiry, got.service_code) != (card.pan, card.expiry, card.service_code):
            raise ConfigError(path, f"{where} ({card.id}).{label}",
                              "the same PAN, expiry and service code as the card's fields")
    if t1.name != card.name:
        raise ConfigError(path, f"{where} ({card.id}).track1", "the card's name")
    return card


def load_deck(path: str | Path | None = None) -> dict[str, Card]:
    """Card id -> ``Card``, in file order. ``ConfigError`` names the file and the bad card."""
    path = Path(path) if path is not None else DECK_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(path, "", f"a readable TOML deck ({exc})") from None
    raw_cards = data.get("card")
    if not isinstance(raw_cards, list) or not raw_cards:
        raise ConfigError(path, "card", "a non-empty array of [[card]] tables")
    deck: dict[str, Card] = {}
    for index, raw in enumerate(raw_cards):
        card = _card(path, index, raw)
        if card.id in deck:
            raise ConfigError(path, f"card[{index}].id", f"a unique id ({card.id!r} repeats)")
        deck[card.id] = card
    return deck


TEST_TAG_ID = "TAG-NDEF"
"""The bench's NFC Forum Type 2 test tag: not a payment card, so not in the deck."""
TEST_TAG_TEXT = "posbench test tag"
"""The NDEF text record written on the test tag."""
