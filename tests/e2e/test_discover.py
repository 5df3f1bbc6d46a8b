"""`posbench discover`: serial ports, and which of them answer as an ECR terminal."""
import os
import tomllib

import pytest

from posbench.discover import Found, probe
from .conftest import posbench
from .test_triage import _start_sim, _stop


@pytest.mark.timeout(60)
def test_discover_probes_the_virtual_terminal_and_prints_a_usable_snippet(tmp_path):
    proc, bench = _start_sim(tmp_path, "--timing", "boot_s=0.2", "--seed", "12")
    try:
        config = tomllib.loads(bench.read_text())
        port, serial = config["terminal"]["port"], config["unit"]["serial"]
        out = posbench("discover", "--probe", "--port", port, "--port", "/dev/ttyPOSBENCH-NONE",
                       cwd=tmp_path, timeout=40)
    finally:
        _stop(proc)
    assert out.returncode == 0, out.stderr
    assert f"ECR terminal PT100 serial {serial}" in out.stdout
    snippet = out.stdout.split(f"serial {serial} firmware")[1].split("\n", 1)[1].split("/dev/ttyPOSBENCH")[0]
    parsed = tomllib.loads("\n".join(line.strip() for line in snippet.splitlines()))
    assert parsed["terminal"]["port"] == port and parsed["unit"]["serial"] == serial
    assert "could not open port /dev/ttyPOSBENCH-NONE" in " ".join(out.stdout.split())


@pytest.mark.timeout(30)  # one ENQ per rate: a silent port must never hang the probe
def test_probe_of_a_silent_port_reports_no_terminal(tmp_path):
    master, slave = os.openpty()
    try:
        found = probe(Found(os.ttyname(slave), "", ""), [9600, 115200], enq_wait=0.2)
    finally:
        os.close(master)
        os.close(slave)
    assert found.identity is None and "no ECR terminal answered" in found.problem
