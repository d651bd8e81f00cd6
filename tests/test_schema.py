"""Schema v1 helpers (conform, problems, valid_pathway, required columns) and docs/schema.md."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from antidistill import schema
from antidistill.errors import SchemaError

DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


def _minimal(n: int = 2) -> dict[str, pa.Array]:
    return {
        "ts": pa.array([datetime(2026, 11, 20, 10, 0)] * n, pa.timestamp("ms")),
        "account_id": pa.array(["a"] * n),
        "model": pa.array(["m"] * n).dictionary_encode(),
        "prompt": pa.array(["p"] * n, pa.large_string()),
    }


def test_required_columns_are_the_documented_four() -> None:
    assert schema.REQUIRED == ("ts", "account_id", "model", "prompt")
    assert set(schema.REQUIRED) | set(schema.OPTIONAL) == set(schema.COLUMN_NAMES)
    for f in schema.EXCHANGE_SCHEMA:
        assert f.nullable == (f.name not in schema.REQUIRED)
    assert schema.EXCHANGE_SCHEMA.metadata[b"antidistill.schema_version"] == (
        schema.SCHEMA_VERSION.encode())


def test_conform_fills_drops_and_casts() -> None:
    cols = _minimal()
    cols["extra"] = pa.array([1, 2])
    cols["input_tokens"] = pa.array([5, 6], pa.int64())
    cols["temperature"] = pa.array([1, 0], pa.int64())
    t = schema.conform(pa.table(cols))
    assert t.schema == schema.EXCHANGE_SCHEMA
    assert t.schema.metadata == schema.EXCHANGE_SCHEMA.metadata
    assert "extra" not in t.column_names
    assert t.column("org_id").null_count == 2
    assert t.column("ts").type == pa.timestamp("us", tz="UTC")
    assert t.column("ts")[0].as_py().isoformat() == "2026-11-20T10:00:00+00:00"
    assert t.column("model").to_pylist() == ["m", "m"]
    assert t.column("input_tokens").type == pa.int32()
    assert t.column("temperature").to_pylist() == [1.0, 0.0]


def test_conform_names_source_and_field() -> None:
    cols = _minimal()
    del cols["prompt"]
    with pytest.raises(SchemaError, match=r"^logs/x\.parquet: field 'prompt': required"):
        schema.conform(pa.table(cols), source="logs/x.parquet")
    cols = _minimal()
    cols["ts"] = pa.array(["2026-11-20", "2026-11-21"])
    with pytest.raises(SchemaError, match="field 'ts': has type string"):
        schema.conform(pa.table(cols))


def test_problems() -> None:
    assert schema.problems(schema.EXCHANGE_SCHEMA) == []
    got = schema.problems(pa.schema([("ts", pa.string()), ("verified", pa.int8()),
                                     ("asn", pa.null()), ("junk", pa.binary())]))
    fields = {(p.field, p.message.split(" ")[0]) for p in got}
    assert ("ts", "has") in fields and ("verified", "has") in fields
    assert {"account_id", "model", "prompt"} <= {p.field for p in got}
    assert "asn" not in {p.field for p in got}  # all-null column is castable
    assert "junk" not in {p.field for p in got}  # extra columns are not problems
    assert str(got[0]).startswith("field '")


@pytest.mark.parametrize(("value", "ok"), [
    ("direct", True), ("cloud:bedrock", True), ("reseller:acme", True), ("cloud:", False),
    ("reseller:", False), ("Direct", False), ("", False), ("cloudx", False), ("proxy:x", False),
])
def test_valid_pathway(value: str, ok: bool) -> None:
    assert schema.valid_pathway(value) is ok


def test_require_columns() -> None:
    schema.require_columns(schema.COLUMN_NAMES, source="s")
    with pytest.raises(SchemaError, match="field 'model'"):
        schema.require_columns(["ts", "account_id", "prompt"], source="s")


def _doc_table() -> list[tuple[str, str, str, str]]:
    text = DOC.read_text()
    section = text.split("<!-- columns:begin -->", 1)[1].split("<!-- columns:end -->", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows.append((cells[0].strip("`"), cells[1].strip("`"), cells[2], cells[3]))
    return rows


def test_schema_doc_matches_columns() -> None:
    rows = _doc_table()
    assert [r[0] for r in rows] == list(schema.COLUMN_NAMES)
    for (name, typ, required, meaning), (_, ctyp, creq, cmeaning) in zip(
            rows, schema.COLUMNS, strict=True):
        assert typ == str(ctyp), name
        assert required == ("yes" if creq else "no"), name
        assert meaning.replace("`", "").startswith(cmeaning.rstrip(". ")), name
    version = re.search(r"Schema version:\s*\*\*(\d+)\*\*", DOC.read_text())
    assert version is not None and version.group(1) == schema.SCHEMA_VERSION
