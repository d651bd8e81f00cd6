"""Detection quality on logs that lack groups of optional columns (column-blind robustness).

    python benchmarks/bench_blind.py --world DIR [--world DIR ...] [--model FILE]

For each world (a simulated folder with ``exchanges.parquet``, ``labels.parquet``,
``exchange_labels.parquet``) and each variant — the full log, then the log without one group of
:data:`antidistill.schema.COLUMN_GROUPS` (identity, usage, account, shape), then with all four
removed (only ``ts``, ``account_id``, ``model``, ``prompt`` and ids left), then without IPs
(``ip`` and ``asn``: a provider that does not keep client addresses), then with one address for
everybody (``proxy_ip``: a gateway behind a load balancer that logs its own address) — write
the reduced log,
run ``detect`` and ``evaluate``, and record recall, exchange-weighted recall, FPR, the worst
hard-negative FPR and campaign ARI. Results go to ``benchmarks/results/column_blind.json``, one
entry per world and model. Use worlds the model was not trained on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "column_blind.json"


#: logs that lack single columns rather than whole groups (not trained on as such)
PARTIAL = {"no_ip": ("ip", "asn")}
#: logs whose columns hold one value for everybody (recorded at a proxy, not at the client)
PROXIED = {"proxy_ip": ("ip", "asn")}
ONE_VALUE = {"ip": "203.0.113.7", "asn": 13335}


def variants() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Variant name -> (the columns its log lacks, the columns with one value for all)."""
    from antidistill.schema import BLIND_VARIANTS, group_columns

    groups = {name: group_columns(gs) for name, gs in BLIND_VARIANTS.items()}
    return {"full": ((), ()), **{n: (c, ()) for n, c in {**groups, **PARTIAL}.items()},
            **{n: ((), c) for n, c in PROXIED.items()}}


def measure(world: Path, columns: tuple[str, ...], model: Path | None, work: Path,
            constant: tuple[str, ...] = ()) -> dict[str, Any]:
    from antidistill.detect import detect
    from antidistill.evaluate import evaluate_dir

    log = world / "exchanges.parquet"
    if columns or constant:
        log = work / "exchanges.parquet"
        full = pq.read_table(world / "exchanges.parquet")
        reduced = full.drop_columns([c for c in columns if c in full.schema.names])
        for c in constant:
            i = reduced.schema.get_field_index(c)
            reduced = reduced.set_column(i, c, pa.array([ONE_VALUE[c]] * reduced.num_rows,
                                                        reduced.schema.field(c).type))
        pq.write_table(reduced, log)
        if (world / "models.csv").is_file():
            shutil.copyfile(world / "models.csv", work / "models.csv")
    out = work / "out"
    res = detect([log], out, model_path=model, progress=False, report=False)
    ex_labels = world / "exchange_labels.parquet"
    ev = evaluate_dir(out, world / "labels.parquet",
                      exchange_labels=ex_labels if ex_labels.is_file() else None)
    worst = max((v or 0.0 for v in ev["fpr_hard_negatives"].values()), default=0.0)
    return {"absent_columns": res.absent_columns, "recall": ev["recall"],
            "exchange_weighted_recall": ev["exchange_weighted_recall"], "fpr": ev["fpr"],
            "uninformative_columns": res.uninformative_columns,
            "worst_hard_negative_fpr": worst, "ari_campaign": ev["ari_campaign"],
            "recall_per_campaign": {c: v["recall"] for c, v in
                                    ev["recall_per_campaign"].items()},
            "flagged": res.n_flagged, "seconds": round(res.seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, action="append", required=True)
    ap.add_argument("--model", type=Path, default=None, help="scoring model (default: shipped)")
    ap.add_argument("--only", nargs="*", default=None, help="variants to run (default: all)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    from antidistill.scoring.model import MODEL_FILE

    model_file = args.model or ROOT / "src" / "antidistill" / "data" / "models" / MODEL_FILE
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()[:12]
    previous = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    for world in args.world:
        rows: dict[str, Any] = {}
        for name, (columns, constant) in variants().items():
            if args.only and name not in args.only:
                continue
            with tempfile.TemporaryDirectory(prefix="antidistill-blind-") as tmp:
                rows[name] = measure(world, columns, args.model, Path(tmp), constant)
            r = rows[name]
            print(f"{world.name:>10} {name:>9}: recall {r['recall']:.4f}  exch "
                  f"{r['exchange_weighted_recall']}  FPR {r['fpr']:.5f}  worst hard-neg "
                  f"{r['worst_hard_negative_fpr']:.4f}  ARI {r['ari_campaign']:.3f}", flush=True)
        key = f"{world.resolve()}|model:{digest}"
        kept = previous.get(key, {}).get("variants", {}) if args.only else {}
        previous[key] = {  # with --only, the other variants' figures are kept
            "world": str(world), "model_sha256_12": digest,
            "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "variants": {**kept, **rows}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(previous, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
