"""Ingest end to end: every reader on real-shaped fixtures, quarantine, accounting, layout."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from antidistill import schema
from antidistill.errors import InputError, SchemaError
from antidistill.ingest import detect_format, ingest, read_exchanges
from antidistill.ingest import readers as readers_mod
from antidistill.ingest import writer as writer_mod
from antidistill.ingest.normalize import TEXT_HEAD_CHARS, TEXT_MAX_CHARS, TEXT_TAIL_CHARS

DATA = Path(__file__).parent / "data" / "ingest"


def rows_of(out: Path) -> list[dict[str, Any]]:
    return pa.Table.from_batches(list(read_exchanges([out]))).to_pylist()


def quarantine_of(out: Path) -> list[dict[str, Any]]:
    return pq.read_table(out / "quarantine").to_pylist()


def write_jsonl(path: Path, records: list[Any]) -> Path:
    with path.open("w") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def ok(i: int, **kw: Any) -> dict[str, Any]:
    rec = {"request_id": f"r{i}", "ts": "2026-11-20T10:00:00Z", "account_id": f"a{i % 3}",
           "model": "m", "prompt": f"prompt {i}"}
    rec.update(kw)
    return rec


def assert_balanced(report: Any, out: Path) -> None:
    assert report.read == report.accepted + report.quarantined
    assert len(rows_of(out)) == report.accepted
    assert len(quarantine_of(out)) == report.quarantined
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["read"] == report.read and manifest["schema_version"] == "1"


# --- format detection ----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "fmt"), [
    ("litellm_standard_logging.jsonl", "litellm"), ("otel_genai.jsonl", "otel"),
    ("otel_genai_pretty.json", "otel"), ("exchanges.csv", "csv"), ("custom_shape.jsonl", "jsonl"),
])
def test_detect_format_by_content(name: str, fmt: str) -> None:
    assert detect_format(DATA / name) == fmt


def test_detect_format_without_extension(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1]}), tmp_path / "blob")
    assert detect_format(tmp_path / "blob") == "parquet"
    (tmp_path / "gz").write_bytes(gzip.compress((DATA / "otel_genai.jsonl").read_bytes()))
    assert detect_format(tmp_path / "gz") == "otel"
    (tmp_path / "c").write_text("ts,account_id\n1,2\n")
    assert detect_format(tmp_path / "c") == "csv"


# --- readers -------------------------------------------------------------------------------

def test_litellm_standard_logging_payload(tmp_path: Path) -> None:
    r = ingest([DATA / "litellm_standard_logging.jsonl"], tmp_path / "o", progress=False)
    assert (r.read, r.accepted, r.quarantined) == (7, 6, 1)
    rows = {x["request_id"]: x for x in rows_of(tmp_path / "o")}
    first = rows["chatcmpl-litellm-0000"]
    assert first["account_id"] == "user-0" and first["org_id"] == "org-77"
    assert first["ts"] == datetime(2025, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
    assert first["prompt"] == "Explain step by step."
    assert first["system_prompt"] == "You are a careful math tutor."
    assert (first["n_messages"], first["input_tokens"], first["output_tokens"]) == (4, 42, 115)
    assert (first["reasoning_tokens"], first["max_tokens"]) == (64, 512)
    assert first["temperature"] == pytest.approx(0.2) and first["ip"] == "203.0.113.7"
    assert first["status"] == "ok"
    failed = rows["chatcmpl-litellm-0003"]
    assert (failed["status"], failed["n_tools"], failed["max_tokens"]) == ("error", 2, 2048)
    guarded = rows["chatcmpl-litellm-0004"]
    assert guarded["status"] == "blocked" and guarded["account_id"].startswith("key:88dc28d0")
    wrapped = rows["chatcmpl-litellm-0005"]
    assert wrapped["prompt"] == "Summarise the attached report." and wrapped["n_messages"] == 1
    (q,) = quarantine_of(tmp_path / "o")
    assert (q["line"], q["reason"], q["field"]) == (7, "missing_required", "account_id")
    assert json.loads(q["raw"])["id"] == "chatcmpl-litellm-0006"


def test_otel_genai_spans(tmp_path: Path) -> None:
    r = ingest([DATA / "otel_genai.jsonl"], tmp_path / "o", progress=False)
    assert (r.read, r.accepted, r.quarantined, r.skipped) == (4, 3, 1, 2)  # http + tool spans
    rows = {x["request_id"]: x for x in rows_of(tmp_path / "o")}
    cur = rows["chatcmpl-otel-1"]
    assert cur["account_id"] == "acct-otel-1" and cur["model"] == "gpt-4o"
    assert cur["prompt"] == "Write a haiku about rust." and cur["system_prompt"] == "Be terse."
    assert (cur["input_tokens"], cur["output_tokens"], cur["max_tokens"], cur["n_tools"]) == (
        31, 120, 256, 1)
    assert cur["ts"] == datetime(2025, 11, 22, 10, 0, 1, tzinfo=UTC)
    assert (cur["ip"], cur["client_fp"], cur["status"]) == (
        "198.51.100.4", "openai-python/1.51.0", "ok")
    old = rows["span:00000000000000000000000000000002:0000000000000002"]
    assert (old["prompt"], old["model"], old["input_tokens"]) == ("old style prompt",
                                                                   "gpt-4o-mini", 12)
    err = rows["span:00000000000000000000000000000003:0000000000000003"]
    assert (err["status"], err["prompt"]) == ("error", "indexed prompt")
    (q,) = quarantine_of(tmp_path / "o")
    assert (q["line"], q["item"], q["field"]) == (2, 3, "account_id")


def test_otel_pretty_printed_document(tmp_path: Path) -> None:
    r = ingest([DATA / "otel_genai_pretty.json"], tmp_path / "o", progress=False)
    assert (r.read, r.accepted, r.skipped) == (2, 2, 1)


def test_csv_every_defined_behaviour(tmp_path: Path) -> None:
    r = ingest([DATA / "exchanges.csv"], tmp_path / "o", progress=False)
    assert (r.read, r.accepted, r.quarantined) == (11, 3, 8)
    rows = {x["request_id"]: x for x in rows_of(tmp_path / "o")}
    assert rows["c1"]["account_type"] == "team" and rows["c1"]["asn"] == 64500
    assert rows["c1"]["verified"] is True and rows["c2"]["verified"] is False
    assert rows["c2"]["ts"] == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)  # naive means UTC
    assert rows["c2"]["prompt"] == 'Hello, "quoted" world' and rows["c2"]["status"] == "ok"
    assert rows["c3"]["ts"] == datetime(2025, 11, 20, 10, 0, tzinfo=UTC)  # epoch milliseconds
    assert (rows["c3"]["ip"], rows["c3"]["status"]) == ("192.0.2.9", "ok")
    def key(q: dict[str, Any]) -> Any:
        raw = json.loads(q["raw"])  # a CSV row as a JSON object, or its fields as a list
        return raw["request_id"] if isinstance(raw, dict) else q["line"]

    got = {(key(q), q["reason"], q["field"]) for q in quarantine_of(tmp_path / "o")}
    assert got == {
        ("c4", "bad_timestamp", "ts"), ("c5", "bad_enum", "account_type"),
        ("c6", "bad_enum", "pathway"), ("c7", "out_of_range", "input_tokens"),
        ("c8", "missing_required", "account_id"), ("c9", "bad_enum", "status"),
        ("c10", "bad_value", "ip"), (12, "wrong_field_count", None)}


def test_parquet_with_loose_types(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({
        "ts": pa.array([datetime(2026, 11, 20, 10), datetime(2026, 11, 21, 11)],
                       pa.timestamp("ns")),
        "account_id": pa.array(["a", "b"]).dictionary_encode(),
        "model": ["m", "m"], "prompt": ["x", None],
        "input_tokens": pa.array([3, 4], pa.int64()), "verified": ["yes", "no"],
        "unrelated": [1.5, 2.5],
    }), src)
    r = ingest([src], tmp_path / "o", progress=False)
    assert (r.read, r.accepted, r.quarantined) == (2, 1, 1)
    (row,) = rows_of(tmp_path / "o")
    assert (row["account_id"], row["input_tokens"], row["verified"]) == ("a", 3, True)
    (q,) = quarantine_of(tmp_path / "o")
    assert (q["line"], q["field"]) == (2, "prompt") and json.loads(q["raw"])["account_id"] == "b"


def test_jsonl_gz_equals_plain(tmp_path: Path) -> None:
    plain = write_jsonl(tmp_path / "a.jsonl", [ok(i) for i in range(5)] + ["{oops"])
    gz = tmp_path / "b.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    r1 = ingest([plain], tmp_path / "o1", progress=False)
    r2 = ingest([gz], tmp_path / "o2", progress=False)
    assert (r1.accepted, r1.quarantined) == (r2.accepted, r2.quarantined) == (5, 1)
    assert rows_of(tmp_path / "o1") == rows_of(tmp_path / "o2")


def test_custom_shape_with_mapping(tmp_path: Path) -> None:
    r = ingest([DATA / "custom_shape.jsonl"], tmp_path / "o",
               mapping=DATA / "custom_mapping.yaml", progress=False)
    assert (r.accepted, r.quarantined) == (2, 0)
    rows = rows_of(tmp_path / "o")
    assert rows[0]["ts"] == datetime(2026, 11, 20, 9, 15, tzinfo=UTC)  # Paris is UTC+1 in Nov
    assert [x["status"] for x in rows] == ["ok", "refused"]
    assert {x["pathway"] for x in rows} == {"direct"}
    assert rows[1]["prompt"] == "Rewrite this neutrally: ..." and rows[1]["input_tokens"] == 50


# --- defined behaviours ----------------------------------------------------------------------

def test_duplicates_keep_first_across_batches_and_sources(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [ok(i) for i in range(10)] + [ok(3, prompt="again")])
    b = write_jsonl(tmp_path / "b.jsonl", [ok(5, prompt="later"), ok(99)])
    r = ingest([a, b], tmp_path / "o", progress=False, batch_size=4)
    assert (r.accepted, r.duplicates, r.reasons) == (11, 2, {"duplicate_request_id": 2})
    prompts = {x["request_id"]: x["prompt"] for x in rows_of(tmp_path / "o")}
    assert prompts["r3"] == "prompt 3" and prompts["r5"] == "prompt 5"
    assert {(q["source"][-7:], q["line"]) for q in quarantine_of(tmp_path / "o")} == {
        ("a.jsonl", 11), ("b.jsonl", 1)}


def test_generated_request_ids_are_deterministic(tmp_path: Path) -> None:
    recs = [{k: v for k, v in ok(i).items() if k != "request_id"} for i in range(3)]
    recs.append(recs[0])  # same content on another line: a different exchange
    src = write_jsonl(tmp_path / "x.jsonl", recs)
    r1 = ingest([src], tmp_path / "o1", progress=False)
    r2 = ingest([src], tmp_path / "o2", progress=False)
    ids1 = [x["request_id"] for x in rows_of(tmp_path / "o1")]
    assert r1.generated_ids == 4 and len(set(ids1)) == 4
    assert all(i.startswith("gen-") and len(i) == 28 for i in ids1)
    assert ids1 == [x["request_id"] for x in rows_of(tmp_path / "o2")] and r2.accepted == 4
    # the same file given twice is caught: every row of the second copy is a duplicate
    r3 = ingest([src, src], tmp_path / "o3", progress=False)
    assert (r3.accepted, r3.duplicates) == (4, 4)


def test_non_utf8_bytes_are_repaired_and_counted(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    good = json.dumps(ok(1, prompt="caf\u00e9 PLACEHOLDER")).encode().replace(
        b"PLACEHOLDER", b"\xff\xfe")
    bad_json = b'{"broken": "\xc3\x28'
    src.write_bytes(good + b"\n" + bad_json + b"\n")
    r = ingest([src], tmp_path / "o", progress=False)
    assert (r.accepted, r.quarantined, r.utf8_repaired) == (1, 1, 1)
    assert rows_of(tmp_path / "o")[0]["prompt"] == "caf\u00e9 \ufffd\ufffd"
    (q,) = quarantine_of(tmp_path / "o")
    assert q["reason"] == "invalid_json" and "\\xc3" in q["raw"]  # raw keeps the bytes as \xNN


def test_lone_surrogate_escapes_are_repaired(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "s.jsonl", ['{"ts": 1763805600, "account_id": "a", '
                                             '"model": "m", "prompt": "x\\ud800y"}'])
    r = ingest([src], tmp_path / "o", progress=False)
    assert r.utf8_repaired == 1 and rows_of(tmp_path / "o")[0]["prompt"] == "x\ufffdy"


def test_huge_prompt_is_cut_head_and_tail(tmp_path: Path) -> None:
    text = "H" * TEXT_HEAD_CHARS + "M" * 300_000 + "T" * TEXT_TAIL_CHARS
    src = write_jsonl(tmp_path / "h.jsonl", [ok(1, prompt=text, system_prompt="s" * 10)])
    r = ingest([src], tmp_path / "o", progress=False)
    (row,) = rows_of(tmp_path / "o")
    assert r.truncated == 1 and "M" not in row["prompt"]
    assert row["prompt"].startswith("H" * TEXT_HEAD_CHARS) and row["prompt"].endswith(
        "T" * TEXT_TAIL_CHARS)
    assert "[antidistill: 300000 characters truncated]" in row["prompt"]
    assert len(row["prompt"]) < TEXT_MAX_CHARS + 100


def test_oversized_record_is_quarantined_with_truncated_raw(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setattr(readers_mod, "MAX_RECORD_BYTES", 1000)
    monkeypatch.setattr(readers_mod, "RAW_KEEP_BYTES", 100)
    src = write_jsonl(tmp_path / "big.jsonl", [ok(1, prompt="z" * 5000), ok(2)])
    r = ingest([src], tmp_path / "o", progress=False)
    assert (r.accepted, r.quarantined) == (1, 1)
    (q,) = quarantine_of(tmp_path / "o")
    assert (q["reason"], q["raw_truncated"], len(q["raw"]), q["line"]) == (
        "record_too_large", True, 100, 1)


def test_timestamps_zones_and_epochs(tmp_path: Path) -> None:
    want = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    s = int(want.timestamp())
    values = ["2026-11-20T10:00:00Z", "2026-11-20T11:00:00+01:00", "2026-11-20 10:00:00",
              s, s * 1000, s * 1_000_000, s * 1_000_000_000, float(s), str(s * 1000)]
    src = write_jsonl(tmp_path / "t.jsonl", [ok(i, ts=v) for i, v in enumerate(values)]
                      + [ok(50, ts=123), ok(51, ts="2150-01-01T00:00:00Z")])
    r = ingest([src], tmp_path / "o", progress=False)
    assert {x["ts"] for x in rows_of(tmp_path / "o")} == {want} and r.accepted == len(values)
    assert r.reasons == {"timestamp_out_of_range": 2}


def test_output_is_day_partitioned_schema_v1(tmp_path: Path) -> None:
    recs = [ok(i, ts=f"2026-11-{20 + i % 3}T23:59:59Z") for i in range(9)]
    r = ingest([write_jsonl(tmp_path / "d.jsonl", recs)], tmp_path / "o", progress=False)
    assert r.days == {"2026-11-20": 3, "2026-11-21": 3, "2026-11-22": 3}
    for rel in r.files:
        assert rel.startswith("day=2026-11-2")
        f = pq.ParquetFile(tmp_path / "o" / rel)
        assert f.schema_arrow == schema.EXCHANGE_SCHEMA
        assert f.schema_arrow.metadata == schema.EXCHANGE_SCHEMA.metadata
        day = rel.split("/")[0][4:]
        assert {t.date().isoformat() for t in f.read().column("ts").to_pylist()} == {day}
    assert pq.read_schema(tmp_path / "o" / r.quarantine_files[0]).names[:2] == ["source", "line"]
    assert_balanced(r, tmp_path / "o")


def test_writer_evicts_open_files_and_keeps_every_row(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    orig = writer_mod.DayPartitionedWriter.__init__

    def small(self: Any, root: Path, **kw: Any) -> None:
        orig(self, root, row_group_size=2, max_open=2, max_buffered_rows=4)

    monkeypatch.setattr(writer_mod.DayPartitionedWriter, "__init__", small)
    recs = [ok(i, ts=f"2026-11-{10 + i % 5:02d}T01:00:00Z") for i in range(40)]
    r = ingest([write_jsonl(tmp_path / "e.jsonl", recs)], tmp_path / "o", progress=False,
               batch_size=3)
    assert len(r.files) > len(r.days) == 5
    assert sorted(x["request_id"] for x in rows_of(tmp_path / "o")) == sorted(
        f"r{i}" for i in range(40))


# --- errors: stop, name the file, publish nothing --------------------------------------------

def test_missing_file_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.jsonl: no such file"):
        ingest([tmp_path / "nope.jsonl"], tmp_path / "o", progress=False)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"bad\.parquet: unreadable Parquet"):
        ingest([bad], tmp_path / "o", progress=False)
    gz = tmp_path / "bad.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:60])
    with pytest.raises(InputError, match=r"bad\.jsonl\.gz"):
        ingest([gz], tmp_path / "o", progress=False, fmt="jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl.gz", "bad.parquet"]


def test_missing_required_column_stops(tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("ts,account_id,model\n2026-11-20T00:00:00Z,a,m\n")
    with pytest.raises(SchemaError, match=r"x\.csv: field 'prompt': required column"):
        ingest([csv], tmp_path / "o", progress=False)
    js = write_jsonl(tmp_path / "y.jsonl", [{"ts": 1763805600, "account": "a", "model": "m",
                                             "prompt": "p"}] * 3)
    with pytest.raises(SchemaError, match=r"y\.jsonl: field 'account_id': required field is"):
        ingest([js], tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_crash_mid_run_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [ok(i) for i in range(20)])

    def boom(self: Any, batch: pa.RecordBatch) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(writer_mod.DayPartitionedWriter, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        ingest([src], tmp_path / "o", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]  # no output, no temp dir


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", [ok(1)])
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        ingest([src], out, progress=False)
    assert (out / "keep.txt").exists()
    r = ingest([src], out, progress=False, overwrite=True)
    assert r.accepted == 1 and not (out / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "o"]


# --- CLI -------------------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "antidistill", "ingest", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_cli_prints_balanced_counts_and_one_line_errors(tmp_path: Path) -> None:
    res = _cli(str(DATA / "exchanges.csv"), "--out", str(tmp_path / "o"))
    assert res.returncode == 0, res.stderr
    assert "read 11 = accepted 3 + quarantined 8" in res.stdout
    res = _cli(str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o2"))
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "missing.csv: no such file" in res.stderr
    res = _cli(str(DATA / "exchanges.csv"), "--out", str(tmp_path / "o3"), "--format", "xml")
    assert res.returncode == 2 and "unknown format 'xml'" in res.stderr


def test_parquet_fast_path_equals_row_path(tmp_path: Path) -> None:
    """A schema-v1 Parquet file (columnar fast path) and the same rows as JSONL (row path)
    must give identical datasets and quarantines, including order and keep-first dedupe."""
    base = datetime(2026, 11, 20, 10, tzinfo=UTC)
    recs: list[dict[str, Any]] = []
    variants: list[dict[str, Any]] = [
        {}, {"account_id": " padded "}, {"status": "SUCCESS"}, {"status": "exploded"},
        {"ip": "2001:DB8::1"}, {"ip": "10.0.0.1"}, {"pathway": "Cloud:x"},
        {"pathway": "reseller:acme"}, {"request_id": None}, {"request_id": "dup"},
        {"account_type": "Team"}, {"temperature": -1.0}, {"input_tokens": -3},
        {"prompt": ""}, {"model": "  "}, {"org_id": ""}, {"request_id": "dup"},
        {"ts": datetime(1990, 1, 1, tzinfo=UTC)}, {"prompt": "x" * (TEXT_MAX_CHARS + 10)},
    ]
    for i in range(60):
        rec: dict[str, Any] = {
            "request_id": f"r{i % 50}", "ts": base.replace(minute=i % 60),
            "account_id": f"a{i % 7}", "model": "m", "prompt": f"p{i}", "status": "ok",
            "ip": "192.0.2.1", "pathway": "direct", "temperature": 0.5, "input_tokens": 3,
            "org_id": "o", "account_type": "team",
        }
        rec.update(variants[i % len(variants)])
        recs.append(rec)
    tbl = pa.Table.from_pylist(recs).cast(pa.schema(
        [pa.field(n, schema.EXCHANGE_SCHEMA.field(n).type) for n in recs[0]]))
    pq.write_table(tbl, tmp_path / "in.parquet", row_group_size=16)
    js = [{**r, "ts": r["ts"].isoformat()} for r in recs]
    write_jsonl(tmp_path / "in.jsonl", js)
    a = ingest([tmp_path / "in.parquet"], tmp_path / "a", progress=False, batch_size=16)
    b = ingest([tmp_path / "in.jsonl"], tmp_path / "b", progress=False, batch_size=16)
    assert (a.accepted, a.quarantined, a.duplicates, a.truncated, a.reasons) == (
        b.accepted, b.quarantined, b.duplicates, b.truncated, b.reasons)
    assert a.quarantined > 10 and a.duplicates > 0 and a.truncated > 0
    ra, rb = rows_of(tmp_path / "a"), rows_of(tmp_path / "b")
    gen = [x["request_id"] for x in ra if x["request_id"].startswith("gen-")]
    assert len(gen) == a.generated_ids > 0  # generated ids differ: source name is part of them
    strip = [{**x, "request_id": None if x["request_id"].startswith("gen-") else x["request_id"]}
             for x in ra]
    assert strip == [{**x, "request_id": None if x["request_id"].startswith("gen-")
                      else x["request_id"]} for x in rb]
    qa = [(q["line"], q["reason"], q["field"]) for q in quarantine_of(tmp_path / "a")]
    qb = [(q["line"], q["reason"], q["field"]) for q in quarantine_of(tmp_path / "b")]
    assert sorted(qa) == sorted(qb)


def test_chunks_cut_by_bytes_give_the_same_result(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from antidistill.ingest import pipeline

    src = write_jsonl(tmp_path / "a.jsonl", [ok(i % 15, prompt="w" * (i * 7)) for i in range(40)])
    want = ingest([src], tmp_path / "o1", progress=False)
    monkeypatch.setattr(pipeline, "CHUNK_BYTES", 100)
    got = ingest([src], tmp_path / "o2", progress=False)
    assert (got.accepted, got.duplicates) == (want.accepted, want.duplicates) == (15, 25)
    assert rows_of(tmp_path / "o1") == rows_of(tmp_path / "o2")


def test_parquet_overflowing_int32_takes_the_row_path(tmp_path: Path) -> None:
    f = tmp_path / "big.parquet"
    tbl = pa.table({"request_id": ["a", "b"], "ts": pa.array(
        [datetime(2026, 11, 20, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")),
        "account_id": ["x", "y"], "model": ["m", "m"], "prompt": ["p", "q"],
        "asn": pa.array([5, 2**40], pa.int64())})
    pq.write_table(tbl, f)
    r = ingest([f], tmp_path / "o", progress=False)
    assert (r.accepted, r.reasons) == (1, {"out_of_range": 1})
    assert rows_of(tmp_path / "o")[0]["asn"] == 5


def test_simulated_world_round_trips_unchanged(tmp_path: Path) -> None:
    """The simulator writes schema v1: ingesting it must accept every row and change nothing."""
    simulate = pytest.importorskip("antidistill.simulate")
    simulate.simulate_world(tmp_path / "world", days=1, exchanges=10_000, progress=False)
    r = ingest([tmp_path / "world" / "exchanges.parquet"], tmp_path / "norm", progress=False)
    assert r.quarantined == 0 and r.accepted == r.read > 0
    a = pa.Table.from_batches(list(read_exchanges([tmp_path / "world"])))
    b = pa.Table.from_batches(list(read_exchanges([tmp_path / "norm"])))
    assert a.sort_by("request_id").equals(b.sort_by("request_id"))
