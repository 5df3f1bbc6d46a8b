"""``posbench triage``'s options as one ``TriageRequest``, and its bench chosen as one ``BenchSource``."""
import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from posbench.cli import cli, triage
from posbench.cli.common import UsageFailure
from posbench.cli.request import TriageRequest, check_usage
from posbench.cli.request import CheckedRequest
from posbench.cli.source import BenchFile, Place, Virtual, bench_source
from posbench.core.console import make_console


def test_the_request_has_a_field_for_every_triage_option():
    options = {p.name for p in triage.triage.params}
    assert options == {f.name for f in dataclasses.fields(TriageRequest)}


def test_the_request_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TriageRequest().seed = 3  # type: ignore[misc]


def test_the_command_hands_its_options_to_run_triage_as_one_request(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(triage, "run_triage", seen.append)
    result = CliRunner().invoke(cli, ["triage", "--bench", str(tmp_path / "b.toml"), "--unit", "U1", "-v"])
    assert result.exit_code == 0, result.output
    assert seen == [TriageRequest(bench_path=tmp_path / "b.toml", unit="U1", verbose=True)]


def test_a_virtual_request_gets_the_profiles_first_protocol():
    checked = check_usage(TriageRequest(sim_profile="zvt-generic"))
    assert checked.request.protocol == "zvt" and checked.room is None and checked.faults == {}


def test_faults_are_parsed_once_with_their_severity():
    checked = check_usage(TriageRequest(fault=("msr_head=0.5",)))
    assert checked.faults == {"msr_head": 0.5}


@pytest.mark.parametrize("request_, says", [
    (TriageRequest(bench_path=Path("b.toml"), virtual=True), "--bench and --virtual exclude each other"),
    (TriageRequest(bench_path=Path("b.toml"), seed=1), "apply to the virtual bench only"),
    (TriageRequest(place="a", reserve="model=PT100"), "--place and --reserve exclude each other"),
    (TriageRequest(parallel=2), "--parallel takes places by --reserve TAGS"),
    (TriageRequest(protocol="zvt", unit="PT100-1"), "digits only"),
])
def test_options_that_do_not_go_together_are_a_usage_failure(request_, says):
    with pytest.raises(UsageFailure, match=says):
        check_usage(request_)


def test_a_bench_file_is_its_own_source_and_starts_nothing(tmp_path):
    source = bench_source(check_usage(TriageRequest(bench_path=tmp_path / "b.toml")), make_console())
    assert isinstance(source, BenchFile)
    assert source.start() == tmp_path / "b.toml" and source.alive()
    source.stop()


def test_without_a_bench_file_or_a_place_the_source_is_a_virtual_bench_not_yet_started():
    source = bench_source(check_usage(TriageRequest(seed=5)), make_console())
    assert isinstance(source, Virtual) and source.vbench is None
    assert source.alive()  # nothing started: nothing died
    source.stop()  # safe before start


def test_a_room_request_is_a_place_not_acquired_before_start():
    req = TriageRequest(reserve="model=PT100", coordinator="127.0.0.1:20408", wait_s=5.0)
    source = bench_source(CheckedRequest(req, ("127.0.0.1:20408", {"model": "PT100"}), {}), make_console())
    assert isinstance(source, Place)
    place = source.place_bench
    assert (place.coordinator, place.name, place.tags, place.wait_s) == ("127.0.0.1:20408", None, {"model": "PT100"}, 5.0)
    assert place.client is None and source.alive()
    source.stop()  # nothing acquired: nothing to release
