"""The driver's reply parsing: any bytes a unit sends give a typed protocol error, nothing else."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbench.core.errors import MessageError, ProtocolError
from posbench.drivers.ecr.agent.adapter import AgentTerminal, LogRecord, parse_log_record
from posbench.drivers.ecr.agent.codec import Message

printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


def test_log_record_parses_and_masks():
    rec = parse_log_record("12;2026-11-25T10:00:00Z;SALE;1250;4111111111111111;55;55;PIN_WRONG+X")
    assert rec == LogRecord(12, "2026-11-25T10:00:00Z", "SALE", 1250, "411111******1111", "55", "55",
                            ("PIN_WRONG", "X"))


@pytest.mark.parametrize("text", ["", "1;2;3", "x;ts;SALE;1;p;00;00;", "1;ts;SALE;many;p;00;00;"])
def test_log_record_errors_are_typed(text):
    with pytest.raises(MessageError):
        parse_log_record(text)


@settings(deadline=None, max_examples=300)
@given(st.lists(printable, min_size=0, max_size=10).map(";".join))
def test_log_record_fuzz(text):
    try:
        rec = parse_log_record(text)
    except MessageError:
        return
    assert len(rec.pan) in (0, *range(13, 20)) or set(rec.pan) == {"*"}


class _Canned(AgentTerminal):
    """The driver with its link replaced by one fixed reply: exercises only the reply parsing."""

    def __init__(self, reply: Message):
        super().__init__("loop://")
        self._reply = reply

    def _exchange(self, command, fields=None, timeout=None):
        return Message(command, self._reply.fields)


FIELDS = ["model", "serial", "firmware", "components", "uptime_s", "boot_id", "restarts",
          "free_mem_kib", "total_mem_kib", "err_comm", "err_reader", "err_app", "cfg_crc",
          "cfg_crc_stored", "keys", "last_maint", "clock", "log_seq", "display", "host", "host_rc",
          "stan", "tid", "pan", "auth", "reason", "count", "next", "rec"]


@settings(deadline=None, max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(FIELDS), printable), max_size=30))
def test_reply_parsing_fuzz(fields):
    unit = _Canned(Message("X", fields))
    for call in (unit.identify, unit.status, lambda: unit.sale(100)):
        try:
            call()
        except ProtocolError:
            pass
