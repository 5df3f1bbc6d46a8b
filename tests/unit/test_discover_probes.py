"""The probe table of `posbench discover`: the order a port is asked in, what stops it, and the real
entries against the bench's own emulators on pseudo-terminals."""
from __future__ import annotations

import os
import random

import pytest

from posbench.setup.config import UsbId
from posbench.discover.probes import (KORAD_ADAPTER, SERIAL_PROBES, TCP_PROBES, Tried, nfc_path, order_for,
                                      probe_address, probe_port, split_address, summary)
from posbench.drivers.probing import Answer, LineSettings, NoAnswer, SerialProbe
from posbench.core.errors import PortUnavailable
from posbench.sim.devices.korad import KoradEmulator
from posbench.sim.devices.pn532 import PN532Emulator
from posbench.sim.unit.power import UnitPower


def _recording(protocol: str, asked: list[str], answers_at: int | None = None,
               hint: frozenset[UsbId] = frozenset()) -> SerialProbe:
    """An entry that records each question and answers at ``answers_at`` baud."""
    def ask(port: str, settings: LineSettings, timeout_s: float) -> Answer:
        asked.append(f"{protocol} {settings}")
        if port == "/dev/missing":
            raise PortUnavailable("terminal", f"opening {port}", "No such file or directory")
        if settings.baudrate == answers_at:
            return Answer(protocol, "terminal", "answered", settings)
        raise NoAnswer("silence")
    return SerialProbe(protocol, "terminal", (LineSettings(9600), LineSettings(115200)), "Q", "A", ask, hint)


def test_the_table_names_every_protocol_with_its_line_settings():
    table = {p.protocol: p for p in SERIAL_PROBES}
    assert [str(s) for s in table["zvt"].settings] == ["9600 8N2", "115200 8N2"]
    assert [str(s) for s in table["agent"].settings] == ["9600 8N1", "115200 8N1"]
    assert [str(s) for s in table["concert"].settings] == ["9600 8N1", "9600 7E1"]
    assert table["korad"].asks == "*IDN?" and table["korad"].kind == "supply"
    assert table["pn532"].kind == "nfc reader"
    kinds = [p.kind for p in SERIAL_PROBES]
    assert kinds.index("supply") > max(i for i, k in enumerate(kinds) if k == "terminal")
    assert [(p.protocol, p.port) for p in TCP_PROBES] == [("zvt", 20007), ("caisse-ap", 8888)]
    assert str(LineSettings(9600, 7, "E")) == "9600 7E1"


def test_a_port_is_asked_in_order_until_one_answers_and_then_nothing_more():
    asked: list[str] = []
    probes = (_recording("first", asked), _recording("second", asked, answers_at=115200),
              _recording("third", asked))
    result = probe_port("/dev/ttyX", probes=probes)
    assert result.answer is not None and result.answer.protocol == "second"
    assert asked == ["first 9600 8N1", "first 115200 8N1", "second 9600 8N1", "second 115200 8N1"]
    assert [str(t) for t in result.tried] == ["first (Q) at 9600 8N1: silence", "first (Q) at 115200 8N1: silence",
                                              "second (Q) at 9600 8N1: silence"]


def test_the_adapter_hint_puts_its_entry_first():
    asked: list[str] = []
    adapter = UsbId(0x0416, 0x5011)
    probes = (_recording("terminal", asked), _recording("supply", asked, answers_at=9600, hint=frozenset({adapter})))
    assert [p.protocol for p in order_for(adapter, probes)] == ["supply", "terminal"]
    assert [p.protocol for p in order_for(None, probes)] == ["terminal", "supply"]
    result = probe_port("/dev/ttyACM0", adapter, probes)
    assert result.answer and result.answer.protocol == "supply" and asked == ["supply 9600 8N1"]


def test_a_port_that_cannot_be_opened_is_said_once():
    asked: list[str] = []
    result = probe_port("/dev/missing", probes=(_recording("a", asked), _recording("b", asked)))
    assert result.answer is None and result.tried == [] and asked == ["a 9600 8N1"]
    assert "No such file" in result.problem


def test_the_summary_names_each_protocol_once_with_its_settings():
    tried = [Tried("agent", "ID", "9600 8N1", "x"), Tried("agent", "ID", "115200 8N1", "y"),
             Tried("zvt", "status enquiry", "9600 8N2", "z")]
    assert summary(tried) == "agent (ID) at 9600 8N1, 115200 8N1; zvt (status enquiry) at 9600 8N2"


def test_nfc_paths_and_addresses():
    assert nfc_path("/dev/ttyUSB0") == "tty:USB0:pn532"
    assert nfc_path("/dev/serial/by-id/usb-FTDI-if00") == "/dev/serial/by-id/usb-FTDI-if00"
    assert nfc_path("/dev/pts/4") == "/dev/pts/4"
    assert split_address("10.0.0.5") == ("10.0.0.5", None)
    assert split_address("10.0.0.5:20008") == ("10.0.0.5", 20008)
    assert split_address("[::1]:20007") == ("::1", 20007)
    assert split_address("::1") == ("::1", None)


def test_the_real_table_finds_a_korad_on_a_pty_after_the_terminal_protocols_drew_nothing():
    power = UnitPower(0.2).start()
    emu = KoradEmulator(power, serial="00000042").start()
    try:
        result = probe_port(emu.path)
        hinted = probe_port(emu.path, KORAD_ADAPTER)
    finally:
        emu.stop()
        power.stop()
    assert result.answer is not None and result.answer.kind == "supply"
    assert "KORAD KA3005P" in result.answer.how and result.answer.section == {"driver": "korad", "port": emu.path,
                                                                                "channel": 1}
    assert [t.protocol for t in result.tried] == ["agent", "agent", "zvt", "zvt", "concert", "concert"]
    assert hinted.answer is not None and hinted.answer.kind == "supply" and hinted.tried == []


def test_the_real_table_finds_a_pn532_through_nfcpy():
    emu = PN532Emulator(random.Random(1))
    emu.start()
    try:
        result = probe_port(emu.path)
    finally:
        emu.stop()
    assert result.answer is not None and result.answer.kind == "nfc reader"
    assert result.answer.section == {"path": emu.path} and "PN532" in result.answer.how


def test_a_silent_port_says_every_protocol_and_line_setting_tried():
    master, slave = os.openpty()
    try:
        result = probe_port(os.ttyname(slave))
    finally:
        os.close(master)
        os.close(slave)
    assert result.answer is None and result.problem == ""
    expected = [(p.protocol, str(s)) for p in SERIAL_PROBES for s in p.settings]
    assert [(t.protocol, t.where) for t in result.tried] == expected


def test_a_closed_tcp_port_is_tried_and_named():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        results = probe_address("127.0.0.1", port)
    assert len(results) == 1 and results[0].answer is None
    assert results[0].address == f"127.0.0.1:{port}" and results[0].tried[0].protocol == "zvt"
    assert "refused" in results[0].tried[0].detail


@pytest.mark.timeout(30)
def test_a_zvt_terminal_on_tcp_answers_the_status_enquiry():
    from posbench.setup.profile import profile_for_model
    from posbench.sim.ecr.agent import TerminalTiming
    from posbench.sim.ecr.zvt import VirtualZvtTerminal
    term = VirtualZvtTerminal(("127.0.0.1", 9), profile_for_model("PT100"), {}, seed=1, serial="1000000123",
                              terminal_id="52000001", timing=TerminalTiming(boot_s=0.0), transport="tcp")
    term.start()
    try:
        host, port = term.address
        results = probe_address(host, port)
    finally:
        term.stop(timeout=2.0)
    answer = results[0].answer
    assert answer is not None and answer.protocol == "zvt" and answer.section == {"protocol": "zvt",
                                                                                   "address": f"{host}:{port}"}
    assert answer.unit.get("serial") == "1000000123" and "80 00" in answer.how
