"""Append-only audit log (JSON Lines): every decision and every manual action, with evidence.

One JSON object per line: ``ts``, ``event`` (decision | manual_apply | manual_lift),
``account_id``, ``request_id``, ``rule``, ``action`` (+ ``params``), ``enforced``, ``dry_run``,
``evidence``, ``scores``, ``tier``, ``who`` (operator, for manual actions) and, when a
countermeasure keyed to the account was applied, ``canary_key_id`` / ``watermark_key_id``.
JSONL because it is greppable, streams to any log shipper, and appending never rewrites history.
Writes are buffered and flushed at least every ``flush_s`` seconds and on close.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from antidistill.errors import ConfigError

_ISO_SECOND: list[tuple[int, str]] = [(-1, "")]  # last second formatted (hot path cache)


def iso(ts: float) -> str:
    """``2026-11-22T08:00:00.123Z``; the date-time part is formatted once per second."""
    frac, whole = math.modf(ts)
    us = round(frac * 1e6)  # what datetime.fromtimestamp does (half-even to the microsecond)
    sec = int(whole)
    if us >= 1_000_000:
        sec, us = sec + 1, us - 1_000_000
    elif us < 0:
        sec, us = sec - 1, us + 1_000_000
    cached_sec, prefix = _ISO_SECOND[0]
    if sec != cached_sec:
        prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _ISO_SECOND[0] = (sec, prefix)
    return f"{prefix}.{us // 1000:03d}Z"


class AuditLog:
    """Thread-safe appender; ``path=None`` keeps records in memory only (tests, dry runs)."""

    def __init__(self, path: str | Path | None, *, flush_s: float = 1.0, keep: int = 1000):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._flush_s = flush_s
        self._last_flush = time.monotonic()
        self.recent: list[dict[str, Any]] = []  # last ``keep`` records, for the admin API
        self._keep = keep
        self._fh = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8", buffering=1 << 16)

    def write(self, record: dict[str, Any]) -> None:
        if "ts" not in record:
            record["ts"] = iso(time.time())
        line = orjson.dumps(record, default=str).decode()
        with self._lock:
            self.recent.append(record)
            if len(self.recent) > 2 * self._keep:
                del self.recent[: len(self.recent) - self._keep]
            if self._fh is not None:
                self._fh.write(line + "\n")
                now = time.monotonic()
                if now - self._last_flush >= self._flush_s:
                    self._fh.flush()
                    self._last_flush = now

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def read_audit(
    path: str | Path,
    *,
    account: str | None = None,
    event: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Records of an audit file, oldest first (the last ``limit`` when given)."""
    out = list(_iter(Path(path), account, event))
    return out[-limit:] if limit else out


def _iter(path: Path, account: str | None, event: str | None) -> Iterator[dict[str, Any]]:
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read audit log: {exc.strerror}", where=str(path)) from exc
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                if not line.endswith("\n"):
                    break  # a half-written last line while the gateway is appending
                raise ConfigError(f"not JSON: {exc}", where=f"{path}:{n}") from exc
            if account is not None and rec.get("account_id") != account:
                continue
            if event is not None and rec.get("event") != event:
                continue
            yield rec
