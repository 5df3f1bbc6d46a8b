"""posbench.drivers.host.simulator + client over real TCP on 127.0.0.1."""
from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from posbench.core.errors import HostUnavailable
from posbench.drivers.host.client import HostClient, echo
from posbench.drivers.host.iso_spec import decode, encode
from posbench.drivers.host.log import HostLog
from posbench.drivers.host.rules import Rule, RuleSet
from posbench.drivers.host.simulator import HostSimulator
from posbench.drivers.host.wire import ConnectionClosed, recv_message, send_message

pytestmark = pytest.mark.timeout(15)

PAN = "4111111111111111"
MASKED = "411111******1111"


def sale(stan: int, amount: int = 1000, pan: str = PAN, tid: str = "TERM0001") -> dict[str, str]:
    return {"t": "0200", "2": pan, "3": "000000", "4": f"{amount:012d}", "11": f"{stan:06d}",
            "41": tid, "49": "978"}


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "host.jsonl"


def start(log_path: Path, *rules: Rule, seed: int | None = 1, **kw: float) -> HostSimulator:
    return HostSimulator(rules=RuleSet(list(rules)), log_path=log_path, seed=seed, **kw).start()


@pytest.fixture
def sim(log_path: Path) -> Iterator[HostSimulator]:
    host = start(log_path, Rule(code="01", min_amount=10_001, name="referral"),
                 Rule(code="14", pan_prefix="5500", name="bad bin"),
                 Rule(code="00", min_amount=777, max_amount=777, delay_s=0.3, name="slow"),
                 Rule(code="00", min_amount=666, max_amount=666, drop=True, name="black hole"))
    yield host
    host.stop()


def messages(log_path: Path) -> list[dict]:
    return [r for r in HostLog(log_path).records() if "dir" in r]


def test_default_approve(sim: HostSimulator, log_path: Path) -> None:
    with HostClient(sim.address, timeout=2.0) as client:
        reply = client.exchange(sale(1))
    assert reply["t"] == "0210" and reply["39"] == "00"
    assert {k: reply[k] for k in ("3", "4", "11", "41", "49")} == {
        "3": "000000", "4": "000000001000", "11": "000001", "41": "TERM0001", "49": "978"}
    assert len(reply["38"]) == 6 and reply["38"].isdigit()
    assert len(reply["37"]) == 12
    assert "2" not in reply
    rec_in, rec_out = messages(log_path)
    assert rec_in | {"ts": None} == rec_in | {
        "ts": None, "dir": "in", "mti": "0200", "stan": "000001", "tid": "TERM0001", "amount": 1000,
        "pan": MASKED, "rc": None, "action": "answered", "delay_s": 0.0, "rule": None}
    assert (rec_out["dir"], rec_out["mti"], rec_out["rc"], rec_out["pan"]) == ("out", "0210", "00", None)
    assert rec_out["seq"] == rec_in["seq"] and rec_out["ts"].endswith("+00:00")
    assert HostLog(log_path).answer_for("TERM0001", "000001") == "00"


def test_rules_by_amount_and_pan_prefix(sim: HostSimulator, log_path: Path) -> None:
    with HostClient(sim.address, timeout=2.0) as client:
        referral = client.exchange(sale(1, amount=10_001))
        small = client.exchange(sale(2, amount=10_000))
        bad_bin = client.exchange(sale(3, pan="5500000000000004"))
    assert referral["39"] == "01" and "38" not in referral
    assert small["39"] == "00"
    assert bad_bin["39"] == "14"
    log = HostLog(log_path)
    assert [log.answer_for("TERM0001", s) for s in ("1", "2", "3")] == ["01", "00", "14"]
    assert [r["rule"] for r in messages(log_path) if r["dir"] == "out"] == ["referral", None, "bad bin"]


def test_persistent_connection_many_messages(sim: HostSimulator) -> None:
    with HostClient(sim.address, timeout=2.0) as client:
        for stan in range(1, 21):
            assert client.exchange(sale(stan))["11"] == f"{stan:06d}"


def codes_with_seed(tmp_path: Path, seed: int, name: str) -> list[str]:
    with HostSimulator(rules=RuleSet([Rule(code="01", probability=0.5)]), log_path=tmp_path / name,
                       seed=seed) as host, HostClient(host.address, timeout=2.0) as client:
        return [client.exchange(sale(stan))["39"] for stan in range(1, 31)]


def test_probability_is_repeatable_with_seed(tmp_path: Path) -> None:
    first = codes_with_seed(tmp_path, 11, "a.jsonl")
    assert first == codes_with_seed(tmp_path, 11, "b.jsonl")
    assert set(first) == {"00", "01"}


def test_delay(sim: HostSimulator, log_path: Path) -> None:
    with HostClient(sim.address, timeout=2.0) as client:
        start_t = time.monotonic()
        reply = client.exchange(sale(5, amount=777))
        elapsed = time.monotonic() - start_t
    assert reply["39"] == "00" and 0.28 <= elapsed < 1.5
    rec_in, rec_out = messages(log_path)
    assert rec_in["action"] == rec_out["action"] == "delayed"
    assert rec_out["delay_s"] == 0.3 and rec_out["rule"] == "slow"


def test_late_reply_is_skipped_by_stan(sim: HostSimulator, log_path: Path) -> None:
    with HostClient(sim.address, timeout=2.0) as client:
        with pytest.raises(TimeoutError):
            client.exchange(sale(1, amount=777), timeout=0.05)  # answered at 0.3 s
        time.sleep(0.4)  # the late 0210 for STAN 1 now waits in the socket
        assert client.exchange(sale(2))["11"] == "000002"
    assert HostLog(log_path).answer_for("TERM0001", "1") == "00"


def test_drop(sim: HostSimulator, log_path: Path) -> None:
    with HostClient(sim.address, timeout=2.0) as client:
        with pytest.raises(TimeoutError):
            client.exchange(sale(9, amount=666), timeout=0.3)
        assert client.exchange(sale(10))["39"] == "00"  # the connection is still served
    log = HostLog(log_path)
    assert log.received("TERM0001", "000009") and log.answer_for("TERM0001", "000009") is None
    dropped = [r for r in messages(log_path) if r["stan"] == "000009"]
    assert [(r["dir"], r["action"], r["rule"]) for r in dropped] == [("in", "dropped", "black hole")]


def test_echo_0800(sim: HostSimulator, log_path: Path) -> None:
    with HostClient(sim.address, timeout=2.0) as client:
        reply = client.exchange({"t": "0800", "7": "0102030405", "11": "000077", "70": "301"})
        assert (reply["t"], reply["39"], reply["70"], reply["7"], reply["11"]) == (
            "0810", "00", "301", "0102030405", "000077")
        assert 0 <= echo(client, 78) < 1.0
    assert 0 <= echo(sim.address, 79, tid="TERM0002") < 1.0
    log = HostLog(log_path)
    assert log.answer_for(None, "78", mti="0800") == "00"
    assert log.answer_for("TERM0002", "79", mti="0800") == "00"
    assert log.answer_for(None, "79", mti="0800") is None


def test_echo_rules_can_drop_or_fail_echoes(log_path: Path) -> None:
    with start(log_path, Rule(mti="0800", drop=True)) as host:
        with pytest.raises(TimeoutError):
            echo(host.address, 1, timeout=0.2)
    with start(log_path, Rule(mti="0800", code="91")) as host, HostClient(host.address, 2.0) as client:
        assert client.exchange({"t": "0800", "11": "000002", "70": "301"})["39"] == "91"


def test_default_code_applies_to_financial_only(log_path: Path) -> None:
    rules = RuleSet([], default_code="05")
    with HostSimulator(rules=rules, log_path=log_path) as host, HostClient(host.address, 2.0) as client:
        assert client.exchange(sale(1))["39"] == "05"
        assert client.exchange({"t": "0800", "11": "000002", "70": "301"})["39"] == "00"


def test_reversal(sim: HostSimulator, log_path: Path) -> None:
    with HostClient(sim.address, timeout=2.0) as client:
        reply = client.exchange({"t": "0400", "3": "000000", "4": "000000001000", "11": "000003",
                                 "41": "TERM0001", "39": "98"})
    assert reply["t"] == "0410" and reply["39"] == "00"
    assert (reply["3"], reply["4"], reply["11"], reply["41"]) == ("000000", "000000001000", "000003", "TERM0001")
    rec_in = messages(log_path)[0]
    assert (rec_in["mti"], rec_in["rc"]) == ("0400", "98")  # the terminal's reversal reason
    log = HostLog(log_path)
    assert log.answer_for("TERM0001", "3", mti="0400") == "00"
    assert log.answer_for("TERM0001", "3") is None  # no 0200 with that STAN


def test_unsupported_mti_and_missing_fields(sim: HostSimulator) -> None:
    with HostClient(sim.address, timeout=2.0) as client:
        assert client.exchange({"t": "0100", "11": "000001", "41": "TERM0001"})["39"] == "12"
        assert client.exchange({"t": "0200", "11": "000002", "41": "TERM0001"})["39"] == "30"


def raw_connect(sim: HostSimulator) -> socket.socket:
    return socket.create_connection(sim.address, timeout=2.0)


@pytest.mark.parametrize("payload", [
    struct.pack(">H", 5) + b"hello",                       # framed, not ISO 8583
    struct.pack(">H", 0),                                   # zero length
    struct.pack(">H", 12) + b"02x0" + bytes(8),             # MTI not digits
])
def test_malformed_closes_connection_server_survives(sim: HostSimulator, log_path: Path,
                                                     payload: bytes) -> None:
    with raw_connect(sim) as sock:
        sock.sendall(payload)
        with pytest.raises((ConnectionClosed, ConnectionResetError)):
            recv_message(sock, 2.0)
    events = [r for r in HostLog(log_path).records() if r.get("event") == "malformed"]
    assert len(events) == 1 and events[0]["detail"]
    with HostClient(sim.address, timeout=2.0) as client:
        assert client.exchange(sale(1))["39"] == "00"


def test_truncated_frame_then_close(sim: HostSimulator, log_path: Path) -> None:
    with raw_connect(sim) as sock:
        sock.sendall(struct.pack(">H", 50) + b"0200")
        sock.shutdown(socket.SHUT_WR)
        with pytest.raises((ConnectionClosed, ConnectionResetError)):
            recv_message(sock, 2.0)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if any(r.get("event") == "malformed" for r in HostLog(log_path).records()):
            break
        time.sleep(0.02)
    else:
        pytest.fail("truncated frame not logged as malformed")
    assert echo(sim.address, 1) < 1.0


def test_two_messages_in_one_segment(sim: HostSimulator) -> None:
    with raw_connect(sim) as sock:
        blob = b"".join(struct.pack(">H", len(r)) + r for r in (encode(sale(1)), encode(sale(2))))
        sock.sendall(blob)
        replies = [decode(recv_message(sock, 2.0)) for _ in range(2)]
    assert sorted(r["11"] for r in replies) == ["000001", "000002"]


def test_log_never_holds_card_data(sim: HostSimulator, log_path: Path) -> None:
    track2 = PAN + "=25121010000012300000"
    with HostClient(sim.address, timeout=2.0) as client:
        client.exchange(sale(1) | {"35": track2, "52": "0123456789ABCDEF"})
        client.exchange({"t": "0200", "3": "000000", "4": "000000000100", "11": "000002",
                         "41": "TERM0001", "35": track2})
    with raw_connect(sim) as sock:  # a broken message that carries a PAN
        raw = encode(sale(3))
        send_message(sock, raw[: raw.index(PAN.encode()) + 12])
        with pytest.raises((ConnectionClosed, ConnectionResetError)):
            recv_message(sock, 2.0)
    time.sleep(0.1)
    text = log_path.read_text()
    assert PAN not in text and "25121010000012300000" not in text and "0123456789ABCDEF" not in text
    assert text.count(MASKED) == 2
    assert "malformed" in text


def test_idle_connection_times_out(log_path: Path) -> None:
    with start(log_path, idle_timeout=0.2) as host, raw_connect(host) as sock:
        with pytest.raises((ConnectionClosed, ConnectionResetError)):
            recv_message(sock, 2.0)
    assert any(r.get("event") == "idle_timeout" for r in HostLog(log_path).records())


def test_client_reconnects_after_the_host_closed_an_idle_connection(log_path: Path) -> None:
    """A host that closes a silent connection (30 s in the simulator) is dialled again by the
    next exchange, as a terminal does, instead of failing that sale or echo on the dead socket."""
    with start(log_path, idle_timeout=0.2) as host:
        client = HostClient(host.address, timeout=2.0)
        try:
            assert client.exchange(sale(1))["39"] == "00"
            deadline = time.monotonic() + 5.0
            while not any(r.get("event") == "idle_timeout" for r in HostLog(log_path).records()):
                assert time.monotonic() < deadline, "the host never closed the idle connection"
                time.sleep(0.05)
            assert client.exchange(sale(2))["39"] == "00"
        finally:
            client.close()


def test_stop_is_quick_with_clients_connected(log_path: Path) -> None:
    host = start(log_path, Rule(delay_s=10.0))
    address = host.address
    idle = raw_connect(host)
    busy = HostClient(host.address, timeout=5.0)
    with pytest.raises(TimeoutError):
        busy.exchange(sale(1), timeout=0.1)  # reply pending for 10 s
    t0 = time.monotonic()
    host.stop(timeout=2.0)
    assert time.monotonic() - t0 < 1.0
    with idle:
        with pytest.raises((ConnectionClosed, ConnectionResetError)):
            recv_message(idle, 1.0)
    with pytest.raises((ConnectionClosed, ConnectionResetError, ConnectionRefusedError)):
        busy.exchange(sale(2), timeout=1.0)  # hung up on: dialled again, and nobody listens
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=0.5)
    assert HostLog(log_path).answer_for("TERM0001", "1") is None  # the delayed reply was never sent
    host.stop()  # a second stop is harmless


def test_start_failures_are_bench_errors(tmp_path: Path, log_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = HostSimulator(listen=taken.getsockname()[:2], log_path=log_path)
        with pytest.raises(HostUnavailable, match="binding"):
            busy.start()
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(HostUnavailable, match="opening the host log"):
        HostSimulator(log_path=tmp_path / "dir.jsonl").start()


def test_client_connect_refused_is_raised_as_is() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        address = probe.getsockname()[:2]
    with HostClient(address, timeout=0.5) as client, pytest.raises(ConnectionRefusedError):
        client.exchange(sale(1))


def test_concurrent_clients_log_whole_lines(sim: HostSimulator, log_path: Path) -> None:
    import threading

    errors: list[BaseException] = []

    def run(tid: str) -> None:
        try:
            with HostClient(sim.address, timeout=2.0) as client:
                for stan in range(1, 11):
                    assert client.exchange(sale(stan, tid=tid))["41"] == tid
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"TERM{i:04d}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5.0)
    assert not errors
    lines = log_path.read_text().splitlines()
    assert len(lines) == 160 and all(json.loads(line)["dir"] in ("in", "out") for line in lines)
    log = HostLog(log_path)
    assert all(log.answer_for(f"TERM{i:04d}", s) == "00" for i in range(8) for s in range(1, 11))
