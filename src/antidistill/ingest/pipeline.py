"""``ingest``: many sources in, one normalised day-partitioned schema-v1 dataset out.

Accounting is the point: every record read is either accepted or quarantined (read = accepted +
quarantined, checked before anything is published), and the output directory appears only when
the run is complete — it is built in a temporary sibling directory, ``_manifest.json`` is
written last, and the directory is renamed into place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from antidistill import schema
from antidistill.errors import InputError, SchemaError
from antidistill.ingest import fastpath
from antidistill.ingest.dedupe import Deduper
from antidistill.ingest.extract import EXTRACTORS
from antidistill.ingest.mapping import Mapping, load_mapping
from antidistill.ingest.normalize import Flags, Normalizer, RowProblem, generated_request_id
from antidistill.ingest.readers import (
    FORMATS,
    ParquetSource,
    Record,
    Source,
    detect_format,
    open_source,
)
from antidistill.ingest.writer import DayPartitionedWriter, QuarantineWriter

MANIFEST = "_manifest.json"
DUPLICATE = "duplicate_request_id"
#: Check schema-v1-shaped Parquet/JSONL column-wise (fastpath); the output is the same as the
#: row path's by construction, and tests switch this off to prove it.
COLUMNAR = True
#: A chunk is also cut when its records' raw text passes this size (bounds memory on huge rows).
CHUNK_BYTES = 128 << 20
#: Records inspected before deciding that a required field is absent from a whole source.
REQUIRED_PROBE = 1000

_TYPES = [typ for _, typ, _, _ in schema.COLUMNS]
_RID = schema.COLUMN_NAMES.index("request_id")


@dataclass
class SourceReport:
    """Counts for one source file (read = accepted + quarantined; skipped are non-records)."""

    path: str
    format: str
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    skipped: int = 0


@dataclass
class IngestReport:
    """What one ingest run did; ``read == accepted + quarantined`` always holds."""

    out: str
    schema_version: str = schema.SCHEMA_VERSION
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    generated_ids: int = 0
    truncated: int = 0
    utf8_repaired: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    sources: list[SourceReport] = field(default_factory=list)
    days: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    quarantine_files: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.read == self.accepted + self.quarantined and all(
            s.read == s.accepted + s.quarantined for s in self.sources)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "exchange", **asdict(self)}


def resolve_sources(sources: Iterable[str | Path]) -> list[Path]:
    """Files named, with directories expanded to their (non-hidden) files in sorted order."""
    out: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and not any(
                part.startswith((".", "_")) for part in f.relative_to(p).parts))
            if not found:
                raise InputError("directory contains no files", where=str(p))
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError("no such file or directory", where=str(p))
    if not out:
        raise InputError("no sources given")
    return out


class _Run:
    """State of one ingest run: writers, deduper, counters."""

    def __init__(self, tmp: Path, mapping: Mapping | None, batch_size: int) -> None:
        self.mapping = mapping
        self.batch_size = batch_size
        self.norm = Normalizer(timestamps=dict(mapping.timestamps) if mapping else {})
        self.writer = DayPartitionedWriter(tmp)
        self.quarantine = QuarantineWriter(tmp)
        self.dedupe = Deduper()
        self.reasons: Counter[str] = Counter()
        self.report = IngestReport(out="")
        self._skipped_here = 0

    def reject(self, src: SourceReport, rec: Record, reason: str, fieldname: str | None,
               detail: str) -> None:
        self.quarantine.add(source=src.path, line=rec.line, item=rec.item, reason=reason,
                            field=fieldname, detail=detail, raw=rec.raw,
                            raw_truncated=rec.raw_truncated)
        self.reasons[reason] += 1
        src.quarantined += 1

    def run_source(self, source: Source, src: SourceReport, progress: Progress | None) -> None:
        self._check_columns(source)
        self._extract = EXTRACTORS[source.fmt]
        self._base = os.path.basename(src.path)
        self._seen_required: set[str] = set()
        self._probed = 0
        task = progress.add_task(Path(src.path).name, total=source.size) if progress else None
        if (COLUMNAR and isinstance(source, ParquetSource) and self.mapping is None
                and fastpath.eligible(source.arrow_schema)):
            self._run_batches(source, src, progress, task)
        elif COLUMNAR and source.fmt == "jsonl" and self.mapping is None:
            self._run_json_chunks(source, src, progress, task)
        else:
            self._run_records(source, src, progress, task)
        if 0 < self._probed < REQUIRED_PROBE:
            self._check_required(src, self._seen_required, self._probed)
        src.skipped = source.skipped + self._skipped_here
        self._skipped_here = 0
        if progress is not None and task is not None:
            progress.update(task, completed=source.size)

    def _run_records(self, source: Source, src: SourceReport, progress: Progress | None,
                     task: TaskID | None) -> None:
        rows: list[list[Any]] = []
        recs: list[Record] = []
        flags_list: list[Flags] = []
        size = 0
        for rec in source.records():
            got = self._normalise(src, rec)
            if got is None:
                continue
            rows.append(got[0])
            recs.append(rec)
            flags_list.append(got[1])
            size += rec.nbytes
            if len(rows) >= self.batch_size or size > CHUNK_BYTES:
                self._write(src, self._values_batch(rows), recs.__getitem__, flags_list)
                rows, recs, flags_list, size = [], [], [], 0
                if progress is not None and task is not None:
                    progress.update(task, completed=source.bytes_read)
        if rows:
            self._write(src, self._values_batch(rows), recs.__getitem__, flags_list)

    def _run_batches(self, source: ParquetSource, src: SourceReport, progress: Progress | None,
                     task: TaskID | None) -> None:
        """Columnar path for Parquet: canonical rows are taken as they are (fastpath)."""
        first = 0
        for batch in source.batches():
            split = fastpath.split(batch)
            ok = split[1] if split is not None else np.zeros(batch.num_rows, dtype=bool)
            slow_idx = np.flatnonzero(~ok)
            slow_objs = dict(zip(slow_idx.tolist(), batch.take(pa.array(slow_idx)).to_pylist(),
                                 strict=True)) if len(slow_idx) else {}
            self._process_chunk(
                src, split, ok,
                lambda j, f=first, objs=slow_objs: Record(f + j + 1, objs[j], None),  # type: ignore[misc]
                _lazy_records(batch, first))
            first += batch.num_rows
            if progress is not None and task is not None:
                progress.update(task, completed=source.bytes_read)

    def _run_json_chunks(self, source: Source, src: SourceReport, progress: Progress | None,
                         task: TaskID | None) -> None:
        """Columnar path for generic JSON lines: parse a chunk, build columns, fast-check."""
        chunk: list[Record] = []
        size = 0
        for rec in source.records():
            chunk.append(rec)
            size += rec.nbytes
            if len(chunk) >= self.batch_size or size > CHUNK_BYTES:
                self._json_chunk(src, chunk)
                chunk, size = [], 0
                if progress is not None and task is not None:
                    progress.update(task, completed=source.bytes_read)
        if chunk:
            self._json_chunk(src, chunk)

    def _json_chunk(self, src: SourceReport, chunk: list[Record]) -> None:
        split = fastpath.from_objects([r.obj if r.error is None and not r.repaired else None
                                       for r in chunk])
        ok = split[1] if split is not None else np.zeros(len(chunk), dtype=bool)
        self._process_chunk(src, split, ok, chunk.__getitem__, chunk.__getitem__)

    def _process_chunk(self, src: SourceReport, split: tuple[pa.RecordBatch, np.ndarray] | None,
                       ok: np.ndarray, slow_record: Callable[[int], Record],
                       any_record: Callable[[int], Record]) -> None:
        """Rows with ``ok`` come from ``split``'s batch as they are; the others go through the
        row path. Rows are then merged back in source order, so dedupe keeps the first."""
        src.read += int(ok.sum())
        if split is not None and ok.any():
            self._probe_fast()
        if split is not None and ok.all():
            self._write(src, split[0], any_record, [])
            return
        values: list[list[Any]] = []
        kept: list[int] = []
        flags_list: list[Flags | None] = []
        slow: dict[int, Record] = {}
        for j in np.flatnonzero(~ok).tolist():
            rec = slow_record(j)
            got = self._normalise(src, rec)
            if got is not None:
                values.append(got[0])
                kept.append(j)
                flags_list.append(got[1])
                slow[j] = rec
        parts: list[pa.RecordBatch] = []
        order: list[int] = []
        flags_all: list[Flags | None] = []
        if split is not None and ok.any():
            parts.append(split[0].filter(pa.array(ok)))
            order.extend(np.flatnonzero(ok).tolist())
            flags_all.extend([None] * len(order))
        if values:
            parts.append(self._values_batch(values))
            order.extend(kept)
            flags_all.extend(flags_list)
        if not parts:
            return
        perm = np.argsort(np.asarray(order), kind="stable").tolist()
        merged = pa.Table.from_batches(parts, schema=schema.EXCHANGE_SCHEMA).take(
            pa.array(perm, pa.int64())).combine_chunks()
        pos = [order[k] for k in perm]
        self._write(src, merged.to_batches()[0],
                    lambda i: slow.get(pos[i]) or any_record(pos[i]),
                    [flags_all[k] for k in perm])

    def _probe_fast(self) -> None:
        """Fast rows carry every required value, so they satisfy the required-field probe."""
        self._seen_required.update(schema.REQUIRED)
        self._probed = max(self._probed, 1)

    def _normalise(self, src: SourceReport, rec: Record) -> tuple[list[Any], Flags] | None:
        """Schema-v1 values of one record, or None when it was quarantined or skipped."""
        src.read += 1
        if rec.error is not None:
            reason, _, detail = rec.error.partition(": ")
            self.reject(src, rec, reason, None, detail)
            return None
        try:
            fields = self._extract(rec.obj)
            if fields is None:
                src.read -= 1
                self._skipped_here += 1
                return None
            if self.mapping is not None:
                fields = self.mapping.apply(rec.obj, fields)
            if self._probed < REQUIRED_PROBE:
                self._probed += 1
                self._seen_required.update(
                    k for k in schema.REQUIRED if fields.get(k) is not None)
                if self._probed == REQUIRED_PROBE:
                    self._check_required(src, self._seen_required, self._probed)
            flags = Flags(utf8_repaired=rec.repaired)
            values = self.norm.row(fields, flags)
        except RowProblem as p:
            self.reject(src, rec, p.reason, p.field, p.detail)
            return None
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            self.reject(src, rec, "wrong_type", None, f"unusable record shape: {exc}")
            return None
        if values[_RID] is None:
            values[_RID] = generated_request_id(self._base, rec.position,
                                                rec.raw.encode("utf-8", "surrogatepass"))
            self.report.generated_ids += 1
        return values, flags

    def _check_columns(self, source: Source) -> None:
        """CSV/Parquet know their columns up front: stop now if a required one cannot be had."""
        if source.columns is None:
            return
        names = set(source.columns)
        if self.mapping is not None:
            have = self.mapping.provides(names)
        else:
            have = {n for n in names if n in schema.COLUMN_NAMES}
            if "messages" in names:
                have.add("prompt")
        for col in schema.REQUIRED:
            if col not in have:
                raise SchemaError("required column is missing (map it with --mapping)",
                                  where=source.name, field=col)

    def _check_required(self, src: SourceReport, seen: set[str], probed: int) -> None:
        for col in schema.REQUIRED:
            if col not in seen:
                raise SchemaError(f"required field is absent from all of the first {probed} "
                                  "records (wrong --format, or map it with --mapping)",
                                  where=src.path, field=col)

    @staticmethod
    def _values_batch(rows: list[list[Any]]) -> pa.RecordBatch:
        cols = list(zip(*rows, strict=True))
        return pa.RecordBatch.from_arrays(
            [pa.array(c, type=t) for c, t in zip(cols, _TYPES, strict=True)],
            schema=schema.EXCHANGE_SCHEMA)

    def _write(self, src: SourceReport, batch: pa.RecordBatch,
               record_of: Callable[[int], Record], flags_list: Sequence[Flags | None]) -> None:
        """Dedupe (keep first), quarantine later duplicates, write the rest."""
        dup = self.dedupe.check(batch.column(_RID).to_pylist())
        if dup.any():
            ids = batch.column(_RID)
            for i in np.flatnonzero(dup).tolist():
                self.reject(src, record_of(i), DUPLICATE, "request_id",
                            f"request_id {ids[i].as_py()!r} already seen in this run")
                self.report.duplicates += 1
            batch = batch.filter(pa.array(~dup))
            flags_list = [f for f, d in zip(flags_list, dup.tolist(), strict=False) if not d]
        if batch.num_rows == 0:
            return
        self.writer.write(batch)
        src.accepted += batch.num_rows
        self.report.truncated += sum(1 for f in flags_list if f is not None and f.truncated)
        self.report.utf8_repaired += sum(1 for f in flags_list if f is not None
                                         and f.utf8_repaired)


def _lazy_records(batch: pa.RecordBatch, first: int) -> Callable[[int], Record]:
    """Record for row ``i`` of a batch, materialised only when it must be quarantined."""
    return lambda i: Record(first + i + 1, batch.slice(i, 1).to_pylist()[0], None)


def ingest(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    fmt: str = "auto",
    mapping: Mapping | str | Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    batch_size: int = 32_768,
    console: Console | None = None,
) -> IngestReport:
    """Normalise ``sources`` into ``out`` (see module docstring); returns the counts.

    Raises :class:`InputError`/:class:`SchemaError` (nothing published) for unreadable files,
    missing required columns, an invalid mapping or a non-empty ``out`` without ``overwrite``.
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (expected auto or one of {', '.join(FORMATS)})")
    if mapping is not None and not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    paths = resolve_sources(sources)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError("output exists and is not empty (pass --overwrite to replace it)",
                         where=str(out))
    formats = [detect_format(p) if fmt == "auto" else fmt for p in paths]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.ingest-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    console = console or Console(stderr=True)
    run: _Run | None = None
    try:
        run = _Run(tmp, mapping, batch_size)
        show = progress and console.is_terminal
        bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                       TransferSpeedColumn(), TimeRemainingColumn(), console=console,
                       transient=True, disable=not show)
        with bar:
            for path, f in zip(paths, formats, strict=True):
                source = open_source(path, f, batch_size=batch_size,
                                     csv_delimiter=mapping.csv_delimiter if mapping else None)
                src = SourceReport(path=str(path), format=f)
                run.report.sources.append(src)
                run.run_source(source, src, bar if show else None)
        run.writer.close()
        run.quarantine.close()
        report = _finish(run, out)
        (tmp / MANIFEST).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        _publish(tmp, out)
    except BaseException:
        if run is not None:
            with contextlib.suppress(Exception):
                run.writer.close()
            with contextlib.suppress(Exception):
                run.quarantine.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _finish(run: _Run, out: Path) -> IngestReport:
    r = run.report
    r.out = str(out)
    r.read = sum(s.read for s in r.sources)
    r.accepted = sum(s.accepted for s in r.sources)
    r.quarantined = sum(s.quarantined for s in r.sources)
    r.skipped = sum(s.skipped for s in r.sources)
    r.reasons = dict(sorted(run.reasons.items()))
    r.days = dict(sorted(run.writer.rows_per_day.items()))
    r.files = sorted(run.writer.files)
    r.quarantine_files = [run.quarantine.rel]
    if not r.balanced or r.quarantined != run.quarantine.count:
        raise RuntimeError(f"ingest accounting bug: read {r.read} != accepted {r.accepted} + "
                           f"quarantined {r.quarantined}")
    return r


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished run into place; an existing ``out`` is replaced only at the end."""
    if out.exists():
        trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
        out.rename(trash)
        tmp.rename(out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(out)


def print_report(report: IngestReport, console: Console | None = None) -> None:
    """The per-source accounting table and quarantine reasons."""
    console = console or Console()
    t = Table(title=f"ingest → {report.out} (schema v{report.schema_version})")
    for col in ("source", "format", "read", "accepted", "quarantined", "skipped"):
        t.add_column(col, justify="left" if col in ("source", "format") else "right")
    for s in report.sources:
        t.add_row(s.path, s.format, f"{s.read:,}", f"{s.accepted:,}", f"{s.quarantined:,}",
                  f"{s.skipped:,}")
    t.add_row("[bold]total[/]", "", f"[bold]{report.read:,}[/]", f"[bold]{report.accepted:,}[/]",
              f"[bold]{report.quarantined:,}[/]", f"{report.skipped:,}")
    console.print(t)
    if report.reasons:
        q = Table(title="quarantined by reason")
        q.add_column("reason")
        q.add_column("rows", justify="right")
        for reason, n in report.reasons.items():
            q.add_row(reason, f"{n:,}")
        console.print(q)
    notes = [f"{report.duplicates:,} duplicate request_ids",
             f"{report.generated_ids:,} generated request_ids",
             f"{report.truncated:,} truncated prompts",
             f"{report.utf8_repaired:,} rows with invalid UTF-8 repaired"]
    console.print("; ".join(notes))
    mark = "[green]✓[/]" if report.balanced else "[red]✗[/]"
    console.print(f"read {report.read:,} = accepted {report.accepted:,} + quarantined "
                  f"{report.quarantined:,} {mark}  ({len(report.days)} days, "
                  f"{len(report.files)} files)")
