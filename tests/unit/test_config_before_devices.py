"""A mistake in bench.toml or its DUT profile ends the run before any device is touched and
leaves no report file (a CI must never read an empty JUnit file as a pass)."""
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from posbench.setup.profile import PROFILE_DIR


def _bench_with_incomplete_profile(tmp_path: Path) -> tuple[Path, Path]:
    """A bench whose profile (zvt-generic without reader_interruptions) lacks a limit the suite
    binds, its terminal on a serial port that does not exist."""
    text = (PROFILE_DIR / "zvt-generic.toml").read_text(encoding="utf-8")
    profile = tmp_path / "mine.toml"
    profile.write_text("\n".join(line for line in text.splitlines()
                                 if not line.startswith("reader_interruptions")), encoding="utf-8")
    bench = tmp_path / "bench.toml"
    bench.write_text(f'[bench]\nname = "b"\n[unit]\nprofile = "mine.toml"\n'
                     f'[terminal]\nprotocol = "zvt"\nport = "{tmp_path}/no-such-ttyUSB0"\n', encoding="utf-8")
    return bench, profile


def test_triage_with_a_profile_missing_a_limit_exits_3_before_any_device(tmp_path, monkeypatch):
    from posbench import cli
    from posbench.cli import common
    bench, profile = _bench_with_incomplete_profile(tmp_path)
    monkeypatch.setattr(common, "REPORTS", tmp_path / "reports")
    reports = [tmp_path / "out" / f"run.{ext}" for ext in ("json", "html", "xml")]
    result = CliRunner().invoke(cli.cli, ["triage", "--bench", str(bench), "--json", str(reports[0]),
                                          "--html", str(reports[1]), "--junit", str(reports[2])])
    assert result.exit_code == 3, result.output
    assert f"{profile}: limits.reader_interruptions" in result.output, result.output
    assert "no-such-ttyUSB0" not in result.output and "preflight" not in result.output  # no device looked at
    assert not [p for p in reports if p.exists()], "a report of a run that never was"


def test_a_config_error_at_collection_leaves_no_report_files(tmp_path):
    """The last line of defence: the suite's own collection refuses the profile."""
    from posbench.run.runner import run_hil
    bench, profile = _bench_with_incomplete_profile(tmp_path)
    reports = [tmp_path / f"run.{ext}" for ext in ("json", "html", "xml")]
    console = Console(file=open(tmp_path / "console.txt", "w"), force_terminal=False)
    try:
        result = run_hil(bench, *reports, None, console, ["-p", "no:randomly", "-p", "no:xdist"])
    finally:
        console.file.close()
    assert result.config_error and "limits.reader_interruptions" in result.config_error
    assert result.code == pytest.ExitCode.USAGE_ERROR
    assert not [p for p in reports if p.exists()], [p.name for p in reports if p.exists()]
    assert not list(tmp_path.glob(".*tmp*")), list(tmp_path.glob(".*"))
