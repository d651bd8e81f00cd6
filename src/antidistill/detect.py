"""The detection pipeline: exchange log → accounts.parquet, clusters.parquet, campaigns.json,
report.html.

Stages, each a plain function over DuckDB tables / Arrow tables:
stage (request signals, text dropped) → per-account features (SQL) → coordination edges (SQL
blocks + a sparse product) → communities → two-stage calibrated scoring with reasons →
campaigns (timelines, model pivots, ATLAS) → files and report.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from antidistill.contracts import ACCOUNTS_SCHEMA, CLUSTERS_SCHEMA, CONTRACT_VERSION
from antidistill.errors import ConfigError, InputError
from antidistill.features.accounts import (
    CAPABILITY_COLUMNS,
    FEATURES,
    absent_columns,
    build_account_features,
    feature_matrix,
)
from antidistill.features.hops import SharedHops, blank_shared_hops, find_shared_hops
from antidistill.linking.communities import Clustering, detect_communities
from antidistill.linking.edges import build_edges

if TYPE_CHECKING:
    from antidistill.scoring import ScoringModel

#: DuckDB's buffer budget before it spills to disk. Detection's Python side (classifier chunks,
#: per-account/per-edge arrays) peaks near 2 GB on a 16M-exchange log, so 1.5 GB here keeps the
#: whole process under 4 GB (measured: 3.6 GB peak; 4.2 GB with 2 GB here).
MEMORY_LIMIT = "1.5GB"


@dataclass
class Prepared:
    """Everything detection knows before scoring (also what training consumes)."""

    n_exchanges: int
    accounts: pa.Table
    edges: pa.Table
    clustering: Clustering
    models: pa.Table | None
    #: seconds per stage (staging includes the request-level classifiers)
    timings: dict[str, float] = field(default_factory=dict)
    #: the process's peak RSS (MB) at the end of each stage, to see which stage sets the peak
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    #: optional columns with no value in the whole log (their features are unknown)
    absent_columns: list[str] = field(default_factory=list)
    #: identity columns and addresses logged at a shared hop, blanked at staging (blanked
    #: columns are also in ``absent_columns``)
    shared_hops: SharedHops = field(default_factory=SharedHops)

    @property
    def account_ids(self) -> list[str]:
        return [str(a) for a in self.accounts.column("account_id").to_pylist()]

    def matrix(self) -> np.ndarray:
        return feature_matrix(self.accounts)

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.accounts.column(name).to_numpy(zero_copy_only=False),
                          dtype=np.float64)


@dataclass
class DetectResult:
    """What a detection run wrote and found."""

    out: Path
    n_exchanges: int
    accounts: pa.Table
    clusters: pa.Table
    campaigns: list[dict[str, Any]]
    seconds: float
    evaluation: dict[str, Any] | None = None
    files: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    absent_columns: list[str] = field(default_factory=list)
    shared_hops: SharedHops = field(default_factory=SharedHops)

    @property
    def n_flagged(self) -> int:
        return int(sum(bool(x) for x in self.accounts.column("flagged").to_pylist()))

    def summary(self) -> Table:
        """A short rich table for the terminal."""
        t = Table(title=f"Detection — {self.out}", show_header=True)
        t.add_column("campaign")
        t.add_column("accounts", justify="right")
        t.add_column("exchanges", justify="right")
        t.add_column("first seen")
        t.add_column("capabilities")
        t.add_column("ATLAS")
        for c in self.campaigns[:12]:
            t.add_row(c["campaign_id"], f"{c['n_accounts']:,}", f"{c['exchanges']:,}",
                      str(c["first_seen"])[:16], ", ".join(c["capabilities"][:4]),
                      " ".join(a["id"] for a in c["atlas"]))
        t.caption = (f"{self.n_exchanges:,} exchanges, {self.accounts.num_rows:,} accounts, "
                     f"{self.n_flagged:,} flagged, {self.clusters.num_rows:,} clusters, "
                     f"{len(self.campaigns)} campaigns in {self.seconds:.1f}s")
        if self.absent_columns:
            t.caption += ("\nabsent from the log (treated as unknown): "
                          + ", ".join(self.absent_columns))
        if self.shared_hops:
            t.caption += "\n" + self.shared_hops.note()
        return t


def connect(tmp: Path, memory_limit: str = MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """An embedded DuckDB that spills to ``tmp`` beyond ``memory_limit`` (out-of-core)."""
    con = duckdb.connect(":memory:", config={
        "memory_limit": memory_limit, "temp_directory": str(tmp), "threads": 2,
        "preserve_insertion_order": False,
    })
    con.execute("SET TimeZone = 'UTC'")
    return con


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (0 where unavailable)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0.0
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def parse_until(value: str | datetime | None) -> datetime | None:
    """ISO-8601 instant (naive means UTC)."""
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"not an ISO-8601 timestamp: {value!r}", field="--until") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_models(path: str | Path | None, log_paths: Sequence[str | Path] = ()) -> pa.Table | None:
    """models.csv (model, released_at); found beside the log when not given; None if absent."""
    if path is None:
        for p in log_paths:
            cand = Path(p) if Path(p).is_dir() else Path(p).parent
            if (cand / "models.csv").is_file():
                path = cand / "models.csv"
                break
        else:
            return None
    import pyarrow.csv as pacsv

    from antidistill.schema import MODELS_SCHEMA, UTC_US

    p = Path(path)
    try:
        table = pacsv.read_csv(p, convert_options=pacsv.ConvertOptions(
            column_types={"model": pa.string(), "released_at": UTC_US},
            strings_can_be_null=True))
    except FileNotFoundError as exc:
        raise InputError("no such file", where=str(p)) from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read models table: {exc}".splitlines()[0],
                         where=str(p)) from exc
    for name in ("model", "released_at"):
        if name not in table.schema.names:
            raise InputError("required column is missing", where=str(p), field=name)
    return table.select(["model", "released_at"]).cast(MODELS_SCHEMA)


def prepare(con: duckdb.DuckDBPyConnection, paths: Sequence[str | Path], *,
            models: pa.Table | None = None, until: datetime | None = None,
            progress: bool = False) -> Prepared:
    """Stage the log and compute features, edges and communities (no model needed)."""
    from antidistill.features.staging import stage
    clock = time.perf_counter()
    timings: dict[str, float] = {}
    memory: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        memory[name] = peak_rss_mb()
        clock = now

    texts: dict[str, int] = {}
    n = stage(con, paths, until=until, progress=progress, timings=timings, text_values=texts)
    lap("staging_and_request_signals")
    timings["request_signals"] = round(timings["request_signals"], 3) if n else 0.0
    if n == 0:
        raise InputError("the log has no exchanges" + (" before --until" if until else ""),
                         where=", ".join(str(p) for p in paths))
    # group in DuckDB (spills): Python sees one row per template, not one per request
    spec = _specificity(con, "template_hash", "template_hash")
    # families are int64 ids: key their specificity by hash(family_id) (uint64), as linking does
    fam_spec = _specificity(con, "hash(family_id)", "family_id")
    lap("template_specificity")
    # identity logged at a shared hop (a load balancer's address for everybody) is no identity
    hops = find_shared_hops(con)
    blank_shared_hops(con, hops)
    absent = absent_columns(con, dropped=texts)
    accounts = build_account_features(con, specificity=spec, models=models, absent=absent)
    lap("account_features")
    edges = build_edges(con, specificity=spec, family_specificity=fam_spec)
    lap("coordination_edges")
    clustering = detect_communities(edges)
    lap("communities")
    return Prepared(n, accounts, edges, clustering, models, timings, memory, absent, hops)


def _specificity(con: duckdb.DuckDBPyConnection, key: str, column: str) -> pa.Table:
    """:func:`antidistill.fingerprint.template_specificity` of ``key`` over the rows of ``ex``
    where ``column`` is set, grouped in SQL, scaled by the fixed words of its template (of a
    family: its shortest member's, the wording its near-duplicates have in common)."""
    from antidistill.fingerprint import specificity_table

    population = con.sql("SELECT count(DISTINCT account_id) FROM ex").fetchall()[0][0]
    grouped = con.sql(
        f"SELECT {key} AS k, count(DISTINCT account_id) AS n_acc, count(*) AS n_req, "
        f"min(template_words) AS words FROM ex WHERE {column} IS NOT NULL GROUP BY ALL"
    ).to_arrow_table()
    words = grouped.column("words").to_numpy(zero_copy_only=False).astype(np.float64)
    return specificity_table(grouped.column("k"), grouped.column("n_acc"),
                             grouped.column("n_req"), int(population), words=words)


def detect(
    paths: Sequence[str | Path],
    out: str | Path,
    *,
    models: str | Path | None = None,
    until: str | datetime | None = None,
    labels: str | Path | None = None,
    progress: bool = True,
    model_path: str | Path | None = None,
    report: bool = True,
    memory_limit: str = MEMORY_LIMIT,
    console: Console | None = None,
) -> DetectResult:
    """Run detection on ``paths`` and write the contract files into ``out``."""
    started = time.perf_counter()
    if not paths:
        raise InputError("no log given")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cutoff = parse_until(until)
    if model_path is not None and not Path(model_path).is_file():
        raise ConfigError("no such model file", where=str(model_path))
    # importing LightGBM (and the scikit-learn/SciPy it pulls in) takes seconds of mostly
    # single-threaded Python: do it while the log is staged instead of before
    loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-model")
    model_future = loader.submit(_load_model, Path(model_path) if model_path else None)
    loader.shutdown(wait=False)
    release_table = read_models(models, paths)
    tmp = Path(tempfile.mkdtemp(prefix="antidistill-detect-"))
    try:
        con = connect(tmp, memory_limit)
        prep = prepare(con, paths, models=release_table, until=cutoff, progress=progress)
        from antidistill.scoring import score

        model = model_future.result()
        t = time.perf_counter()
        scored = score(prep, model)
        prep.timings["scoring"] = round(time.perf_counter() - t, 3)
        prep.peak_rss_mb["scoring"] = peak_rss_mb()
        from antidistill.campaigns import build_campaigns

        t = time.perf_counter()
        # later stages read the harvest share under its contract name
        ranked = scored.accounts.append_column(
            "harvest_share", scored.accounts.column("share_harvest_like").cast(pa.float64()))
        # a column blanked for the many accounts behind a shared hop cannot corroborate their
        # links: group them as in a log without it (content first, campaigns.resolve)
        unusable = [*prep.absent_columns, *prep.shared_hops.partly_blanked()]
        camp = build_campaigns(con, ranked, prep.clustering.members, prep.edges,
                               models=release_table, absent=unusable)
        prep.timings["campaigns"] = round(time.perf_counter() - t, 3)
        prep.peak_rss_mb["campaigns"] = peak_rss_mb()
        accounts = _accounts_table(ranked, camp.campaign_of)
        clusters = _clusters_table(con, prep.clustering, accounts, camp.cluster_campaign)
        con.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = {"accounts": out / "accounts.parquet", "clusters": out / "clusters.parquet",
             "campaigns": out / "campaigns.json"}
    pq.write_table(accounts, files["accounts"])
    pq.write_table(clusters, files["clusters"])
    meta = {
        "contract_version": CONTRACT_VERSION,
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "logs": [str(p) for p in paths],
        "until": cutoff.isoformat() if cutoff else None,
        "exchanges": prep.n_exchanges,
        "accounts": accounts.num_rows,
        "flagged": int(sum(bool(x) for x in accounts.column("flagged").to_pylist())),
        "threshold": model.threshold,
        "model": model.meta,
        "absent_columns": prep.absent_columns,
        # identity columns and addresses blanked as logged at a shared hop
        "shared_hops": prep.shared_hops.to_json(),
        # which of the model's calibration maps scored this log (see scoring.condition_of)
        "calibrated_for": _calibrated_for(model, scored.condition),
        "timings_s": prep.timings,
        "peak_rss_mb": prep.peak_rss_mb,
    }
    files["campaigns"].write_text(json.dumps({"meta": meta, "campaigns": camp.records},
                                             indent=2, default=str), encoding="utf-8")
    result = DetectResult(out, prep.n_exchanges, accounts, clusters, camp.records,
                          time.perf_counter() - started, files=files, timings=prep.timings,
                          peak_rss_mb=prep.peak_rss_mb, absent_columns=prep.absent_columns,
                          shared_hops=prep.shared_hops)
    if labels is not None:
        from antidistill.evaluate import evaluate_tables, read_labels

        result.evaluation = evaluate_tables(accounts, clusters, read_labels(Path(labels)))
    if report:
        from antidistill.report import write_report

        files["report"] = write_report(out, result, graph=prep.clustering.graph)
    result.seconds = time.perf_counter() - started
    if progress:
        (console or Console()).print(result.summary())
    return result


def _calibrated_for(model: ScoringModel, condition: str | None) -> str:
    if condition is None:
        return "full log"
    what = "several groups of columns" if condition == "all" else f"the {condition} columns"
    if condition not in model.conditions:
        return f"full log (the model has no map for logs without {what})"
    return f"logs without {what}"


def _load_model(path: Path | None) -> ScoringModel:
    from antidistill.scoring import ScoringModel

    return ScoringModel.load(path)


def _accounts_table(scored: pa.Table, campaign_of: dict[str, str]) -> pa.Table:
    ids = scored.column("account_id").to_pylist()
    lead = {
        "account_id": pa.array(ids, pa.string()),
        "risk": scored.column("risk").cast(pa.float64()),
        "flagged": scored.column("flagged").cast(pa.bool_()),
        "cluster_id": scored.column("cluster_id").cast(pa.string()),
        "campaign_id": pa.array([campaign_of.get(a) for a in ids], pa.string()),
        "reasons": scored.column("reasons").cast(pa.list_(pa.string())),
        "harvest_share": scored.column("harvest_share"),
    }
    table = pa.Table.from_pydict(lead, schema=ACCOUNTS_SCHEMA)
    skip = set(lead) | {"share_harvest_like"}
    for name in scored.schema.names:
        if name in skip:
            continue
        col = scored.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("us", tz="UTC"))
        table = table.append_column(name, col)
    order = np.argsort(-np.asarray(table.column("risk").to_numpy()), kind="stable")
    return table.take(pa.array(order))


def _clusters_table(con: duckdb.DuckDBPyConnection, clustering: Clustering,
                    accounts: pa.Table, cluster_campaign: dict[str, str]) -> pa.Table:
    from antidistill.linking.evidence import evidence_texts

    rows: dict[str, list[Any]] = {f.name: [] for f in CLUSTERS_SCHEMA}
    risk = dict(zip(accounts.column("account_id").to_pylist(),
                    accounts.column("risk").to_pylist(), strict=True))
    n_ex = dict(zip(accounts.column("account_id").to_pylist(),
                    accounts.column("n_exchanges").to_pylist(), strict=True))
    cap_cols = [f"share_{c}" for c in CAPABILITY_COLUMNS]
    caps = {r["account_id"]: r for r in accounts.select(["account_id", *cap_cols]).to_pylist()}
    texts = evidence_texts(con, clustering)
    for cid, members in clustering.members.items():
        vols = np.array([float(n_ex.get(a) or 0) for a in members])
        total = float(vols.sum())
        mix = {}
        for c in CAPABILITY_COLUMNS:
            share = sum(float(caps[a][f"share_{c}"] or 0) * v
                        for a, v in zip(members, vols, strict=True)) / max(total, 1.0)
            if share > 0.005:
                mix[c] = round(share, 4)
        rows["cluster_id"].append(cid)
        rows["accounts"].append(members)
        rows["n_accounts"].append(len(members))
        rows["exchanges"].append(int(total))
        rows["risk"].append(float(np.mean([float(risk.get(a) or 0) for a in members])))
        rows["campaign_id"].append(cluster_campaign.get(cid))
        rows["evidence"].append(list(clustering.evidence.get(cid, {}).items()))
        rows["evidence_text"].append(texts.get(cid, []))
        rows["capability_mix"].append(sorted(mix.items(), key=lambda kv: -kv[1]))
    table = pa.Table.from_pydict(rows, schema=CLUSTERS_SCHEMA)
    if table.num_rows:
        order = np.argsort(-np.asarray(table.column("risk").to_numpy()), kind="stable")
        table = table.take(pa.array(order))
    return table


__all__ = ["FEATURES", "DetectResult", "Prepared", "detect", "prepare", "read_models"]
