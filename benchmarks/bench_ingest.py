"""Ingest throughput and peak memory vs an in-run DuckDB baseline.

Generates a JSONL log (default 2M rows, realistic field mix and prompt lengths) and the same rows
as Parquet, then for each input measures, each in a fresh subprocess (so peak RSS is its own):

- ``antidistill ingest`` (full normalisation, dedupe, quarantine, day partitioning), and
- the baseline: DuckDB ``read_json_auto`` / ``read_parquet`` -> Parquet copy of the same file
  (parsing and writing only, no validation) — the floor for "read it and write it back".

Writes ``benchmarks/results/ingest.json``. Run by hand::

    .venv/bin/python benchmarks/bench_ingest.py --rows 2000000
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "ingest.json"

_WORDS = [
    "the", "model", "reason", "step", "proof", "explain", "code", "function", "test", "error",
    "agent", "tool", "call", "rewrite", "grade", "rubric", "score", "answer", "question",
    "derive", "integral", "python", "rust", "sql",
]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """A JSONL log with the optional columns a provider typically has (and ~0.1% bad rows)."""
    rng = random.Random(seed)
    t0 = 1_763_596_800  # 2025-11-20T00:00:00Z
    with path.open("w") as f:
        for i in range(rows):
            n = rng.randint(4, 60)
            rec = {
                "request_id": f"req-{i:09d}",
                "ts": t0 + i * 0.3 + rng.random(),
                "account_id": f"acct-{rng.randint(0, 50_000)}",
                "account_type": rng.choice(("individual", "team", "enterprise", "edu")),
                "verified": rng.random() < 0.4,
                "pathway": rng.choice(("direct", "direct", "cloud:bedrock", "reseller:acme")),
                "ip": f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.7",
                "asn": rng.randint(1, 400_000),
                "client_fp": rng.choice(("openai-python/1.51", "anthropic-sdk/0.40", "curl/8")),
                "model": rng.choice(("m-large", "m-small", "m-new")),
                "system_prompt": "You are a helpful assistant." if rng.random() < 0.5 else None,
                "prompt": " ".join(rng.choice(_WORDS) for _ in range(n)),
                "n_messages": rng.randint(1, 12),
                "input_tokens": n * 2, "output_tokens": rng.randint(1, 4000),
                "max_tokens": 4096, "temperature": round(rng.random(), 2),
                "status": "ok",
            }
            if rng.random() < 0.001:
                rec["ts"] = "not a time"
            f.write(json.dumps(rec) + "\n")


#: Peak RSS of the measuring process itself: VmHWM is per address space, so unlike ru_maxrss it
#: is not inherited from the benchmark parent through fork/exec.
_PEAK = """
def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

_INGEST = _PEAK + """
import sys, time, json, shutil
from pathlib import Path
from antidistill.ingest import ingest
src, out = sys.argv[1], Path(sys.argv[2])
shutil.rmtree(out, ignore_errors=True)
t, c = time.perf_counter(), time.process_time()
r = ingest([src], out, progress=False)
dt, cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "rows": r.read, "accepted": r.accepted,
                  "quarantined": r.quarantined,
                  "peak_rss_mib": peak_mib()}))
"""

_DUCKDB = _PEAK + """
import sys, time, json
import duckdb
src, out, kind = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute("SET threads TO 1")
reader = "read_json_auto" if kind == "jsonl" else "read_parquet"
t, c = time.perf_counter(), time.process_time()
con.execute(f"COPY (SELECT * FROM {reader}('{src}')) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
dt, cpu = time.perf_counter() - t, time.process_time() - c
n = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "rows": n,
                  "peak_rss_mib": peak_mib()}))
"""


def _run(code: str, *args: str) -> dict[str, float]:
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True)
    out: dict[str, float] = json.loads(res.stdout.strip().splitlines()[-1])
    out["rows_per_s"] = out["rows"] / out["seconds"]
    out["rows_per_cpu_s"] = out["rows"] / out["cpu_seconds"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        d = Path(tmp)
        jsonl = d / "log.jsonl"
        t = time.perf_counter()
        generate(jsonl, args.rows)
        print(f"generated {args.rows:,} rows ({jsonl.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - t:.0f}s", flush=True)
        parquet = d / "log.parquet"
        import duckdb

        # schema-v1 typed Parquet (as the gateway/simulator write it); the 0.1% bad timestamps
        # become nulls, which ingest must quarantine as missing_required
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"""COPY (SELECT * REPLACE (
                to_timestamp(TRY_CAST(ts AS DOUBLE)) AS ts, asn::INTEGER AS asn,
                n_messages::INTEGER AS n_messages, input_tokens::INTEGER AS input_tokens,
                output_tokens::INTEGER AS output_tokens, max_tokens::INTEGER AS max_tokens,
                temperature::FLOAT AS temperature)
            FROM read_json_auto('{jsonl}')) TO '{parquet}' (FORMAT parquet)""")
        results: dict[str, object] = {
            "rows": args.rows, "jsonl_mib": round(jsonl.stat().st_size / 2**20, 1),
            "machine": f"{platform.machine()} {platform.python_version()}",
            "cpus_shared": True,
        }
        small = d / "log-tenth.jsonl"
        with jsonl.open("rb") as fin, small.open("wb") as fout:
            for i, line in enumerate(fin):
                if i >= args.rows // 10:
                    break
                fout.write(line)
        tenth = _run(_INGEST, str(small), str(d / "out-tenth"))
        results["bounded_memory"] = {
            "rows_tenth": args.rows // 10, "peak_rss_mib_tenth": tenth["peak_rss_mib"],
            "note": "peak RSS of ingesting the first tenth of the JSONL, vs the full run below",
        }
        print(f"jsonl tenth: peak {tenth['peak_rss_mib']:.0f} MiB", flush=True)
        for kind, src in (("jsonl", jsonl), ("parquet", parquet)):
            ours = _run(_INGEST, str(src), str(d / f"out-{kind}"))
            base = _run(_DUCKDB, str(src), str(d / f"base-{kind}.parquet"), kind)
            results[kind] = {
                "antidistill_ingest": ours, "duckdb_copy_baseline": base,
                "throughput_ratio": round(ours["rows_per_s"] / base["rows_per_s"], 3),
                "cpu_throughput_ratio": round(ours["rows_per_cpu_s"] / base["rows_per_cpu_s"], 3),
                "peak_rss_ratio": round(ours["peak_rss_mib"] / base["peak_rss_mib"], 3),
            }
            print(f"{kind}: ingest {ours['rows_per_s']:,.0f} rows/s "
                  f"({ours['rows_per_cpu_s']:,.0f}/CPU-s), peak {ours['peak_rss_mib']:.0f} MiB | "
                  f"duckdb copy {base['rows_per_s']:,.0f} rows/s "
                  f"({base['rows_per_cpu_s']:,.0f}/CPU-s), peak {base['peak_rss_mib']:.0f} MiB",
                  flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
