"""posbench.drivers.host.rules: rule matching and loading."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from posbench.core.errors import ConfigError
from posbench.drivers.host.rules import Decision, Rule, RuleSet, amount_of, pan_of

pytestmark = pytest.mark.timeout(10)


def sale(amount: int = 1000, pan: str = "4111111111111111", **extra: str) -> dict[str, str]:
    return {"t": "0200", "2": pan, "3": "000000", "4": f"{amount:012d}", "11": "000001",
            "41": "TERM0001", **extra}


def test_no_rules_default_code() -> None:
    assert RuleSet([]).decide(sale(), random.Random(0)) == Decision("00")
    assert RuleSet([], default_code="05").decide(sale(), random.Random(0)).code == "05"


def test_amount_bounds_inclusive() -> None:
    rules = RuleSet([Rule(code="01", min_amount=10_000, max_amount=20_000, name="band")])
    rng = random.Random(0)
    assert rules.decide(sale(9_999), rng).code == "00"
    assert rules.decide(sale(10_000), rng) == Decision("01", 0.0, False, "band")
    assert rules.decide(sale(20_000), rng).code == "01"
    assert rules.decide(sale(20_001), rng).code == "00"
    assert rules.decide({"t": "0200", "11": "000001"}, rng).code == "00"  # no field 4: no match


def test_pan_prefix_from_field_2_or_track_2() -> None:
    rules = RuleSet([Rule(code="14", pan_prefix="5500")])
    rng = random.Random(0)
    assert rules.decide(sale(pan="5500000000000004"), rng).code == "14"
    assert rules.decide(sale(pan="4111111111111111"), rng).code == "00"
    track_only = {"t": "0200", "4": "000000000100", "35": "5500000000000004=25121010000000000"}
    assert rules.decide(track_only, rng).code == "14"
    assert rules.decide({"t": "0200", "4": "000000000100"}, rng).code == "00"


def test_first_match_wins_and_mti_selects() -> None:
    rules = RuleSet([Rule(code="51", min_amount=500), Rule(code="05"), Rule(code="91", mti="0800")])
    rng = random.Random(0)
    assert rules.decide(sale(600), rng).code == "51"
    assert rules.decide(sale(100), rng) == Decision("05", rule_name="rule[1]")
    assert rules.decide({"t": "0800", "11": "000001"}, rng).code == "91"


def test_delay_and_drop_carried() -> None:
    rules = RuleSet([Rule(delay_s=1.5, name="slow"), Rule(drop=True, mti="0800")])
    assert rules.decide(sale(), random.Random(0)) == Decision("00", 1.5, False, "slow")
    assert rules.decide({"t": "0800"}, random.Random(0)).drop


def test_probability_repeatable_with_seed() -> None:
    rules = RuleSet([Rule(code="01", probability=0.3)])
    rng_a, rng_b = random.Random(42), random.Random(42)
    codes_a = [rules.decide(sale(), rng_a).code for _ in range(200)]
    codes_b = [rules.decide(sale(), rng_b).code for _ in range(200)]
    assert codes_a == codes_b
    assert 30 <= codes_a.count("01") <= 90  # ~60 expected
    assert set(codes_a) == {"00", "01"}


def test_rng_untouched_when_criteria_fail_or_probability_is_one() -> None:
    rng = random.Random(3)
    state = rng.getstate()
    RuleSet([Rule(code="01", probability=0.5, min_amount=10**9), Rule(code="05")]).decide(sale(), rng)
    assert rng.getstate() == state


def test_helpers() -> None:
    assert amount_of({"4": "000000012345"}) == 12345
    assert amount_of({"4": "12a"}) is None and amount_of({}) is None
    assert pan_of({"35": ";4111111111111111D2512"}) == "4111111111111111"
    assert pan_of({"35": "garbage"}) is None


def test_from_dict_ok() -> None:
    rules = RuleSet.from_dict({"default_code": "05", "rule": [
        {"code": "01", "min_amount": 100, "pan_prefix": "4", "name": "ref"},
        {"mti": "0800", "delay_s": 2, "drop": False, "probability": 1},
    ]})
    assert rules.default_code == "05"
    assert rules.rules[0] == Rule(code="01", min_amount=100, pan_prefix="4", name="ref")
    assert rules.rules[1].delay_s == 2.0 and isinstance(rules.rules[1].delay_s, float)


@pytest.mark.parametrize(("data", "key", "expected"), [
    ({"rule": [{"cod": "01"}]}, "rule[0].cod", "no such key"),
    ({"rule": [{"code": 1}]}, "rule[0].code", "got int"),
    ({"rule": [{}, {"min_amount": "100"}]}, "rule[1].min_amount", "integer amount in minor units"),
    ({"rule": [{"min_amount": True}]}, "rule[0].min_amount", "got bool"),
    ({"rule": [{"drop": 1}]}, "rule[0].drop", "true or false"),
    ({"rule": [{"delay_s": "1"}]}, "rule[0].delay_s", "seconds"),
    ({"rule": [{"delay_s": -1}]}, "rule[0].delay_s", ">= 0"),
    ({"rule": [{"probability": 1.5}]}, "rule[0].probability", "[0, 1]"),
    ({"rule": [{"code": "1"}]}, "rule[0].code", "2 characters"),
    ({"rule": [{"mti": "200"}]}, "rule[0].mti", "4 digits"),
    ({"rule": [{"pan_prefix": "41x"}]}, "rule[0].pan_prefix", "digits"),
    ({"rule": [{"min_amount": 10, "max_amount": 5}]}, "rule[0].max_amount", ">= min_amount"),
    ({"rule": ["x"]}, "rule[0]", "table"),
    ({"rule": {"code": "01"}}, "rule", "array"),
    ({"rules": []}, "rules", "no such key"),
    ({"default_code": 0}, "default_code", "response code"),
])
def test_from_dict_errors_name_file_key_and_expectation(data: dict, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        RuleSet.from_dict(data, source="rules.toml")
    err = info.value
    assert err.file == "rules.toml" and err.key == key and expected in err.expected
    assert str(err).startswith(f"rules.toml: {key}: ")


def test_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('default_code = "00"\n[[rule]]\nname = "referral"\ncode = "01"\n'
                    'min_amount = 10001\n[[rule]]\nmti = "0800"\ndrop = true\n')
    rules = RuleSet.from_toml(path)
    assert [r.name for r in rules.rules] == ["referral", ""]
    assert rules.rules[1].drop and rules.rules[1].mti == "0800"


def test_from_toml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="readable"):
        RuleSet.from_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rule]\ncode = ")
    with pytest.raises(ConfigError, match="valid TOML") as info:
        RuleSet.from_toml(bad)
    assert info.value.file == str(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text('[[rule]]\ncode = "01"\nmax_amout = 5\n')
    with pytest.raises(ConfigError) as info:
        RuleSet.from_toml(typo)
    assert info.value.key == "rule[0].max_amout" and info.value.file == str(typo)
