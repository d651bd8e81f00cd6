"""``read_exchanges``: stream an already-normalised schema-v1 log as Arrow record batches.

This is the hot path of every later stage (detection, stats), so Parquet is read columnar with
only the requested columns; JSONL in schema v1 goes through the same normalisation rules as
ingest, but strictly: the first bad record raises, naming file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from antidistill import schema
from antidistill.errors import InputError, SchemaError
from antidistill.ingest.extract import generic
from antidistill.ingest.fastpath import cast_column
from antidistill.ingest.normalize import Flags, Normalizer, RowProblem, generated_request_id
from antidistill.ingest.readers import JsonLinesSource, detect_format

_MANIFEST = "_manifest.json"


def read_exchanges(
    paths: Sequence[str | Path],
    *,
    columns: Sequence[str] | None = None,
    batch_size: int = 65_536,
) -> Iterator[pa.RecordBatch]:
    """Yield batches conforming to :data:`schema.EXCHANGE_SCHEMA` (or its ``columns`` subset,
    in schema order) from Parquet files, directories of Parquet (ingest output, hive
    partitions, simulator worlds — labels tables are skipped) and JSONL/JSONL.gz files."""
    if isinstance(paths, str | Path):
        paths = [paths]
    cols = _columns(columns)
    out_schema = pa.schema([schema.EXCHANGE_SCHEMA.field(c) for c in cols],
                           metadata=schema.EXCHANGE_SCHEMA.metadata)
    for path in paths:
        p = Path(path)
        if p.is_dir():
            for f in dataset_files(p):
                yield from _read_parquet(f, cols, out_schema, batch_size, strict_kind=False)
        elif p.is_file():
            if detect_format(p) == "parquet":
                yield from _read_parquet(p, cols, out_schema, batch_size, strict_kind=True)
            else:
                yield from _read_jsonl(p, cols, out_schema, batch_size)
        else:
            raise InputError("no such file or directory", where=str(p))


def _columns(columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        return list(schema.COLUMN_NAMES)
    unknown = [c for c in columns if c not in schema.COLUMN_NAMES]
    if unknown:
        raise InputError("not a schema v1 column", field=unknown[0])
    wanted = set(columns)
    return [c for c in schema.COLUMN_NAMES if c in wanted]


def dataset_files(root: Path) -> list[Path]:
    """Parquet files of a dataset directory: those listed by an ingest manifest, else every
    ``*.parquet`` below it except hidden/underscore paths and ``quarantine/``."""
    manifest = root / _MANIFEST
    if manifest.is_file():
        try:
            info = json.loads(manifest.read_text())
            version, files = str(info["schema_version"]), list(info["files"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"unreadable ingest manifest: {exc}", where=str(manifest)) from None
        if version != schema.SCHEMA_VERSION:
            raise SchemaError(f"schema version {version}, this antidistill reads "
                              f"{schema.SCHEMA_VERSION}", where=str(manifest))
        return [root / f for f in files]
    found = sorted(
        f for f in root.rglob("*.parquet")
        if not any(part.startswith((".", "_")) or part == "quarantine"
                   for part in f.relative_to(root).parts[:-1])
        and not f.name.startswith((".", "_"))
    )
    files = [f for f in found if _kind(f) in (None, b"exchange")]
    if not files:
        raise InputError("no exchange Parquet files in directory", where=str(root))
    return files


def _kind(path: Path) -> bytes | None:
    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"unreadable Parquet file: {exc}", where=str(path)) from None
    return meta.get(b"antidistill.schema")


def _read_parquet(path: Path, cols: list[str], out_schema: pa.Schema, batch_size: int, *,
                  strict_kind: bool) -> Iterator[pa.RecordBatch]:
    try:
        # pre_buffer (pyarrow's default) keeps every column chunk read so far until the
        # file is done: a 1.4 GB log grew the process by ~1 GB while streaming
        pf = pq.ParquetFile(path, pre_buffer=False)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"unreadable Parquet file: {exc}", where=str(path)) from None
    have = pf.schema_arrow
    meta = have.metadata or {}
    kind = meta.get(b"antidistill.schema")
    if kind not in (None, b"exchange"):
        if strict_kind:
            raise SchemaError(f"is a {kind.decode()} table, not an exchange log", where=str(path))
        return
    version = meta.get(b"antidistill.schema_version")
    if kind == b"exchange" and version not in (None, schema.SCHEMA_VERSION.encode()):
        raise SchemaError(f"schema version {version.decode() if version else '?'}, this "
                          f"antidistill reads {schema.SCHEMA_VERSION}", where=str(path))
    bad = [pr for pr in schema.problems(have)
           if pr.field in cols or pr.message.startswith("required")]
    if bad:
        raise SchemaError(bad[0].message, where=str(path), field=bad[0].field)
    present = [c for c in cols if c in have.names]
    required = [c for c in cols if c in schema.REQUIRED]
    row = 0
    try:
        batches = pf.iter_batches(batch_size=batch_size, columns=present)
        for batch in batches:
            arrays = []
            for c in cols:
                if c in present:
                    arrays.append(cast_column(batch.column(present.index(c)),
                                              out_schema.field(c).type))
                else:
                    arrays.append(pa.nulls(batch.num_rows, out_schema.field(c).type))
            out = pa.RecordBatch.from_arrays(arrays, schema=out_schema)
            for c in required:
                col = out.column(cols.index(c))
                if col.null_count:
                    first = col.is_null().to_numpy(zero_copy_only=False).argmax()
                    raise SchemaError(f"null in required column (row {row + int(first) + 1})",
                                      where=str(path), field=c)
            row += batch.num_rows
            yield out
    except pa.ArrowException as exc:
        raise InputError(f"unreadable Parquet data after row {row}: {exc}",
                         where=str(path)) from None


def _read_jsonl(path: Path, cols: list[str], out_schema: pa.Schema,
                batch_size: int) -> Iterator[pa.RecordBatch]:
    norm = Normalizer()
    src = JsonLinesSource(path)
    idx = [schema.COLUMN_NAMES.index(c) for c in cols]
    types = [out_schema.field(c).type for c in cols]
    rows: list[list[Any]] = []
    for rec in src.records():
        where = f"{path}:{rec.line}"
        if rec.error is not None:
            raise InputError(rec.error, where=where)
        try:
            values = norm.row(generic(rec.obj), Flags())
        except RowProblem as p:
            raise SchemaError(p.detail, where=where, field=p.field) from None
        if values[0] is None:
            values[0] = generated_request_id(path.name, rec.position, rec.raw.encode())
        rows.append([values[i] for i in idx])
        if len(rows) >= batch_size:
            yield _batch(rows, types, out_schema)
            rows = []
    if rows:
        yield _batch(rows, types, out_schema)


def _batch(rows: list[list[Any]], types: list[pa.DataType], out_schema: pa.Schema
           ) -> pa.RecordBatch:
    cols = list(zip(*rows, strict=True))
    return pa.RecordBatch.from_arrays([pa.array(c, type=t) for c, t in zip(cols, types,
                                                                          strict=True)],
                                      schema=out_schema)
