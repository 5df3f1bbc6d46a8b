"""The shipped DUT profiles (fixtures/profiles/*.toml): what each declares about its model, and
that every one of them loads against the real HIL suite."""
from pathlib import Path

import pytest

from posbench.core.errors import ConfigError
from posbench.setup.profile import PROFILE_DIR, load_profile

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
    assert all(profile.protocols for profile in shapes.values() if not profile.is_reader)  # a reader speaks none
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


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_profile_binds_every_measurement_of_the_hil_suite(path):
    from posbench.run.profile_check import check_profile, hil_tests
    profile = load_profile(path)
    check = check_profile(profile)
    declared = {test for test, _, _ in hil_tests()}
    assert {"test_read_paths.py::test_card_reads_in_sales[tap]", "test_status.py::test_status"} <= declared
    assert check.judged
    assert all(why.startswith(f"the DUT profile {profile.model} ") for why in check.not_judged.values())
    for key, why in profile.unknown.items():  # every declared unknown is used, with its reason
        assert any(why in reason for reason in check.not_judged.values()), key


def test_generic_profiles_say_why_they_cannot_know_the_journal_and_status_limits():
    unknown = {"free_memory_kib", "error_counter", "keys_missing", "maintenance_age_days", "clock_drift_s",
               "log_records_read", "log_sequence_gaps", "wrong_pin_rate", "card_pulled_rate",
               "amount_correction_rate"}
    for name, protocol in (("zvt-generic", "ZVT"), ("concert-generic", "Concert"), ("caisse-ap-generic", "Caisse-AP")):
        profile = load_profile(PROFILE_DIR / f"{name}.toml")
        assert set(profile.unknown) == unknown, name
        assert all(why.startswith(protocol) for why in profile.unknown.values()), name


def test_a_profile_missing_a_limit_names_file_key_and_test(tmp_path):
    from posbench.run.profile_check import check_profile
    text = (PROFILE_DIR / "zvt-generic.toml").read_text(encoding="utf-8")
    path = _write(tmp_path, "\n".join(line for line in text.splitlines()
                                      if not line.startswith("reader_interruptions")), "mine.toml")
    with pytest.raises(ConfigError) as info:
        check_profile(load_profile(path))
    err = info.value
    assert err.file == str(path) and err.key == "limits.reader_interruptions"
    assert "test_read_paths.py::test_" in str(err) and "[unknown]" in str(err)


def test_check_counts_what_the_protocol_cannot_tell_as_not_judged():
    from posbench.setup.config import TerminalSection
    from posbench.run.profile_check import check_profile
    profile = load_profile(PROFILE_DIR / "zvt-generic.toml")
    serial = check_profile(profile, TerminalSection(protocol="zvt", port="/dev/ttyUSB0"))
    tcp = check_profile(profile, TerminalSection(protocol="zvt", address="192.0.2.7:20007"))
    assert "test_ecr_link.py::test_link_health::ecr_naks" in serial.judged
    assert "cannot count link-level errors" in tcp.not_judged["test_ecr_link.py::test_link_health::ecr_naks"]
    assert "cannot report its free memory" in tcp.not_judged["test_status.py::test_status::free_memory_kib"]
    assert len(tcp.judged) + len(tcp.not_judged) == len(serial.judged) + len(serial.not_judged)


# -- found by name or by path ---------------------------------------------------------------------
def _bench(tmp_path: Path, unit: str) -> Path:
    path = tmp_path / "bench" / "bench.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f'[bench]\nname = "b"\n[unit]\n{unit}\n[terminal]\nprotocol = "zvt"\naddress = "192.0.2.7:20007"\n',
                    encoding="utf-8")
    return path


def test_a_bare_name_is_the_packaged_profile_wherever_the_bench_file_is(tmp_path, monkeypatch):
    from posbench.setup.config import load_bench
    from posbench.setup.profile import profile_for_bench
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bench" ).mkdir()
    (tmp_path / "bench" / "zvt-generic").write_text("not a profile")  # a file of that name beside it is no path
    profile = profile_for_bench(load_bench(_bench(tmp_path, 'profile = "zvt-generic"')))
    assert profile is not None and profile.model == "ZVT-GENERIC"
    assert profile.source == PROFILE_DIR / "zvt-generic.toml"
    assert profile_for_bench(load_bench(_bench(tmp_path, 'profile = "Concert-Generic"'))).model == "CONCERT-GENERIC"


def test_a_path_is_relative_to_the_bench_file_or_absolute(tmp_path, monkeypatch):
    from posbench.setup.config import load_bench
    from posbench.setup.profile import profile_for_bench
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "bench" / "profiles" / "px9.toml"
    mine.parent.mkdir(parents=True)
    mine.write_text(MINIMAL.format(extra=""), encoding="utf-8")
    assert profile_for_bench(load_bench(_bench(tmp_path, 'profile = "profiles/px9.toml"'))).source == mine
    assert profile_for_bench(load_bench(_bench(tmp_path, f'profile = "{mine}"'))).source == mine


def test_a_profile_not_found_lists_the_names_and_says_both_forms(tmp_path):
    from posbench.setup.config import load_bench
    from posbench.setup.profile import profile_for_bench
    bench = _bench(tmp_path, 'profile = "zvt-gneric"')
    with pytest.raises(ConfigError) as info:
        profile_for_bench(load_bench(bench))
    err = info.value
    assert err.file == str(bench) and err.key == "unit.profile"
    assert "'zvt-gneric'" in str(err) and "pt100, zvt-generic" in str(err) and "path" in str(err)
    bench = _bench(tmp_path, 'profile = "profiles/gone.toml"')
    with pytest.raises(ConfigError) as info:
        profile_for_bench(load_bench(bench))
    err = info.value
    assert err.file == str(bench) and err.key == "unit.profile"
    assert str(bench.parent / "profiles" / "gone.toml") in str(err)
    assert "name" in str(err) and "pt100" in str(err)


def test_an_unknown_limit_no_test_uses_is_named(tmp_path):
    from posbench.run.profile_check import check_profile
    text = (PROFILE_DIR / "zvt-generic.toml").read_text(encoding="utf-8")
    path = _write(tmp_path, text.replace("[unknown]\n", '[unknown]\nfree_memory_kb = "a typo"\n', 1), "mine.toml")
    with pytest.raises(ConfigError) as info:
        check_profile(load_profile(path))
    assert info.value.file == str(path) and info.value.key == "unknown.free_memory_kb"
    assert "no HIL test judges" in str(info.value) and "free_memory_kib" in str(info.value)
