"""Per-account behaviour features, as DuckDB SQL over the staged ``ex`` table.

Each feature is something a harvesting operation must do, or something the legitimate look-alikes
do instead: cover many distinct hard prompts (few repeats, single turn), elicit reasoning, collect
long outputs (max_tokens hit, high reasoning share), run like a machine (flat daily rhythm, regular
gaps), adopt a new model the moment it ships, from young accounts. All relational work is plain SQL
(GROUP BY account) so it can run unchanged on Spark; Python only sees one row per account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import pyarrow as pa

#: Capabilities a distiller wants: hard prompts whose outputs are worth training on.
HARD_CAPABILITIES = ("reasoning", "coding", "tool_use", "computer_use", "grading", "rewrite")
#: Capability shares computed per account (anything else counts as "other").
CAPABILITY_COLUMNS = (
    "reasoning", "coding", "tool_use", "computer_use", "grading", "rewrite", "chat", "safety",
)

#: Feature columns fed to the scorer, in a fixed order (the model file stores the same list).
#: Left out on purpose, though ``accounts.parquet`` keeps what they are built on for analysts:
#: - how many models an account used (simulated ordinary users always mix two or three, real ones
#:   often pin one, so the scorer learnt "one model = harvest");
#: - whether it sits in an org (free to create; the scorer learnt "in an org = legitimate"
#:   because no simulated campaign ever made one);
#: - the share of distinct problems among its hard requests (``n_distinct_hard`` /
#:   ``n_harvest_like``): harvesters often sample a problem several times, or under several
#:   wrappers, for more traces, and ordinary users retry; the simulated campaigns never repeated
#:   until their datasets ran out at scale, so the scorer learnt "a repeat = legitimate".
#: ``content_crowd`` is scale-free: the mean log *share* of the log's accounts that sent the same
#: content (the mean log count grew by ln 10 in a log of 10x the accounts, legitimate or not).
FEATURES: tuple[str, ...] = (
    "log_exchanges", "active_days", "active_hours", "log_rate_per_active_hour",
    *(f"share_{c}" for c in CAPABILITY_COLUMNS),
    "cap_concentration", "share_cot", "share_rubric", "share_rewrite_ask", "share_elicit",
    "share_harvest_like", "distinct_content_ratio", "log_distinct_content",
    "content_crowd", "top_template_share", "template_specificity",
    "share_single_turn", "mean_messages", "share_tools", "share_image",
    "reasoning_share", "log_mean_output", "share_max_tokens_hit", "log_mean_max_tokens",
    "hour_entropy", "gap_cv", "daily_cv", "share_newest_model",
    "adoption_delay_hours", "account_age_days", "created_in_window",
    "verified", "account_type_code", "pathway_code",
    "share_not_ok", "log_ips", "log_client_fps", "max_payment_sharers", "max_ip_sharers",
    # dilution-robust volumes: mixing ordinary chat into an account lowers every share above but
    # not how much hard, distinct, long-output material it collected
    "log_harvest_like", "log_distinct_hard", "log_harvest_output",
)

ACCOUNT_TYPE_CODES = {
    "individual": 0, "team": 1, "enterprise": 2, "edu": 3, "research": 4, "startup": 5,
    "reseller": 6,
}


def _harvest_like_sql() -> str:
    hard = ", ".join(f"'{c}'" for c in HARD_CAPABILITIES)
    return (
        f"(capability IN ({hard}) AND (greatest(p_cot, p_rubric, p_rewrite) >= 0.5 "
        "OR coalesce(n_messages <= 2, false) OR coalesce(n_tools, 0) > 0))"
    )


HARVEST_LIKE_SQL = _harvest_like_sql()

#: Features that mean nothing when a column they are built on is absent from the whole log
#: (every value null): they become unknown (NaN, null in accounts.parquet) instead of the zero
#: or default an SQL ``coalesce`` would give, which the scorer would read as "no cap requested",
#: "single turn", "unverified". A column null for *some* rows keeps its per-row meaning.
REQUIRES: dict[str, tuple[str, ...]] = {
    "reasoning_share": ("reasoning_tokens", "output_tokens"),
    "log_mean_output": ("output_tokens",),
    "log_harvest_output": ("output_tokens",),
    "share_max_tokens_hit": ("max_tokens", "output_tokens"),
    "log_mean_max_tokens": ("max_tokens",),
    "share_not_ok": ("status",),
    "share_single_turn": ("n_messages",),
    "mean_messages": ("n_messages",),
    "share_tools": ("n_tools",),
    "share_image": ("has_image",),
    "account_age_days": ("account_created_at",),
    "created_in_window": ("account_created_at",),
    "verified": ("verified",),
    "account_type_code": ("account_type",),
    "pathway_code": ("pathway",),
    "log_ips": ("ip",),
    "max_ip_sharers": ("ip",),
    "log_client_fps": ("client_fp",),
    "max_payment_sharers": ("payment_fp",),
}


#: columns every account of a log that records them has a value of, and the per-account count
#: of those values: an account with none has the features built on the column unknown. (An
#: account without ``payment_fp`` is a free-tier account, a meaning the scorer learnt.)
PER_ACCOUNT_COUNTS = {"ip": "n_ips", "client_fp": "n_client_fps"}


def absent_columns(con: duckdb.DuckDBPyConnection, table: str = "ex", *,
                   dropped: Mapping[str, int] | None = None) -> list[str]:
    """The optional schema columns with no value at all in the log (schema order): those of
    ``table``, and those counted in ``dropped`` (column -> values seen) before staging dropped
    them (the prompt texts)."""
    from antidistill.schema import OPTIONAL

    have = {str(r[0]) for r in con.execute(f"DESCRIBE {table}").fetchall()}
    names = [c for c in OPTIONAL if c in have and c != "request_id"]  # ids are generated
    gone = {c for c, n in (dropped or {}).items() if n == 0}
    if names:
        row = con.execute("SELECT " + ", ".join(f"count({c}) = 0" for c in names)
                          + f" FROM {table}").fetchall()[0]
        gone.update(c for c, empty in zip(names, row, strict=True) if empty)
    return [c for c in OPTIONAL if c in gone]


def build_account_features(
    con: duckdb.DuckDBPyConnection, *, specificity: pa.Table | None = None,
    models: pa.Table | None = None, absent: Sequence[str] | None = None,
) -> pa.Table:
    """Create table ``acct`` (one row per account) from ``ex``; return it as Arrow.

    ``specificity`` is ``template_specificity`` output (template_hash, specificity);
    ``models`` is models.csv (model, released_at) or None; ``absent`` the columns with no
    value in ``ex`` (:func:`absent_columns`, computed when not given).
    """
    if specificity is not None:
        con.register("_spec", specificity.select(["template_hash", "specificity"]))
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW _spec AS SELECT NULL::UBIGINT AS template_hash, "
                    "NULL::DOUBLE AS specificity WHERE false")
    if models is not None and models.num_rows:
        con.register("_models", models.select(["model", "released_at"]))
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW _models AS "
                    "SELECT NULL::VARCHAR AS model, NULL::TIMESTAMPTZ AS released_at WHERE false")
    caps = ",\n".join(
        f"avg(CASE WHEN capability = '{c}' THEN 1 ELSE 0 END) AS share_{c}"
        for c in CAPABILITY_COLUMNS
    )
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE _bounds AS
      SELECT min(ts) AS t0, max(ts) AS t1 FROM ex;
    CREATE OR REPLACE TEMP TABLE _newest AS
      SELECT model, released_at FROM _models WHERE released_at IS NOT NULL
        AND released_at >= (SELECT t0 FROM _bounds)
      ORDER BY released_at DESC LIMIT 1;
    CREATE OR REPLACE TEMP TABLE _ac AS
      SELECT account_id, content_hash FROM ex GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE _content_crowd AS
      SELECT content_hash, count(*) AS n_acc FROM _ac GROUP BY content_hash;
    CREATE OR REPLACE TEMP TABLE _hourly AS
      SELECT account_id, date_trunc('hour', ts) AS hr, count(*) AS n FROM ex GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE _distinct AS
      SELECT account_id, count(DISTINCT ip) AS n_ips, count(DISTINCT client_fp) AS n_client_fps,
        count(DISTINCT model) AS n_models
      FROM (SELECT account_id, ip, client_fp, model FROM ex GROUP BY ALL) GROUP BY account_id;
    CREATE OR REPLACE TEMP TABLE _tpl AS
      SELECT account_id, template_hash, count(*) AS n FROM ex GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE _share AS
      SELECT k, v, count(DISTINCT account_id) AS sharers FROM (
        SELECT 'payment' AS k, payment_fp AS v, account_id FROM ex WHERE payment_fp IS NOT NULL
        UNION ALL
        SELECT 'ip', ip, account_id FROM ex WHERE ip IS NOT NULL
      ) GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE _gaps AS
      SELECT account_id,
             epoch(ts) - epoch(lag(ts) OVER (PARTITION BY account_id ORDER BY ts)) AS gap
      FROM ex;
    CREATE OR REPLACE TEMP TABLE _daily AS
      SELECT account_id, date_trunc('day', hr) AS d, sum(n) AS n FROM _hourly GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE _hours AS
      SELECT account_id, hour(hr AT TIME ZONE 'UTC') AS h, sum(n) AS n FROM _hourly GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE _first_model AS
      SELECT account_id, model, min(ts) AS first_ts FROM ex GROUP BY ALL;
    CREATE OR REPLACE TABLE acct AS
    WITH base AS (
      SELECT
        account_id,
        count(*) AS n_exchanges,
        min(ts) AS first_seen,
        max(ts) AS last_seen,
        {caps},
        avg(CASE WHEN p_cot >= 0.5 THEN 1 ELSE 0 END) AS share_cot,
        avg(CASE WHEN p_rubric >= 0.5 THEN 1 ELSE 0 END) AS share_rubric,
        avg(CASE WHEN p_rewrite >= 0.5 THEN 1 ELSE 0 END) AS share_rewrite_ask,
        avg(CASE WHEN greatest(p_cot, p_rubric, p_rewrite) >= 0.5 THEN 1 ELSE 0 END)
          AS share_elicit,
        avg(CASE WHEN {HARVEST_LIKE_SQL} THEN 1 ELSE 0 END) AS share_harvest_like,
        sum(CASE WHEN {HARVEST_LIKE_SQL} THEN 1 ELSE 0 END) AS n_harvest_like,
        count(DISTINCT CASE WHEN {HARVEST_LIKE_SQL} THEN content_hash END) AS n_distinct_hard,
        coalesce(sum(CASE WHEN {HARVEST_LIKE_SQL}
          THEN coalesce(output_tokens, 0) + coalesce(reasoning_tokens, 0) END), 0)
          AS harvest_output_tokens,
        sum(CASE WHEN p_cot >= 0.5 THEN 1 ELSE 0 END) AS n_cot,
        sum(CASE WHEN p_rubric >= 0.5 THEN 1 ELSE 0 END) AS n_rubric,
        sum(CASE WHEN p_rewrite >= 0.5 THEN 1 ELSE 0 END) AS n_rewrite,
        avg(CASE WHEN n_messages IS NULL THEN NULL WHEN n_messages <= 1 THEN 1 ELSE 0 END)
          AS share_single_turn,
        coalesce(avg(n_messages), 1) AS mean_messages,
        avg(CASE WHEN coalesce(n_tools, 0) > 0 THEN 1 ELSE 0 END) AS share_tools,
        avg(CASE WHEN coalesce(has_image, false) THEN 1 ELSE 0 END) AS share_image,
        coalesce(sum(reasoning_tokens)::DOUBLE
          / nullif(sum(coalesce(output_tokens, 0) + coalesce(reasoning_tokens, 0)), 0), 0)
          AS reasoning_share,
        coalesce(avg(coalesce(output_tokens, 0) + coalesce(reasoning_tokens, 0)), 0)
          AS mean_output,
        coalesce(avg(CASE WHEN max_tokens IS NULL OR output_tokens IS NULL THEN NULL
          WHEN output_tokens + coalesce(reasoning_tokens, 0) >= 0.95 * max_tokens THEN 1
          ELSE 0 END), 0) AS share_max_tokens_hit,
        coalesce(avg(max_tokens), 0) AS mean_max_tokens,
        avg(CASE WHEN status IS NOT NULL AND status <> 'ok' THEN 1 ELSE 0 END) AS share_not_ok,
        any_value(org_id) AS org_id,
        any_value(account_type) AS account_type,
        min(account_created_at) AS account_created_at,
        bool_or(verified) AS verified_any,
        any_value(pathway) AS pathway,
        avg(CASE WHEN model IN (SELECT model FROM _newest) THEN 1 ELSE 0 END)
          AS share_newest_model
      FROM ex GROUP BY account_id
    ),
    crowd AS (
      SELECT e.account_id, exp(avg(ln(c.n_acc))) AS content_askers,
        avg(ln(c.n_acc)) - ln((SELECT count(DISTINCT account_id) FROM _ac)) AS content_crowd,
        count(*) AS n_distinct_content
      FROM _ac e JOIN _content_crowd c USING (content_hash) GROUP BY e.account_id
    ),
    activity AS (
      SELECT account_id, count(DISTINCT date_trunc('day', hr)) AS active_days,
        count(*) AS active_hours FROM _hourly GROUP BY account_id
    ),
    tpl AS (
      SELECT account_id, max(n)::DOUBLE / sum(n) AS top_template_share,
             sum(n * coalesce(s.specificity, 0.0)) / sum(n) AS template_specificity
      FROM _tpl LEFT JOIN _spec s USING (template_hash) GROUP BY account_id
    ),
    sharers AS (
      SELECT account_id,
        max(CASE WHEN s.k = 'payment' THEN s.sharers END) AS max_payment_sharers,
        max(CASE WHEN s.k = 'ip' THEN s.sharers END) AS max_ip_sharers
      FROM (
        SELECT DISTINCT account_id, 'payment' AS k, payment_fp AS v FROM ex
          WHERE payment_fp IS NOT NULL
        UNION ALL
        SELECT DISTINCT account_id, 'ip', ip FROM ex WHERE ip IS NOT NULL
      ) a JOIN _share s USING (k, v) GROUP BY account_id
    ),
    gaps AS (
      SELECT account_id, coalesce(stddev_pop(gap) / nullif(avg(gap), 0), 0) AS gap_cv
      FROM _gaps WHERE gap IS NOT NULL GROUP BY account_id
    ),
    daily AS (
      SELECT account_id, coalesce(stddev_pop(n) / nullif(avg(n), 0), 0) AS daily_cv
      FROM _daily GROUP BY account_id
    ),
    hours AS (
      SELECT account_id,
        -sum((n / tot) * ln(n / tot)) / ln(24) AS hour_entropy
      FROM (SELECT account_id, n::DOUBLE AS n, sum(n) OVER (PARTITION BY account_id) AS tot
            FROM _hours) GROUP BY account_id
    ),
    adopt AS (
      SELECT f.account_id,
        min(epoch(f.first_ts) - epoch(m.released_at)) / 3600.0 AS adoption_delay_hours
      FROM _first_model f JOIN _models m USING (model)
      WHERE m.released_at IS NOT NULL AND m.released_at >= (SELECT t0 FROM _bounds)
      GROUP BY f.account_id
    )
    SELECT base.*,
      activity.active_days, activity.active_hours,
      coalesce(crowd.n_distinct_content, 0) AS n_distinct_content,
      _distinct.n_ips, _distinct.n_client_fps, _distinct.n_models,
      coalesce(crowd.content_crowd, 0) AS content_crowd,
      coalesce(crowd.content_askers, 1) AS content_askers,
      coalesce(tpl.top_template_share, 1) AS top_template_share,
      coalesce(tpl.template_specificity, 0) AS template_specificity,
      coalesce(sharers.max_payment_sharers, 0) AS max_payment_sharers,
      coalesce(sharers.max_ip_sharers, 0) AS max_ip_sharers,
      coalesce(gaps.gap_cv, 0) AS gap_cv,
      coalesce(daily.daily_cv, 0) AS daily_cv,
      coalesce(hours.hour_entropy, 0) AS hour_entropy,
      adopt.adoption_delay_hours
    FROM base
      LEFT JOIN crowd USING (account_id) LEFT JOIN tpl USING (account_id)
      LEFT JOIN sharers USING (account_id) LEFT JOIN gaps USING (account_id)
      LEFT JOIN daily USING (account_id) LEFT JOIN hours USING (account_id)
      LEFT JOIN adopt USING (account_id) LEFT JOIN activity USING (account_id)
      LEFT JOIN _distinct USING (account_id)
    ORDER BY account_id
    """)
    t0 = con.execute("SELECT t0 FROM _bounds").fetchall()[0]
    raw = con.sql("SELECT * FROM acct ORDER BY account_id").to_arrow_table()
    if absent is None:
        absent = absent_columns(con)
    return derive(raw, window_start=t0[0] if t0 else None, absent=absent)


def derive(raw: pa.Table, *, window_start: object = None,
           absent: Sequence[str] = ()) -> pa.Table:
    """Turn SQL aggregates into the model's numeric feature columns (log scales, codes).

    Features built on a column in ``absent`` (see :data:`REQUIRES`) are null.
    """
    n = raw.num_rows

    def col(name: str, fill: float = 0.0) -> np.ndarray:
        arr = raw.column(name).to_numpy(zero_copy_only=False)
        out = np.asarray(arr, dtype=np.float64)
        return np.where(np.isnan(out), fill, out)

    feats: dict[str, np.ndarray] = {}
    n_ex = col("n_exchanges")
    feats["log_exchanges"] = np.log10(np.maximum(n_ex, 1))
    feats["active_days"] = col("active_days")
    feats["active_hours"] = col("active_hours")
    feats["log_rate_per_active_hour"] = np.log10(np.maximum(n_ex / np.maximum(
        col("active_hours"), 1), 1))
    shares = []
    for c in CAPABILITY_COLUMNS:
        feats[f"share_{c}"] = col(f"share_{c}")
        shares.append(feats[f"share_{c}"])
    feats["cap_concentration"] = np.max(np.vstack(shares), axis=0) if n else np.zeros(0)
    for name in ("share_cot", "share_rubric", "share_rewrite_ask", "share_elicit",
                 "share_harvest_like", "content_crowd", "top_template_share",
                 "template_specificity", "share_single_turn", "share_tools", "share_image",
                 "reasoning_share", "share_max_tokens_hit", "hour_entropy", "gap_cv",
                 "daily_cv", "share_newest_model", "share_not_ok",
                 "max_payment_sharers", "max_ip_sharers"):
        feats[name] = col(name)
    feats["mean_messages"] = col("mean_messages", 1.0)
    feats["distinct_content_ratio"] = col("n_distinct_content") / np.maximum(n_ex, 1)
    feats["log_distinct_content"] = np.log10(np.maximum(col("n_distinct_content"), 1))
    feats["log_mean_output"] = np.log10(np.maximum(col("mean_output"), 1))
    feats["log_mean_max_tokens"] = np.log10(np.maximum(col("mean_max_tokens"), 1))
    # no release in the window (or never used) -> a large sentinel: "did not rush to adopt"
    feats["adoption_delay_hours"] = col("adoption_delay_hours", 1e4)
    first = raw.column("first_seen").to_numpy(zero_copy_only=False)
    created = raw.column("account_created_at").to_numpy(zero_copy_only=False)
    age = np.full(n, -1.0)
    in_window = np.zeros(n)
    if n:
        f = first.astype("datetime64[us]").astype(np.int64)
        c_mask = ~np.isnat(created.astype("datetime64[us]"))
        c = created.astype("datetime64[us]").astype(np.int64)
        age = np.where(c_mask, (f - c) / 86_400e6, -1.0)
        if window_start is not None:
            ws = int(window_start.timestamp() * 1_000_000)  # type: ignore[attr-defined]
            in_window = np.where(c_mask & (c >= ws), 1.0, 0.0)
    feats["account_age_days"] = age
    feats["created_in_window"] = in_window
    verified = raw.column("verified_any").to_pylist()
    feats["verified"] = np.array([-1.0 if v is None else float(v) for v in verified])
    types = raw.column("account_type").to_pylist()
    feats["account_type_code"] = np.array([float(ACCOUNT_TYPE_CODES.get(t, 7)) if t else -1.0
                                           for t in types])
    paths = raw.column("pathway").to_pylist()
    feats["pathway_code"] = np.array([_pathway_code(p) for p in paths])
    n_hard = col("n_harvest_like")
    feats["log_harvest_like"] = np.log10(np.maximum(n_hard, 1))
    feats["log_distinct_hard"] = np.log10(np.maximum(col("n_distinct_hard"), 1))
    feats["log_harvest_output"] = np.log10(np.maximum(col("harvest_output_tokens"), 1))
    feats["log_ips"] = np.log10(np.maximum(col("n_ips"), 1))
    feats["log_client_fps"] = np.log10(np.maximum(col("n_client_fps"), 1))
    gone = set(absent)
    # an account without any address (or client) of its own in a log that records them, e.g.
    # one only ever seen behind a shared hop (features.hops), has those features unknown too
    unknown_for = {c: col(count) == 0 for c, count in PER_ACCOUNT_COUNTS.items()}
    out = raw
    for name in FEATURES:
        values = feats[name].astype(np.float64)
        needs = REQUIRES.get(name, ())
        if gone.intersection(needs):
            values = np.full(n, np.nan)
        for c in set(needs) & set(unknown_for):
            values = np.where(unknown_for[c], np.nan, values)
        arr = pa.array(values, mask=np.isnan(values))
        if name in out.schema.names:
            out = out.set_column(out.schema.get_field_index(name), name, arr)
        else:
            out = out.append_column(name, arr)
    return out


def _pathway_code(p: str | None) -> float:
    if p is None:
        return -1.0
    if p == "direct":
        return 0.0
    if p.startswith("cloud:"):
        return 1.0
    if p.startswith("reseller:"):
        return 2.0
    return 3.0


#: decimals kept in the model's feature matrix (far below any meaningful difference)
FEATURE_DECIMALS = 9


def feature_matrix(table: pa.Table) -> np.ndarray:
    """The (accounts x FEATURES) float matrix, in the fixed order the model expects.

    Rounded to :data:`FEATURE_DECIMALS`: DuckDB's parallel float aggregates differ in the last
    bits from run to run (up to ~1e-14 in the timing and crowd features), which was enough to
    move booster split thresholds, so training on the same worlds gave different model files.
    """
    if table.num_rows == 0:
        return np.zeros((0, len(FEATURES)))
    return np.round(np.column_stack([
        np.asarray(table.column(f).to_numpy(zero_copy_only=False), dtype=np.float64)
        for f in FEATURES
    ]), FEATURE_DECIMALS)
