"""Declared measurements: limits bound from the DUT profile, a missing key a config error, and a
declared measurement that a test never accounts for failing that test."""
from pathlib import Path

import pytest

from posbench.core.errors import ConfigError
from posbench.spec.evidence import Evidence, Found, Reading, Recorder, RunRecord, UndeclaredMeasurement
from posbench.core.limits import HOLDS, Limit
from posbench.spec.measures import Declaration, Measure, bind
from posbench.setup.profile import PROFILE_DIR, load_profile

pytest_plugins = ["pytester"]
PT100 = load_profile(PROFILE_DIR / "pt100.toml")


def test_limits_bound_from_profile_with_params_and_each():
    decl = Declaration((
        Measure("ecr_naks", "count", "ecr_naks", bears_on=("pcb_intermittent",), needs="link_counters"),
        Measure("sale_{how}_reads", "count", lambda profile, how: Limit(max=len(how))),
        Measure("component_{each}_allowed", "bool", lambda profile, how: HOLDS,
                each=lambda profile, how: ["kernel", "emv"]),
    ), needs="status")
    bound = bind(decl, PT100, {"how": "tap"})
    assert sorted(bound) == ["component_emv_allowed", "component_kernel_allowed", "ecr_naks", "sale_tap_reads"]
    assert bound["ecr_naks"].limit == PT100.limits["ecr_naks"]
    assert bound["ecr_naks"].needs == ("status",) and bound["ecr_naks"].needs_any == ("link_counters",)
    assert bound["sale_tap_reads"].limit == Limit(max=3)


def test_missing_limit_key_names_profile_file_and_key():
    decl = Declaration((Measure("x", "count", "no_such_key"),), None)
    with pytest.raises(ConfigError) as err:
        bind(decl, PT100, {}, "tests/hil/test_x.py::test_x")
    assert err.value.file == str(PROFILE_DIR / "pt100.toml")
    assert err.value.key == "limits.no_such_key"
    assert "test_x" in str(err.value)


def test_limit_source_none_means_not_judged():
    bound = bind(Declaration((Measure("firmware_version", "", lambda profile: None),), None), PT100, {})
    why = bound["firmware_version"].why_not(lambda capability: None)
    assert why and "PT100" in why and "no limit" in why


def test_why_not_names_missing_capability():
    bound = bind(Declaration((Measure("m", "count", "ecr_naks", needs=("echo", "host_diagnosis")),), "status"),
                 PT100, {})["m"]
    lacks = {"echo": "no echo", "host_diagnosis": "no diagnosis"}
    assert bound.why_not(lambda c: None) is None
    assert bound.why_not(lambda c: "no status" if c == "status" else None) == "no status"
    assert bound.why_not(lacks.get) == "no echo; no diagnosis"
    assert bound.why_not(lambda c: lacks.get(c) if c == "echo" else None) is None  # any one will do


def _recorder(run: RunRecord) -> Recorder:
    decl = Declaration((Measure("ecr_naks", "count", "ecr_naks", bears_on=("pcb_intermittent",), evidence="moderate"),
                        Measure("app_restarts", "count", "app_restarts", bears_on=("application",)),
                        Measure("ecr_success_rate", "ratio", "ecr_success_rate",
                                bears_on=("application", "pcb_intermittent"))), None)
    return Recorder(run, "t", bind(decl, PT100, {}))


def test_declared_measurement_takes_unit_and_limit_from_declaration():
    run = RunRecord()
    rec = _recorder(run)
    assert rec.measure("ecr_naks", 5, note="frames with a bad checksum") is False
    m = run.measurements[0]
    assert (m.unit, m.limit, m.bears_on) == ("count", str(PT100.limits["ecr_naks"]), ("pcb_intermittent",))
    e = run.evidence[0]  # the cause and its strength from the declaration: the call names none
    assert (e.cause, e.ratio, e.test, e.note, e.measurement, e.value) == (
        "pcb_intermittent", 15.0, "t", "frames with a bad checksum", "ecr_naks", 5)
    rec.measure("ecr_success_rate", 1.0)
    assert rec.missing() == ["app_restarts"]
    rec.unmeasured("app_restarts", "too few commands answered")
    assert rec.missing() == [] and not rec.wanted("app_restarts")
    assert run.unmeasured[0].causes == ("application",)  # the declaration's causes by default


def test_a_cause_is_named_in_the_declaration_only():
    rec = _recorder(RunRecord())
    with pytest.raises(UndeclaredMeasurement, match="names a cause"):
        rec.measure("ecr_naks", 5, cause="pcb_intermittent")
    with pytest.raises(UndeclaredMeasurement, match="names a cause"):  # declared evidence and a rule's: twice
        rec.measure("ecr_naks", 5, if_failed=Evidence.of("application", "strong", "x"))
    with pytest.raises(ValueError, match="one cause"):
        Measure("ecr_success_rate", "ratio", "x", bears_on=("application", "pcb_intermittent"), evidence="strong")


def test_a_measurement_weighed_by_a_rule_takes_the_rules_evidence_when_it_fails():
    run = RunRecord()
    rec = _recorder(run)
    rule = Evidence.of("application", "strong", "3 of 20 ECR commands unanswered, 0 corrupt")
    assert rec.measure("ecr_success_rate", 0.85, if_failed=rule) is False
    assert rec.measure("app_restarts", 0) is True
    e = run.evidence[0]
    assert (e.cause, e.ratio, e.test, e.note, e.measurement, e.value, e.limit) == (
        "application", 60.0, "t", rule.note, "ecr_success_rate", 0.85, str(PT100.limits["ecr_success_rate"]))
    assert len(run.evidence) == 1
    run2 = RunRecord()
    assert _recorder(run2).measure("ecr_success_rate", 1.0, if_failed=rule) is True
    assert run2.evidence == []  # passed: the rule's evidence is not taken
    assert run2.measurements[0].bears_on == ("application", "pcb_intermittent")


def test_take_records_a_rules_readings_unmeasured_and_evidence_in_order():
    run = RunRecord()
    rec = _recorder(run)
    rec.take(Found([Reading("ecr_naks", 9, note="bad frames"),
                    Reading("ecr_success_rate", 0.5, if_failed=Evidence.of("pcb_intermittent", "weak", "corrupt"))],
                   {"app_restarts": "no boot id"}, [Evidence.of("resources", "moderate", "slow")]))
    assert [m.name for m in run.measurements] == ["ecr_naks", "ecr_success_rate"]
    assert [(e.cause, e.note, e.test) for e in run.evidence] == [
        ("pcb_intermittent", "bad frames", "t"), ("pcb_intermittent", "corrupt", "t"), ("resources", "slow", "t")]
    assert [(u.measurement, u.why, u.causes) for u in run.unmeasured] == [("app_restarts", "no boot id", ("application",))]
    assert rec.missing() == []


def test_undeclared_or_self_limited_measurement_is_refused():
    rec = _recorder(RunRecord())
    with pytest.raises(UndeclaredMeasurement, match="does not declare"):
        rec.measure("free_memory_kib", 1)
    with pytest.raises(UndeclaredMeasurement, match="limit of its own"):
        rec.measure("ecr_naks", 0, "count", Limit(max=0))


CONFTEST = '''
import pytest
from posbench.setup.profile import PROFILE_DIR, load_profile

class Terminal:
    protocol = "zvt"
    capabilities = frozenset({"status"})

@pytest.fixture(scope="session")
def profile():
    return load_profile(PROFILE_DIR / "pt100.toml")

@pytest.fixture(scope="session")
def terminal():
    return Terminal()
'''


def _suite(pytester, body: str):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile("from posbench.spec.measures import Measure, measures\n" + body)
    return pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")


def test_a_declared_measurement_never_recorded_fails_the_test(pytester):
    result = _suite(pytester, '''
@measures(Measure("ecr_naks", "count", "ecr_naks"), Measure("app_restarts", "count", "app_restarts"))
def test_forgets(record):
    record.measure("ecr_naks", 0)
''')
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*neither recorded nor listed as unmeasured: app_restarts*"])


def test_a_test_whose_protocol_answers_none_of_it_is_skipped(pytester):
    result = _suite(pytester, '''
@measures(Measure("log_records_read", "count", "log_records_read"), needs="journal")
def test_journal(record):
    raise AssertionError("must not run")

@measures(Measure("ecr_naks", "count", "ecr_naks", needs="link_counters"),
          Measure("app_restarts", "count", "app_restarts"))
def test_partly(record, run_record):
    assert not record.wanted("ecr_naks")
    record.measure("app_restarts", 0)
    assert [u.measurement for u in run_record.unmeasured if u.test.endswith("test_partly")] == ["ecr_naks"]
''')
    result.assert_outcomes(passed=1, skipped=1)


def test_bench_file_profile_missing_key_stops_at_collection(pytester, tmp_path: Path):
    profile = tmp_path / "p.toml"
    profile.write_text("\n".join(line for line in (PROFILE_DIR / "pt100.toml").read_text().splitlines()
                                 if not line.startswith("ecr_naks")))
    bench = tmp_path / "bench.toml"
    bench.write_text(f'[bench]\nname = "b"\n[unit]\nprofile = "{profile}"\n'
                     '[terminal]\nport = "/dev/null"\n')
    pytester.makepyfile('''
from posbench.spec.measures import Measure, measures

@measures(Measure("ecr_naks", "count", "ecr_naks"))
def test_x(record):
    raise AssertionError("no device may be touched")
''')
    result = pytester.runpytest_inprocess("--bench", str(bench), "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{profile}: limits.ecr_naks: is missing*"])


def test_a_limit_the_profile_declares_unknown_is_unmeasured_with_its_reason(tmp_path: Path):
    text = (PROFILE_DIR / "pt100.toml").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("free_memory_kib"))
    text = text.replace("[tests]", '[unknown]\nfree_memory_kib = "the protocol reports no memory"\n\n[tests]', 1)
    path = tmp_path / "p.toml"
    path.write_text(text)
    bound = bind(Declaration((Measure("free_memory_kib", "KiB", "free_memory_kib"),), None), load_profile(path), {})
    b = bound["free_memory_kib"]
    assert b.limit is None
    assert b.why_not(lambda capability: None) == "the DUT profile PT100 cannot know it: the protocol reports no memory"


def test_no_hil_test_names_a_cause_at_a_measure_call():
    """A cause is named once, in the measurement's declaration: ``record.measure(..., cause=)``
    in the HIL suite would name it twice."""
    import ast
    hil = Path(__file__).resolve().parents[1] / "hil"
    calls = [f"{path.name}:{node.lineno}" for path in sorted(hil.glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "measure"
             and any(k.arg in ("cause", "strength") for k in node.keywords)]
    assert calls == []


def test_a_parametrized_path_names_its_cause_in_the_declaration():
    """A cause that follows a parameter is a ``{param}`` of the declaration (the sale read paths:
    a failing tap points to the antenna, a failing insert to the contacts), never a call's argument."""
    from posbench.hil import test_read_paths as read_paths
    decl = read_paths.test_card_reads_in_sales.posbench_measures
    for how, technology, cause in read_paths.SALE_READS:
        bound = bind(decl, PT100, {"how": how, "technology": technology, "cause": cause})
        assert bound[f"sale_{how}_sprt_verdict"].bears_on == (cause,)
        assert bound[f"sale_{how}_failure_rate"].bears_on == (cause,)
        rec = Recorder(RunRecord(), "t", bound)
        assert rec.cause_of(f"sale_{how}_sprt_verdict") == cause


def test_a_rule_asks_the_declaration_for_a_measurements_one_cause():
    rec = _recorder(RunRecord())
    assert rec.cause_of("app_restarts") == "application"
    with pytest.raises(UndeclaredMeasurement, match="bears on"):
        rec.cause_of("ecr_success_rate")  # two causes: a rule chooses
    with pytest.raises(UndeclaredMeasurement, match="undeclared"):
        Recorder(RunRecord(), "t").cause_of("swipe_sprt_verdict")
