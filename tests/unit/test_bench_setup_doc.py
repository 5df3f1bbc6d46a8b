"""docs/bench-setup.md's section "A card reader as the unit": each of its bench.toml examples is a
bench description `posbench.setup.config` accepts, one per reader profile, none with a [terminal];
and it says what a reader bench needs."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from posbench.setup.config import parse_bench
from posbench.setup.profile import find_profile

DOC = Path(__file__).resolve().parents[2] / "docs" / "bench-setup.md"
READER_SECTION = "A card reader as the unit"


def section(title: str) -> str:
    """The text of the ``## title`` section, up to the next heading of its level."""
    text = DOC.read_text(encoding="utf-8")
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m is not None, f"docs/bench-setup.md has no section {title!r}"
    return m.group(1)


def toml_blocks(text: str) -> list[str]:
    return re.findall(r"^```toml\n(.*?)^```", text, re.S | re.M)


def test_the_reader_section_shows_a_bench_per_reader_profile_and_each_loads(tmp_path):
    blocks = toml_blocks(section(READER_SECTION))
    profiles = []
    for block in blocks:
        config = parse_bench(tomllib.loads(block), tmp_path / "reader.toml")
        assert config.terminal is None and config.unit.profile is not None
        assert find_profile(config.unit.profile).is_reader
        profiles.append(config.unit.profile)
    assert profiles == ["magtek-hid", "magtek-keyboard", "acr122u", "pn532-uart"]


def test_the_reader_section_names_what_a_reader_bench_needs():
    text = " ".join(section(READER_SECTION).split())
    for said in ("no `[terminal]`", "Code 01 does not apply to a reader alone", "per-port power switching",
                 "USB power breakout", "fixtures/cards/deck.toml", "posbench udev-rules --bench reader.toml",
                 "posbench discover --probe --write reader.toml", "posbench triage --bench reader.toml"):
        assert said in text, said

