"""The Caisse-AP client and payment terminal: against scripted terminals on loopback (segmented,
silent, hanging up, malformed, gone) and against the virtual Caisse-AP terminal (approved, refused
with each AF reason the unit model produces, field 39 passed through, silence, dropped
connections), and ``probe`` for ``posbench discover``."""
from __future__ import annotations

import contextlib
import socket
import time
from typing import Callable, Iterator

import pytest

from posbench.drivers.ecr.caisse_ap.client import CaisseApClient, TerminalHungUp, probe, read_message
from posbench.drivers.ecr.caisse_ap.codec import FieldError, decode_message, encode_message
from posbench.drivers.ecr.caisse_ap.adapter import CaisseApPaymentTerminal
from posbench.drivers.terminal import Terminal, Unsupported
from posbench.core.errors import PortLost, PortUnavailable, UnitNotResponding
from posbench.sim.bench import SimBench

from .loopback import Listener

ANSWER = b"CZ0040320CJ012POSBENCH0001CA00201CB0041250CD0010CE003978AE00210AC006123456CC003001"
SEED = 9100


@contextlib.contextmanager
def scripted(script: Callable[[socket.socket, bytes], None]) -> Iterator[CaisseApClient]:
    """A client of a loopback terminal that reads one request and runs ``script(conn, request)``."""
    pt = Listener(lambda conn: script(conn, conn.recv(4096)))
    try:
        yield CaisseApClient("127.0.0.1", pt.port, connect_timeout_s=2.0, rest_s=1.0)
    finally:
        pt.join()


def segmented(conn: socket.socket, request: bytes) -> None:
    assert decode_message(request)["CB"] == "1250"
    for start in range(0, len(ANSWER), 7):  # a field split across segments, the length split too
        conn.sendall(ANSWER[start:start + 7])
        time.sleep(0.01)


def test_an_answer_in_segments_is_read_whole():
    with scripted(segmented) as client:
        answer = client.request({"CJ": "POSBENCH0001", "CA": "01", "CB": "1250", "CD": "0", "CE": "978"}, 2.0)
    assert answer.done and answer.fields["AC"] == "123456" and answer.reason is None


def test_a_terminator_ends_the_answer_at_once():
    with scripted(lambda conn, request: conn.sendall(ANSWER + b"\r\n")) as client:
        assert client.request({"CA": "01"}, 2.0).done


def test_silence_after_accepting_is_the_units():
    with scripted(lambda conn, request: time.sleep(1.0)) as client:
        with pytest.raises(UnitNotResponding, match="no answer within 0.5 s") as err:
            client.request({"CA": "01"}, 0.5)
    assert not isinstance(err.value, TerminalHungUp)


def test_a_hang_up_mid_answer_is_the_units():
    with scripted(lambda conn, request: (conn.sendall(ANSWER[:30]), conn.close())) as client:
        with pytest.raises(TerminalHungUp, match="after 30 byte"):
            client.request({"CA": "01"}, 2.0)


def test_a_field_cut_off_is_malformed():
    with scripted(lambda conn, request: (conn.sendall(ANSWER[:30]), time.sleep(2.0))) as client:
        with pytest.raises(FieldError, match="cut off"):
            client.request({"CA": "01"}, 2.0)


@pytest.mark.parametrize("answer, why", [(b"AE00210", "CZ"), (b"CZ0040300AE002", "cut off|closed the connection after 14"),
                                         (b"CZ0040300AE0xx10", "digits"), (b"CZ0040300CA00201", "AE"),
                                         (b"CZ0040300AE00201AF002x4", "reason")])
def test_malformed_answers_are_typed(answer, why):
    with scripted(lambda conn, request: (conn.sendall(answer), conn.close())) as client:
        with pytest.raises((FieldError, TerminalHungUp), match=why):
            client.request({"CA": "01"}, 2.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_wrong_address_is_the_benchs_and_a_terminal_that_answered_before_has_stopped_answering():
    port = free_port()
    client = CaisseApClient("127.0.0.1", port, connect_timeout_s=1.0)
    with pytest.raises(PortUnavailable, match=f"127.0.0.1:{port}.*address is wrong"):
        client.request({"CA": "01"}, 1.0)
    client.reached = True  # it answered before: its silence now is judged as the unit's (issue 21, finding 4)
    with pytest.raises(UnitNotResponding, match="refused: the terminal answered earlier in this session") as err:
        client.request({"CA": "01"}, 1.0)
    assert not isinstance(err.value, (PortLost, PortUnavailable))
    terminal = CaisseApPaymentTerminal(f"127.0.0.1:{port}", reply_timeout=0.5)
    terminal.client.reached = True
    with pytest.raises(UnitNotResponding, match="still be booting"):  # refusals while it boots are silence
        terminal.wait_ready(0.5)


def test_a_terminal_that_answered_and_then_refuses_connections_has_stopped_answering():
    with scripted(lambda conn, request: conn.sendall(ANSWER + b"\r\n")) as client:
        assert not client.reached  # accepted connections alone prove nothing yet
        assert client.request({"CA": "01"}, 2.0).done
    # the terminal's listener is gone now (it lost power): the same address refuses
    with pytest.raises(UnitNotResponding, match="refused: the terminal answered earlier") as err:
        client.request({"CA": "01"}, 1.0)
    assert not isinstance(err.value, (PortLost, PortUnavailable))


def test_probe_finds_nothing_on_a_closed_port_a_silent_one_or_another_protocol():
    assert probe("127.0.0.1", free_port(), 0.5) is None
    for script in (lambda conn: time.sleep(0.8), lambda conn: conn.sendall(b"\x80\x00\x00")):  # silence, ZVT
        pt = Listener(script)
        try:
            assert probe("127.0.0.1", pt.port, 0.5) is None
        finally:
            pt.join()


def test_the_address_without_a_port_means_8888():
    assert CaisseApPaymentTerminal("192.0.2.7").client.address == "192.0.2.7:8888"
    assert CaisseApPaymentTerminal("[::1]:9000").client.address == "::1:9000"


# -- against the virtual Caisse-AP terminal --------------------------------------------------
@contextlib.contextmanager
def rig(faults: dict[str, float] | None = None, seed: int = SEED) -> Iterator[tuple[SimBench, CaisseApPaymentTerminal]]:
    with SimBench(faults, seed=seed, netlab=False, protocol="caisse-ap") as sim:
        assert sim.terminal is not None
        address = "{}:{}".format(*sim.terminal.address)
        terminal = CaisseApPaymentTerminal(address, reply_timeout=1.0, sale_timeout=6.0, boot_timeout=10.0)
        terminal.wait_ready(10.0)
        yield sim, terminal


def sale(sim: SimBench, terminal: CaisseApPaymentTerminal, how: str = "chip", amount: int = 1250,
         card: str = "VISA-T1"):
    assert sim._present(sim.deck[card], how)
    try:
        return terminal.sale(amount)
    finally:
        assert sim.terminal is not None
        sim.terminal.remove()


@pytest.fixture(scope="module")
def healthy():
    with rig() as r:
        yield r


def test_it_is_a_terminal_with_few_capabilities(healthy):
    _, terminal = healthy
    assert isinstance(terminal, Terminal)
    assert terminal.capabilities == {"status", "sale", "card_sale"}
    for ask in (terminal.identify, terminal.reverse_last, terminal.chip, terminal.host_check, terminal.reboot):
        with pytest.raises(Unsupported, match="the caisse-ap protocol cannot"):
            ask()
    assert terminal.status().terminal_status is None  # answered, and tells nothing


@pytest.mark.parametrize("how, application", [("chip", "CB contact"), ("magstripe", "CB contact"),
                                              ("contactless", "CB contactless")])
def test_an_approved_sale_with_the_card_masked(healthy, how, application):
    sim, terminal = healthy
    result = sale(sim, terminal, how)
    assert (result.display_code, result.host_code, result.host_answered) == ("00", "00", True)
    assert result.pan == "411111******1111" and len(result.auth_code) == 6
    assert result.details["application"] == application
    assert result.card_technology == ("contactless" if how == "contactless" else None)


def test_no_card_in_time_is_af08(healthy):
    sim, terminal = healthy
    assert sim.terminal is not None
    sim.terminal.card_timeout_s = 0.5
    result = terminal.sale(1250)
    sim.terminal.card_timeout_s = 3.0
    assert (result.display_code, result.result_code, result.host_answered) == ("AF08", 8, False)


def test_the_virtual_terminal_refuses_bad_requests_at_once(healthy):
    sim, terminal = healthy
    client = terminal.client
    base = {"CJ": "POSBENCH0001", "CA": "01", "CB": "1250", "CD": "0", "CE": "978"}
    for change, code in (({"CE": "840"}, "13"), ({"CD": "7"}, "12"), ({"CD": "1"}, "05"), ({"CB": "0"}, "09")):
        answer = client.request({**base, **change}, 2.0)
        assert (answer.result, answer.reason.code if answer.reason else None) == ("01", code)
        assert answer.fields["CZ"] == "0320"
    with socket.create_connection(("127.0.0.1", client.port), timeout=2.0) as sock:
        sock.sendall(b"hello\r\n")  # not Caisse-AP at all
        assert b"AE00201AF00209" in sock.recv(4096)


def test_probe_names_the_virtual_terminal(healthy):
    sim, _ = healthy
    assert sim.terminal is not None
    found = probe(*sim.terminal.address)
    assert found is not None and "version 0320" in found and "AF 09" in found


def test_an_immediate_answer_then_the_result_on_the_same_connection(healthy):
    sim, terminal = healthy
    assert sim.terminal is not None
    request = {"CZ": "0300", "CJ": "POSBENCH0001", "CA": "01", "CB": "899", "CD": "0", "CE": "978", "BA": "1"}
    with socket.create_connection(("127.0.0.1", terminal.client.port), timeout=5.0) as sock:
        sock.sendall(encode_message(request))
        taken = decode_message(read_message(sock, 3.0))
        assert (taken["AE"], "AF" in taken) == ("11", False)
        assert sim._present(sim.deck["VISA-T1"], "chip")
        try:
            result = decode_message(read_message(sock, 6.0))
        finally:
            sim.terminal.remove()
    assert (result["AE"], result["CB"], result["CC"]) == ("10", "899", "001"), result


@pytest.mark.parametrize("fault, how, af, field39", [
    ("issuer_referral", "chip", "02", "01"), ("msr_head", "magstripe", "07", ""),
    ("chip_contacts", "chip", "07", ""), ("nfc_antenna", "contactless", "07", ""),
    ("data_loss", "chip", "05", ""), ("firmware_driver", "chip", "10", ""),
    ("operator_error", "chip", "06", ""), ("application", "chip", "00", "")])
def test_faults_refuse_with_their_af_reason(fault, how, af, field39):
    with rig({fault: 1.0}) as (sim, terminal):
        seen = []
        for amount in sim.profile.tests.sale_amounts * 2:
            try:
                result = sale(sim, terminal, how, amount)
            except UnitNotResponding:
                terminal.wait_ready(10.0)
                continue
            seen.append(result.details.get("af"))
            if result.details.get("af") == af:
                assert result.host_code == field39 and result.display_code == (field39 or f"AF{af}")
                assert result.host_answered == bool(field39)
                assert result.acquirer_code == field39  # "": the terminal's own reason, no issuer's code
                assert result.reason == ("" if field39 else result.reason) and result.pan in ("", "411111******1111")
                return
        pytest.fail(f"no AF {af} in {seen}")


def test_an_app_that_crashes_is_silent_and_a_cracked_board_drops_the_connection():
    with rig({"application": 1.0}) as (_, terminal):
        errors = []
        for _ in range(20):
            try:
                terminal.status()
            except UnitNotResponding as exc:
                errors.append(exc)
                terminal.wait_ready(10.0)
        assert any(not isinstance(e, TerminalHungUp) for e in errors)  # accepted, never answered
    with rig({"pcb_intermittent": 1.0}) as (_, terminal):
        hung = 0
        for _ in range(20):
            try:
                terminal.status()
            except TerminalHungUp:
                hung += 1
        assert hung > 0



def test_overdue_maintenance_shows_on_the_receipt_clock():
    import base64
    from datetime import datetime, timezone
    with rig({"maintenance": 1.0}) as (sim, terminal):
        assert sim._present(sim.deck["VISA-T1"], "chip")
        answer = terminal.client.request({"CJ": "POSBENCH0001", "CA": "01", "CB": "1250", "CD": "0", "CE": "978",
                                          "CK": "100"}, 6.0)
    receipt = base64.b64decode(answer.fields["AK"]).decode("ascii").splitlines()
    printed = datetime.strptime(next(line for line in receipt if line.startswith("LE ")), "LE %d/%m/%Y A %H:%M:%S")
    drift = abs((printed.replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)).total_seconds())
    assert drift > 120  # maintenance=1 drifts the clock by 600 s
    assert "411111######1111" in receipt and not any("4111111111111111" in line for line in receipt)
