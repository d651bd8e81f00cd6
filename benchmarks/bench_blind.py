"""Detection quality on logs that lack groups of optional columns (column-blind robustness).

    python benchmarks/bench_blind.py --world DIR [--world DIR ...] [--model FILE]

For each world (a simulated folder with ``exchanges.parquet``, ``labels.parquet``,
``exchange_labels.parquet``) and each variant — the full log, then the log without one group of
:data:`antidistill.schema.COLUMN_GROUPS` (identity, usage, account, shape), then with all four
removed (only ``ts``, ``account_id``, ``model``, ``prompt`` and ids left), then without IPs
(``ip`` and ``asn``: a provider that does not keep client addresses), then with one address for
everybody (``proxy_ip``: a gateway behind a load balancer that logs its own address) and for
60 % of the accounts (``proxy_ip_60``) — write the reduced log,
run ``detect`` and ``evaluate``, and record recall, exchange-weighted recall, FPR, the worst
hard-negative FPR and campaign ARI. Results go to ``benchmarks/results/column_blind.json``, one
entry per world and model. Use worlds the model was not trained on.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quality_common import model_digest, parser, previous_results, write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "column_blind.json"


@dataclass(frozen=True)
class Variant:
    """How a variant's log differs from the world's: columns dropped; columns set to one value
    (``ONE_VALUE``) for the accounts whose hashed id falls in the first ``behind`` share."""

    drop: tuple[str, ...] = ()
    one_value: tuple[str, ...] = ()
    behind: float = 1.0


#: logs that lack single columns rather than whole groups (not trained on as such)
PARTIAL = {"no_ip": Variant(drop=("ip", "asn"))}
#: logs with one address for everybody (a gateway behind a load balancer logs its address), or
#: for 60 % of the accounts (the rest reach it directly)
PROXIED = {"proxy_ip": Variant(one_value=("ip", "asn")),
           "proxy_ip_60": Variant(one_value=("ip", "asn"), behind=0.6)}
ONE_VALUE = {"ip": "203.0.113.7", "asn": 13335}


def variants() -> dict[str, Variant]:
    """Variant name -> how its log differs from the world's."""
    from antidistill.schema import BLIND_VARIANTS, group_columns

    groups = {name: Variant(drop=group_columns(gs)) for name, gs in BLIND_VARIANTS.items()}
    return {"full": Variant(), **groups, **PARTIAL, **PROXIED}


def reduce_log(full: pa.Table, variant: Variant) -> pa.Table:
    """The world's log as ``variant`` describes it."""
    reduced = full.drop_columns([c for c in variant.drop if c in full.schema.names])
    if not variant.one_value:
        return reduced
    accounts = reduced.column("account_id").to_pylist()
    digest = {a: int(hashlib.sha256(a.encode()).hexdigest()[:8], 16) / 16**8
              for a in set(accounts)}
    behind = pa.array([digest[a] < variant.behind for a in accounts])
    for c in variant.one_value:
        i = reduced.schema.get_field_index(c)
        one = pa.array([ONE_VALUE[c]] * reduced.num_rows, reduced.schema.field(c).type)
        reduced = reduced.set_column(i, c, pc.if_else(behind, one, reduced.column(c)))
    return reduced


def measure(world: Path, variant: Variant, model: Path | None, work: Path) -> dict[str, Any]:
    from antidistill.detect import detect
    from antidistill.evaluate import evaluate_dir

    log = world / "exchanges.parquet"
    if variant != Variant():
        log = work / "exchanges.parquet"
        pq.write_table(reduce_log(pq.read_table(world / "exchanges.parquet"), variant), log)
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
            "shared_hops": res.shared_hops.to_json(),
            "worst_hard_negative_fpr": worst, "ari_campaign": ev["ari_campaign"],
            "recall_per_campaign": {c: v["recall"] for c, v in
                                    ev["recall_per_campaign"].items()},
            "flagged": res.n_flagged, "seconds": round(res.seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__, RESULTS)
    ap.add_argument("--only", nargs="*", default=None, help="variants to run (default: all)")
    args = ap.parse_args(argv)
    digest = model_digest(args.model)
    previous = previous_results(args.out)
    for world in args.world:
        rows: dict[str, Any] = {}
        for name, variant in variants().items():
            if args.only and name not in args.only:
                continue
            with tempfile.TemporaryDirectory(prefix="antidistill-blind-") as tmp:
                rows[name] = measure(world, variant, args.model, Path(tmp))
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
    write_results(args.out, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
