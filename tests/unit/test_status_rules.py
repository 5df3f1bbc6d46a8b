"""The terminal-status rule (``posbench.diagnosis.rules.terminal_status``) on its own: a status
byte and lock bits in, readings and evidence out, the run record untouched."""
from posbench.diagnosis.rules import terminal_status
from posbench.drivers.terminal import Status


def test_a_status_byte_and_a_lock_give_readings_and_their_evidence():
    found = terminal_status("zvt", Status(terminal_status=0xB1, terminal_status_text="memory full",
                                          locks=("diagnosis lock", "no such lock")), "in {00}")
    assert [(r.name, r.value) for r in found.readings] == [("terminal_status", "B1"), ("locks", 2)]
    assert [(e.cause, e.measurement, e.value, e.limit) for e in found.evidence] == [
        ("resources", "terminal_status", "B1", "in {00}"), ("maintenance", "locks", "diagnosis lock", "none set")]
    assert "memory full" in found.evidence[0].note and found.evidence[0].test == ""  # not yet a test's


def test_a_ready_terminal_gives_readings_and_no_evidence():
    found = terminal_status("zvt", Status(terminal_status=0x00, terminal_status_text="ready"), "in {00}")
    assert [(r.name, r.value) for r in found.readings] == [("terminal_status", "00"), ("locks", 0)]
    assert found.evidence == [] and found.unmeasured == {}


def test_no_status_byte_is_unmeasured_not_healthy():
    found = terminal_status("zvt", Status(), "in {00}")
    assert list(found.unmeasured) == ["terminal_status"] and [r.name for r in found.readings] == ["locks"]
