"""Coordination signals between accounts, as weighted pairs (SQL blocks + one sparse product).

Every signal is blocked by a shared key so the pair work stays bounded: accounts are only ever
compared inside a block (same payment instrument, same /24, same specific template, same content
family, same creation hour), blocks larger than ``ALL_PAIRS_MAX`` are chained (each account linked
to its next few neighbours in a hashed order, which keeps them connected for community detection
without k² pairs) and blocks larger than the per-kind cap are dropped as shared public
infrastructure (carrier NATs, popular SDKs, generic templates). Synchronised activity is the one
signal computed as a sparse matrix product, over candidate accounts only.

Weights are in [0, 1] per kind; a pair's total is the sum over kinds.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
from scipy import sparse

#: Kinds of evidence, in the order they are reported.
KINDS = ("payment", "ip", "subnet", "asn", "client", "template", "family", "split", "sync",
         "volume", "creation")

ALL_PAIRS_MAX = 64
#: a template links two accounts only if each uses it this often (one shared popular prompt
#: is a coincidence, a scaffold is reused)
MIN_TEMPLATE_USES = 3
CHAIN_NEIGHBOURS = 3


@dataclass(frozen=True)
class InfraKey:
    """How one kind of shared infrastructure is damped: ``base / (1 + log2(k / free))``."""

    kind: str
    expr: str
    base: float
    free: int  # sharers up to which there is no damping
    cap: int  # blocks larger than this are public infrastructure and ignored


INFRA_KEYS = (
    InfraKey("payment", "payment_fp", 1.0, 8, 2000),
    InfraKey("ip", "ip", 0.5, 3, 400),
    InfraKey("subnet", "regexp_extract(ip, '^(\\d+\\.\\d+\\.\\d+)\\.', 1)", 0.25, 3, 200),
    InfraKey("asn", "CAST(asn AS VARCHAR)", 0.1, 3, 50),
    InfraKey("client", "client_fp", 0.4, 3, 300),
)
#: infra sharing inside one declared organisation is expected, not evidence
SAME_ORG_DAMPING = 0.1
#: customers of one reseller / cloud marketplace share its egress and billing
SAME_INTERMEDIARY_DAMPING = 0.2


def _block_pairs(src: str, cap: int) -> str:
    """SQL: pairs (a, b, kind, value, k) inside blocks of ``src`` (kind, value, account_id).

    Blocks of at most ``ALL_PAIRS_MAX`` accounts give all pairs; larger blocks (up to ``cap``)
    a chain of each account to its next ``CHAIN_NEIGHBOURS`` in hashed order (equi-joins only, so
    the work is linear in the block size).
    """
    offsets = ", ".join(f"({d})" for d in range(1, CHAIN_NEIGHBOURS + 1))
    return f"""
    WITH blocks AS (
      SELECT kind, value, account_id,
             count(*) OVER (PARTITION BY kind, value) AS k,
             row_number() OVER (PARTITION BY kind, value ORDER BY hash(account_id), account_id)
               AS r
      FROM {src}
    ), small AS (SELECT * FROM blocks WHERE k >= 2 AND k <= {ALL_PAIRS_MAX}),
    large AS (SELECT * FROM blocks WHERE k > {ALL_PAIRS_MAX} AND k <= {cap})
    SELECT a.account_id AS a, b.account_id AS b, a.kind, a.value, a.k
    FROM small a JOIN small b ON a.kind = b.kind AND a.value = b.value AND a.r < b.r
    UNION ALL
    SELECT a.account_id, b.account_id, a.kind, a.value, a.k
    FROM (SELECT large.*, (large.r + o.d - 1) % large.k + 1 AS r2
          FROM large, (VALUES {offsets}) o(d)) a
    JOIN large b ON a.kind = b.kind AND a.value = b.value AND a.r2 = b.r
    """


def build_edges(con: duckdb.DuckDBPyConnection, *, specificity: pa.Table | None = None,
                family_specificity: pa.Table | None = None,
                sync_candidates: int = 20_000) -> pa.Table:
    """Create table ``edges`` (a, b, kind, weight, detail) from ``ex``/``acct``; return pairs.

    Returns one row per account pair with a column per kind and ``weight`` (their sum).
    """
    con.execute("CREATE OR REPLACE TEMP TABLE _edges (a VARCHAR, b VARCHAR, kind VARCHAR, "
                "weight DOUBLE)")
    con.execute("""CREATE OR REPLACE TEMP TABLE _org AS
                   SELECT account_id, any_value(org_id) AS org_id,
                     any_value(CASE WHEN pathway <> 'direct' THEN pathway END) AS via
                   FROM ex GROUP BY 1""")
    # -- shared infrastructure ---------------------------------------------------------------
    con.execute("CREATE OR REPLACE TEMP TABLE _keyval (kind VARCHAR, value VARCHAR, "
                "account_id VARCHAR)")
    for key in INFRA_KEYS:
        con.execute(f"""INSERT INTO _keyval SELECT DISTINCT '{key.kind}', {key.expr}, account_id
                        FROM ex WHERE {key.expr} IS NOT NULL AND {key.expr} <> ''""")
    for key in INFRA_KEYS:
        con.execute(f"""
        INSERT INTO _edges
        SELECT p.a, p.b, p.kind,
          least(1.0, sum({key.base} / (1 + log2(greatest(p.k, {key.free}) / {key.free}))
            * CASE WHEN oa.org_id IS NOT NULL AND oa.org_id = ob.org_id
                   THEN {SAME_ORG_DAMPING}
                   WHEN oa.via IS NOT NULL AND oa.via = ob.via
                   THEN {SAME_INTERMEDIARY_DAMPING} ELSE 1 END))
        FROM ({_block_pairs(f"(SELECT * FROM _keyval WHERE kind = '{key.kind}')", key.cap)}) p
        JOIN _org oa ON oa.account_id = p.a JOIN _org ob ON ob.account_id = p.b
        GROUP BY p.a, p.b, p.kind
        """)
    # -- shared specific templates / families ------------------------------------------------
    for kind, column, spec in (("template", "template_hash", specificity),
                               ("family", "hash(family_id)", family_specificity)):
        if spec is None or spec.num_rows == 0:
            continue
        con.register("_kspec", spec.select(["template_hash", "specificity"]))
        con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _kv AS
          SELECT '{kind}' AS kind, CAST({column} AS VARCHAR) AS value, account_id
          FROM ex WHERE {column} IS NOT NULL AND template_hash IS NOT NULL
          GROUP BY ALL HAVING count(*) >= {MIN_TEMPLATE_USES};
        INSERT INTO _edges
        SELECT p.a, p.b, p.kind, least(1.0, sum(s.specificity))
        FROM ({_block_pairs("_kv", 400)}) p
        JOIN _kspec s ON CAST(s.template_hash AS VARCHAR) = p.value
        WHERE s.specificity >= 0.5
        GROUP BY p.a, p.b, p.kind
        """)
        con.unregister("_kspec")
    _split_edges(con, family_specificity)
    _creation_edges(con)
    # synchrony and correlated volumes compare the same bounded set of candidates
    con.execute(f"CREATE OR REPLACE TEMP TABLE _cand AS {_candidates_sql(sync_candidates)}")
    _sync_edges(con)
    _volume_edges(con)
    kinds = ", ".join(f"coalesce(max(CASE WHEN kind = '{k}' THEN weight END), 0) AS {k}"
                      for k in KINDS)
    # a scaffold family mostly restates its templates: count the stronger of the two, once
    total = " + ".join(k for k in KINDS if k not in ("template", "family"))
    con.execute(f"""
    CREATE OR REPLACE TABLE edges AS
      SELECT *, least({total} + greatest(template, family), 5.0) AS weight FROM (
        SELECT a, b, {kinds}
        FROM (SELECT least(a, b) AS a, greatest(a, b) AS b, kind, max(weight) AS weight
              FROM _edges WHERE a <> b GROUP BY ALL)
        GROUP BY a, b)
    """)
    return con.sql("SELECT * FROM edges ORDER BY a, b").to_arrow_table()


def _split_edges(con: duckdb.DuckDBPyConnection, family_specificity: pa.Table | None) -> None:
    """Accounts that cover one content family between them with (almost) no repeats.

    A dataset split across a hydra shows up as several accounts each asking many distinct
    problems of the same specific scaffold family, with near-zero overlap between their problem
    sets; evaluation runners of a public benchmark overlap heavily instead, and students ask a
    handful of problems each. Only specific families count (a generic "solve this" wrapper used
    by everybody says nothing), weighted by the family's specificity.
    """
    if family_specificity is None or family_specificity.num_rows == 0:
        return
    con.register("_fspec", family_specificity.select(["template_hash", "specificity"]))
    con.execute("""
    CREATE OR REPLACE TEMP TABLE _fc AS
      SELECT family_id, account_id, count(DISTINCT content_hash) AS n
      FROM ex WHERE family_id IS NOT NULL AND content_hash IS NOT NULL
        AND hash(family_id) IN (
          SELECT template_hash FROM _fspec WHERE specificity >= 0.5)
      GROUP BY ALL HAVING count(DISTINCT content_hash) >= 10;
    CREATE OR REPLACE TEMP TABLE _fcv AS
      SELECT 'split' AS kind, CAST(family_id AS VARCHAR) AS value, account_id FROM _fc;
    """)
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE _split_pairs AS
      SELECT p.a, p.b, CAST(p.value AS BIGINT) AS family_id FROM ({_block_pairs("_fcv", 400)}) p;
    CREATE OR REPLACE TEMP TABLE _split_overlap AS
      WITH ac AS (
        SELECT DISTINCT e.family_id, e.account_id, e.content_hash FROM ex e
        JOIN (SELECT DISTINCT family_id, a AS account_id FROM _split_pairs
              UNION SELECT DISTINCT family_id, b FROM _split_pairs) s
          USING (family_id, account_id)
      )
      SELECT x.family_id, x.account_id AS a, y.account_id AS b, count(*) AS shared
      FROM ac x JOIN ac y ON x.family_id = y.family_id AND x.content_hash = y.content_hash
        AND x.account_id < y.account_id
      GROUP BY ALL;
    INSERT INTO _edges
      SELECT p.a, p.b, 'split',
        0.6 * least(1.0, least(fa.n, fb.n) / 50.0) * s.specificity
      FROM _split_pairs p
      JOIN _fspec s ON s.template_hash = hash(p.family_id)
      JOIN _fc fa ON fa.family_id = p.family_id AND fa.account_id = p.a
      JOIN _fc fb ON fb.family_id = p.family_id AND fb.account_id = p.b
      LEFT JOIN _split_overlap o ON o.family_id = p.family_id
        AND o.a = least(p.a, p.b) AND o.b = greatest(p.a, p.b)
      WHERE coalesce(o.shared, 0) <= 0.02 * least(fa.n, fb.n);
    """)
    con.unregister("_fspec")


def _creation_edges(con: duckdb.DuckDBPyConnection) -> None:
    """Accounts opened in the same hour when that hour is a burst (>= 3 and >= 5x the norm)."""
    con.execute("""
    CREATE OR REPLACE TEMP TABLE _created AS
      SELECT account_id, date_trunc('hour', min(account_created_at)) AS h FROM ex
      WHERE account_created_at IS NOT NULL GROUP BY account_id;
    CREATE OR REPLACE TEMP TABLE _burst AS
      WITH c AS (SELECT h, count(*) AS n FROM _created GROUP BY h),
      rate AS (SELECT count(*)::DOUBLE / greatest(1, (epoch(max(h)) - epoch(min(h))) / 3600.0)
               AS r FROM _created)
      SELECT h FROM c, rate WHERE n >= 3 AND n >= 5 * r;
    CREATE OR REPLACE TEMP TABLE _cv AS
      SELECT 'creation' AS kind, CAST(h AS VARCHAR) AS value, account_id
      FROM _created WHERE h IN (SELECT h FROM _burst);
    """)
    con.execute(f"INSERT INTO _edges SELECT a, b, kind, 0.3 FROM ({_block_pairs('_cv', 500)})")


def _candidates_sql(max_candidates: int) -> str:
    """SQL: accounts with some harvest-like activity (>= 5 exchanges), the busiest first."""
    from antidistill.features.accounts import HARVEST_LIKE_SQL

    return f"""
      SELECT account_id FROM ex GROUP BY account_id
      HAVING sum(CASE WHEN {HARVEST_LIKE_SQL} THEN 1 ELSE 0 END) >= 5
      ORDER BY sum(CASE WHEN {HARVEST_LIKE_SQL} THEN 1 ELSE 0 END) DESC, account_id
      LIMIT {int(max_candidates)}"""


#: volume bins (hours) that divide a day; the finest that keeps at most VOLUME_MAX_BINS
_BIN_HOURS = (1, 2, 3, 4, 6, 8, 12)
VOLUME_MAX_BINS = 336
#: correlation of schedule changes from which accounts count as fed by one queue
VOLUME_MIN_CORR = 0.6
#: ... supported by this many bins where both are active, of this many active bins each
VOLUME_MIN_COACTIVE = 6
VOLUME_MIN_ACTIVE = 12
#: partners kept per account (the most correlated)
VOLUME_NEIGHBOURS = 8


def _volume_edges(con: duckdb.DuckDBPyConnection) -> None:
    """Correlated volumes: accounts whose day-to-day changes of schedule coincide.

    Each candidate's volume per (day, hour-of-day bin) is compared with what its own habits
    predict, ``total x share of its volume on that day x share at that hour of day``; the
    residual is the part of its schedule that changes from day to day (work blocks at other
    hours each day, a ramp, a pause). Office workers, students and 24/7 jobs repeat their
    shape, so their residuals are noise and uncorrelated between accounts, whatever their
    timezone or weekend habits; accounts fed by one job queue change shape together. An edge
    needs a Pearson correlation >= ``VOLUME_MIN_CORR`` over the window, with at least
    ``VOLUME_MIN_ACTIVE`` active bins each and ``VOLUME_MIN_COACTIVE`` in common (two
    benchmark runs started in the same hour are one burst, not a schedule).
    """
    span = con.sql("SELECT min(epoch(ts)), max(epoch(ts)) FROM ex").fetchall()[0]
    if span[0] is None:
        return
    hours = int((span[1] - span[0]) // 3600) + 2
    # at least two bins a day (a day's shape is what is compared)
    width = next((w for w in _BIN_HOURS if hours / w <= VOLUME_MAX_BINS), _BIN_HOURS[-1])
    t0 = int(span[0] // 86400) * 86400  # bins start at midnight UTC
    rows = con.sql(f"""
      SELECT account_id, CAST((epoch(ts) - {t0}) // {3600 * width} AS BIGINT) AS bin,
        count(*) AS n
      FROM ex WHERE account_id IN (SELECT account_id FROM _cand)
      GROUP BY ALL""").to_arrow_table()
    if rows.num_rows == 0:
        return
    acc, acc_idx = np.unique(rows.column("account_id").to_numpy(zero_copy_only=False),
                             return_inverse=True)
    per_day = 24 // width
    bins = rows.column("bin").to_numpy()
    n_days = int(bins.max()) // per_day + 1
    x = np.zeros((len(acc), n_days, per_day), dtype=np.float32)
    x[acc_idx.ravel(), bins // per_day, bins % per_day] = rows.column("n").to_numpy()
    total = x.sum(axis=(1, 2))
    active = (x > 0).reshape(len(acc), -1)
    keep = (active.sum(axis=1) >= VOLUME_MIN_ACTIVE) & (total > 0)
    if keep.sum() < 2:
        return
    acc, x, total, active = acc[keep], x[keep], total[keep], active[keep]
    expected = (x.sum(axis=2, keepdims=True) * x.sum(axis=1, keepdims=True)
                / total[:, None, None])
    r = (x - expected).reshape(len(acc), -1)
    r -= r.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(r, axis=1)
    ok = norm > 0
    if ok.sum() < 2:  # a schedule that never changes (or one account) correlates with nothing
        return
    acc, r, active = acc[ok], r[ok] / norm[ok, None], active[ok].astype(np.float32)
    out_a: list[np.ndarray] = []
    out_b: list[np.ndarray] = []
    out_w: list[np.ndarray] = []
    step = 500  # rows per block: correlations, co-activity and the partner ranking in memory
    for start in range(0, len(acc), step):
        corr = r[start:start + step] @ r.T
        co = active[start:start + step] @ active.T
        corr[(co < VOLUME_MIN_COACTIVE) | (corr < VOLUME_MIN_CORR)] = -1.0
        corr[np.arange(len(corr)), np.arange(start, start + len(corr))] = -1.0  # self
        # each account's few most correlated partners: a queue of 1,500 accounts stays one
        # connected group without a million pairs
        k = min(VOLUME_NEIGHBOURS, corr.shape[1] - 1)
        top = np.argpartition(-corr, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((0, 0), int)
        li = np.repeat(np.arange(len(corr)), top.shape[1])
        j = top.ravel()
        c = corr[li, j]
        keep = c >= VOLUME_MIN_CORR
        out_a.append(li[keep] + start)
        out_b.append(j[keep])
        out_w.append(0.5 * np.minimum(1.0, (c[keep] - 0.5) / 0.4))
    ia, ib, w = np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_w)
    if len(ia) == 0:
        return
    con.register("_volume", pa.table({
        "a": pa.array(acc[ia], pa.string()), "b": pa.array(acc[ib], pa.string()),
        "kind": pa.array(["volume"] * len(ia), pa.string()),
        "weight": pa.array(w.astype(np.float64))}))
    con.execute("INSERT INTO _edges SELECT a, b, kind, weight FROM _volume")
    con.unregister("_volume")


def _sync_edges(con: duckdb.DuckDBPyConnection) -> None:
    """SynchroTrap-style synchrony: co-activity in 10-minute buckets far above chance.

    Expected co-activity of two independent accounts follows the global activity profile
    (so two office workers in one timezone are not "synchronised"); an edge needs at least 6
    shared buckets and a lift of at least 4 over that expectation. Only candidates with some
    harvest-like activity are compared (``_cand``: at most ``sync_candidates`` accounts).
    """
    rows = con.sql("""
    SELECT DISTINCT account_id, CAST(epoch(ts) // 600 AS BIGINT) AS bucket
    FROM ex WHERE account_id IN (SELECT account_id FROM _cand)
    """).to_arrow_table()
    if rows.num_rows == 0:
        return
    acc, acc_idx = np.unique(rows.column("account_id").to_numpy(zero_copy_only=False),
                             return_inverse=True)
    profile = con.execute("""
      SELECT CAST(epoch(ts) // 600 AS BIGINT) AS bucket, count(DISTINCT account_id) AS n
      FROM ex GROUP BY 1""").fetchnumpy()
    buckets = rows.column("bucket").to_numpy()
    b0 = int(min(buckets.min(), profile["bucket"].min()))
    n_b = int(max(buckets.max(), profile["bucket"].max())) - b0 + 1
    b_idx = buckets - b0
    x = sparse.csr_matrix((np.ones(len(acc_idx), dtype=np.float32), (acc_idx, b_idx)),
                          shape=(len(acc), n_b))
    deg = np.asarray(x.sum(axis=1)).ravel()
    # the whole population's activity profile: co-activity expected by chance (daily rhythm)
    g = np.zeros(n_b)
    g[np.asarray(profile["bucket"], dtype=np.int64) - b0] = np.asarray(profile["n"], dtype=float)
    # smooth to the hour-of-day profile so the bursts under test do not explain themselves
    hour = ((np.arange(n_b) + b0) % 144) // 6
    per_hour = np.bincount(hour, weights=g, minlength=24) / np.maximum(
        np.bincount(hour, minlength=24), 1)
    g = per_hour[hour]
    g_norm = float((g**2).sum() / max(g.sum(), 1.0) ** 2)
    xt = x.T.tocsc()
    out_a: list[np.ndarray] = []
    out_b: list[np.ndarray] = []
    out_w: list[np.ndarray] = []
    step = 1000
    for start in range(0, len(acc), step):
        block = (x[start:start + step] @ xt).tocoo()
        i = block.row + start
        j = block.col
        keep = (i < j) & (block.data >= 6)
        i, j, co = i[keep], j[keep], block.data[keep]
        expected = deg[i] * deg[j] * g_norm
        lift = co / np.maximum(expected, 1e-9)
        ok = lift >= 4
        frac = co / np.minimum(deg[i], deg[j])
        w = np.minimum(1.0, np.log10(np.maximum(lift, 1.0)) / 2.0) * np.minimum(1.0, frac * 2)
        out_a.append(i[ok])
        out_b.append(j[ok])
        out_w.append(w[ok])
    if not out_a:
        return
    ia, ib, w = np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_w)
    if len(ia) == 0:
        return
    table = pa.table({"a": pa.array(acc[ia], pa.string()), "b": pa.array(acc[ib], pa.string()),
                      "kind": pa.array(["sync"] * len(ia), pa.string()),
                      "weight": pa.array(w.astype(np.float64))})
    con.register("_sync", table)
    con.execute("INSERT INTO _edges SELECT a, b, kind, weight FROM _sync WHERE weight > 0.05")
    con.unregister("_sync")
