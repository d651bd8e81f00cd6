"""Throughput of the request-level stage (fingerprints + classifiers) on a 500k-row table.

Usage: ``.venv/bin/python benchmarks/bench_request_features.py [--rows N] [--log world.parquet]
[--chunk ROWS] [--out results.json]``

Without ``--log`` the table is built from the vendored corpora: real prompts, a share of them
wrapped in scaffolds with per-request numbers (so they are distinct texts), agent system prompts,
heavy repetition as in world traffic. With ``--log`` the first ``--rows`` rows of a schema-v1
Parquet log (e.g. a simulated world) are used instead. The in-run baseline is a DuckDB full scan
of the same rows written to Parquet (hashing every prompt), so the ratio is comparable across
machines. Like ``detect``, the table is fed to the stage in chunks of ``--chunk`` rows (default
262,144, ``features.staging.CHUNK_ROWS``) in one process, so caches kept across chunks count, and
the figure is amortised over the whole table. Writes ``benchmarks/results/request_features.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from antidistill import corpora
from antidistill.features.requests import request_features

WRAPPERS = (
    "Problem #{n}. {p}\nShow every step of the solution and box the final answer.",
    "{p}\n\nGrade the answer above from 1 to 10. Item {n} of 5000.",
    "Rewrite the text below so it is policy compliant (batch {n}):\n{p}",
)
SYSTEMS = (
    None,
    "You are a coding agent. Use the tools provided. Working directory: /home/user{n}/repo.",
    "You are a helpful assistant.",
)


def synthetic(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    texts = [p.text for ps in corpora.load_all().values() for p in ps]
    idx = rng.zipf(1.3, rows) % len(texts)  # heavy repetition of popular prompts
    wrapped = rng.random(rows) < 0.3
    prompts: list[str] = []
    for k in range(rows):
        text = texts[int(idx[k])]
        if wrapped[k]:
            text = WRAPPERS[k % len(WRAPPERS)].replace("{p}", text).replace(
                "{n}", str(int(rng.integers(1, 10_000))))
        prompts.append(text)
    sys_pick = rng.integers(0, len(SYSTEMS), rows)
    systems = [None if SYSTEMS[s] is None else
               SYSTEMS[s].replace("{n}", str(int(rng.integers(1, 300)))) for s in sys_pick]
    return pa.table({
        "request_id": pa.array([f"r{k}" for k in range(rows)]),
        "prompt": pa.array(prompts),
        "system_prompt": pa.array(systems, pa.string()),
        "n_tools": pa.array((sys_pick == 1) * rng.integers(1, 12, rows), pa.int32()),
        "has_image": pa.array(rng.random(rows) < 0.01),
        "model": pa.array(["m-1"] * rows),
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--log", type=Path, default=None)
    ap.add_argument("--chunk", type=int, default=262_144)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results"
                    / "request_features.json")
    args = ap.parse_args()
    if args.log:
        pf = pq.ParquetFile(args.log)
        cols = [c for c in ("request_id", "prompt", "system_prompt", "n_tools", "has_image",
                            "model") if c in pf.schema_arrow.names]
        table = pq.read_table(args.log, columns=cols).slice(0, args.rows)
        source = str(args.log)
    else:
        table = synthetic(args.rows)
        source = "synthetic (vendored corpora, zipf repetition, 30% wrapped)"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        pq.write_table(table, path)
        con = duckdb.connect()
        t0 = time.perf_counter()
        c0 = time.process_time()
        con.execute(f"SELECT count(*), sum(hash(prompt) % 7), sum(hash(system_prompt) % 7) "
                    f"FROM read_parquet('{path}')").fetchall()
        baseline = time.perf_counter() - t0
        baseline_cpu = time.process_time() - c0
        t0 = time.perf_counter()
        table_read = pq.read_table(path)
        read = time.perf_counter() - t0
    # load the model once, on text outside the table (so no cache is pre-filled with its rows)
    warm = request_features(pa.table({"prompt": ["Warm up: think step by step."]}))
    assert warm.num_rows == 1
    t0 = time.perf_counter()
    c0 = time.process_time()
    parts = [request_features(table_read.slice(start, args.chunk))
             for start in range(0, table_read.num_rows, args.chunk)]
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    out = pa.concat_tables(parts)
    assert out.num_rows == table.num_rows
    n_unique = len(np.unique(np.asarray(out["content_hash"])))
    result = {
        "benchmark": "request_features",
        "source": source,
        "rows": table.num_rows,
        "distinct_prompts": int(table["prompt"].combine_chunks().unique().__len__()),
        "distinct_payloads": n_unique,
        "distinct_templates": len(np.unique(np.asarray(out["template_hash"]))),
        "chunk_rows": args.chunk,
        "seconds": round(elapsed, 3),
        "cpu_seconds": round(cpu, 3),
        "rows_per_second": round(table.num_rows / elapsed),
        "baseline_duckdb_scan_seconds": round(baseline, 3),
        "parquet_read_seconds": round(read, 3),
        "ratio_to_duckdb_scan": round(elapsed / baseline, 2),
        "baseline_duckdb_scan_cpu_seconds": round(baseline_cpu, 3),
        "cpu_ratio_to_duckdb_scan": round(cpu / baseline_cpu, 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
