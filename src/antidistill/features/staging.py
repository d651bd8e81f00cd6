"""Stage an exchange log into DuckDB as a slim, text-free table the relational stages query.

One streaming pass: each chunk of the log gets its request-level signals
(:func:`antidistill.features.requests.request_features`), its prompt text is dropped, and the
rest is appended to the ``ex`` table of an on-disk DuckDB database with a memory limit, so a
16M-exchange log never has to fit in RAM. Everything downstream is SQL over ``ex`` (portable to
Spark) plus per-account / per-template aggregates in Python.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

from antidistill.errors import InputError
from antidistill.ingest import read_exchanges
from antidistill.schema import EXCHANGE_SCHEMA

#: Columns the request classifiers need (text) — dropped after classification.
TEXT_COLUMNS = ("prompt", "system_prompt")
#: Columns kept from schema v1 in the staged table.
KEEP_COLUMNS = tuple(n for n in EXCHANGE_SCHEMA.names if n not in TEXT_COLUMNS)
#: Columns added from the request-level stage.
REQUEST_COLUMNS = (
    "capability", "p_cot", "p_rubric", "p_rewrite", "template_hash", "content_hash", "family_id",
    "template_words",
)
CHUNK_ROWS = 262_144


def _chunks(batches: Iterator[pa.RecordBatch], until: datetime | None) -> Iterator[pa.Table]:
    """Regroup batches into ~CHUNK_ROWS tables (classifiers dedupe texts per chunk)."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if until is not None:
            cut = pa.scalar(until, EXCHANGE_SCHEMA.field("ts").type)
            batch = batch.filter(pc.less(batch.column("ts"), cut))
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        rows += batch.num_rows
        if rows >= CHUNK_ROWS:
            yield pa.Table.from_batches(pending)
            pending, rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _fill_request_ids(table: pa.Table, offset: int) -> pa.Table:
    rid = table.column("request_id")
    if rid.null_count == 0:
        return table
    gen = pa.array([f"row-{offset + i}" for i in range(table.num_rows)], pa.string())
    filled = pc.if_else(pc.is_null(rid), gen, rid)
    return table.set_column(table.schema.get_field_index("request_id"), "request_id", filled)


def stage(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[str | Path],
    *,
    until: datetime | None = None,
    progress: bool = False,
    timings: dict[str, float] | None = None,
    workers: int = 2,
    text_values: dict[str, int] | None = None,
) -> int:
    """Create table ``ex`` in ``con`` from the log; return the number of staged exchanges.

    ``timings`` (if given) receives the seconds spent in the request-level classifiers;
    ``workers`` chunks are classified at a time (threads); ``text_values`` (if given) receives
    the number of non-null values of each of :data:`TEXT_COLUMNS`, which ``ex`` does not keep.
    """
    from antidistill.features.requests import request_features

    con.execute(
        """
        CREATE OR REPLACE TABLE ex (
          request_id VARCHAR, ts TIMESTAMPTZ, account_id VARCHAR, org_id VARCHAR,
          account_type VARCHAR, account_created_at TIMESTAMPTZ, verified BOOLEAN,
          pathway VARCHAR, payment_fp VARCHAR, ip VARCHAR, asn INTEGER, client_fp VARCHAR,
          model VARCHAR, n_messages INTEGER, n_tools INTEGER, has_image BOOLEAN,
          input_tokens INTEGER, output_tokens INTEGER, reasoning_tokens INTEGER,
          max_tokens INTEGER, temperature FLOAT, status VARCHAR,
          capability VARCHAR, p_cot FLOAT, p_rubric FLOAT, p_rewrite FLOAT,
          template_hash UBIGINT, content_hash UBIGINT, family_id BIGINT,
          template_words INTEGER
        )
        """
    )
    total = submitted = 0
    bar = _progress(progress)
    task = bar.add_task("staging exchanges", total=None) if bar else None
    classify_s = 0.0

    def classify(chunk: pa.Table) -> tuple[pa.Table, pa.Table, float]:
        t = time.perf_counter()
        feats = request_features(chunk)
        return chunk, feats, time.perf_counter() - t

    # Arrow kernels, numpy and DuckDB release the GIL: classify up to ``workers`` chunks in
    # threads while this thread reads the next chunk and inserts finished ones, in log order
    # (per-chunk results do not depend on which thread ran first).
    workers = max(1, workers)
    pending: deque[Future[tuple[pa.Table, pa.Table, float]]] = deque()
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="classify") as pool:
            chunks = _chunks(read_exchanges(list(paths)), until)
            while True:
                while len(pending) < workers:
                    nxt = next(chunks, None)
                    if nxt is None:
                        break
                    pending.append(pool.submit(classify, _fill_request_ids(nxt, submitted)))
                    submitted += nxt.num_rows
                if not pending:
                    break
                chunk, feats, seconds = pending.popleft().result()
                classify_s += seconds
                if text_values is not None:
                    for name in TEXT_COLUMNS:
                        col = chunk.column(name)
                        text_values[name] = (text_values.get(name, 0)
                                             + len(col) - col.null_count)
                _insert(con, chunk, feats)
                total += chunk.num_rows
                if bar and task is not None:
                    bar.update(task, advance=chunk.num_rows)
    finally:
        for f in pending:
            f.cancel()
        if bar:
            bar.stop()
    if timings is not None:
        # classifier time summed over threads (can exceed the staging wall time)
        timings["request_signals"] = timings.get("request_signals", 0.0) + classify_s
    return total


def _insert(con: duckdb.DuckDBPyConnection, chunk: pa.Table, feats: pa.Table) -> None:
    if feats.num_rows != chunk.num_rows:
        raise InputError(f"request_features returned {feats.num_rows} rows for {chunk.num_rows}")
    slim = chunk.select(list(KEEP_COLUMNS))
    for name in REQUEST_COLUMNS:
        slim = slim.append_column(name, feats.column(name))
    con.register("_chunk", slim)
    con.execute("INSERT INTO ex SELECT * FROM _chunk")
    con.unregister("_chunk")


def _progress(enabled: bool) -> Progress | None:
    if not enabled:
        return None

    bar = Progress(SpinnerColumn(), "{task.description}", MofNCompleteColumn(),
                   TimeElapsedColumn(), transient=True)
    bar.start()
    return bar
