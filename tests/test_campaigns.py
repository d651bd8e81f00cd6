"""Campaign grouping, model pivots and ATLAS ids on the detection of a held-out world."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa

import test_detect_world  # noqa: F401
from antidistill.campaigns import ATLAS, model_pivots
from antidistill.campaigns.build import build_campaigns
from antidistill.detect import connect
from test_detect_world import T0


def _ex(con, rows):  # type: ignore[no-untyped-def]
    con.register("_r", pa.Table.from_pylist(rows))
    con.execute("""CREATE OR REPLACE TABLE ex AS SELECT account_id, ts, model, pathway,
      'reasoning' AS capability, 0.9::FLOAT AS p_cot, 0.0::FLOAT AS p_rubric,
      0.0::FLOAT AS p_rewrite, 1 AS n_messages, 0 AS n_tools, NULL::UBIGINT AS template_hash,
      NULL::UBIGINT AS content_hash
      FROM _r""")


def test_pivot_to_a_new_model_is_measured(tmp_path: Path) -> None:
    con = connect(tmp_path)
    release = T0 + timedelta(days=2)
    rows = []
    for h in range(96):
        ts = T0 + timedelta(hours=h)
        for k in range(4):
            new = ts >= release + timedelta(hours=6) and k < 2
            rows.append({"account_id": f"a{k}", "ts": ts, "model": "m2" if new else "m1",
                         "pathway": "direct"})
    _ex(con, rows)
    con.register("_camp", pa.table({"account_id": [f"a{k}" for k in range(4)],
                                    "campaign_id": ["C001"] * 4}))
    models = pa.table({"model": ["m1", "m2"],
                       "released_at": pa.array([None, release], pa.timestamp("us", tz="UTC"))})
    pivots = model_pivots(con, models)["C001"]
    (p,) = pivots
    assert p["model"] == "m2" and 5.9 <= p["adoption_delay_hours"] <= 6.1
    assert 0.4 <= p["share_moved"] <= 0.5
    # without a release table the model is dated at its first sighting
    (q,) = model_pivots(con, None)["C001"]
    assert q["adoption_delay_hours"] == 0.0


def test_clusters_joined_by_cross_evidence(tmp_path: Path) -> None:
    con = connect(tmp_path)
    rows = [{"account_id": a, "ts": T0 + timedelta(minutes=i), "model": "m1",
             "pathway": "reseller:x" if a.startswith("b") else "direct"}
            for i, a in enumerate(["a1", "a2", "b1", "b2", "z1"] * 3)]
    _ex(con, rows)
    accounts = pa.table({"account_id": ["a1", "a2", "b1", "b2", "z1"],
                         "flagged": [True, True, True, True, True],
                         "cluster_id": ["K1", "K1", "K2", "K2", None],
                         "risk": [0.9] * 5, "harvest_share": [1.0, 1.0, 0.5, 0.5, 1.0],
                         "created_in_window": [1.0, 1.0, 0.0, 0.0, 0.0]})
    # a1-b1 and a2-b2: two full links across (payment and IP: corroborated), for units of two
    # -> joined; z1 has 0.5 of one kind only
    # (linking's edge table: a column per evidence kind plus their sum)
    edges = pa.table({"a": ["a1", "a1", "a2", "b1", "a1"], "b": ["a2", "b1", "b2", "b2", "z1"],
                      "payment": [1.0, 0.5, 0.5, 1.0, 0.0], "ip": [0.0, 0.5, 0.5, 0.0, 0.5],
                      "weight": [1.0, 1.0, 1.0, 1.0, 0.5]})
    result = build_campaigns(con, accounts, {"K1": ["a1", "a2"], "K2": ["b1", "b2"]}, edges)
    assert result.campaign_of["a1"] == result.campaign_of["b2"]
    assert result.campaign_of["z1"] != result.campaign_of["a1"]
    big = next(r for r in result.records if r["n_accounts"] == 4)
    ids = {a["id"] for a in big["atlas"]}
    assert "AML.T0008.005" in ids and "AML.T0024.002" in ids
    assert set(ids) <= set(ATLAS)
    assert big["clusters"] == ["K1", "K2"]
