"""ZvtTerminal's master/slave flow against small scripted PTs (TCP loopback, and one over a pty
with the PT side on ``ZvtLink``). The full driver-vs-terminal tests run against the virtual ZVT
terminal; these pin the flow rules: answers, acknowledgements, T3/T4, typed outcomes, masking."""
from __future__ import annotations

import socket
import threading
import time
from typing import Callable

import pytest

from posbench.core.errors import UnitNotResponding
from posbench.sim.devices.pty_port import PtyPort
from posbench.drivers.ecr.zvt.codec import BmpError, Tlv, bcd_encode, decode_apdu, encode_apdu, encode_bmp, encode_lllvar
from posbench.drivers.ecr.zvt.client import CommandRejected, TerminalBusy, UnexpectedMessage, ZvtTerminal
from posbench.drivers.ecr.zvt.link import ZvtTiming, SerialTransport, ZvtLink
from posbench.drivers.ecr.zvt.tcp import TcpTransport

ACK = "80 00 00"
TRACK2 = b"4761739001010010=25122011143804400000"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def apdu(cls: int, instr: int, *parts: bytes) -> bytes:
    return encode_apdu(cls, instr, b"".join(parts))


class TcpPT:
    """A PT on loopback TCP running ``script(pt)`` in a thread; ``seen`` lists the ECR's APDUs."""

    def __init__(self, script: Callable[["TcpPT"], None]):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.seen: list[bytes] = []
        self.error: BaseException | None = None
        self._buf = bytearray()

        def run() -> None:
            try:
                self.server.settimeout(5.0)
                self.conn, _ = self.server.accept()
                with self.conn:
                    self.conn.settimeout(5.0)
                    script(self)
                    time.sleep(0.2)
            except BaseException as exc:  # handed to the test by join()
                self.error = exc
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def read(self) -> bytes:
        while len(self._buf) < 3 or len(self._buf) < 3 + self._buf[2]:
            chunk = self.conn.recv(4096)
            assert chunk, "the ECR closed the connection"
            self._buf.extend(chunk)
        size = 3 + self._buf[2]
        message = bytes(self._buf[:size])
        del self._buf[:size]
        self.seen.append(message)
        return message

    def expect(self, wanted: bytes | str) -> None:
        wanted = h(wanted) if isinstance(wanted, str) else wanted
        got = self.read()
        assert got == wanted, f"PT expected {wanted.hex(' ')}, got {got.hex(' ')}"

    def send(self, message: bytes | str) -> None:
        self.conn.sendall(h(message) if isinstance(message, str) else message)

    def exchange(self, command: str, *messages: bytes | str) -> None:
        """Expect ``command``, answer 80 00 00, then send each message and expect its 80 00 00."""
        self.expect(command)
        self.send(ACK)
        for message in messages:
            self.send(message)
            self.expect(ACK)

    def join(self) -> None:
        self.thread.join(10.0)
        self.server.close()
        assert not self.thread.is_alive(), "scripted PT did not finish"
        if self.error is not None:
            raise self.error


def run(script: Callable[[TcpPT], None], action: Callable[[ZvtTerminal], object], **options):
    pt = TcpPT(script)
    terminal = ZvtTerminal(TcpTransport("127.0.0.1", pt.port), password="123456", **options)
    try:
        return action(terminal), pt
    finally:
        terminal.close()
        pt.join()


def test_approved_payment_collects_everything_and_keeps_no_card_data() -> None:
    status_info = apdu(0x04, 0x0F,
                       encode_bmp(0x27, h("00")), encode_bmp(0x04, bcd_encode(11000, 6)),
                       encode_bmp(0x0B, h("00 01 23")), encode_bmp(0x0C, h("12 30 45")),
                       encode_bmp(0x0D, h("11 28")), encode_bmp(0x22, h("47 61 73 90 01 01 00 10")),
                       encode_bmp(0x23, TRACK2), encode_bmp(0x29, h("52 50 00 01")),
                       encode_bmp(0x87, h("00 42")), encode_bmp(0x8A, h("05")),
                       encode_bmp(0x8B, b"girocard"), encode_bmp(0xA0, h("00")),
                       encode_bmp(0x06, [Tlv(0x2F, children=(Tlv(0x1F12, h("01")),))]))
    text_block = apdu(0x06, 0xD3, encode_bmp(0x06, [Tlv(0x25, children=(
        Tlv(0x07, b"Kundenbeleg"), Tlv(0x07, b"Karte 4761739001010010"), Tlv(0x09, h("FE"))))]))

    def script(pt: TcpPT) -> None:
        pt.exchange("06 01 0A 04 00 00 00 01 10 00 49 09 78",
                    "04 FF 02 0A 03",  # insert card, T4 now 3 minutes
                    "04 FF 01 04", status_info, apdu(0x06, 0xD1, b"\x00", b"BETRAG EUR 110,00"),
                    "06 D1 02 FF 02", text_block, "06 0F 02 27 00")

    result, _ = run(script, lambda t: t.authorize(11000))
    assert result.ok and result.result_code == 0 and not result.aborted
    assert [(s.code, s.timeout_s) for s in result.intermediate] == [(0x0A, 180.0), (0x04, None)]
    assert result.intermediate[0].meaning == "insert card"
    assert (result.amount, result.trace, result.receipt_no, result.terminal_id) == (11000, 123, 42, "52500001")
    assert (result.time, result.date, result.card_type, result.card_name) == ("12:30:45", "11-28", 5, "girocard")
    assert (result.card_technology, result.card_technology_name, result.host_result) == (1, "chip", 0)
    assert result.pan == "476173******0010"
    assert result.receipt_lines == ("BETRAG EUR 110,00", "", "", "Kundenbeleg", "Karte 476173******0010")
    assert "4761739001010010" not in repr(result) and "=2512" not in repr(result)


def test_declined_payment_is_an_aborted_result_with_the_evidence() -> None:
    tlv = encode_bmp(0x06, [Tlv(0x1F16, h("00 00 0C 01")), Tlv(0x1F17, b"MSR head: no signal"),
                            Tlv(0x2F, children=(Tlv(0x1F12, h("00")),))])

    def script(pt: TcpPT) -> None:
        pt.read()
        pt.send(ACK)
        pt.send("04 FF 01 0C")
        pt.expect(ACK)
        pt.send(apdu(0x06, 0x1E, b"\x64", tlv))
        pt.expect(ACK)

    result, _ = run(script, lambda t: t.authorize(500))
    assert result.aborted and not result.ok
    assert (result.result_code, result.result_meaning) == (0x64, "card not readable (LRC/parity error)")
    assert (result.vendor_error_code, result.vendor_error_text) == ("00000C01", "MSR head: no signal")
    assert result.card_technology_name == "magstripe"
    assert result.intermediate[0].meaning == "card not readable"


def test_a_negative_answer_is_command_rejected_with_its_meaning() -> None:
    def script(pt: TcpPT) -> None:
        pt.expect("06 70 00")
        pt.send("84 9C 00")

    with pytest.raises(CommandRejected, match="9C: please wait") as err:
        run(script, lambda t: t.diagnosis())
    assert err.value.result_code == 0x9C and "diagnosis" in str(err.value)


def test_wrong_currency_84_1e_carries_the_code_in_its_data() -> None:
    def script(pt: TcpPT) -> None:
        pt.read()
        pt.send("84 1E 03 6F 09 78")

    with pytest.raises(CommandRejected, match="6F: wrong currency") as err:
        run(script, lambda t: t.register())
    assert err.value.result_code == 0x6F


def test_a_missing_answer_to_the_command_is_an_unexpected_message() -> None:
    def script(pt: TcpPT) -> None:
        pt.read()
        pt.send("06 0F 00")

    with pytest.raises(UnexpectedMessage, match="PT answered 06 0F instead of 80 00"):
        run(script, lambda t: t.reset())


def test_a_malformed_slave_message_is_answered_9a_and_raised() -> None:
    def script(pt: TcpPT) -> None:
        pt.read()
        pt.send(ACK)
        pt.send("04 0F 02 99 00")
        pt.expect("84 9A 00")

    with pytest.raises(BmpError, match="unknown BMP 0x99"):
        run(script, lambda t: t.authorize(100))


def test_registration_sends_password_config_currency_and_tlv() -> None:
    def script(pt: TcpPT) -> None:
        pt.exchange("06 00 08 12 34 56 BE 09 78 06 00", "06 0F 0A 19 02 29 52 50 00 01 49 09 78")

    result, _ = run(script, lambda t: t.register())
    assert result.status_byte == 2 and result.status_byte_meanings == ("diagnosis necessary",)
    assert result.terminal_id == "52500001" and result.currency == 978


def test_status_enquiry_reads_version_status_locks_and_device_state() -> None:
    completion = apdu(0x06, 0x0F, encode_lllvar(b"GER-PT 1.2.3"), b"\xDF",
                      encode_bmp(0x06, [Tlv(0x1F55, h("04 02")),
                                        Tlv(0xE4, children=(Tlv(0x1F42, h("12 34 56 78")), Tlv(0x1F43, h("01"))))]))

    def script(pt: TcpPT) -> None:
        pt.exchange("05 01 05 12 34 56 03 04", completion)

    result, _ = run(script, lambda t: t.status_enquiry())
    assert (result.software_version, result.terminal_status) == ("GER-PT 1.2.3", 0xDF)
    assert result.terminal_status_meaning == "out of order"
    assert result.lock_bits == 0x0402 and result.locks == ("printer lock", "contactless reader not initialised")
    assert (result.device_state, result.device_state_meaning, result.serial_number) == (1, "initialisation needed", "12345678")


def test_print_system_configuration_collects_lines_and_refuses_unknown_pt_commands() -> None:
    def script(pt: TcpPT) -> None:
        pt.expect("06 1A 00")
        pt.send(ACK)
        pt.send(apdu(0x06, 0xD1, b"\x00", b"TID 52500001"))
        pt.expect(ACK)
        pt.send("04 0D 00")
        pt.expect("84 83 00")
        pt.send(apdu(0x06, 0xD1, b"\x81", b"SW 1.2.3"))
        pt.expect(ACK)
        pt.send("06 0F 00")
        pt.expect(ACK)

    result, _ = run(script, lambda t: t.print_system_configuration())
    assert result.receipt_lines == ("TID 52500001", "SW 1.2.3")
    assert result.refused_commands == ("04 0D",)


def test_reversal_end_of_day_reset_abort_log_off_send_their_commands() -> None:
    def script(pt: TcpPT) -> None:
        pt.exchange("06 30 06 12 34 56 87 00 42", "06 0F 02 27 00")
        pt.exchange("06 50 03 12 34 56", "06 0F 02 27 00")
        pt.exchange("06 18 00", "06 0F 00")
        pt.exchange("06 B0 00")
        pt.exchange("06 02 00")

    def action(t: ZvtTerminal) -> list:
        return [t.reverse(42), t.end_of_day(), t.reset(), t.abort(), t.log_off()]

    results, _ = run(script, action)
    assert [r.command for r in results] == ["reversal", "end of day", "reset", "abort", "log-off"]
    assert all(r.ok for r in results)


def test_no_answer_within_t3_is_unit_not_responding() -> None:
    def script(pt: TcpPT) -> None:
        pt.read()
        time.sleep(0.5)

    with pytest.raises(UnitNotResponding, match=r"diagnosis \(06 70\): waiting T3 = 0.2 s"):
        run(script, lambda t: t.diagnosis(), t3_s=0.2)


def test_silence_after_the_answer_ends_at_t4_and_status_restarts_it() -> None:
    def script(pt: TcpPT) -> None:
        pt.read()
        pt.send(ACK)
        for _ in range(3):  # 3 x 0.25 s: longer than T4, but every status restarts it
            time.sleep(0.25)
            pt.send("04 FF 01 17")
            pt.expect(ACK)
        time.sleep(0.8)

    started = time.monotonic()
    with pytest.raises(UnitNotResponding, match=r"authorization \(06 01\): waiting for the PT \(T4 = 0.4 s\)"):
        run(script, lambda t: t.authorize(100), t4_s=0.4)
    assert 1.1 < time.monotonic() - started < 3.0  # 3 restarts (0.75 s), then T4 (0.4 s)


def test_serial_flow_with_the_pt_side_on_zvt_link() -> None:
    """The same helpers serve the PT: ZvtLink on the pty master, the driver on its slave path."""
    port = PtyPort()
    timing = ZvtTiming(t1_s=0.2, t2_s=0.5)
    pt = ZvtLink(port, timing)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            command = decode_apdu(pt.receive(3.0))
            assert command.command == (0x06, 0x01)
            pt.send(h(ACK))
            pt.send(h("04 FF 01 04"))
            assert pt.receive(2.0) == h(ACK)
            pt.send(apdu(0x04, 0x0F, encode_bmp(0x27, h("00")), encode_bmp(0x0B, h("00 00 07"))))
            assert pt.receive(2.0) == h(ACK)
            pt.send(h("06 0F 00"))
            assert pt.receive(2.0) == h(ACK)
        except BaseException as exc:  # handed to the test below
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    terminal = ZvtTerminal.open_url(port.path, timing=timing)
    try:
        result = terminal.authorize(1000)
    finally:
        terminal.close()
        thread.join(5.0)
        port.close()
    assert not errors, errors
    assert result.ok and result.trace == 7 and [s.code for s in result.intermediate] == [4]


def test_open_url_picks_the_transport() -> None:
    assert isinstance(ZvtTerminal.open_url("tcp://192.0.2.1").transport, TcpTransport)
    assert ZvtTerminal.open_url("tcp://192.0.2.1").transport.port == 20007
    assert ZvtTerminal.open_url("tcp://192.0.2.1:20008").transport.port == 20008
    assert isinstance(ZvtTerminal.open_url("rfc2217://192.0.2.1:4000").transport, SerialTransport)


@pytest.mark.parametrize("options", [{"password": "12345"}, {"password": "12a456"}, {"currency": 10000}])
def test_bad_own_fields_are_caller_errors(options: dict) -> None:
    with pytest.raises(ValueError):
        ZvtTerminal(TcpTransport("127.0.0.1"), **options)


def test_bad_amount_and_receipt_number_are_caller_errors() -> None:
    terminal = ZvtTerminal(TcpTransport("127.0.0.1"))
    for call in (lambda: terminal.authorize(-1), lambda: terminal.authorize(10 ** 12),
                 lambda: terminal.authorize(1.5), lambda: terminal.reverse(10000)):
        with pytest.raises(ValueError):
            call()


# -- encodings both sides agreed on -----------------------------------------------------------------
def test_card_type_is_read_by_id_and_from_tlv_41_above_255() -> None:
    """BMP 8A is the ZVT card-type ID in one binary byte (Visa 10 = 0A); an ID above 255 comes as
    8A FF with TLV 41 [P15 13, BMP 8A, p.117]."""
    def script(pt: TcpPT) -> None:
        pt.exchange("06 01 0A 04 00 00 00 00 05 00 49 09 78",
                    apdu(0x04, 0x0F, encode_bmp(0x27, h("00")), encode_bmp(0x8A, h("0A"))), "06 0F 00")
        pt.exchange("06 01 0A 04 00 00 00 00 05 00 49 09 78",
                    apdu(0x04, 0x0F, encode_bmp(0x8A, h("FF")), encode_bmp(0x06, [Tlv(0x41, h("01 04"))])),
                    "06 0F 00")

    (visa, blue), _ = run(script, lambda t: (t.authorize(500), t.authorize(500)))
    assert (visa.card_type, visa.card_type_name) == (10, "Visa")
    assert (blue.card_type, blue.card_type_name) == (260, "BlueCode")


def test_serial_number_is_bcd_in_e4_and_text_only_when_not_bcd() -> None:
    """TLV 1F42 is BCD [P15 9.4.12.1, p.178], inside E4 with 1F40 (device name, ASCII)."""
    def completion(serial: bytes) -> bytes:
        return apdu(0x06, 0x0F, encode_lllvar(b"PT100 2.4.1"), b"\x00",
                    encode_bmp(0x06, [Tlv(0xE4, children=(Tlv(0x1F40, b"PT100"), Tlv(0x1F42, serial)))]))

    def script(pt: TcpPT) -> None:
        pt.exchange("05 01 05 12 34 56 03 04", completion(h("10 00 00 01 23")))
        pt.exchange("05 01 05 12 34 56 03 04", completion(b"SN-4711"))

    (bcd, text), _ = run(script, lambda t: (t.status_enquiry(), t.status_enquiry()))
    assert (bcd.serial_number, bcd.device_name) == ("1000000123", "PT100")
    assert text.serial_number == "SN-4711"  # out of spec, but readable


# -- wait_ready and one command at a time -----------------------------------------------------------
STATUS_DONE = apdu(0x06, 0x0F, encode_lllvar(b"PT 1.0"), b"\x00")


def test_wait_ready_over_serial_polls_with_short_ack_waits() -> None:
    """A booting PT ignores the first two frames: each poll waits ``poll_s`` for the ACK (not
    T2 x 3), the third is answered; the link's timing is restored afterwards."""
    port = PtyPort()
    timing = ZvtTiming(t1_s=0.2, t2_s=2.0)
    pt = ZvtLink(port, timing)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            for _ in range(2):
                assert decode_apdu(pt.reader.read_frame(3.0)).command == (0x05, 0x01)  # no ACK
            assert decode_apdu(pt.receive(3.0)).command == (0x05, 0x01)
            pt.send(h(ACK))
            pt.send(STATUS_DONE)
            assert pt.receive(2.0) == h(ACK)
        except BaseException as exc:  # handed to the test below
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    terminal = ZvtTerminal.open_url(port.path, timing=timing)
    try:
        waited = terminal.wait_ready(5.0, poll_s=0.2)
        link_timing = terminal.transport.timing
    finally:
        terminal.close()
        thread.join(5.0)
        port.close()
    assert not errors, errors
    assert 0.35 < waited < 1.5  # two polls of 0.2 s, then the answer
    assert link_timing == timing and (terminal.t3_s, terminal.t4_s) == (5.0, 180.0)


def test_wait_ready_over_tcp_takes_dropped_connections_as_not_yet() -> None:
    """A rebooting PT accepts and drops the connection twice, then answers."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            server.settimeout(5.0)
            for _ in range(2):
                conn, _ = server.accept()
                conn.close()
            conn, _ = server.accept()
            with conn:
                conn.settimeout(5.0)
                assert conn.recv(64)[:2] == h("05 01")
                conn.sendall(h(ACK) + STATUS_DONE)
                assert conn.recv(64) == h(ACK)
                time.sleep(0.1)
        except BaseException as exc:  # handed to the test below
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    terminal = ZvtTerminal(TcpTransport("127.0.0.1", port), password="123456")
    try:
        waited = terminal.wait_ready(5.0, poll_s=0.1)
    finally:
        terminal.close()
        thread.join(5.0)
        server.close()
    assert not errors, errors
    assert waited < 3.0 and terminal.transport.connect_timeout_s == 5.0


def test_wait_ready_gives_up_after_its_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: every connect is refused
    terminal = ZvtTerminal(TcpTransport("127.0.0.1", port))
    started = time.monotonic()
    with pytest.raises(UnitNotResponding, match=r"not ready within 0.6 s; last: connection refused"):
        terminal.wait_ready(0.6, poll_s=0.1)
    assert 0.6 <= time.monotonic() - started < 1.5


def test_wait_ready_waits_out_please_wait_but_raises_a_refusal() -> None:
    def script(pt: TcpPT) -> None:
        pt.expect("05 01 05 12 34 56 03 04")
        pt.send("84 9C 00")  # please wait: not yet
        pt.expect("05 01 05 12 34 56 03 04")
        pt.send("84 83 00")  # function not possible: the PT is up and refuses

    def action(t: ZvtTerminal) -> None:
        with pytest.raises(CommandRejected) as err:
            t.wait_ready(3.0, poll_s=0.05)
        assert err.value.result_code == 0x83

    run(script, action)


def test_a_second_command_from_another_thread_is_refused_not_sent() -> None:
    """ZVT lets the ECR send 06 B0 only while it is master [P15 2.23, p.56]; during a sale the
    link belongs to the thread following the PT, so abort() from another thread is refused."""
    card_wait = threading.Event()
    refused = threading.Event()

    def script(pt: TcpPT) -> None:
        pt.exchange("06 01 0A 04 00 00 00 00 05 00 49 09 78", "04 FF 01 0A")
        card_wait.set()
        assert refused.wait(5.0)
        pt.send("06 1E 01 6C")
        pt.expect(ACK)

    def action(t: ZvtTerminal):
        results = []
        sale = threading.Thread(target=lambda: results.append(t.authorize(500)), daemon=True)
        sale.start()
        assert card_wait.wait(5.0)
        with pytest.raises(TerminalBusy, match="abort called while the authorization is still running"):
            t.abort()
        refused.set()
        sale.join(5.0)
        return results

    results, pt = run(script, action)
    assert [r.result_code for r in results] == [0x6C]
    assert [m[:2] for m in pt.seen] == [h("06 01"), h("80 00"), h("80 00")]  # no 06 B0 was sent


def test_each_apdu_is_logged_by_its_command_and_codes_never_its_data(caplog) -> None:
    status_info = apdu(0x04, 0x0F, encode_bmp(0x27, h("01")), encode_bmp(0x22, h("47 61 73 90 01 01 00 10")),
                       encode_bmp(0x23, TRACK2), encode_bmp(0x8A, h("0A")), encode_bmp(0xA0, h("01")))

    def script(pt: TcpPT) -> None:
        pt.exchange("06 01 0A 04 00 00 00 01 10 00 49 09 78", "04 FF 01 0A", status_info, "06 1E 01 01")

    caplog.set_level("DEBUG", logger="posbench.zvt")
    result, _ = run(script, lambda t: t.authorize(11000))
    assert result.aborted and result.result_code == 0x01
    assert [r.getMessage() for r in caplog.records if r.name == "posbench.zvt"] == [
        "terminal: ECR>PT 06 01", "terminal: PT>ECR 80 00", "terminal: PT>ECR 04 FF status=0A",
        "terminal: ECR>PT 80 00", "terminal: PT>ECR 04 0F rc=01 card type=10", "terminal: ECR>PT 80 00",
        "terminal: PT>ECR 06 1E rc=01", "terminal: ECR>PT 80 00"]
    assert "476173" not in caplog.text and "=2512" not in caplog.text and "11000" not in caplog.text


def test_the_time_the_pt_was_last_heard_from_is_kept() -> None:
    """What a later silence is judged by (issue 21, finding 4): None until the PT's first message."""
    def script(pt: TcpPT) -> None:
        pt.expect("06 02 00")
        pt.send("80 00 00")

    def action(t: ZvtTerminal):
        before = t.heard_at
        asked = time.monotonic()
        t.log_off()
        return before, asked, t.heard_at
    (before, asked, heard), _ = run(script, action)
    assert before is None and heard is not None and heard >= asked
