"""The shipped DUT profiles (fixtures/profiles/*.toml): what each declares about its model, and
that every one of them loads against the real HIL suite."""
from pathlib import Path

import pytest

from posbench.errors import ConfigError
from posbench.profile import PROFILE_DIR, load_profile

SHIPPED = sorted(PROFILE_DIR.glob("*.toml"))

MINIMAL = """
model = "PX9"
boot_time_s = 2.0
{extra}
[limits]
free_memory_kib = {{ min = 100 }}

[tests]
sale_amounts = [100]
"""


def _write(tmp_path: Path, text: str, name: str = "px9.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_profiles_declare_protocols_readers_and_acquirer():
    shapes = {p.stem: load_profile(p) for p in SHIPPED}
    assert set(shapes) >= {"pt100", "zvt-generic", "concert-generic", "caisse-ap-generic"}
    assert all(profile.protocols for profile in shapes.values())
    pt100 = shapes["pt100"]
    assert sorted(pt100.protocols) == sorted(["agent", "zvt", "zvt-tcp", "concert", "caisse-ap"])
    assert sorted(pt100.exposes) == ["nfc", "usb_magstripe"] and pt100.acquirer == "bench"
    assert shapes["zvt-generic"].protocols == ["zvt", "zvt-tcp"]
    assert shapes["concert-generic"].protocols == ["concert"]
    assert shapes["caisse-ap-generic"].protocols == ["caisse-ap"]
    for name in ("zvt-generic", "concert-generic", "caisse-ap-generic"):
        assert shapes[name].exposes == [] and shapes[name].acquirer == "own", name


def test_profile_defaults_for_the_new_fields(tmp_path):
    profile = load_profile(_write(tmp_path, MINIMAL.format(extra="")))
    assert profile.protocols == [] and profile.unknown == {} and profile.exposes == []
    assert profile.acquirer == "own"


def test_profile_unknown_protocol_or_reader_is_refused(tmp_path):
    path = _write(tmp_path, MINIMAL.format(extra='protocols = ["zvt", "nexo"]\n'))
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert info.value.key == "protocols.1" and info.value.file == str(path)
    path = _write(tmp_path, MINIMAL.format(extra='exposes = ["chip"]\n'))
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert info.value.key == "exposes.0"


def test_a_limit_both_known_and_unknown_is_an_error_naming_it(tmp_path):
    path = _write(tmp_path, MINIMAL.format(extra="") +
                  '\n[unknown]\nfree_memory_kib = "the protocol reports no memory"\n')
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert info.value.file == str(path) and info.value.key == "unknown"
    assert "'free_memory_kib'" in str(info.value) and "[limits]" in str(info.value)
