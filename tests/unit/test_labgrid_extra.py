"""``posbench[labgrid]`` beside posbench: one ``serial`` module, and labgrid's pytest plugin kept
out of posbench's own runs.

labgrid depends on ``pyserial-labgrid``, which installs the same ``serial`` package as posbench's
``pyserial==3.5``: pip installs both and the one installed last owns the files. Which one that is
depends on pip's resolution order, not on posbench: an upgraded venv here ended with labgrid's, a
fresh one in CI with pyserial's. The two differ only in ``serial/__init__.py`` (the version) and
``serial/rfc2217.py`` (labgrid's fixes: no repeated option requests, a timeout change without a
network round trip). posbench's drivers rely on neither fix: the ECR port keeps its pyserial
timeout fixed, and the NFC reader's RFC 2217 transport keeps nfcpy's timeout changes local
(``test_pn532_emulator.py::test_reader_over_rfc2217_keeps_its_read_timeout_local``). The whole
suite, the bench room's e2e tests included, runs with the extra installed (the dev extra pulls it
in), on whichever provider this venv has; this test names it in the JUnit properties.
"""
from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from posbench.run.runner import PLUGINS_OFF

pytest.importorskip("labgrid", reason="labgrid is not installed (posbench[labgrid])")


def _files_match(dist: metadata.Distribution) -> tuple[int, int]:
    """How many of ``dist``'s ``serial/*.py`` files are on disk as it shipped them, of how many."""
    matched = total = 0
    for entry in dist.files or []:
        if not (str(entry).startswith("serial/") and str(entry).endswith(".py")) or entry.hash is None:
            continue
        total += 1
        digest = base64.urlsafe_b64encode(hashlib.sha256(Path(str(entry.locate())).read_bytes()).digest())
        matched += digest.rstrip(b"=").decode() == entry.hash.value
    return matched, total


def test_one_distribution_provides_the_whole_serial_module(record_property):
    import serial
    import serial.rfc2217
    dists = {name: metadata.distribution(name) for name in ("pyserial", "pyserial-labgrid")}
    whole = [name for name, dist in dists.items() if (m := _files_match(dist))[0] == m[1] > 0]
    assert len(whole) >= 1, {name: _files_match(d) for name, d in dists.items()}  # never a mix of the two
    provider = next(name for name in whole if dists[name].version.startswith(serial.VERSION.split("+")[0]))
    record_property("serial_provider", f"{provider} {dists[provider].version}")
    print(f"the serial module is {provider}'s ({dists[provider].version}), at {Path(serial.__file__).parent}")
    assert serial.VERSION.startswith("3.5")
    assert "ign_set_control" in Path(serial.rfc2217.__file__).read_text()  # what a place's URL asks for


def _session_sees_labgrid(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    probe = tmp_path / "test_probe.py"
    probe.write_text("def test_probe(request):\n"
                     "    print('LABGRID', request.config.pluginmanager.has_plugin('labgrid'))\n")
    return subprocess.run([sys.executable, "-m", "pytest", str(probe), "-s", "-o", "addopts=", "--rootdir",
                           str(tmp_path), *extra], capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_labgrids_plugin_stays_out_of_the_hil_run(tmp_path):
    """labgrid registers a pytest plugin that loads by itself (it restyles logging, reads LG_ENV and
    needs the terminal plugin's options, which the HIL run drops: a HIL run with it fails before
    its first test). The runner's plugin arguments keep it out; without them it is there."""
    loaded = _session_sees_labgrid(tmp_path)
    assert "LABGRID True" in loaded.stdout, loaded.stdout + loaded.stderr
    kept_out = _session_sees_labgrid(tmp_path, *PLUGINS_OFF)
    assert "LABGRID False" in kept_out.stdout, kept_out.stdout + kept_out.stderr


def test_posbench_own_test_runs_leave_it_out(request):
    assert not request.config.pluginmanager.has_plugin("labgrid")  # pyproject's addopts: -p no:labgrid
