"""Throughput and peak memory of ``antidistill simulate``, against an in-run baseline.

Each measurement runs in its own subprocess (so peak RSS is that run's own). The baseline writes
the same number of rows of a trivial two-column table (int64 + short string) with the same
Parquet writer and chunking: ``ratio`` = simulate throughput / baseline throughput, which stays
meaningful on a noisy, shared machine.

    python benchmarks/bench_simulate.py                 # default world + 16M-exchange world
    python benchmarks/bench_simulate.py --exchanges 2000000
    python benchmarks/bench_simulate.py --skip-large    # default world only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "simulate.json"

_SIMULATE = """
import json, resource, sys
from pathlib import Path
from antidistill.simulate import simulate_world
kw = json.loads(sys.argv[2])
s = simulate_world(Path(sys.argv[1]), progress=False, **kw)
size = sum(p.stat().st_size for p in Path(sys.argv[1]).iterdir())
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"exchanges": s.exchanges, "accounts": s.accounts, "seconds": s.seconds,
                  "exchanges_per_s": s.exchanges_per_second, "bytes_on_disk": size,
                  "cpu_seconds": ru.ru_utime + ru.ru_stime,
                  "peak_rss_mb": ru.ru_maxrss / 1024}))
"""

_BASELINE = """
import json, resource, sys, time
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
n, chunk = int(sys.argv[2]), 300_000
schema = pa.schema([("i", pa.int64()), ("s", pa.string())])
t = time.perf_counter()
with pq.ParquetWriter(sys.argv[1], schema, compression="zstd") as w:
    for lo in range(0, n, chunk):
        i = np.arange(lo, min(lo + chunk, n))
        w.write_table(pa.table({"i": i, "s": pa.array(np.char.mod("row-%d", i))}, schema=schema))
sec = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"rows": n, "seconds": sec, "rows_per_s": n / sec,
                  "cpu_seconds": ru.ru_utime + ru.ru_stime,
                  "peak_rss_mb": ru.ru_maxrss / 1024}))
"""


def _run(code: str, *args: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def measure(label: str, kwargs: dict[str, object], workdir: Path) -> dict[str, object]:
    out = workdir / label
    sim = _run(_SIMULATE, str(out), json.dumps(kwargs))
    base = _run(_BASELINE, str(workdir / f"{label}-baseline.parquet"), str(sim["exchanges"]))
    for p in out.iterdir():
        p.unlink()
    out.rmdir()
    (workdir / f"{label}-baseline.parquet").unlink()
    result = {
        "kwargs": kwargs, "simulate": sim, "baseline": base,
        "ratio_to_baseline": sim["exchanges_per_s"] / base["rows_per_s"],
        # CPU time is far less sensitive than wall time to other jobs on a shared machine
        "exchanges_per_cpu_second": sim["exchanges"] / sim["cpu_seconds"],
        "cpu_ratio_to_baseline": (sim["exchanges"] / sim["cpu_seconds"])
        / (base["rows"] / base["cpu_seconds"]),
        "load_average": os.getloadavg(),
    }
    print(f"{label}: {sim['exchanges']:,.0f} exchanges in {sim['seconds']:.1f} s = "
          f"{sim['exchanges_per_s']:,.0f}/s, peak RSS {sim['peak_rss_mb']:,.0f} MB; baseline "
          f"{base['rows_per_s']:,.0f} rows/s; ratio {result['ratio_to_baseline']:.2f}; "
          f"{result['exchanges_per_cpu_second']:,.0f} exchanges per CPU-second "
          f"(CPU ratio {result['cpu_ratio_to_baseline']:.2f}; load {os.getloadavg()[0]:.1f})",
          flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exchanges", type=int, default=16_000_000, help="size of the large world")
    ap.add_argument("--skip-large", action="store_true", help="only the default world")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    results: dict[str, object] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
    }
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        results["default"] = measure("default", {}, Path(tmp))
        if not args.skip_large:
            results["large"] = measure("large", {"exchanges": args.exchanges}, Path(tmp))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
