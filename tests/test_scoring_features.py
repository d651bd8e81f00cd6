"""Dilution-robust account features: mixing chat into a harvesting account lowers its shares,
not how much hard, distinct material it collected."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from antidistill.detect import connect
from antidistill.features.accounts import FEATURES, build_account_features

T0 = datetime(2026, 11, 9, tzinfo=UTC)


def _row(i: int, *, hard: bool, content: int) -> dict[str, Any]:
    return {
        "request_id": f"r{i}", "ts": T0 + timedelta(minutes=7 * i), "account_id": "acct",
        "org_id": None, "account_type": "individual", "account_created_at": T0 - timedelta(days=3),
        "verified": False, "pathway": "direct", "payment_fp": "pay", "ip": "10.0.0.1",
        "asn": 64500, "client_fp": "sdk/1", "model": "m1",
        "n_messages": 1 if hard else 4, "n_tools": 0, "has_image": False,
        "input_tokens": 200, "output_tokens": 1500 if hard else 80,
        "reasoning_tokens": 500 if hard else 0, "max_tokens": 4096, "temperature": 0.7,
        "status": "ok", "capability": "reasoning" if hard else "chat",
        "p_cot": 0.9 if hard else 0.0, "p_rubric": 0.0, "p_rewrite": 0.0,
        "template_hash": 7, "content_hash": content, "family_id": None,
    }


def _features(tmp: Path, rows: list[dict[str, Any]]) -> dict[str, float]:
    con = connect(tmp)
    con.register("_r", pa.Table.from_pylist(rows))
    con.execute("""CREATE TABLE ex AS SELECT * REPLACE (
      CAST(template_hash AS UBIGINT) AS template_hash,
      CAST(content_hash AS UBIGINT) AS content_hash,
      CAST(family_id AS BIGINT) AS family_id, CAST(p_cot AS FLOAT) AS p_cot) FROM _r""")
    table = build_account_features(con)
    con.close()
    row = table.to_pylist()[0]
    return {k: math.nan if row[k] is None else float(row[k]) for k in FEATURES}


def test_chat_dilution_keeps_hard_volume_features(tmp_path: Path) -> None:
    hard = [_row(i, hard=True, content=1000 + i) for i in range(40)]
    chat = [_row(100 + i, hard=False, content=i % 5) for i in range(160)]
    pure = _features(tmp_path / "a", hard)
    mixed = _features(tmp_path / "b", hard + chat)
    assert mixed["share_harvest_like"] < 0.3 * pure["share_harvest_like"]
    for name in ("log_harvest_like", "log_distinct_hard", "hard_distinct_ratio",
                 "log_harvest_output"):
        assert abs(mixed[name] - pure[name]) < 1e-9, name
    assert abs(pure["hard_distinct_ratio"] - 1.0) < 1e-9
    assert abs(pure["log_harvest_output"] - math.log10(40 * 2000)) < 1e-9
    # asking the same hard problems again lowers the distinct ratio
    again = _features(tmp_path / "c", hard + [_row(300 + i, hard=True, content=1000 + i)
                                             for i in range(40)])
    assert abs(again["hard_distinct_ratio"] - 0.5) < 1e-9
