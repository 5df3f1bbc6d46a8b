"""`pip install .` (not editable) gives a whole posbench: one top-level package (the repository's
`bench/`, `drivers/`, `fixtures/` and `tests/hil/` mapped into `posbench`), the HIL suite, the DUT
profiles and the card deck inside it, and a triage that runs from the installed copy."""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

BUILD_TIMEOUT_S = 180
"""Seconds a wheel build or install may take (setuptools copies a few hundred files)."""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of a copy of the source tree (an in-tree build would write build/ into the
    repository while other tests run). Built with this environment's setuptools: no download."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for tree in ("bench", "drivers", "fixtures", "tests/hil"):
        shutil.copytree(ROOT / tree, src / tree, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--quiet", "-w", str(out), str(src)], capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.glob("posbench-*.whl")
    return built


def test_the_wheel_holds_one_package_with_its_suite_and_data(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"posbench", next(t for t in top if t.endswith(".dist-info"))}, top
    for part in ("posbench/hil/conftest.py", "posbench/hil/test_power.py", "posbench/hil/test_read_paths.py",
                 "posbench/fixtures/cards/deck.toml", "posbench/fixtures/profiles/pt100.toml",
                 "posbench/fixtures/profiles/zvt-generic.toml", "posbench/sim/ecr/zvt/terminal.py",
                 "posbench/fixtures/profiles/caisse-ap-generic.toml", "posbench/drivers/ecr/caisse_ap/client.py",
                 "posbench/setup/udev/70-posbench.rules", "posbench/setup/preflight.py",
                 "posbench/render/templates/verdict_panel.html.j2", "posbench/cli/__main__.py"):
        assert part in names, f"{part} is not in the wheel"
    assert not any(name.startswith(("benchmarks/", "tests/", "bench/", "drivers/", "fixtures/")) for name in names)
    entry_points = next(zipfile.Path(wheel, n) for n in names if n.endswith(".dist-info/entry_points.txt")).read_text()
    assert "posbench = posbench.cli:main" in entry_points
    assert "posbench = posbench.fixtures.plugin" in entry_points


@pytest.mark.timeout(420)
def test_an_installed_wheel_runs_a_triage(wheel: Path, tmp_path: Path):
    """Installed into a fresh venv (its dependencies borrowed from this one through a .pth file,
    so nothing is downloaded and this checkout is not on the path), the console script runs a
    whole triage of a healthy virtual unit."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True, timeout=30).stdout.strip())
    (site / "deps-from-dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                           str(wheel)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    where = subprocess.run([str(python), "-c", "import posbench, posbench.run.runner as r; print(posbench.__file__);"
                            "print(r.HIL_DIR)"], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout
    run = subprocess.run([str(venv / "bin" / "posbench"), "triage", "--seed", "5", "--json", "v.json",
                          "--html", "v.html", "--junit", "v.xml"], capture_output=True, text=True,
                         timeout=360, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "running 19 HIL tests" in run.stdout, run.stdout
    assert (tmp_path / "v.html").exists()
    rules = subprocess.run([str(venv / "bin" / "posbench"), "udev-rules"], capture_output=True, text=True,
                           timeout=60, cwd=tmp_path)
    assert rules.returncode == 0 and 'ATTR{idVendor}=="072f"' in rules.stdout, rules.stdout + rules.stderr
    # a packaged profile is found by its name from the installed copy, and checked against the
    # installed suite: `posbench check` gets past bench.toml and the profile to the devices (exit 2:
    # the port is not there), where a profile not found or incomplete would be exit 3
    bench = tmp_path / "real" / "bench.toml"
    bench.parent.mkdir()
    bench.write_text(f'[bench]\nname = "b"\n[unit]\nprofile = "zvt-generic"\n[terminal]\nprotocol = "zvt"\n'
                     f'port = "{tmp_path}/no-such-ttyUSB0"\n')
    found = subprocess.run([str(python), "-c", "import sys; from posbench.setup.config import load_bench; "
                            "from posbench.setup.profile import profile_for_bench; "
                            "print(profile_for_bench(load_bench(sys.argv[1])).source)", str(bench)],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert found.returncode == 0 and found.stdout.startswith(str(site)), found.stdout + found.stderr
    checked = subprocess.run([str(venv / "bin" / "posbench"), "check", "--bench", str(bench)], capture_output=True,
                             text=True, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert checked.returncode == 2 and "no such port" in checked.stdout, checked.stdout + checked.stderr
