"""Scoring a detection run against ground-truth labels (simulated worlds or analyst verdicts).

Metrics: precision, recall, FPR overall and per legitimate population, exchange-weighted recall,
recall per campaign, cluster/campaign ARI over campaign accounts, and time-to-detect per campaign
by replaying ``detect --until`` at fixed steps through the log.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table
from sklearn.metrics import adjusted_rand_score

from antidistill.contracts import read_accounts, read_clusters
from antidistill.errors import InputError

#: risk deciles of the reliability table
CALIBRATION_BINS = 10
#: hard-negative populations when the simulator does not say (names as labels use them)
DEFAULT_HARD_NEGATIVES = ("enterprise_batch", "eval_runner", "agent_dev", "team_org", "student")


def _read(path: Path, required: Sequence[str]) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"cannot read Parquet: {exc}".splitlines()[0], where=str(path)) from exc
    for name in required:
        if name not in table.schema.names:
            raise InputError("required column is missing", where=str(path), field=name)
    return table


def read_labels(path: Path) -> pa.Table:
    """labels.parquet: account_id, population, campaign (null for legitimate accounts)."""
    return _read(path, ("account_id", "population", "campaign"))


def read_exchange_labels(path: Path) -> pa.Table:
    """exchange_labels.parquet: request_id, is_attack."""
    return _read(path, ("request_id", "is_attack"))


def hard_negatives() -> tuple[str, ...]:
    try:
        from antidistill.simulate import HARD_NEGATIVES
    except ImportError:
        return DEFAULT_HARD_NEGATIVES
    return tuple(HARD_NEGATIVES)


def _safe(num: float, den: float) -> float | None:
    return None if den == 0 else float(num) / float(den)


def _flagged_share(rows: list[dict[str, Any]], key: str, det: dict[str, dict[str, Any]],
                   share: str) -> dict[str, dict[str, Any]]:
    """Accounts and flagged accounts per ``rows[key]`` group, plus their ratio named ``share``
    (an FPR over legitimate groups, a recall over campaigns: the same count either way)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        d = out.setdefault(r[key], {"accounts": 0, "flagged": 0})
        d["accounts"] += 1
        d["flagged"] += int(bool(det[r["account_id"]]["flagged"]))
    for d in out.values():
        d[share] = _safe(d["flagged"], d["accounts"])
    return out


def evaluate_tables(accounts: pa.Table, clusters: pa.Table | None, labels: pa.Table, *,
                    attack_counts: dict[str, int] | None = None) -> dict[str, Any]:
    """Account-level metrics from detection output and labels.

    ``attack_counts`` (account -> attack exchanges, from exchange labels) makes the
    exchange-weighted recall exact; without it, every exchange of a campaign account counts.
    """
    det = {r["account_id"]: r for r in accounts.select(
        ["account_id", "flagged", "cluster_id", "campaign_id", "risk"]
        + (["n_exchanges"] if "n_exchanges" in accounts.schema.names else [])).to_pylist()}
    lab = labels.select(["account_id", "population", "campaign"]).to_pylist()
    seen = [r for r in lab if r["account_id"] in det]
    pos = [r for r in seen if r["campaign"] is not None]
    neg = [r for r in seen if r["campaign"] is None]
    tp = sum(1 for r in pos if det[r["account_id"]]["flagged"])
    fp = sum(1 for r in neg if det[r["account_id"]]["flagged"])
    per_pop = _flagged_share(neg, "population", det, "fpr")
    per_campaign = _flagged_share(pos, "campaign", det, "recall")
    if attack_counts is not None:
        weights = {a: float(attack_counts.get(a, 0)) for a in (r["account_id"] for r in pos)}
        weighting = "attack exchanges (exchange labels)"
    else:
        weights = {r["account_id"]: float(det[r["account_id"]].get("n_exchanges") or 1)
                   for r in pos}
        weighting = "all exchanges of campaign accounts (no exchange labels given)"
    w_tot = sum(weights.values())
    w_hit = sum(w for a, w in weights.items() if det[a]["flagged"])
    truth = [r["campaign"] for r in pos]

    def predicted(key: str) -> list[str]:
        # an unflagged account is not part of any detected campaign, whatever its row says
        return [(det[r["account_id"]][key] if key == "cluster_id" or det[r["account_id"]]["flagged"]
                 else None) or f"none:{r['account_id']}" for r in pos]

    hard = hard_negatives()
    hard_fpr = {p: per_pop[p]["fpr"] for p in hard if p in per_pop}
    result: dict[str, Any] = {
        "accounts_labelled": len(lab), "accounts_evaluated": len(seen),
        "campaign_accounts": len(pos), "legit_accounts": len(neg),
        "true_positives": tp, "false_positives": fp,
        "precision": _safe(tp, tp + fp), "recall": _safe(tp, len(pos)),
        "fpr": _safe(fp, len(neg)),
        "fpr_per_population": dict(sorted(per_pop.items())),
        "fpr_hard_negatives": hard_fpr,
        "exchange_weighted_recall": _safe(w_hit, w_tot), "exchange_weighting": weighting,
        "recall_per_campaign": dict(sorted(per_campaign.items())),
        "ari_campaign": float(adjusted_rand_score(truth, predicted("campaign_id")))
        if len(pos) > 1 else None,
        "ari_cluster": float(adjusted_rand_score(truth, predicted("cluster_id")))
        if len(pos) > 1 else None,
    }
    result["calibration"], result["ece"] = _calibration(
        [float(det[r["account_id"]]["risk"]) for r in seen],
        [r["campaign"] is not None for r in seen])
    result["bars"] = _bars(result)
    return result


def _calibration(risk: list[float], positive: list[bool],
                 bins: int = CALIBRATION_BINS) -> tuple[list[dict[str, Any]], float | None]:
    """Reliability table (per risk decile: accounts, mean risk, share that are campaign
    accounts) and the expected calibration error (account-weighted mean |share - mean risk|):
    "among accounts scored ~0.8, ~80% are campaign accounts" is what an analyst relies on."""
    rows: list[dict[str, Any]] = []
    err = 0.0
    for k in range(bins):
        lo, hi = k / bins, (k + 1) / bins
        idx = [i for i, r in enumerate(risk) if lo <= r < hi or (k == bins - 1 and r == hi)]
        if not idx:
            continue
        mean = sum(risk[i] for i in idx) / len(idx)
        share = sum(positive[i] for i in idx) / len(idx)
        err += len(idx) * abs(share - mean)
        rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "accounts": len(idx),
                     "mean_risk": round(mean, 4), "campaign_share": round(share, 4)})
    return rows, (err / len(risk) if risk else None)


def _bars(r: dict[str, Any]) -> dict[str, bool | None]:
    def ge(v: float | None, bar: float) -> bool | None:
        return None if v is None else v >= bar

    def le(v: float | None, bar: float) -> bool | None:
        return None if v is None else v <= bar

    hard = [v for v in r["fpr_hard_negatives"].values() if v is not None]
    return {
        "account_recall>=0.99": ge(r["recall"], 0.99),
        "exchange_weighted_recall>=0.995": ge(r["exchange_weighted_recall"], 0.995),
        "fpr<=0.0005": le(r["fpr"], 0.0005),
        "hard_negative_fpr<=0.01": (max(hard) <= 0.01) if hard else None,
        "ari>=0.9": ge(r["ari_campaign"], 0.9),
    }


def attack_counts_from(log_paths: Sequence[str | Path], exchange_labels: pa.Table) -> dict[
    str, int
]:
    """account -> number of attack exchanges, joining exchange labels to the log's ids."""
    from antidistill.ingest import read_exchanges

    con = duckdb.connect(":memory:")
    con.register("_xl", exchange_labels.select(["request_id", "is_attack"]))
    counts: dict[str, int] = {}
    for batch in read_exchanges(log_paths, columns=["request_id", "account_id"]):
        con.register("_b", pa.Table.from_batches([batch]))
        for acc, n in con.execute("""SELECT b.account_id, count(*) FROM _b b JOIN _xl x
                                     USING (request_id) WHERE x.is_attack GROUP BY 1""").fetchall():
            counts[acc] = counts.get(acc, 0) + int(n)
        con.unregister("_b")
    con.close()
    return counts


def time_to_detect(log_paths: Sequence[str | Path], labels: pa.Table, *, work: Path,
                   step_hours: float = 24.0, models: str | Path | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """Replay ``detect --until`` every ``step_hours`` and record when each campaign is flagged.

    A campaign counts as detected at the first cutoff where any of its accounts is flagged;
    time-to-detect is that cutoff minus the campaign's first exchange (an upper bound at the
    replay's resolution).
    """
    from antidistill.detect import detect
    from antidistill.ingest import read_exchanges

    camp_of = {r["account_id"]: r["campaign"] for r in labels.to_pylist() if r["campaign"]}
    start: dict[str, datetime] = {}
    t_min: datetime | None = None
    t_max: datetime | None = None
    for batch in read_exchanges(log_paths, columns=["ts", "account_id"]):
        spans = pa.Table.from_batches([batch]).group_by("account_id").aggregate(
            [("ts", "min"), ("ts", "max")])
        for a, lo, hi in zip(spans.column("account_id").to_pylist(),
                             spans.column("ts_min").to_pylist(),
                             spans.column("ts_max").to_pylist(), strict=True):
            t_min = lo if t_min is None or lo < t_min else t_min
            t_max = hi if t_max is None or hi > t_max else t_max
            c = camp_of.get(a)
            if c is not None and (c not in start or lo < start[c]):
                start[c] = lo
    if t_min is None or t_max is None:
        raise InputError("the log has no exchanges", where=", ".join(map(str, log_paths)))
    detected: dict[str, datetime] = {}
    cut = t_min + timedelta(hours=step_hours)
    steps: list[dict[str, Any]] = []
    while True:
        res = detect(log_paths, work / cut.strftime("until-%Y%m%dT%H%M"), models=models,
                     until=cut, progress=progress, report=False)
        flagged = {a for a, f in zip(res.accounts.column("account_id").to_pylist(),
                                     res.accounts.column("flagged").to_pylist(), strict=True)
                   if f}
        hits = sorted({camp_of[a] for a in flagged if a in camp_of})
        steps.append({"until": cut.isoformat(), "flagged": len(flagged), "campaigns": hits})
        for c in hits:
            detected.setdefault(c, cut)
        if cut >= t_max or len(detected) == len(start):
            break
        cut = cut + timedelta(hours=step_hours)
    per: dict[str, Any] = {}
    for c, s in sorted(start.items()):
        d = detected.get(c)
        hours = None if d is None else (d - s).total_seconds() / 3600.0
        per[c] = {"start": s.isoformat(), "detected_at": d.isoformat() if d else None,
                  "hours": hours, "within_24h": hours is not None and hours <= 24.0}
    return {"step_hours": step_hours, "campaigns": per, "steps": steps,
            "all_within_24h": all(v["within_24h"] for v in per.values()) if per else None}


def evaluate_dir(detect_dir: Path, labels: Path, *, exchange_labels: Path | None = None,
                 replay: Sequence[str | Path] | None = None, step_hours: float = 24.0,
                 log: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """Evaluate a detection output directory; optionally replay for time-to-detect."""
    accounts = read_accounts(detect_dir / "accounts.parquet")
    clusters = read_clusters(detect_dir / "clusters.parquet")
    lab = read_labels(labels)
    meta: dict[str, Any] = {}
    camp_file = detect_dir / "campaigns.json"
    if camp_file.is_file():
        meta = json.loads(camp_file.read_text(encoding="utf-8")).get("meta", {})
    log_paths = list(log or replay or meta.get("logs", []))
    counts = None
    if exchange_labels is not None:
        if not log_paths:
            raise InputError("exchange labels need the log (give --log)", field="--log")
        counts = attack_counts_from(log_paths, read_exchange_labels(exchange_labels))
    result = evaluate_tables(accounts, clusters, lab, attack_counts=counts)
    if replay:
        result["time_to_detect"] = time_to_detect(replay, lab, work=detect_dir / "replay",
                                                  step_hours=step_hours)
        result["bars"]["every_campaign_within_24h"] = result["time_to_detect"]["all_within_24h"]
    (detect_dir / "evaluation.json").write_text(json.dumps(result, indent=2, default=str),
                                                encoding="utf-8")
    return result


def print_evaluation(result: dict[str, Any], console: Console | None = None) -> None:
    """Rich tables: headline metrics, per population, per campaign, bars."""
    console = console or Console()

    def f(v: Any, pct: bool = False) -> str:
        if v is None:
            return "—"
        return f"{100 * v:.3f}%" if pct else (f"{v:.4f}" if isinstance(v, float) else str(v))

    head = Table(title="Detection quality")
    head.add_column("metric")
    head.add_column("value", justify="right")
    for key in ("accounts_evaluated", "campaign_accounts", "legit_accounts", "true_positives",
                "false_positives", "precision", "recall", "exchange_weighted_recall",
                "ari_campaign", "ari_cluster"):
        head.add_row(key, f(result.get(key)))
    head.add_row("fpr", f(result.get("fpr"), pct=True))
    console.print(head)
    pop = Table(title="Legitimate populations")
    for c in ("population", "accounts", "flagged", "FPR"):
        pop.add_column(c, justify="right" if c != "population" else "left")
    for name, d in result["fpr_per_population"].items():
        pop.add_row(name, str(d["accounts"]), str(d["flagged"]), f(d["fpr"], pct=True))
    console.print(pop)
    camp = Table(title="Campaigns")
    for c in ("campaign", "accounts", "flagged", "recall", "time to detect (h)"):
        camp.add_column(c, justify="right" if c != "campaign" else "left")
    ttd = (result.get("time_to_detect") or {}).get("campaigns", {})
    for name, d in result["recall_per_campaign"].items():
        hours = (ttd.get(name) or {}).get("hours")
        camp.add_row(name, str(d["accounts"]), str(d["flagged"]), f(d["recall"]),
                     "—" if hours is None else f"{hours:.1f}")
    console.print(camp)
    if result.get("calibration"):
        cal = Table(title=f"Calibration (ECE {f(result.get('ece'))})")
        for c in ("risk", "accounts", "mean risk", "campaign share"):
            cal.add_column(c, justify="right" if c != "risk" else "left")
        for d in result["calibration"]:
            cal.add_row(d["bin"], str(d["accounts"]), f(d["mean_risk"]), f(d["campaign_share"]))
        console.print(cal)
    bars = Table(title="Bars")
    bars.add_column("bar")
    bars.add_column("met")
    for k, v in result["bars"].items():
        bars.add_row(k, "[green]yes[/]" if v else ("[red]no[/]" if v is False else "—"))
    console.print(bars)


__all__ = ["evaluate_dir", "evaluate_tables", "print_evaluation", "read_labels",
           "time_to_detect"]

