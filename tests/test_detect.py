"""End-to-end detection on a held-out hand-built world, the output contract and robustness."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from antidistill.contracts import ACCOUNTS_SCHEMA, CLUSTERS_SCHEMA, read_accounts, read_clusters
from antidistill.detect import detect, parse_until, read_models
from antidistill.errors import InputError
from antidistill.schema import EXCHANGE_SCHEMA
from antidistill.scoring.score import REASONS_MIN_RISK
from test_detect_world import T0, detected, make_world, trained  # noqa: F401


def test_outputs_follow_the_contract(detected: Path) -> None:  # noqa: F811
    acc = read_accounts(detected / "accounts.parquet")
    assert acc.schema.names[: len(ACCOUNTS_SCHEMA)] == ACCOUNTS_SCHEMA.names
    for f in ACCOUNTS_SCHEMA:
        assert acc.schema.field(f.name).type == f.type
    risk = acc.column("risk").to_pylist()
    assert all(0.0 <= r <= 1.0 for r in risk)
    cl = read_clusters(detected / "clusters.parquet")
    assert cl.schema.names[: len(CLUSTERS_SCHEMA)] == CLUSTERS_SCHEMA.names
    camp = json.loads((detected / "campaigns.json").read_text())
    assert camp["meta"]["exchanges"] > 0
    html = (detected / "report.html").read_text()
    assert "<svg" in html and "Campaigns" in html


def test_hydra_is_found_and_legit_users_are_not(detected: Path, trained: dict) -> None:  # noqa: F811
    acc = pq.read_table(detected / "accounts.parquet").to_pylist()
    labels = {r["account_id"]: r["campaign"] for r in
              pq.read_table(trained["world"] / "labels.parquet").to_pylist()}
    hydra = [a for a in acc if labels[a["account_id"]]]
    legit = [a for a in acc if not labels[a["account_id"]]]
    assert all(a["flagged"] for a in hydra)
    assert not any(a["flagged"] for a in legit)
    # the two quiet, 6-request members are flagged with the rest, in one campaign
    quiet = [a for a in hydra if a["n_exchanges"] <= 6]
    assert len(quiet) == 2 and all(a["flagged"] for a in quiet)
    assert len({a["campaign_id"] for a in hydra}) == 1
    # reasons are sentences with numbers for flagged accounts
    assert all(a["reasons"] and any(ch.isdigit() for ch in " ".join(a["reasons"]))
               for a in hydra)
    # ... and none for accounts whose risk is too low to explain
    low = [a for a in legit if a["risk"] < REASONS_MIN_RISK]
    assert low and not any(a["reasons"] for a in low)
    assert all(0.0 <= a["harvest_share"] <= 1.0 for a in acc)


def test_campaign_record(detected: Path) -> None:  # noqa: F811
    camp = json.loads((detected / "campaigns.json").read_text())["campaigns"]
    assert len(camp) == 1
    c = camp[0]
    assert c["n_accounts"] == 12 and c["first_seen"] <= c["last_seen"]
    assert "reasoning" in c["capabilities"]
    assert sum(c["daily_volume"].values()) == c["exchanges"]
    ids = {a["id"] for a in c["atlas"]}
    assert {"AML.T0024.002", "AML.T0021"} <= ids


def test_until_restricts_the_log(trained: dict, tmp_path: Path) -> None:  # noqa: F811
    cut = T0 + timedelta(hours=30)
    res = detect([trained["world"] / "exchanges.parquet"], tmp_path, model_path=trained["model"],
                 until=cut.isoformat(), progress=False, report=False)
    full = pq.read_table(trained["world"] / "exchanges.parquet")
    expected = sum(1 for t in full.column("ts").to_pylist() if t < cut)
    assert res.n_exchanges == expected
    assert max(res.accounts.column("last_seen").to_pylist()) < cut


def test_one_exchange_and_all_optional_null(trained: dict, tmp_path: Path) -> None:  # noqa: F811
    table = pa.table({"ts": pa.array([T0], pa.timestamp("us", tz="UTC")),
                      "account_id": ["solo"], "model": ["m"], "prompt": ["What is 2+2?"]})
    log = tmp_path / "one.parquet"
    pq.write_table(table, log)
    res = detect([log], tmp_path / "out", model_path=trained["model"], progress=False)
    assert res.accounts.num_rows == 1 and res.n_exchanges == 1
    assert res.accounts.column("cluster_id").to_pylist() == [None]
    assert (tmp_path / "out" / "report.html").is_file()


def test_empty_log_fails_clearly(trained: dict, tmp_path: Path) -> None:  # noqa: F811
    log = tmp_path / "empty.parquet"
    pq.write_table(EXCHANGE_SCHEMA.empty_table(), log)
    with pytest.raises(InputError, match="no exchanges"):
        detect([log], tmp_path / "out", model_path=trained["model"], progress=False)


def test_missing_file_and_bad_until(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        detect([tmp_path / "nope.parquet"], tmp_path / "out", progress=False)
    with pytest.raises(InputError, match="ISO-8601"):
        parse_until("yesterday")


def test_one_model_no_release_table(trained: dict, tmp_path: Path) -> None:  # noqa: F811
    world = make_world(tmp_path / "w", seed=9, days=2)
    (world / "models.csv").unlink()
    assert read_models(None, [world / "exchanges.parquet"]) is None
    res = detect([world / "exchanges.parquet"], tmp_path / "out", model_path=trained["model"],
                 progress=False)
    assert res.campaigns and all(c["model_pivots"] == [] for c in res.campaigns)


def test_models_csv_errors(tmp_path: Path) -> None:
    bad = tmp_path / "models.csv"
    bad.write_text("name,when\nx,2026-01-01\n")
    with pytest.raises(InputError, match=r"released_at|model"):
        read_models(bad)
