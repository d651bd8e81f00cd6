"""Flagged clusters → campaigns, with timelines, model pivots and MITRE ATLAS techniques.

A campaign is one operation: flagged clusters (and flagged unclustered accounts) are joined when
coordination evidence crosses between them strongly enough (the same payment instruments,
templates, synchronised activity… that built the clusters, summed across the cut and normalised
by the smaller side). Timelines and pivots are SQL over the staged ``ex`` table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from antidistill.campaigns.resolve import resolve
from antidistill.features.accounts import HARVEST_LIKE_SQL

#: a pivot is reported when at least this share of harvesting moved to the new model
PIVOT_MIN_SHARE = 0.1

ATLAS = {
    "AML.T0024.002": "Exfiltration via AI Inference API: Extract AI Model",
    "AML.T0005.001": "Create Proxy AI Model: Train Proxy via Replication",
    "AML.T0021": "Establish Accounts",
    "AML.T0008.005": "Acquire Infrastructure: AI Service Proxies",
}


@dataclass
class Campaigns:
    """Account → campaign assignment and the campaigns.json records."""

    campaign_of: dict[str, str]
    cluster_campaign: dict[str, str]
    records: list[dict[str, Any]] = field(default_factory=list)


def build_campaigns(
    con: duckdb.DuckDBPyConnection,
    accounts: pa.Table,
    members: dict[str, list[str]],
    edges: pa.Table,
    *,
    models: pa.Table | None = None,
    absent: Sequence[str] = (),
) -> Campaigns:
    """Group flagged accounts into campaigns and describe each one.

    ``accounts`` needs account_id, flagged, cluster_id, risk, harvest_share, pathway,
    created_in_window, n_exchanges. ``absent``: the log's columns without any value, or without one
    for a large share of its accounts (see :func:`antidistill.campaigns.resolve.resolve`).
    """
    acc_ids = accounts.column("account_id").to_pylist()
    flagged = [a for a, f in zip(acc_ids, accounts.column("flagged").to_pylist(), strict=True)
               if f]
    groups, cluster_group = resolve(flagged, members, edges, template_usage(con, flagged),
                                    private_infrastructure(con, flagged), absent=absent)
    campaign_of: dict[str, str] = {}
    for i, group in enumerate(groups):
        for acc in group:
            campaign_of[acc] = f"C{i + 1:03d}"
    cluster_campaign = {cid: f"C{int(g) + 1:03d}" for cid, g in cluster_group.items()}
    result = Campaigns(campaign_of, cluster_campaign)
    if campaign_of:
        result.records = _describe(con, accounts, campaign_of, cluster_campaign, models)
    return result


def template_usage(con: duckdb.DuckDBPyConnection, flagged: list[str]) -> pa.Table:
    """(account_id, template_hash, diversity) for templates used by flagged accounts only.

    ``diversity``: the template's distinct contents per user, at most 1. A pipeline's scaffold
    wraps the many items its accounts split (about 1); a prompt that hundreds of accounts sent
    word for word (a public dataset item under a stock instruction, which at that count the
    scaffold extraction takes for a template) is near 0: an item two operations can share.
    """
    if not flagged:
        return pa.table({"account_id": pa.array([], pa.string()),
                         "template_hash": pa.array([], pa.uint64()),
                         "diversity": pa.array([], pa.float64())})
    con.register("_flag", pa.table({"account_id": flagged}))
    usage = con.sql("""
      WITH u AS (SELECT DISTINCT template_hash, account_id FROM ex
                 WHERE template_hash IS NOT NULL),
      private AS (SELECT template_hash FROM u LEFT JOIN _flag f USING (account_id)
                  GROUP BY 1 HAVING bool_and(f.account_id IS NOT NULL)),
      d AS (SELECT template_hash,
                   least(1.0, count(DISTINCT content_hash) / count(DISTINCT account_id))
                     AS diversity
            FROM ex WHERE template_hash IN (SELECT template_hash FROM private) GROUP BY 1)
      SELECT u.account_id, u.template_hash, d.diversity::DOUBLE AS diversity
      FROM u JOIN d USING (template_hash)
      ORDER BY 2, 1
    """).to_arrow_table()
    con.unregister("_flag")
    return usage


#: identity infrastructure whose users are (almost) all flagged is the operation's own, however
#: many accounts share it: (kind, channel of :mod:`campaigns.resolve`, SQL expression)
PRIVATE_KEYS = (("payment", "billing", "payment_fp"), ("ip", "network", "ip"),
                ("client", "client", "client_fp"))
#: share of a key's accounts that must be flagged for it to count as private
PRIVATE_SHARE = 0.9


def private_infrastructure(con: duckdb.DuckDBPyConnection, flagged: list[str]) -> pa.Table:
    """(account_id, channel, key) for payment instruments, IPs and clients used by >= 2 flagged
    accounts and by flagged accounts for at least ``PRIVATE_SHARE`` of their users (``key``: a
    64-bit hash of kind and value; a hydra's accounts each use hundreds of exit addresses, so
    the table has millions of rows on a 16M-exchange log).

    Linking drops blocks above a per-kind size as public infrastructure (a carrier NAT, a
    reseller's billing), which is right for the whole population but hides a large hydra's own
    proxy egress: 1,000 accounts behind one address of which 999 are flagged is not a NAT.
    """
    empty = pa.table({"account_id": pa.array([], pa.string()),
                      "channel": pa.array([], pa.string()), "key": pa.array([], pa.uint64())})
    columns = {r[0] for r in con.execute("DESCRIBE ex").fetchall()}
    keys = [k for k in PRIVATE_KEYS if k[2] in columns]
    if not flagged or not keys:
        return empty
    con.register("_flag", pa.table({"account_id": flagged}))
    parts = " UNION ALL ".join(
        f"SELECT DISTINCT '{channel}' AS channel, hash('{kind}:' || {expr}) AS key, account_id "
        f"FROM ex WHERE {expr} IS NOT NULL AND {expr} <> ''"
        for kind, channel, expr in keys)
    table = con.sql(f"""
      WITH kv AS ({parts}),
      k AS (SELECT channel, key FROM kv LEFT JOIN _flag f USING (account_id)
            GROUP BY ALL HAVING count(f.account_id) >= 2
              AND count(f.account_id) >= {PRIVATE_SHARE} * count(*))
      SELECT kv.account_id, kv.channel, kv.key FROM kv JOIN k USING (channel, key)
      WHERE kv.account_id IN (SELECT account_id FROM _flag)
      ORDER BY 2, 3, 1
    """).to_arrow_table()
    con.unregister("_flag")
    return table if table.num_rows else empty


def _describe(con: duckdb.DuckDBPyConnection, accounts: pa.Table, campaign_of: dict[str, str],
              cluster_campaign: dict[str, str], models: pa.Table | None) -> list[dict[str, Any]]:
    ids = list(campaign_of)
    con.register("_camp", pa.table({"account_id": ids,
                                    "campaign_id": [campaign_of[a] for a in ids]}))
    summary = con.execute(f"""
      SELECT c.campaign_id, min(e.ts) AS first_seen, max(e.ts) AS last_seen, count(*) AS n,
        sum(CASE WHEN {HARVEST_LIKE_SQL} THEN 1 ELSE 0 END) AS n_harvest,
        count(DISTINCT e.pathway) AS n_pathways, list(DISTINCT e.pathway) AS pathways
      FROM ex e JOIN _camp c USING (account_id) GROUP BY c.campaign_id
    """).fetchall()
    daily = con.execute("""
      SELECT c.campaign_id, strftime(date_trunc('day', e.ts AT TIME ZONE 'UTC'), '%Y-%m-%d'),
        count(*) FROM ex e JOIN _camp c USING (account_id) GROUP BY ALL ORDER BY ALL
    """).fetchall()
    caps = con.execute(f"""
      SELECT c.campaign_id, e.capability, count(*) FROM ex e JOIN _camp c USING (account_id)
      WHERE {HARVEST_LIKE_SQL} OR greatest(e.p_cot, e.p_rubric, e.p_rewrite) >= 0.5
      GROUP BY ALL
    """).fetchall()
    signals = con.execute("""
      SELECT c.campaign_id, avg(CASE WHEN p_cot >= 0.5 THEN 1 ELSE 0 END),
        avg(CASE WHEN p_rubric >= 0.5 THEN 1 ELSE 0 END),
        avg(CASE WHEN p_rewrite >= 0.5 THEN 1 ELSE 0 END)
      FROM ex e JOIN _camp c USING (account_id) GROUP BY 1
    """).fetchall()
    pivots = model_pivots(con, models)
    con.unregister("_camp")
    acc_rows = {r["account_id"]: r for r in accounts.select(
        [c for c in ("account_id", "cluster_id", "harvest_share", "created_in_window", "risk")
         if c in accounts.schema.names]).to_pylist()}
    by_camp: dict[str, list[str]] = {}
    for acc, camp in campaign_of.items():
        by_camp.setdefault(camp, []).append(acc)
    records: list[dict[str, Any]] = []
    for camp_id, first, last, n, n_h, n_path, pathways in sorted(summary):
        accs = sorted(by_camp[camp_id])
        cap_counts = {cap or "other": int(k) for cid, cap, k in caps if cid == camp_id}
        total_caps = max(sum(cap_counts.values()), 1)
        cot, rubric, rewrite = next(((x, y, z) for cid, x, y, z in signals if cid == camp_id),
                                    (0.0, 0.0, 0.0))
        targeted = sorted((c for c, k in cap_counts.items() if k / total_caps >= 0.05),
                          key=lambda c: -cap_counts[c])
        if cot >= 0.05:
            targeted.append("chain-of-thought elicitation")
        if rubric >= 0.05:
            targeted.append("rubric grading / reward model")
        if rewrite >= 0.05:
            targeted.append("censorship-safe rewrites")
        shares = [float(acc_rows[a].get("harvest_share") or 0) for a in accs if a in acc_rows]
        created = [(acc_rows.get(a) or {}).get("created_in_window") for a in accs]
        # null when the log records no creation dates: unknown, not zero
        new_accounts = (None if all(c is None for c in created)
                        else sum(1 for c in created if c))
        clusters = sorted(k for k, v in cluster_campaign.items() if v == camp_id)
        record: dict[str, Any] = {
            "campaign_id": camp_id,
            "n_accounts": len(accs),
            "exchanges": int(n),
            "harvest_exchanges": int(n_h),
            "first_seen": _iso(first),
            "last_seen": _iso(last),
            "capabilities": targeted,
            "capability_mix": {c: round(k / total_caps, 4) for c, k in sorted(
                cap_counts.items(), key=lambda kv: -kv[1])},
            "daily_volume": {d: int(k) for cid, d, k in daily if cid == camp_id},
            "pathways": sorted(p for p in (pathways or []) if p),
            "mean_harvest_share": round(float(np.mean(shares)) if shares else 0.0, 4),
            "accounts_created_in_window": new_accounts,
            "clusters": clusters,
            "accounts": accs,
            "risk": round(float(np.mean([float(acc_rows[a]["risk"]) for a in accs
                                         if a in acc_rows] or [0.0])), 4),
        }
        record["model_pivots"] = [dict(p) for p in pivots.get(camp_id, [])]
        record["atlas"] = _atlas(record, int(n_path))
        records.append(record)
    records.sort(key=lambda r: (-r["exchanges"], r["campaign_id"]))
    return records


def model_pivots(con: duckdb.DuckDBPyConnection,
                 models: pa.Table | None) -> dict[str, list[dict[str, Any]]]:
    """Per campaign: share of its harvesting moved to each model released in the window.

    Without a release table, a model first seen in the log more than a day after it starts is
    treated as released at its first sighting.
    """
    if models is not None and models.num_rows:
        con.register("_rel", models.select(["model", "released_at"]))
        releases = con.execute("""
          SELECT model, released_at FROM _rel WHERE released_at IS NOT NULL
            AND released_at > (SELECT min(ts) FROM ex) AND released_at < (SELECT max(ts) FROM ex)
        """).fetchall()
        con.unregister("_rel")
    else:
        releases = con.execute("""
          WITH f AS (SELECT model, min(ts) AS first FROM ex GROUP BY model)
          SELECT model, first FROM f
          WHERE first > (SELECT min(ts) FROM ex) + INTERVAL 1 DAY
        """).fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for model, released in releases:
        con.execute("SET VARIABLE pivot_model = ?", [model])
        con.execute("SET VARIABLE pivot_at = ?", [released])
        rows = con.execute(f"""
          WITH h AS (
            SELECT c.campaign_id, e.ts, e.model = getvariable('pivot_model') AS on_new
            FROM ex e JOIN _camp c USING (account_id)
            WHERE e.ts >= getvariable('pivot_at') AND {HARVEST_LIKE_SQL}
          ), hourly AS (
            SELECT campaign_id,
              floor((epoch(ts) - epoch(getvariable('pivot_at'))) / 3600) AS hr,
              avg(CASE WHEN on_new THEN 1 ELSE 0 END) AS share FROM h GROUP BY ALL
          ), tot AS (
            SELECT campaign_id, avg(CASE WHEN on_new THEN 1 ELSE 0 END) AS share_after,
              avg(CASE WHEN on_new AND ts < getvariable('pivot_at') + INTERVAL 1 DAY THEN 1
                  WHEN ts < getvariable('pivot_at') + INTERVAL 1 DAY THEN 0 END) AS share_24h,
              min(CASE WHEN on_new THEN ts END) AS first_use
            FROM h GROUP BY 1
          )
          SELECT t.campaign_id, t.share_after, t.share_24h, t.first_use,
            (SELECT min(hr) FROM hourly x WHERE x.campaign_id = t.campaign_id
               AND x.share >= 0.5 * t.share_after) AS hours_to_half
          FROM tot t
        """).fetchall()
        for camp, share_after, share_24h, first_use, hours_half in rows:
            if share_after is None or share_after < PIVOT_MIN_SHARE or first_use is None:
                continue
            delay = (first_use - released).total_seconds() / 3600.0
            out.setdefault(camp, []).append({
                "model": model,
                "released_at": _iso(released),
                "first_use": _iso(first_use),
                "adoption_delay_hours": round(delay, 2),
                "share_moved": round(float(share_after), 4),
                "share_moved_first_24h": round(float(share_24h or 0.0), 4),
                "hours_to_half_of_final_share": None if hours_half is None else float(hours_half),
                "text": (f"moved {100 * share_after:.0f}% of its harvesting to {model}, first "
                         f"use {delay:.1f} h after release"),
            })
    return out


def _atlas(record: dict[str, Any], n_pathways: int) -> list[dict[str, str]]:
    """ATLAS techniques the observed behaviour supports, each with the evidence for it."""
    out = [
        {"id": "AML.T0024.002", "name": ATLAS["AML.T0024.002"],
         "why": f"{record['harvest_exchanges']:,} harvest-like exchanges collected via the API"},
        {"id": "AML.T0005.001", "name": ATLAS["AML.T0005.001"],
         "why": "outputs harvested at dataset scale are training data for a replica (inferred)"},
    ]
    if record["n_accounts"] >= 3 or record["accounts_created_in_window"]:
        out.append({"id": "AML.T0021", "name": ATLAS["AML.T0021"],
                    "why": f"{record['n_accounts']} coordinated accounts"
                           + ("" if record["accounts_created_in_window"] is None else
                              f", {record['accounts_created_in_window']} opened in the window")})
    resold = [p for p in record["pathways"] if p.startswith("reseller:")]
    if resold or record["mean_harvest_share"] < 0.8 or n_pathways >= 3:
        out.append({"id": "AML.T0008.005", "name": ATLAS["AML.T0008.005"],
                    "why": "traffic through resellers/several pathways or proxy accounts mixing "
                           f"harvesting with ordinary traffic (mean harvest share "
                           f"{record['mean_harvest_share']:.2f})"})
    return out


def _iso(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)
