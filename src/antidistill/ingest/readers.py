"""Stream records out of source files, one at a time, in bounded memory.

Readers only find record boundaries and parse them (JSON line, CSV row, Parquet row, OTLP span);
they know nothing of the schema. A record that cannot even be parsed still comes out, carrying
its error, so the pipeline can quarantine it with its position and raw text. A file that cannot
be opened or read at all raises :class:`InputError` naming the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from antidistill.errors import InputError

try:  # 3-4x faster JSON parsing; the stdlib parser remains the reference (see parse_json_line)
    import orjson

    _fast_loads: Any = orjson.loads
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _fast_loads = None

FORMATS = ("parquet", "jsonl", "csv", "litellm", "otel")

#: A line/record longer than this is quarantined as ``record_too_large`` without parsing it.
MAX_RECORD_BYTES = 32 * 1024 * 1024
#: Raw text kept in quarantine for records over MAX_RECORD_BYTES (flagged raw_truncated).
RAW_KEEP_BYTES = 1024 * 1024
#: A whole-document (not one-per-line) OTLP/JSON file is loaded at once only up to this size.
MAX_OTLP_DOCUMENT_BYTES = 256 * 1024 * 1024

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"


class Record:
    """One source record: position, parsed object or parse error, and its raw text."""

    __slots__ = ("_raw", "_raw_bytes", "error", "item", "line", "obj", "raw_truncated",
                 "repaired")

    def __init__(self, line: int, obj: Any, raw: str | None, *, item: int | None = None,
                 error: str | None = None, repaired: bool = False,
                 raw_truncated: bool = False, raw_bytes: bytes | None = None) -> None:
        self._raw_bytes = raw_bytes
        self.line = line
        self.item = item
        self.obj = obj
        self._raw = raw
        self.error = error
        self.repaired = repaired
        self.raw_truncated = raw_truncated

    @property
    def raw(self) -> str:
        """The record as text (JSON line verbatim; CSV/Parquet row rendered as a JSON object)."""
        if self._raw is None:
            if self._raw_bytes is not None:  # valid UTF-8: orjson accepted it
                self._raw = self._raw_bytes.decode("utf-8")
            else:
                self._raw = _json_text(self.obj)
        return self._raw

    @property
    def nbytes(self) -> int:
        """Approximate size of the record's raw text (for memory budgets)."""
        if self._raw_bytes is not None:
            return len(self._raw_bytes)
        return len(self._raw) if self._raw is not None else 256

    @property
    def position(self) -> str:
        return f"{self.line}" if self.item is None else f"{self.line}.{self.item}"


def _json_text(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False, default=str)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # lone surrogates outside the escape range: keep them as \uXXXX
        return json.dumps(obj, ensure_ascii=True, default=str)


# --- format detection ----------------------------------------------------------------------

def _head(path: Path, n: int = 1 << 16) -> bytes:
    with path.open("rb") as f:
        head = f.read(n)
    if head.startswith(_GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as g:
                head = g.read(n)
        except (OSError, EOFError) as exc:
            raise InputError(f"unreadable gzip file: {exc}", where=str(path)) from None
    return head


def sniff_json_object(obj: Any) -> str:
    """jsonl, litellm or otel, from the first parsed JSON object of a file."""
    if isinstance(obj, dict):
        if "resourceSpans" in obj:
            return "otel"
        inner = obj.get("standard_logging_object")
        payload = inner if isinstance(inner, dict) else obj
        keys = set(payload)
        if {"startTime", "call_type"} <= keys or {"startTime", "model_parameters"} <= keys:
            return "litellm"
    return "jsonl"


def detect_format(path: Path) -> str:
    """Format of ``path`` from its extension and, for JSON, its first record."""
    name = path.name.lower()
    for ext in (".gz", ".gzip"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    head = _head(path)
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if not text.startswith(("{", "[")):
        if name.endswith((".jsonl", ".ndjson", ".json")):
            return "jsonl"
        return "csv" if text else "jsonl"
    first = text.split("\n", 1)[0]
    try:
        return sniff_json_object(json.loads(first))
    except ValueError:
        return "otel" if '"resourceSpans"' in text else "jsonl"


# --- sources -------------------------------------------------------------------------------

class Source:
    """A file being read: counts skipped non-records and reports byte progress."""

    fmt = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        try:
            self.size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"cannot read file: {exc.strerror or exc}", where=str(path)) from None
        self.skipped = 0
        self._pos: IO[bytes] | None = None

    @property
    def bytes_read(self) -> int:
        try:
            return self._pos.tell() if self._pos is not None and not self._pos.closed else 0
        except (OSError, ValueError):
            return 0

    #: Top-level field names known before reading rows (CSV header, Parquet schema), else None.
    columns: set[str] | None = None

    def records(self) -> Iterator[Record]:
        raise NotImplementedError

    def _open_binary(self) -> IO[bytes]:
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot open file: {exc.strerror or exc}", where=self.name) from None
        self._pos = raw
        if raw.read(2) == _GZIP_MAGIC:
            raw.seek(0)
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        raw.seek(0)
        return raw


class JsonLinesSource(Source):
    """One JSON object per line (JSONL, optionally gzip); also the LiteLLM callback log."""

    fmt = "jsonl"

    def lines(self) -> Iterator[tuple[int, bytes, bool]]:
        """(line number, bytes without newline, too_large) with bounded memory per line."""
        f = self._open_binary()
        try:
            lineno = 0
            while True:
                try:
                    chunk = f.readline(MAX_RECORD_BYTES + 1)
                except (OSError, EOFError) as exc:
                    raise InputError(f"unreadable after line {lineno}: {exc}",
                                     where=self.name) from None
                if not chunk:
                    return
                lineno += 1
                if len(chunk) > MAX_RECORD_BYTES and not chunk.endswith(b"\n"):
                    rest = chunk
                    while rest and not rest.endswith(b"\n"):  # discard the rest of the line
                        rest = f.readline(1 << 20)
                    yield lineno, chunk[:RAW_KEEP_BYTES], True
                    continue
                yield lineno, chunk.rstrip(b"\r\n"), False
        finally:
            f.close()
            if self._pos is not None:
                self._pos.close()

    def records(self) -> Iterator[Record]:
        for lineno, data, too_large in self.lines():
            if too_large:
                yield Record(lineno, None, _decode_raw(data), error="record_too_large: line "
                             f"exceeds {MAX_RECORD_BYTES} bytes", raw_truncated=True)
                continue
            if not data.strip():
                self.skipped += 1
                continue
            yield parse_json_line(lineno, data)


def _decode_raw(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


def parse_json_line(lineno: int, data: bytes) -> Record:
    """Decode (repairing invalid UTF-8 with U+FFFD, noted) and parse one JSON line.

    orjson parses well-formed lines; anything it refuses (invalid UTF-8, NaN, lone surrogate
    escapes, huge integers) goes through the stdlib path, so results never depend on orjson.
    """
    if _fast_loads is not None:
        try:
            obj = _fast_loads(data)
        except ValueError:
            pass
        else:
            if isinstance(obj, dict):
                return Record(lineno, obj, None, raw_bytes=data)
    repaired = False
    try:
        text = data.decode("utf-8")
        raw = text
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        raw = _decode_raw(data)
        repaired = True
    try:
        obj = json.loads(text)
    except ValueError as exc:
        return Record(lineno, None, raw, error=f"invalid_json: {exc}", repaired=repaired)
    if not isinstance(obj, dict):
        return Record(lineno, None, raw, error=f"not_an_object: JSON {type(obj).__name__}",
                      repaired=repaired)
    return Record(lineno, obj, raw, repaired=repaired)


class LiteLLMSource(JsonLinesSource):
    fmt = "litellm"


class CsvSource(Source):
    """CSV/TSV with a header row; empty cells are nulls. Undecodable bytes are repaired later."""

    fmt = "csv"

    def __init__(self, path: Path, delimiter: str | None = None) -> None:
        super().__init__(path)
        self.delimiter = delimiter
        self._f: IO[bytes] | None = None
        self._text: io.TextIOWrapper | None = None
        self._reader: Any = None
        self._open()

    def _open(self) -> None:
        f = self._open_binary()
        text = io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline="")
        delim = self.delimiter
        if delim is None:
            if self.path.name.lower().removesuffix(".gz").endswith(".tsv"):
                delim = "\t"
            else:
                sample = _head(self.path, 1 << 15).decode("utf-8", "replace")
                try:
                    delim = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
                except csv.Error:
                    delim = ","
        csv.field_size_limit(MAX_RECORD_BYTES)
        reader = csv.reader(text, delimiter=delim)
        try:
            header = next(reader)
        except StopIteration:
            header = []
        except (csv.Error, OSError, EOFError) as exc:
            raise InputError(f"unreadable CSV header: {exc}", where=self.name) from None
        self.header = [h.strip() for h in header]
        if len(set(self.header)) != len(self.header):
            dup = next(h for h in self.header if self.header.count(h) > 1)
            raise InputError(f"duplicate column {dup!r} in CSV header", where=self.name)
        self.columns = set(self.header)
        self._text, self._reader = text, reader

    def records(self) -> Iterator[Record]:
        reader, header, width = self._reader, self.header, len(self.header)
        try:
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise InputError(f"unreadable CSV: {exc}",
                                     where=f"{self.name}:{reader.line_num}") from None
                except (OSError, EOFError) as exc:
                    raise InputError(f"unreadable: {exc}", where=self.name) from None
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    self.skipped += 1
                    continue
                if len(row) != width:
                    yield Record(line, None, _json_text(row),
                                 error=f"wrong_field_count: {len(row)} fields, header has {width}")
                    continue
                yield Record(line, {h: (v if v != "" else None) for h, v in zip(header, row,
                                                                             strict=True)}, None)
        finally:
            if self._text is not None:
                self._text.close()


class ParquetSource(Source):
    """Parquet read in record batches; nested columns arrive as dicts/lists for JSON paths."""

    fmt = "parquet"

    def __init__(self, path: Path, batch_size: int = 65_536) -> None:
        super().__init__(path)
        import pyarrow.parquet as pq

        try:
            # pre_buffer (pyarrow's default) keeps every column chunk read so far until the
            # file is done: a 1.4 GB log grew the process by ~1 GB while streaming
            self._pf = pq.ParquetFile(path, pre_buffer=False)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise InputError(f"unreadable Parquet file: {exc}", where=self.name) from None
        self.arrow_schema = self._pf.schema_arrow
        self.columns = set(self.arrow_schema.names)
        self.batch_size = batch_size
        self._rows_done = 0

    @property
    def bytes_read(self) -> int:
        total = self._pf.metadata.num_rows or 1
        return int(self.size * self._rows_done / total)

    def batches(self) -> Iterator[Any]:
        """Record batches (nanosecond timestamps cut to microseconds, as schema v1 stores)."""
        import pyarrow as pa

        done = 0
        try:
            for batch in self._pf.iter_batches(batch_size=self.batch_size):
                cols = []
                for col in batch.columns:
                    if pa.types.is_timestamp(col.type) and col.type.unit == "ns":
                        col = col.cast(pa.timestamp("us", col.type.tz), safe=False)
                    cols.append(col)
                yield pa.RecordBatch.from_arrays(cols, names=batch.schema.names)
                done += batch.num_rows
                self._rows_done = done
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"unreadable Parquet data after row {done}: {exc}",
                             where=self.name) from None

    def records(self) -> Iterator[Record]:
        line = 0
        for batch in self.batches():
            for obj in batch.to_pylist():
                line += 1
                yield Record(line, obj, None)


class OtlpSource(JsonLinesSource):
    """OTLP/JSON trace exports: one ExportTraceServiceRequest per line, or one whole document.

    Yields one record per span (position ``line.span``), flattened for extraction: attribute
    values decoded, with resource attributes under ``resource`` and the span under ``span``.
    """

    fmt = "otel"

    def records(self) -> Iterator[Record]:
        if not self._first_line_parses():
            doc = self._whole_document()
            if doc is not None:
                yield from _spans(1, doc.obj, repaired=doc.repaired)
                return
        for rec in super().records():
            if rec.error:
                yield rec
            else:
                yield from _spans(rec.line, rec.obj, repaired=rec.repaired)

    def _first_line_parses(self) -> bool:
        for _, data, too_large in self.lines():
            if too_large:
                return True
            if data.strip():
                try:
                    json.loads(data)
                except ValueError:
                    return False
                return True
        return True

    def _whole_document(self) -> Record | None:
        """The file parsed as one (pretty-printed) JSON document, or None if it is not one."""
        if self.size > MAX_OTLP_DOCUMENT_BYTES:
            raise InputError("first line is not JSON and the file is over "
                             f"{MAX_OTLP_DOCUMENT_BYTES >> 20} MiB: export one request per line",
                             where=self.name)
        f = self._open_binary()
        try:
            data = f.read()
        except (OSError, EOFError) as exc:
            raise InputError(f"unreadable: {exc}", where=self.name) from None
        finally:
            f.close()
            if self._pos is not None:
                self._pos.close()
        rec = parse_json_line(1, data)
        return None if rec.error else rec


def any_value(v: Any) -> Any:
    """Decode an OTLP/JSON AnyValue ({"stringValue": ...}, {"intValue": "3"}, arrays, kvlists)."""
    if not isinstance(v, dict):
        return v
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return v["intValue"]
    if "doubleValue" in v:
        return v["doubleValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "arrayValue" in v:
        return [any_value(x) for x in (v["arrayValue"] or {}).get("values", []) or []]
    if "kvlistValue" in v:
        return attributes((v["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def attributes(kvs: Any) -> dict[str, Any]:
    """OTLP attribute list [{"key": k, "value": AnyValue}] as a plain dict."""
    out: dict[str, Any] = {}
    if isinstance(kvs, list):
        for kv in kvs:
            if isinstance(kv, dict) and isinstance(kv.get("key"), str):
                out[kv["key"]] = any_value(kv.get("value"))
    return out


def _spans(lineno: int, doc: dict[str, Any], *, repaired: bool) -> Iterator[Record]:
    item = 0
    rs_list = doc.get("resourceSpans")
    if not isinstance(rs_list, list):
        yield Record(lineno, None, _json_text(doc), error="not_otlp: no resourceSpans list",
                     repaired=repaired)
        return
    for rs in rs_list:
        if not isinstance(rs, dict):
            continue
        resource = attributes((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            if not isinstance(ss, dict):
                continue
            for span in ss.get("spans") or []:
                item += 1
                raw = _json_text({"resource": (rs.get("resource") or {}), "span": span})
                if not isinstance(span, dict):
                    yield Record(lineno, None, raw, item=item, error="not_an_object: span",
                                 repaired=repaired)
                    continue
                attrs = attributes(span.get("attributes"))
                flat: dict[str, Any] = {**{k: v for k, v in resource.items()}, **attrs}
                flat["span"] = span
                flat["resource"] = resource
                flat["attributes"] = attrs
                flat["events"] = [
                    {"name": e.get("name"), "attributes": attributes(e.get("attributes")),
                     "body": any_value(e.get("body"))}
                    for e in span.get("events") or [] if isinstance(e, dict)
                ]
                yield Record(lineno, flat, raw, item=item, repaired=repaired)


def open_source(path: Path, fmt: str, *, csv_delimiter: str | None = None,
                batch_size: int = 65_536) -> Source:
    """The reader for ``path`` in format ``fmt`` (already resolved from ``auto``)."""
    if fmt == "parquet":
        return ParquetSource(path, batch_size=batch_size)
    if fmt == "csv":
        return CsvSource(path, delimiter=csv_delimiter)
    if fmt == "otel":
        return OtlpSource(path)
    if fmt == "litellm":
        return LiteLLMSource(path)
    if fmt == "jsonl":
        return JsonLinesSource(path)
    raise InputError(f"unknown format {fmt!r} (expected auto or one of {', '.join(FORMATS)})",
                     where=str(path))
