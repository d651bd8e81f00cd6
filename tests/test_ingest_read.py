"""read_exchanges: the contract detection and stats code against, plus messy-input accounting."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from antidistill import schema
from antidistill.errors import InputError, SchemaError
from antidistill.ingest import ingest, read_exchanges


def table(n: int = 3, **over: Any) -> pa.Table:
    cols: dict[str, Any] = {
        "request_id": [f"r{i}" for i in range(n)],
        "ts": pa.array([datetime(2026, 11, 20, i % 24, tzinfo=UTC) for i in range(n)],
                       pa.timestamp("us", tz="UTC")),
        "account_id": [f"a{i}" for i in range(n)], "model": ["m"] * n,
        "prompt": [f"p{i}" for i in range(n)],
    }
    cols.update(over)
    return pa.table(cols)


def test_conforming_batches_and_column_subset(tmp_path: Path) -> None:
    f = tmp_path / "x.parquet"
    pq.write_table(table(5, input_tokens=pa.array([1, 2, 3, 4, 5], pa.int64())), f)
    batches = list(read_exchanges([f], batch_size=2))
    assert [b.num_rows for b in batches] == [2, 2, 1]
    assert all(b.schema == schema.EXCHANGE_SCHEMA for b in batches)
    assert batches[0].column(schema.COLUMN_NAMES.index("input_tokens")).type == pa.int32()
    sub = list(read_exchanges([f], columns=["prompt", "ts", "status"]))
    assert sub[0].schema.names == ["ts", "prompt", "status"]  # schema order
    assert sub[0].column(2).null_count == 5
    with pytest.raises(InputError, match="field 'bogus'"):
        list(read_exchanges([f], columns=["bogus"]))


def test_streaming_a_parquet_log_holds_one_row_group_at_a_time(tmp_path: Path) -> None:
    """Reading must not keep what it has already streamed (pyarrow's pre_buffer did)."""
    import os

    f = tmp_path / "big.parquet"
    n, groups = 8_000, 24
    prompts = [os.urandom(200).hex() for _ in range(n)]  # incompressible: ~3.2 MB per group
    with pq.ParquetWriter(f, table(n, prompt=prompts).schema) as w:
        for _ in range(groups):
            w.write_table(table(n, prompt=prompts))
    base = pa.total_allocated_bytes()
    peak = 0
    for batch in read_exchanges([f], batch_size=4_000):
        peak = max(peak, pa.total_allocated_bytes() - base)
        del batch
    assert f.stat().st_size > 60e6
    assert peak < f.stat().st_size / 4  # a few row groups at most, not the file


def test_directory_skips_labels_and_hidden(tmp_path: Path) -> None:
    world = tmp_path / "world"
    world.mkdir()
    pq.write_table(table(4).replace_schema_metadata(schema.EXCHANGE_SCHEMA.metadata),
                   world / "exchanges.parquet")
    pq.write_table(schema.LABELS_SCHEMA.empty_table(), world / "labels.parquet")
    pq.write_table(schema.EXCHANGE_LABELS_SCHEMA.empty_table(), world / "exchange_labels.parquet")
    (world / ".tmp").mkdir()
    pq.write_table(table(9), world / ".tmp" / "partial.parquet")
    assert sum(b.num_rows for b in read_exchanges([world])) == 4
    with pytest.raises(SchemaError, match=r"labels\.parquet: is a labels table"):
        list(read_exchanges([world / "labels.parquet"]))


def test_non_conforming_parquet_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.parquet"
    pq.write_table(table(2, prompt=["x", None]), f)
    with pytest.raises(SchemaError,
                       match=r"bad\.parquet: field 'prompt': null in required .*row 2"):
        list(read_exchanges([f]))
    pq.write_table(table(2).drop(["model"]), f)
    with pytest.raises(SchemaError, match="field 'model': required column is missing"):
        list(read_exchanges([f], columns=["ts"]))
    pq.write_table(table(2, ts=["2026-11-20", "x"]), f)
    with pytest.raises(SchemaError, match="field 'ts': has type string"):
        list(read_exchanges([f]))
    meta = dict(schema.EXCHANGE_SCHEMA.metadata)
    meta[b"antidistill.schema_version"] = b"9"
    pq.write_table(table(2).replace_schema_metadata(meta), f)
    with pytest.raises(SchemaError, match="schema version 9"):
        list(read_exchanges([f]))
    with pytest.raises(InputError, match="no such file"):
        list(read_exchanges([tmp_path / "none.parquet"]))


def test_jsonl_in_schema_v1_is_strict(tmp_path: Path) -> None:
    f = tmp_path / "log.jsonl"
    good = {"request_id": "r1", "ts": "2026-11-20T10:00:00Z", "account_id": "a", "model": "m",
            "prompt": "p", "asn": 5}
    f.write_text(json.dumps(good) + "\n" + json.dumps({**good, "asn": "x"}) + "\n")
    with pytest.raises(SchemaError, match=r"log\.jsonl:2: field 'asn': expected an integer"):
        list(read_exchanges([f]))
    f.write_text(json.dumps(good) + "\n")
    (b,) = read_exchanges([f], columns=["asn", "ts"])
    assert b.to_pylist() == [{"ts": datetime(2026, 11, 20, 10, tzinfo=UTC), "asn": 5}]


def test_reads_ingest_output_via_manifest_only(tmp_path: Path) -> None:
    src = tmp_path / "s.jsonl"
    src.write_text("".join(json.dumps({"ts": 1763805600 + i * 86_400, "account_id": "a",
                                       "model": "m", "prompt": str(i)}) + "\n"
                           for i in range(3)))
    out = tmp_path / "o"
    ingest([src], out, progress=False)
    pq.write_table(table(7), out / "day=2030-01-01.parquet")  # not in the manifest: ignored
    assert sorted(r["prompt"] for b in read_exchanges([out]) for r in b.to_pylist()) == [
        "0", "1", "2"]


# --- property: messy input always adds up ------------------------------------------------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**63), st.floats(),
                    st.text(max_size=8), st.sampled_from(["ok", "2026-11-20T10:00:00Z",
                                                          "direct", "AS1", "1.2.3.4"]))
_value = st.one_of(_scalar, st.lists(_scalar, max_size=2),
                   st.dictionaries(st.text(max_size=3), _scalar, max_size=2))
_record = st.dictionaries(
    st.sampled_from([*schema.COLUMN_NAMES, "messages", "tools", "junk"]), _value, max_size=10)
_line = st.one_of(
    _record.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b),
    st.sampled_from([b"", b"   ", b"[1, 2]", b'"str"', b"{", b'{"ts": 1}']),
    st.builds(lambda rid, ts: json.dumps({"request_id": rid, "ts": ts, "account_id": "a",
                                          "model": "m", "prompt": "p"}).encode(),
              st.sampled_from(["d1", "d2", None]),
              st.integers(1_000_000_000, 4_000_000_000_000)),
)
_near_valid = st.builds(
    lambda col, val, rid: json.dumps({"request_id": rid, "ts": "2026-11-20T10:00:00Z",
                                      "account_id": "a", "model": "m", "prompt": "p",
                                      "status": "ok", "ip": "192.0.2.1", "asn": 5, col: val}),
    st.sampled_from([*schema.COLUMN_NAMES, "messages"]),
    st.one_of(_value, st.sampled_from(["", " x ", "OK", "Team", "cloud:a", "::1", "10.0.0.300",
                                       "AS7", 2**31, 1.0, -1, "1763805600", 1763805600123])),
    st.sampled_from(["n1", "n2", "n3", None]),
).map(str.encode)
_line = st.one_of(_line, _near_valid)
_VALID = json.dumps({"ts": 1763805600, "account_id": "a", "model": "m", "prompt": "p"}).encode()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line, max_size=25), batch=st.integers(1, 7))
def test_messy_jsonl_always_balances(tmp_path_factory: pytest.TempPathFactory,
                                     lines: list[bytes], batch: int) -> None:
    d = tmp_path_factory.mktemp("messy")
    src = d / "in.jsonl"
    src.write_bytes(b"\n".join([_VALID, *lines]) + b"\n")
    r = ingest([src], d / "out", fmt="jsonl", progress=False, batch_size=batch)
    records = sum(1 for ln in [_VALID, *lines] if ln.strip())
    assert r.read == records == r.accepted + r.quarantined
    assert r.skipped == len(lines) + 1 - records
    assert sum(b.num_rows for b in read_exchanges([d / "out"])) == r.accepted
    q = pq.read_table(d / "out" / "quarantine")
    assert q.num_rows == r.quarantined == sum(r.reasons.values())
    assert set(q.column("line").to_pylist()) <= set(range(1, len(lines) + 2))
    ids = [x for b in read_exchanges([d / "out"], columns=["request_id"])
           for x in b.column(0).to_pylist()]
    assert len(ids) == len(set(ids))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.lists(st.text(string.printable, max_size=6), min_size=1, max_size=7),
                      max_size=15))
def test_messy_csv_always_balances(tmp_path_factory: pytest.TempPathFactory,
                                   cells: list[list[str]]) -> None:
    import csv

    d = tmp_path_factory.mktemp("messycsv")
    src = d / "in.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts", "account_id", "model", "prompt", "asn", "status"])
        w.writerow(["1763805600", "a", "m", "p", "", ""])
        w.writerows(cells)
    r = ingest([src], d / "out", fmt="csv", progress=False, batch_size=4)
    assert r.read == r.accepted + r.quarantined and r.balanced
    assert sum(b.num_rows for b in read_exchanges([d / "out"])) == r.accepted
    assert pq.read_table(d / "out" / "quarantine").num_rows == r.quarantined


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line, max_size=30), batch=st.integers(1, 9))
def test_columnar_path_equals_row_path(tmp_path_factory: pytest.TempPathFactory,
                                       monkeypatch: pytest.MonkeyPatch,
                                       lines: list[bytes], batch: int) -> None:
    from antidistill.ingest import pipeline

    d = tmp_path_factory.mktemp("equiv")
    src = d / "in.jsonl"
    src.write_bytes(b"\n".join([_VALID, *lines]) + b"\n")
    results = []
    for columnar in (True, False):
        monkeypatch.setattr(pipeline, "COLUMNAR", columnar)
        out = d / f"out-{columnar}"
        r = ingest([src], out, fmt="jsonl", progress=False, batch_size=batch)
        q = pq.read_table(out / "quarantine").to_pylist()
        results.append((
            (r.read, r.accepted, r.quarantined, r.duplicates, r.generated_ids, r.truncated,
             r.utf8_repaired, r.reasons),
            pa.Table.from_batches(list(read_exchanges([out]))).to_pylist(),
            sorted((x["line"], x["reason"], x["field"], x["raw"]) for x in q),
        ))
    assert results[0] == results[1]
