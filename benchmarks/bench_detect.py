"""Detection throughput and peak memory, against a DuckDB full scan of the same file.

    python benchmarks/bench_detect.py                       # default world (seed 7, 7 days)
    python benchmarks/bench_detect.py --exchanges 16000000  # the out-of-core run (RSS bar)
    python benchmarks/bench_detect.py --world DIR           # an existing world

Each measurement runs in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own. The
baseline is a DuckDB aggregate over every column of the same Parquet file in the same run, so the
ratio means something on a shared, noisy machine. Results go to
``benchmarks/results/detect.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "detect.json"

_CHILD_DETECT = """
import json, resource, sys, time
from pathlib import Path
from antidistill.detect import detect
t = time.perf_counter()
r = detect([Path(sys.argv[1])], Path(sys.argv[2]), progress=False, report=sys.argv[3] == "1",
           memory_limit=sys.argv[4])
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "exchanges": r.n_exchanges, "accounts": r.accounts.num_rows,
                  "flagged": r.n_flagged, "campaigns": len(r.campaigns),
                  "timings": r.timings, "stage_peak_rss_mb": r.peak_rss_mb,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_CHILD_SCAN = """
import json, resource, sys, time
import duckdb
t = time.perf_counter()
con = duckdb.connect(config={"threads": 2})
n = con.execute(
    "SELECT count(*), count(DISTINCT account_id), sum(length(prompt)), "
    "sum(length(system_prompt)), sum(output_tokens), max(ts) FROM read_parquet(?)",
    [sys.argv[1]]).fetchall()[0][0]
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "exchanges": n,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(code: str, *args: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-4000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, default=None)
    ap.add_argument("--exchanges", type=int, default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".cache" / "bench-detect")
    ap.add_argument("--memory-limit", default=None, help="default: detect.MEMORY_LIMIT")
    ap.add_argument("--report", action="store_true", help="include report.html rendering")
    args = ap.parse_args(argv)
    if args.memory_limit is None:
        from antidistill.detect import MEMORY_LIMIT

        args.memory_limit = MEMORY_LIMIT
    world = args.world
    if world is None:
        from antidistill.simulate import simulate_world

        tag = f"seed-{args.seed}" + (f"-{args.exchanges}" if args.exchanges else "")
        world = args.work / tag
        if not (world / "exchanges.parquet").exists():
            simulate_world(world, seed=args.seed, exchanges=args.exchanges, progress=False)
    log = world / "exchanges.parquet"
    scan = _child(_CHILD_SCAN, str(log))
    started = time.time()
    det = _child(_CHILD_DETECT, str(log), str(args.work / "out"), "1" if args.report else "0",
                 args.memory_limit)
    rate = det["exchanges"] / det["seconds"]
    result = {
        "world": str(world), "exchanges": det["exchanges"], "accounts": det["accounts"],
        "detect_seconds": round(det["seconds"], 2), "detect_exchanges_per_s": round(rate),
        "detect_peak_rss_mb": round(det["peak_rss_mb"]),
        "duckdb_scan_seconds": round(scan["seconds"], 3),
        "duckdb_scan_exchanges_per_s": round(scan["exchanges"] / scan["seconds"]),
        "ratio_detect_to_scan_time": round(det["seconds"] / scan["seconds"], 1),
        "bars": {"exchanges_per_s>=300k": rate >= 300_000,
                 "peak_rss<=4GB": det["peak_rss_mb"] <= 4096},
        "flagged": det["flagged"], "campaigns": det["campaigns"],
        "stage_seconds": det["timings"],
        "stage_peak_rss_mb": det["stage_peak_rss_mb"],
        "detect_excluding_request_classifiers_exchanges_per_s": round(det["exchanges"] / max(
            det["seconds"] - det["timings"].get("request_signals", 0.0), 1e-9)),
        "memory_limit": args.memory_limit, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime(started)),
        "cpu_count_note": "2 cores shared with other jobs; see ratio",
        "bench_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    key = f"exchanges_{det['exchanges']}"
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing[key] = result
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
