"""The typed verdict: its shipped JSON Schema is the model's, real verdict JSONs validate against it
and come back from the model key for key, verdicts written before it load, and the store stays
free of rendering and diagnosis."""
import ast
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console
from sqlalchemy import text

from posbench.diagnosis import ranking as diagnosis
from posbench.diagnosis.verdict import SCHEMA_FILE, Verdict, schema_document, shipped_schema
from posbench.render.history import annotate_repeats, render_history
from posbench.render.stored_run import regenerate
from posbench.spec.evidence import RunRecord
from posbench.store import Store
from tests.unit.test_diagnosis import full_run
from tests.unit.test_store import play
from tests.unit.test_verdict_output import faulty_doc, inconclusive_doc

ROOT = Path(__file__).resolve().parents[2]

OLD_DOC = {  # as the first posbench wrote it: no code01_meaning, no read paths, causes without names
    "schema": "posbench.verdict/1",
    "unit": {"serial": "SN-1970", "model": "PT100", "firmware": "1.0"},
    "verdict": "fault", "code01_origin": "terminal",
    "causes": [{"id": "msr_head", "group": "hardware", "confidence": 0.97,
                "evidence": [{"test": "tests/hil/test_read_paths.py::test_swipe", "measurement": "swipe_success_rate",
                              "value": 0.47, "limit": ">= 0.95", "note": "7/15 swipes failed", "ratio": 60}],
                "action": "clean or replace the MSR read head"}],
    "measurements": [{"name": "swipe_success_rate", "value": 0.47, "unit": "", "limit": ">= 0.95", "passed": False,
                      "test": "tests/hil/test_read_paths.py::test_swipe"}],
    "tests": [{"nodeid": "tests/hil/test_read_paths.py::test_swipe", "outcome": "failed", "duration_s": 4.2}],
    "started": "2024-05-01T12:00:00+00:00", "duration_s": 61.5,
    "code01": [{"origin": "terminal", "stan": "000042", "host_code": None, "reason": "no_keys"}],
}


def real_docs(tmp_path: Path) -> list[dict]:
    """Verdict JSONs as posbench writes them: a fault, an inconclusive run, a full run, an empty
    one, a failed preflight's, one stored with earlier causes and its run id, and an old one."""
    empty = diagnosis.verdict_json(RunRecord(), datetime.now(timezone.utc), 0.0)
    bench_error = RunRecord(unit={"serial": "S", "serial_from": "named by the technician"}, bench={"name": "b"})
    bench_error.bench_errors.append("preflight: terminal /dev/ttyX: no answer")
    docs = [faulty_doc().wire(), inconclusive_doc().wire(), diagnosis.verdict_json(full_run(), datetime.now(timezone.utc), 1.0),
            empty, diagnosis.verdict_json(bench_error, datetime.now(timezone.utc), 0.2), OLD_DOC]
    with Store.open(None, tmp_path / "reports") as store:
        first, _ = play(store, serial="SN-S", faulty=True)
        second, _ = play(store, serial="SN-S", faulty=True)
        stored = Verdict.model_validate(store.run(second).doc)
        annotate_repeats(stored, store.previous_causes("SN-S", exclude_run=second))
        stored.seen_before_notes = ["msr_head was found on this unit before"]
        docs += [store.run(first).doc, stored.wire()]
    return docs


def test_the_shipped_schema_is_the_models():
    shipped = json.loads((ROOT / "bench" / "diagnosis" / SCHEMA_FILE).read_text(encoding="utf-8"))
    assert shipped == schema_document(), ("bench/diagnosis/verdict.schema.json is not the Verdict model's schema: "
                                          "python -m posbench.diagnosis.verdict bench/diagnosis/verdict.schema.json")
    assert shipped_schema() == shipped  # the installed package finds it
    jsonschema.Draft202012Validator.check_schema(shipped)


def test_real_verdict_jsons_validate_against_the_shipped_schema(tmp_path: Path):
    validator = jsonschema.Draft202012Validator(shipped_schema())
    docs = real_docs(tmp_path)
    assert any(d.get("read_paths") for d in docs) and any(c.get("seen_before") for d in docs for c in d["causes"])
    for doc in docs:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == [], errors
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({k: v for k, v in docs[0].items() if k != "verdict"})


def test_a_verdict_json_comes_back_from_the_model_key_for_key(tmp_path: Path):
    for doc in real_docs(tmp_path):
        again = Verdict.model_validate(doc).wire()
        assert again == doc
        assert json.dumps(again) == json.dumps(doc)  # in the same order too: a stored JSON is written as it was


def test_keys_the_model_does_not_know_are_kept():
    doc = OLD_DOC | {"written_by": "posbench 9"}
    doc["causes"] = [doc["causes"][0] | {"extra": [1, 2]}]
    assert Verdict.model_validate(doc).wire() == doc


def test_attributes_set_on_a_verdict_are_written_and_emptied_ones_dropped():
    verdict = Verdict.model_validate(OLD_DOC)
    verdict.run_id = "3f2a9c41"
    verdict.add_bench_error("result store: gone")
    wire = verdict.wire()
    assert wire["run_id"] == "3f2a9c41" and wire["bench_errors"] == ["result store: gone"]
    verdict.run_id = None
    verdict.bench_errors = []
    assert verdict.wire() == OLD_DOC


def test_a_store_with_a_verdict_written_before_lists_reports_and_shows_history(tmp_path: Path):
    with Store.open(None, tmp_path / "reports") as store:
        run_id, _ = play(store, serial="SN-1970", faulty=True)
        with store.engine.begin() as conn:  # the verdict as the first posbench stored it
            conn.execute(text("UPDATE runs SET verdict_json = :doc WHERE run_id = :id"),
                         {"doc": json.dumps(OLD_DOC), "id": run_id})
        assert [r.run_id for r in store.recent_runs()] == [run_id]
        html_path, json_path, verdict = regenerate(store, run_id, tmp_path / "out")
        assert json_path.read_text() == json.dumps(OLD_DOC, indent=2) + "\n"
        assert verdict.causes[0].id == "msr_head" and verdict.code01[0].reason == "no_keys"
        assert "clean or replace the MSR read head" in html_path.read_text()
        out = io.StringIO()
        assert len(render_history(store, "SN-1970", Console(file=out, width=140))) == 1
        assert run_id[:8] in out.getvalue()


def test_the_store_persists_and_queries_only():
    """No rendering (rich, Jinja2, posbench.render) and no diagnosis in bench/store/."""
    banned = ("posbench.diagnosis", "posbench.render", "rich", "jinja2")
    found = []
    for path in sorted((ROOT / "bench" / "store").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}:{node.lineno} imports {n}" for n in names
                      if any(n == b or n.startswith(b + ".") for b in banned)]
    assert found == []
