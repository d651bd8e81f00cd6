"""Write accepted rows as a day-partitioned Parquet dataset and rejected ones to quarantine.

Memory stays bounded: rows are buffered per day only up to a row-group's worth (and a global
cap), and at most ``max_open`` Parquet writers are open at once — a day whose writer was closed
continues in a new ``part-NNNNN.parquet`` file.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from antidistill import schema

_US_PER_DAY = 86_400_000_000

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("item", pa.int32()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("field", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("raw", pa.string(), nullable=False),
        pa.field("raw_truncated", pa.bool_(), nullable=False),
    ],
    metadata={b"antidistill.schema": b"quarantine", b"antidistill.schema_version": b"1"},
)


def day_of(ts_us: int) -> str:
    """UTC calendar day of a microsecond timestamp, as YYYY-MM-DD."""
    return str(np.datetime64(ts_us // _US_PER_DAY, "D"))


class DayPartitionedWriter:
    """Appends schema-v1 batches under ``root/day=YYYY-MM-DD/part-NNNNN.parquet``."""

    def __init__(self, root: Path, *, row_group_size: int = 131_072, max_open: int = 32,
                 max_buffered_rows: int = 524_288, max_buffered_bytes: int = 256 << 20) -> None:
        self.root = root
        self.max_buffered_bytes = max_buffered_bytes
        self._buf_bytes = 0
        self.row_group_size = row_group_size
        self.max_open = max_open
        self.max_buffered_rows = max_buffered_rows
        self._buf: dict[str, list[pa.RecordBatch]] = {}
        self._buf_rows: dict[str, int] = {}
        self._open: OrderedDict[str, pq.ParquetWriter] = OrderedDict()
        self._parts: dict[str, int] = {}
        self.files: list[str] = []
        self.rows_per_day: dict[str, int] = {}

    def write(self, batch: pa.RecordBatch) -> None:
        """Split ``batch`` (schema v1) by UTC day and buffer/write each part."""
        if batch.num_rows == 0:
            return
        ts = batch.column(schema.COLUMN_NAMES.index("ts")).cast(pa.int64()).to_numpy()
        days = ts // _US_PER_DAY
        uniq, inverse = np.unique(days, return_inverse=True)
        for k, d in enumerate(uniq):
            idx = np.flatnonzero(inverse == k)
            part = batch if len(uniq) == 1 else batch.take(pa.array(idx))
            name = str(np.datetime64(int(d), "D"))
            self._buf.setdefault(name, []).append(part)
            self._buf_rows[name] = self._buf_rows.get(name, 0) + part.num_rows
            self._buf_bytes += part.nbytes
            self.rows_per_day[name] = self.rows_per_day.get(name, 0) + part.num_rows
            if self._buf_rows[name] >= self.row_group_size:
                self._flush(name)
        if (sum(self._buf_rows.values()) > self.max_buffered_rows
                or self._buf_bytes > self.max_buffered_bytes):
            for name in list(self._buf):
                self._flush(name)
            self._buf_bytes = 0

    def _flush(self, day: str) -> None:
        batches = self._buf.pop(day, [])
        self._buf_rows.pop(day, None)
        if not batches:
            return
        writer = self._open.get(day)
        if writer is None:
            if len(self._open) >= self.max_open:
                _, oldest = self._open.popitem(last=False)
                oldest.close()
            part = self._parts.get(day, 0)
            self._parts[day] = part + 1
            rel = f"day={day}/part-{part:05d}.parquet"
            (self.root / f"day={day}").mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(self.root / rel, schema.EXCHANGE_SCHEMA, compression="zstd")
            self.files.append(rel)
            self._open[day] = writer
        else:
            self._open.move_to_end(day)
        writer.write_table(pa.Table.from_batches(batches, schema=schema.EXCHANGE_SCHEMA),
                           row_group_size=self.row_group_size)

    def close(self) -> None:
        for name in list(self._buf):
            self._flush(name)
        for writer in self._open.values():
            writer.close()
        self._open.clear()


class QuarantineWriter:
    """Appends rejected records to ``root/quarantine/part-00000.parquet`` (always written, even
    when empty, so its absence means an incomplete run)."""

    def __init__(self, root: Path, *, flush_rows: int = 16_384) -> None:
        (root / "quarantine").mkdir(parents=True, exist_ok=True)
        self.rel = "quarantine/part-00000.parquet"
        self._writer = pq.ParquetWriter(root / self.rel, QUARANTINE_SCHEMA, compression="zstd")
        self._rows: list[dict[str, Any]] = []
        self._flush_rows = flush_rows
        self._bytes = 0
        self.count = 0

    def add(self, *, source: str, line: int, item: int | None, reason: str, field: str | None,
            detail: str | None, raw: str, raw_truncated: bool = False) -> None:
        self._rows.append({"source": source, "line": line, "item": item, "reason": reason,
                           "field": field, "detail": detail, "raw": raw,
                           "raw_truncated": raw_truncated})
        self.count += 1
        self._bytes += len(raw)
        if len(self._rows) >= self._flush_rows or self._bytes > 64 << 20:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=QUARANTINE_SCHEMA))
            self._rows = []
            self._bytes = 0

    def close(self) -> None:
        self.flush()
        self._writer.close()
