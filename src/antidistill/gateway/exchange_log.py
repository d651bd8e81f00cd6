"""Writes every exchange the gateway handles, once, as schema-v1 Parquet that ``detect`` reads.

Rows are buffered and written one file per flush (``day=YYYY-MM-DD/part-<ts>-<uuid>.parquet``),
every ``flush_s`` seconds, when ``flush_rows`` accumulate, and on shutdown. A file is written
under a dot-name and renamed into place, so readers never see half a file; if a write fails the
rows go back into the buffer (no loss), and a row is only ever appended once by the caller.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from antidistill.schema import COLUMN_NAMES, EXCHANGE_SCHEMA


class ExchangeLogger:
    def __init__(self, log_dir: str | Path | None, *, flush_rows: int = 5000):
        self.log_dir = Path(log_dir) if log_dir else None
        self.flush_rows = flush_rows
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.written_rows = 0
        self.files: list[Path] = []

    def append(self, row: dict[str, Any]) -> bool:
        """Buffer one row; True when the buffer is due for a flush."""
        with self._lock:
            self._rows.append(row)
            return len(self._rows) >= self.flush_rows

    def pending(self) -> int:
        return len(self._rows)

    def flush(self) -> int:
        """Write buffered rows (one file per day present); returns rows written."""
        if self.log_dir is None:
            with self._lock:
                n = len(self._rows)
                self._rows = []
            return n
        with self._write_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                by_day: dict[str, list[dict[str, Any]]] = {}
                for r in rows:
                    by_day.setdefault(r["ts"].strftime("%Y-%m-%d"), []).append(r)
                for day, day_rows in by_day.items():
                    self._write(day, day_rows)
            except Exception:
                with self._lock:
                    self._rows[:0] = rows  # keep them for the next attempt
                raise
            self.written_rows += len(rows)
            return len(rows)

    def _write(self, day: str, rows: list[dict[str, Any]]) -> None:
        assert self.log_dir is not None
        cols = {name: [r.get(name) for r in rows] for name in COLUMN_NAMES}
        table = pa.Table.from_pydict(cols, schema=EXCHANGE_SCHEMA)
        d = self.log_dir / f"day={day}"
        d.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
        tmp = d / f".{name}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, d / name)
        self.files.append(d / name)


def utcnow() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)
