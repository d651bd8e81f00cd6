"""Turn finished numpy rows into schema-v1 Arrow tables and stream them to Parquet.

Text columns are gathered from pre-built Arrow pools with ``take`` and joined with
``binary_join_element_wise``; request ids are hex-encoded with numpy. One row group per chunk
keeps memory bounded however large the world is.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from antidistill.schema import EXCHANGE_LABELS_SCHEMA, EXCHANGE_SCHEMA, UTC_US
from antidistill.simulate.context import MODELS, Ctx
from antidistill.simulate.finish import mix64
from antidistill.simulate.rows import PARTS, STATUSES, Rows

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_PAIRS = np.stack([_HEX[np.arange(256) >> 4], _HEX[np.arange(256) & 15]], axis=1)
_PREFIX = np.frombuffer(b"req_", np.uint8)


def request_ids(seed: int, first: int, n: int) -> pa.Array:
    """``req_`` + 16 hex digits of a bijective mix of the row number: unique and stable."""
    key = mix64(np.array([seed], np.uint64))[0]
    with np.errstate(over="ignore"):
        x = mix64(np.arange(first, first + n, dtype=np.uint64) ^ key)
    raw = x.astype(">u8").view(np.uint8).reshape(n, 8)
    width = 4 + 16
    buf = np.empty((n, width), np.uint8)
    buf[:, :4] = _PREFIX
    buf[:, 4:] = _PAIRS[raw].reshape(n, 16)
    offsets = (np.arange(n + 1, dtype=np.int32) * width)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(buf.tobytes())])


def _masked(values: np.ndarray, mask: np.ndarray, typ: pa.DataType) -> pa.Array:
    return pa.array(values, typ, mask=mask)


#: string columns written as Parquet dictionary pages straight from small Arrow dictionaries
DICT_COLUMNS = ("account_id", "org_id", "account_type", "pathway", "payment_fp", "ip",
                "client_fp", "model", "system_prompt", "status")
_DICT = pa.dictionary(pa.int32(), pa.string())
#: the schema handed to the Parquet writer; readers get plain strings (schema v1) back because
#: the Arrow schema is not stored, only v1's key/value metadata
WRITE_SCHEMA = pa.schema(
    [pa.field(f.name, _DICT, nullable=f.nullable) if f.name in DICT_COLUMNS else f
     for f in EXCHANGE_SCHEMA])


def _codes(values: list[object]) -> tuple[np.ndarray, pa.Array]:
    """Integer code per item (-1 for None) and the distinct non-null values."""
    distinct: dict[object, int] = {}
    codes = np.empty(len(values), np.int32)
    for i, v in enumerate(values):
        codes[i] = -1 if v is None else distinct.setdefault(v, len(distinct))
    return codes, pa.array(list(distinct), pa.string())


def _dedupe(values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(code of each value, distinct values) so equal strings share one dictionary entry."""
    enc = pc.dictionary_encode(values)
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int32), enc.dictionary


def _dict(codes: np.ndarray, values: pa.Array, inv: np.ndarray | None = None, *,
          compact: bool = False) -> pa.DictionaryArray:
    """A dictionary column from integer codes (-1 = null).

    With ``inv``, ``codes`` are per distinct account and ``inv`` maps rows to them.
    ``compact`` keeps only the values this chunk uses, so a large pool does not become a large
    dictionary page in every row group. Values must be distinct (see :func:`_dedupe`): with
    duplicates Parquet falls back to plain pages, which we saw produce run-to-run different
    bytes.
    """
    if compact:
        valid = codes >= 0
        used = np.flatnonzero(np.bincount(codes[valid], minlength=len(values)))
        lut = np.full(len(values), -1, np.int32)
        lut[used] = np.arange(used.size, dtype=np.int32)
        values = values.take(pa.array(used.astype(np.int32)))
        codes = np.where(valid, lut[np.where(valid, codes, 0)], -1)
    if inv is not None:
        codes = codes[inv]
    mask = codes < 0
    idx = pa.array(np.where(mask, 0, codes).astype(np.int32), pa.int32(),
                   mask=mask if mask.any() else None)
    return pa.DictionaryArray.from_arrays(idx, values)


class WorldWriter:
    """Writes exchanges.parquet and exchange_labels.parquet chunk by chunk."""

    def __init__(self, out: Path, ctx: Ctx, *, compression: str = "zstd") -> None:
        self.ctx = ctx
        self.rows = 0
        self.attacks = 0
        self.ex = pq.ParquetWriter(
            out / "exchanges.parquet", WRITE_SCHEMA, compression=compression,
            store_schema=False, write_statistics=["ts", "account_id", "model"],
            # random ids and mostly-unique prompts gain nothing from a dictionary attempt
            use_dictionary=[f.name for f in EXCHANGE_SCHEMA
                            if f.name not in ("request_id", "prompt", "ts")],
            dictionary_pagesize_limit=64 << 20)
        self.lab = pq.ParquetWriter(out / "exchange_labels.parquet", EXCHANGE_LABELS_SCHEMA,
                                    compression=compression)
        f = ctx.accounts.frozen
        self.account_id = f["account_id"]
        #: per-account code into a small table of distinct values, per string attribute
        self.acct_codes = {
            name: _codes(f[key].to_pylist()) for name, key in (
                ("org_id", "org_id"), ("account_type", "account_type"), ("pathway", "pathway"),
                ("payment_fp", "payment_fp"), ("client_fp", "client"))}
        self.created = f["created_at"]
        self.verified = f["verified"]
        ips, self.asns = ctx.net.arrays()
        self.asn_np = self.asns.to_numpy()
        # Parquet only writes a dictionary straight through when its values are distinct
        # (otherwise it falls back to plain pages), so dedupe the pools once
        self.ip_code, self.ips = _dedupe(ips)
        self.models = pa.array([m for m, _, _ in MODELS], pa.string())
        self.statuses = pa.array(STATUSES, pa.string())
        self.text = ctx.pool.arrow
        assert self.text is not None
        self.sys_base = ctx.pool.sys_base
        self.sys_code, self.sys_values = _dedupe(
            self.text.slice(self.sys_base[0], self.sys_base[1]))

    def _prompts(self, r: Rows) -> pa.Array:
        """Join the prompt parts only where a row has more than one, then gather every row's
        text with a single ``take`` over the pool plus the joined strings."""
        assert self.text is not None
        idx = r["p1"].astype(np.int32)
        multi = np.flatnonzero((r["p0"] | r["p2"] | r["p3"] | r["p4"]) != 0)
        if multi.size == 0:
            return self.text.take(pa.array(idx))
        parts = [self.text.take(pa.array(r[p][multi], pa.int32())) for p in PARTS]
        joined = pc.binary_join_element_wise(*parts, "")
        idx[multi] = len(self.text) + np.arange(multi.size, dtype=np.int32)
        return pa.concat_arrays([self.text, joined]).take(pa.array(idx))

    def write(self, r: Rows) -> None:
        n = r["ts"].size
        if n == 0:
            return
        acct = r["acct"]
        used, inv = np.unique(acct, return_inverse=True)
        account_id = pa.DictionaryArray.from_arrays(
            pa.array(inv.astype(np.int32)), self.account_id.take(pa.array(used)))
        per_acct = {name: _dict(codes[used], values, inv, compact=True)
                    for name, (codes, values) in self.acct_codes.items()}
        sys_idx = r["sys"]
        sys_codes = np.where(sys_idx < 0, -1, self.sys_code[np.maximum(sys_idx - self.sys_base[0],
                                                                        0)]).astype(np.int32)
        cols: dict[str, pa.Array] = {
            "request_id": request_ids(self.ctx.seed, self.rows, n),
            "ts": pa.array(r["ts"], pa.int64()).view(UTC_US),
            "account_id": account_id,
            **per_acct,
            "account_created_at": pa.array(self.created[acct], pa.int64()).view(UTC_US),
            "verified": pa.array(self.verified[acct], pa.bool_()),
            "ip": _dict(self.ip_code[r["ip"]], self.ips, compact=True),
            "asn": pa.array(self.asn_np[r["ip"]], pa.int32()),
            "model": _dict(r["model"].astype(np.int32), self.models, compact=True),
            "system_prompt": _dict(sys_codes, self.sys_values, compact=True),
            "prompt": self._prompts(r),
            "n_messages": pa.array(r["n_messages"], pa.int32()),
            "n_tools": pa.array(r["n_tools"], pa.int32()),
            "has_image": pa.array(r["has_image"], pa.bool_()),
            "input_tokens": pa.array(r["input_tokens"], pa.int32()),
            "output_tokens": pa.array(r["output_tokens"], pa.int32()),
            "reasoning_tokens": pa.array(r["reasoning_tokens"], pa.int32()),
            "max_tokens": _masked(r["max_tokens"], r["max_tokens"] < 0, pa.int32()),
            "temperature": _masked(r["temperature"], np.isnan(r["temperature"]), pa.float32()),
            "status": _dict(r["status"].astype(np.int32), self.statuses, compact=True),
        }
        table = pa.Table.from_arrays([cols[f.name] for f in WRITE_SCHEMA], schema=WRITE_SCHEMA)
        self.ex.write_table(table, row_group_size=max(n, 1))
        labels = pa.Table.from_arrays(
            [cols["request_id"], pa.array(r["is_attack"], pa.bool_())],
            schema=EXCHANGE_LABELS_SCHEMA)
        self.lab.write_table(labels, row_group_size=max(n, 1))
        self.rows += n
        self.attacks += int(r["is_attack"].sum())

    def close(self) -> None:
        meta = EXCHANGE_SCHEMA.metadata or {}
        self.ex.add_key_value_metadata({k.decode(): v.decode() for k, v in meta.items()})
        self.ex.close()
        self.lab.close()

    def __enter__(self) -> WorldWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
