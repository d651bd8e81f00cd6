"""Evaluation metrics, exchange weighting, replay time-to-detect and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from antidistill.cli import app
from antidistill.evaluate import evaluate_dir, evaluate_tables, time_to_detect
from test_detect_world import detected, trained  # noqa: F401


def test_metrics_by_hand() -> None:
    accounts = pa.table({"account_id": ["a", "b", "c", "d", "e"],
                         "flagged": [True, False, True, False, False],
                         "cluster_id": ["K1", None, "K1", None, None],
                         "campaign_id": ["C1", None, "C1", None, None],
                         "risk": [0.9, 0.1, 0.8, 0.2, 0.1], "n_exchanges": [90, 10, 50, 5, 5]})
    labels = pa.table({"account_id": ["a", "b", "c", "d", "e"],
                       "population": ["x", "x", "students", "students", "chat"],
                       "campaign": ["A", "A", None, None, None]})
    r = evaluate_tables(accounts, None, labels)
    assert r["recall"] == 0.5 and r["precision"] == 0.5
    assert abs(r["fpr"] - 1 / 3) < 1e-9
    assert r["fpr_per_population"]["students"]["fpr"] == 0.5
    assert r["exchange_weighted_recall"] == 0.9
    r2 = evaluate_tables(accounts, None, labels, attack_counts={"a": 10, "b": 10})
    assert r2["exchange_weighted_recall"] == 0.5
    # reliability: bins 0.1-0.2 (b, e: 1 of 2 campaign), 0.2-0.3 (d: 0), 0.8-0.9 (c: 0),
    # 0.9-1.0 (a: 1); ECE = (2*|0.5-0.1| + |0-0.2| + |0-0.8| + |1-0.9|) / 5
    assert [d["bin"] for d in r["calibration"]] == ["0.1-0.2", "0.2-0.3", "0.8-0.9", "0.9-1.0"]
    assert r["calibration"][0] == {"bin": "0.1-0.2", "accounts": 2, "mean_risk": 0.1,
                                   "campaign_share": 0.5}
    assert abs(r["ece"] - (0.8 + 0.2 + 0.8 + 0.1) / 5) < 1e-9


def test_unflagged_account_counts_as_its_own_campaign() -> None:
    # an unflagged campaign account that carries a campaign id (older outputs put every member
    # of a flagged cluster in the campaign) must not be credited to that campaign
    accounts = pa.table({"account_id": ["a", "b", "c"], "flagged": [True, True, False],
                         "cluster_id": ["K1", "K1", "K1"], "campaign_id": ["C1", "C1", "C1"],
                         "risk": [0.9, 0.9, 0.3]})
    labels = pa.table({"account_id": ["a", "b", "c"], "population": ["x", "x", "x"],
                       "campaign": ["A", "A", "A"]})
    r = evaluate_tables(accounts, None, labels)
    assert r["ari_campaign"] < 1.0 and r["ari_cluster"] == 1.0


def test_evaluate_dir_and_cli(detected: Path, trained: dict) -> None:  # noqa: F811
    labels = trained["world"] / "labels.parquet"
    r = evaluate_dir(detected, labels)
    assert r["recall"] == 1.0 and r["false_positives"] == 0 and r["ari_campaign"] == 1.0
    assert json.loads((detected / "evaluation.json").read_text())["recall"] == 1.0
    res = CliRunner().invoke(app, ["evaluate", str(detected), "--labels", str(labels)])
    assert res.exit_code == 0, res.output
    assert "Legitimate populations" in res.output


def test_replay_time_to_detect(trained: dict, tmp_path: Path) -> None:  # noqa: F811
    world = trained["world"]
    labels = pq.read_table(world / "labels.parquet")
    import antidistill.detect as det

    orig = det.detect

    def with_model(*a, **kw):  # type: ignore[no-untyped-def]
        kw.setdefault("model_path", trained["model"])
        return orig(*a, **kw)

    det.detect = with_model  # type: ignore[assignment]
    try:
        r = time_to_detect([world / "exchanges.parquet"], labels, work=tmp_path, step_hours=24)
    finally:
        det.detect = orig  # type: ignore[assignment]
    c = r["campaigns"]["A-hydra"]
    assert c["detected_at"] is not None and c["hours"] <= 48
    assert r["steps"][0]["until"] < r["steps"][-1]["until"] or len(r["steps"]) == 1
