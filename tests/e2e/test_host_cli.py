"""`posbench host`: the acquirer host simulator a real bench points its unit at."""
import signal
import socket
import subprocess
import sys

import pytest

from posbench.drivers.host.client import HostClient
from posbench.drivers.host.log import HostLog


@pytest.mark.timeout(60)
def test_host_command_answers_by_rules_and_logs(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\ncode = "01"\nmin_amount = 5000\nname = "refer large"\n')
    log = tmp_path / "host.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "posbench.cli", "host", "--listen", "127.0.0.1:0",
                             "--log", str(log), "--rules", str(rules)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline()
        assert "listening on" in line, line + proc.stderr.read()
        port = int(line.split("listening on ")[1].split(";")[0].rsplit(":", 1)[1])
        with HostClient(("127.0.0.1", port), timeout=5) as client:
            base = {"t": "0200", "2": "4111111111111111", "3": "000000", "41": "PT000001"}
            small = client.exchange({**base, "4": "000000001000", "11": "000001"})
            large = client.exchange({**base, "4": "000000009000", "11": "000002"})
        assert small["39"] == "00" and large["39"] == "01"
        assert HostLog(log).answer_for("PT000001", "000002") == "01"
        assert "4111111111111111" not in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "stopped" in out


@pytest.mark.timeout(30)
def test_host_command_rejects_a_bad_rules_file(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\ncod = "01"\n')
    proc = subprocess.run([sys.executable, "-m", "posbench.cli", "host", "--log", str(tmp_path / "l"),
                           "--rules", str(rules)], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 3 and "rule[0].cod" in proc.stderr and "Traceback" not in proc.stderr


def _host(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "posbench.cli", "host", *args], capture_output=True,
                          text=True, timeout=20, stdin=subprocess.DEVNULL)


@pytest.mark.timeout(30)
def test_host_command_refuses_an_address_of_another_machine(tmp_path):
    # 192.0.2.1 (TEST-NET-1) is never a local address; only a bind is tried, nothing is sent
    proc = _host("--listen", "192.0.2.1:8583", "--log", str(tmp_path / "host.jsonl"))
    assert proc.returncode == 3 and "not an address of this machine" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.timeout(30)
def test_host_command_refuses_an_unwritable_log(tmp_path):
    (tmp_path / "file").write_text("")
    proc = _host("--listen", "127.0.0.1:0", "--log", str(tmp_path / "file" / "host.jsonl"))
    assert proc.returncode == 3 and "--log" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.timeout(30)
def test_host_command_rejects_a_rules_file_that_is_not_toml(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_bytes(b'name = "\xff"\n')
    proc = _host("--log", str(tmp_path / "l"), "--rules", str(rules))
    assert proc.returncode == 3 and str(rules) in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.timeout(30)
def test_host_command_reports_a_port_in_use_as_a_bench_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _host("--listen", f"127.0.0.1:{port}", "--log", str(tmp_path / "host.jsonl"))
    assert proc.returncode == 2 and "Address already in use" in proc.stderr, proc.stderr
    assert "BENCH ERROR" in proc.stderr and "Traceback" not in proc.stderr
