"""Who presents the cards: the technician prompted (manual) and the virtual bench (control port)."""
import pytest

from posbench.drivers.actuator.virtual import request
from posbench.sim.control import ControlServer
from posbench.drivers.actuator.base import ActuatorError, Skipped, TechnicianGone
from posbench.core.errors import BenchError
from posbench.drivers.actuator.manual import ManualActuator
from posbench.drivers.actuator.virtual import VirtualActuator

pytestmark = pytest.mark.timeout(30)


def test_manual_prompts_name_the_card_and_count_and_skip_stops_that_kind():
    said, asked = [], []
    answers = iter(["", "r", "e", "skip"])
    act = ManualActuator(said.append, lambda text, timeout: asked.append(text) or next(answers), answer_s=5)
    act.swipe("VISA-T1", 3, 15)
    assert said == ["Swipe VISA-T1 now (3 of 15)"]
    assert act.missed("swipe") == "retry"      # Enter: it was not presented, present it again
    assert act.missed("swipe") == "presented"  # "r": it was on the reader and did not read
    assert act.missed("swipe") == "refused"    # "e": the unit ended before the card could be presented
    with pytest.raises(Skipped):
        act.missed("swipe")                   # "skip": no more swipes
    with pytest.raises(Skipped):
        act.swipe("VISA-T1", 4, 15)
    act.tap("MC-T1", 1, 12)                   # other kinds go on
    assert said[-1] == "Hold MC-T1 on the contactless reader (1 of 12)" and len(asked) == 4
    assert "Enter = present it again" in asked[0] and "'r' = the card was on the reader" in asked[0]
    assert "'e' = it ended before you could present the card" in asked[0]
    assert "skip the remaining swipes" in asked[0]


def test_manual_without_an_answer_is_a_technician_gone():
    act = ManualActuator(lambda text: None, lambda text, timeout: None, answer_s=0.1)
    with pytest.raises(TechnicianGone, match="did not come back") as caught:
        act.missed("tap")  # nobody answered: a bench error, not a retry nor a failed read
    assert isinstance(caught.value, BenchError)


def test_manual_asks_again_after_an_answer_that_is_no_choice():
    answers = iter(["what?", "r"])
    asked = []
    act = ManualActuator(lambda text: None, lambda text, timeout: asked.append(text) or next(answers))
    assert act.missed("insert") == "presented"
    assert asked[1].startswith("'what?' is none of the choices")
    with pytest.raises(TechnicianGone):
        ManualActuator(lambda text: None, lambda text, timeout: "maybe").missed("insert")


def test_virtual_actuator_asks_the_bench_whether_the_card_was_presented():
    answers = iter(["retry", "presented", "refused", "perhaps"])
    server = ControlServer({"missed": lambda req: {"answer": next(answers), "kind": req["kind"]}}).start()
    try:
        act = VirtualActuator(server.address, timeout=2.0)
        assert act.missed("tap") == "retry"
        assert act.missed("swipe") == "presented"
        assert act.missed("swipe") == "refused"
        with pytest.raises(ActuatorError, match="perhaps"):
            act.missed("insert")
    finally:
        server.stop()


def test_virtual_actuator_reaches_the_bench_and_reports_refusals():
    seen = []

    def swipe(req):
        if req["card"] == "NOPE":
            raise LookupError("no card 'NOPE' in the deck")
        seen.append(req["card"])
        return {"swiped": True}

    server = ControlServer({"swipe": swipe}).start()
    try:
        act = VirtualActuator(server.address, timeout=2.0)
        act.swipe("VISA-T1")
        assert seen == ["VISA-T1"]
        with pytest.raises(ActuatorError, match="NOPE"):
            act.swipe("NOPE")
        with pytest.raises(ActuatorError, match="unknown action 'tap'"):
            act.tap("VISA-T1")
        assert request(server.address, {"action": "swipe", "card": "MC-T1"})["ok"]
    finally:
        server.stop()


def test_control_port_refuses_garbage_and_oversized_lines():
    server = ControlServer({}).start()
    try:
        import socket
        with socket.create_connection(server.address, timeout=2) as sock:
            sock.sendall(b"not json\n" + b"[1,2]\n" + b"x" * 5000 + b"\n")
            data = b""
            while data.count(b"\n") < 3:
                data += sock.recv(4096)
        lines = data.decode().splitlines()
        assert '"ok": false' in lines[0] and "not a JSON object" in lines[0]
        assert "not a JSON object" in lines[1]
        assert "longer than" in lines[2]
    finally:
        server.stop()


def test_a_bench_that_is_gone_is_an_actuator_error():
    server = ControlServer({}).start()
    address = server.address
    server.stop()
    with pytest.raises(ActuatorError):
        VirtualActuator(address, timeout=1.0).insert("VISA-T1")
