"""How values are stored: a measured value as (kind, number, exact text), JSON-like documents
scrubbed of card data, the bench as run columns, datetimes in UTC."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from posbench.core.masking import scrub


def encode_value(value: Any) -> dict:
    """A measured value as (kind, number, exact text); a PAN-like integer becomes masked text."""
    if value is None:
        return {"value_kind": "null", "value_num": None, "value_text": None}
    if isinstance(value, bool):
        return {"value_kind": "bool", "value_num": float(value), "value_text": "true" if value else "false"}
    if isinstance(value, int):
        digits = str(value)
        if scrub(digits) != digits:
            return {"value_kind": "text", "value_num": None, "value_text": scrub(digits)}
        try:
            num = float(value)
        except OverflowError:
            num = None
        return {"value_kind": "int", "value_num": num, "value_text": digits}
    if isinstance(value, float):
        # floats are not scrubbed: repr(0.1 + 0.2) has 17 digits in a row, and a PAN is never a float
        return {"value_kind": "float", "value_num": value if math.isfinite(value) else None,
                "value_text": repr(value)}
    return {"value_kind": "text", "value_num": None, "value_text": scrub(str(value))}


def decode_value(kind: str, text: str | None) -> Any:
    """The value ``encode_value`` stored as (kind, exact text)."""
    if kind == "null" or text is None:
        return None
    if kind == "bool":
        return text == "true"
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    return text


def scrub_obj(obj: Any, key: str = "") -> Any:
    """Scrub every string (and PAN-like integer) in a JSON-like structure; a ``seed`` stays."""
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, bool) or obj is None or isinstance(obj, float):
        return obj
    if isinstance(obj, int):
        return obj if key == "seed" or scrub(str(obj)) == str(obj) else scrub(str(obj))
    if isinstance(obj, dict):
        return {scrub(str(k)): scrub_obj(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub_obj(v, key) for v in obj]
    return scrub(str(obj))


def bench_columns(bench: dict) -> dict:
    """The run row's bench columns: name, the whole description as JSON, seed and faults."""
    seed = bench.get("seed")
    return {"bench_name": str(bench.get("name", "")), "bench_json": json.dumps(bench, ensure_ascii=False),
            "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            "faults_json": json.dumps(bench.get("faults") or [], ensure_ascii=False)}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_utc(when: datetime) -> datetime:
    """A datetime to store: naive ones are local time."""
    return (when if when.tzinfo else when.astimezone()).astimezone(timezone.utc)


def read_utc(when: datetime) -> datetime:
    """SQLite gives naive datetimes back; everything stored is UTC."""
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
