"""Columnar fast path for Parquet batches that are already (nearly) schema v1.

Gateway logs and simulator worlds are written in schema v1, and re-checking them row by row in
Python would make ingest 10-100x slower than reading them. Here a whole batch is cast with Arrow
and every rule of :mod:`normalize` is checked as a vectorised predicate that is true only when
the row path would accept the value *unchanged*. Rows that pass are accepted as they are; every
other row goes through the row path, so both paths give identical output by construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from antidistill import schema
from antidistill.ingest.normalize import (
    TEXT_MAX_CHARS,
    TS_MAX_US,
    TS_MIN_US,
    RowProblem,
    TimestampRule,
    to_timestamp_us,
)

_IDENTIFIERS = ("request_id", "account_id", "org_id", "payment_fp", "client_fp", "model")
_IPV4 = r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$"
_PATHWAY = r"^(direct|(cloud|reseller):\S(.*\S)?)$"
#: Characters Python's str.strip() removes but Unicode White_Space (Arrow's trim) does not.
_PY_ONLY_SPACE_AT_ENDS = r"^[\x1c-\x1f]|[\x1c-\x1f]$"
_INTS = tuple(n for n, t, _, _ in schema.COLUMNS if pa.types.is_integer(t))
_STATUSES = pa.array(sorted(schema.STATUSES))
_ACCOUNT_TYPES = pa.array(sorted(schema.ACCOUNT_TYPES))


def eligible(arrow_schema: pa.Schema) -> bool:
    """True when every schema-v1 column present has a type Arrow can cast (no strings-as-ts)."""
    return not schema.problems(arrow_schema)


def cast_column(col: pa.Array, typ: pa.DataType) -> pa.Array:
    """Cast to a schema type: dictionaries decoded, naive timestamps taken as UTC."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if col.type == typ:
        return col
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            col = col.cast(pa.timestamp(col.type.unit, tz="UTC"))
        return col.cast(typ, safe=False)
    return col.cast(typ)


def split(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, np.ndarray] | None:
    """(batch cast to schema v1, mask of rows accepted unchanged), or None if it cannot be cast
    (e.g. an int64 count overflowing int32): then every row takes the row path."""
    n = batch.num_rows
    arrays: list[pa.Array] = []
    try:
        for name, typ, _, _ in schema.COLUMNS:
            i = batch.schema.get_field_index(name)
            arrays.append(cast_column(batch.column(i), typ) if i >= 0 else pa.nulls(n, typ))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    out = pa.RecordBatch.from_arrays(arrays, schema=schema.EXCHANGE_SCHEMA)
    try:
        return out, _canonical(out)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _canonical(out: pa.RecordBatch) -> np.ndarray:
    ok = np.ones(out.num_rows, dtype=bool)

    def col(name: str) -> pa.Array:
        return out.column(schema.COLUMN_NAMES.index(name))

    def need(c: pa.Array, cond: pa.Array, *, null_ok: bool) -> None:
        nonlocal ok
        valid = pc.fill_null(cond, False)
        ok &= (pc.or_(pc.is_null(c), valid) if null_ok else pc.and_(pc.is_valid(c), valid)
               ).to_numpy(zero_copy_only=False)

    for name in _IDENTIFIERS:
        c = col(name)
        canonical = pc.and_(pc.and_(pc.equal(c, pc.utf8_trim_whitespace(c)), pc.not_equal(c, "")),
                            pc.invert(pc.match_substring_regex(c, _PY_ONLY_SPACE_AT_ENDS)))
        need(c, canonical, null_ok=name not in ("request_id", "account_id", "model"))
    c = col("prompt")
    need(c, pc.less_equal(pc.utf8_length(c), TEXT_MAX_CHARS), null_ok=False)
    c = col("system_prompt")  # "" becomes null on the row path
    need(c, pc.and_(pc.less_equal(pc.utf8_length(c), TEXT_MAX_CHARS), pc.not_equal(c, "")),
         null_ok=True)
    for name in ("ts", "account_created_at"):
        c = col(name)
        us = c.cast(pa.int64())
        need(c, pc.and_(pc.greater_equal(us, TS_MIN_US), pc.less(us, TS_MAX_US)),
             null_ok=name != "ts")
    need(col("status"), pc.is_in(col("status"), value_set=_STATUSES), null_ok=True)
    need(col("account_type"), pc.is_in(col("account_type"), value_set=_ACCOUNT_TYPES),
         null_ok=True)
    need(col("pathway"), pc.match_substring_regex(col("pathway"), _PATHWAY), null_ok=True)
    need(col("ip"), pc.match_substring_regex(col("ip"), _IPV4), null_ok=True)
    for name in _INTS:
        need(col(name), pc.greater_equal(col(name), 0), null_ok=True)
    t = col("temperature")
    need(t, pc.and_(pc.is_finite(t), pc.greater_equal(t, 0)), null_ok=True)
    return ok


def _allowed(typ: pa.DataType) -> frozenset[type]:
    """Python types a column's values may have to be taken unchanged (None always allowed)."""
    if pa.types.is_integer(typ):
        return frozenset({int, type(None)})
    if pa.types.is_floating(typ):
        return frozenset({int, float, type(None)})
    if pa.types.is_boolean(typ):
        return frozenset({bool, type(None)})
    return frozenset({str, type(None)})


_ALLOWED = {name: _allowed(typ) for name, typ, _, _ in schema.COLUMNS}
_DERIVING = ("messages", "tools")
_RULE = TimestampRule()


def from_objects(objs: list[dict[str, Any] | None]) -> tuple[pa.RecordBatch, np.ndarray] | None:
    """Columnar check of parsed JSON objects in schema-v1 shape (None = not parseable).

    A row is fast only if every value already has the plain Python type of its column
    (str/int/float/bool — no numeric strings, no "AS123"), it has no ``messages``/``tools`` to
    derive fields from, and the vectorised rules accept it unchanged. Timestamps are converted
    per value with the row path's own function, so they cannot differ. None when the columns
    cannot be built at all (e.g. an integer beyond int32): the whole chunk takes the row path.
    """
    n = len(objs)
    ok = np.fromiter((o is not None and not any(k in o for k in _DERIVING) for o in objs),
                     dtype=bool, count=n)
    empty: dict[str, Any] = {}
    rows = [o if o is not None else empty for o in objs]
    arrays: list[pa.Array] = []
    try:
        for name, typ, _, _ in schema.COLUMNS:
            vals = [o.get(name) for o in rows]
            if pa.types.is_timestamp(typ):
                conv: list[int | None] = []
                for i, v in enumerate(vals):
                    if v is None:
                        conv.append(None)
                        continue
                    try:
                        conv.append(to_timestamp_us(v, name, _RULE))
                    except RowProblem:
                        conv.append(None)
                        ok[i] = False
                arrays.append(pa.array(conv, type=pa.int64()).cast(typ))
                continue
            allowed = _ALLOWED[name]
            if not set(map(type, vals)) <= allowed:  # set/map run in C: the common case
                for i, v in enumerate(vals):
                    if type(v) not in allowed:
                        vals[i] = None
                        ok[i] = False
            arrays.append(pa.array(vals, type=typ))
    except (pa.ArrowException, OverflowError, UnicodeEncodeError, TypeError, ValueError):
        return None
    out = pa.RecordBatch.from_arrays(arrays, schema=schema.EXCHANGE_SCHEMA)
    try:
        ok &= _canonical(out)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return out, ok
