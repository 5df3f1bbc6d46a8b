"""The ``posbench`` command's help, version and usage errors (click's CliRunner, no bench)."""
import errno
import inspect
import re
import socket
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from posbench import cli as cli_module
from posbench.cli import EXIT_USAGE, cli, common, triage_checks, triage_reports
from posbench.diagnosis.ranking import EXIT_STATUS
from posbench.diagnosis.verdict import Verdict
from posbench.sim.unit.faults import INJECTABLE, NETWORK

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="posbench")


def flat(text: str) -> str:
    return " ".join(text.split())


def pyproject_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_version_is_the_installed_distributions():
    result = run("--version")
    assert result.exit_code == 0
    assert result.output == f"posbench {metadata.version('posbench')}\n"


def test_version_falls_back_to_pyproject(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(cli_module.metadata, "version", missing)
    result = run("--version")
    assert result.exit_code == 0 and result.output == f"posbench {pyproject_version()}\n"


def test_help_states_each_exit_status_as_the_code_maps_it():
    out = run("--help").output
    lines = dict(re.findall(r"^\s+([0-3])\s+(.+)$", out, re.M))
    assert set(lines) == {"0", "1", "2", "3"}
    words = {"pass": "no fault found", "fault": "fault found", "inconclusive": "inconclusive",
             "bench_error": "bench error"}
    for verdict, code in EXIT_STATUS.items():
        assert words[verdict] in lines[str(code)], (verdict, code, lines)
    assert "usage or config" in lines[str(EXIT_USAGE)]


@pytest.mark.parametrize("columns", ["80", "200"])
def test_help_shows_every_command_description_whole(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    out = flat(run("--help").output)
    for name, command in cli.commands.items():
        description = flat(inspect.cleandoc(command.help).split("\n\n")[0])
        assert f"{name} {description}" in out, name
    assert "..." not in out.split("Commands:", 1)[1]


@pytest.mark.parametrize("command", ["triage", "sim"])
def test_fault_help_lists_every_injectable_id(command):
    out = flat(run(command, "--help").output)
    fault_help = out.split("--fault ID[=SEVERITY]", 1)[1].split(" --seed ", 1)[0]
    for cause in INJECTABLE:
        assert cause in fault_help, cause
    assert f"{', '.join(NETWORK)} need root" in fault_help


def test_host_refuses_a_port_reserved_for_root(monkeypatch, tmp_path):
    real_bind = socket.socket.bind

    def bind(self, address):
        if address[1] == 80:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_bind(self, address)
    monkeypatch.setattr(socket.socket, "bind", bind)
    result = run("host", "--listen", "127.0.0.1:80", "--log", str(tmp_path / "host.jsonl"))
    assert result.exit_code == EXIT_USAGE and "reserved for root" in result.output


def test_host_refuses_an_ipv6_address(tmp_path):
    result = run("host", "--listen", "[::1]:0", "--log", str(tmp_path / "host.jsonl"))
    assert result.exit_code == EXIT_USAGE and "IPv4" in result.output


def test_a_zvt_virtual_unit_is_given_a_numeric_serial_only():
    result = run("triage", "--protocol", "zvt", "--unit", "PT100-0001234")
    assert result.exit_code == EXIT_USAGE and "digits only" in result.output


def test_reports_posbench_named_are_renamed_by_the_reported_serial(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "REPORTS", tmp_path)
    paths = [tmp_path / f"triage-T{suffix}" for suffix in (".json", ".html", ".xml")]
    for path in paths:
        path.write_text("x")
    given = tmp_path / "mine.xml"
    given.write_text("x")
    doc = Verdict.model_validate({"unit": {"serial": "PT100/7"}, "verdict": "pass", "code01_origin": "none",
                                  "causes": [], "measurements": [], "tests": [], "started": "2026-01-01T00:00:00+00:00",
                                  "duration_s": 1.0})
    out = triage_reports.name_by_serial(doc, "T", {"json": True, "html": True, "xml": False}, *paths[:2], given)
    assert [p.name for p in out] == ["PT100_7-T.json", "PT100_7-T.html", "mine.xml"]
    assert all(p.exists() for p in out) and not paths[0].exists()


def _triage_ending_with(monkeypatch, tmp_path, doc: dict, write_errors: list[str], *args: str):
    """``posbench triage --bench`` whose preflight finds the bench and whose HIL run gave ``doc``
    and could not write ``write_errors`` (the suite itself is the e2e tests' business)."""
    from posbench.setup import preflight
    from posbench.run import runner
    monkeypatch.setattr(common, "REPORTS", tmp_path)
    monkeypatch.setattr(triage_checks, "check_store", lambda url: None)
    monkeypatch.setattr(preflight, "preflight", lambda bench_file, say: None)
    monkeypatch.setattr(runner, "run_hil", lambda *a, **k: runner.HilRun(1, doc, list(write_errors)))
    bench = tmp_path / "bench.toml"
    bench.write_text('[unit]\nmodel = "PT100"\n[terminal]\nport = "/dev/ttyPOSBENCH-NONE"\n')
    return run("triage", "--bench", str(bench), "--html", str(tmp_path / "run.html"), *args)


def _verdict(stored: bool, fault: bool):
    from datetime import datetime, timezone

    from posbench.diagnosis.ranking import verdict
    from posbench.spec.evidence import Recorder, RunRecord
    from posbench.core.limits import Limit
    run = RunRecord()
    rec = Recorder(run, "test_read_paths.py::test_swipe")
    rec.unit(serial="PT100-0000042", model="PT100", firmware="3.4.2")
    rec.measure("swipe_fail_rate", 0.5 if fault else 0.0, "", Limit(max=0.1), cause="msr_head", strength="decisive")
    doc = verdict(run, datetime.now(timezone.utc), 1.0)
    if stored:
        doc.run_id = "3f2a9c41d0e84b7c"
    return doc


@pytest.mark.parametrize("fault", [False, True])
def test_a_report_not_written_after_a_stored_verdict_keeps_the_verdicts_status(monkeypatch, tmp_path, fault):
    error = f"HTML report: writing {tmp_path / 'run.html'} failed: No space left on device"
    result = _triage_ending_with(monkeypatch, tmp_path, _verdict(True, fault), [error],
                                 "--store", "sqlite:///elsewhere.sqlite")
    text = flat(result.output)
    assert result.exit_code == (EXIT_STATUS["fault"] if fault else EXIT_STATUS["pass"]), result.output
    assert f"WARNING: {error}" in text and "BENCH ERROR" not in text
    assert "posbench report 3f2a9c41d0e84b7c --store sqlite:///elsewhere.sqlite" in text


def test_a_report_not_written_and_a_verdict_not_stored_is_a_bench_error(monkeypatch, tmp_path):
    error = f"verdict JSON: writing {tmp_path / 'run.json'} failed: No space left on device"
    result = _triage_ending_with(monkeypatch, tmp_path, _verdict(False, True), [error])
    assert result.exit_code == EXIT_STATUS["bench_error"], result.output
    assert "BENCH ERROR" in result.output and "not stored" in flat(result.output)
