"""Account features that must not move for the wrong reason: mixing chat into a harvesting
account lowers its shares, not how much hard, distinct material it collected; a bigger log of
the same population leaves the crowd of its prompts where it was."""

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


def _accounts(tmp: Path, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    con = connect(tmp)
    con.register("_r", pa.Table.from_pylist(rows))
    con.execute("""CREATE TABLE ex AS SELECT * REPLACE (
      CAST(template_hash AS UBIGINT) AS template_hash,
      CAST(content_hash AS UBIGINT) AS content_hash,
      CAST(family_id AS BIGINT) AS family_id, CAST(p_cot AS FLOAT) AS p_cot) FROM _r""")
    table = build_account_features(con)
    con.close()
    return {r["account_id"]: r for r in table.to_pylist()}


def _features(tmp: Path, rows: list[dict[str, Any]]) -> dict[str, float]:
    row = _accounts(tmp, rows)["acct"]
    return {k: math.nan if row[k] is None else float(row[k]) for k in FEATURES}


def test_chat_dilution_keeps_hard_volume_features(tmp_path: Path) -> None:
    hard = [_row(i, hard=True, content=1000 + i) for i in range(40)]
    chat = [_row(100 + i, hard=False, content=i % 5) for i in range(160)]
    pure = _features(tmp_path / "a", hard)
    mixed = _features(tmp_path / "b", hard + chat)
    assert mixed["share_harvest_like"] < 0.3 * pure["share_harvest_like"]
    for name in ("log_harvest_like", "log_distinct_hard", "log_harvest_output"):
        assert abs(mixed[name] - pure[name]) < 1e-9, name
    assert abs(pure["log_distinct_hard"] - math.log10(40)) < 1e-9
    assert abs(pure["log_harvest_output"] - math.log10(40 * 2000)) < 1e-9
    # asking the same hard problems again adds hard requests, not distinct problems
    again = _features(tmp_path / "c", hard + [_row(300 + i, hard=True, content=1000 + i)
                                             for i in range(40)])
    assert abs(again["log_distinct_hard"] - pure["log_distinct_hard"]) < 1e-9
    assert abs(again["log_harvest_like"] - math.log10(80)) < 1e-9


def test_content_crowd_does_not_grow_with_the_log(tmp_path: Path) -> None:
    """The same population ten times over (every account cloned with its prompts) is as crowded:
    the feature is the log share of accounts sending the same content, not their count."""
    def world(copies: int) -> list[dict[str, Any]]:
        rows = []
        for c in range(copies):
            # a harvester with problems of its own; two users who both say "thanks"
            rows += [dict(_row(i, hard=True, content=1000 + i), account_id=f"h{c}",
                          request_id=f"h{c}-{i}") for i in range(20)]
            rows += [dict(_row(100 + i, hard=False, content=1 + i % 2), account_id=f"u{c}-{k}",
                          request_id=f"u{c}-{k}-{i}") for k in range(2) for i in range(4)]
        return rows

    one, ten = _accounts(tmp_path / "one", world(1)), _accounts(tmp_path / "ten", world(10))
    assert abs(one["h0"]["content_crowd"] - ten["h0"]["content_crowd"]) < 1e-9
    assert abs(one["u0-0"]["content_crowd"] - ten["u7-1"]["content_crowd"]) < 1e-9
    # 2 of 3 accounts send each "thanks"; the harvester's problems are its own
    assert abs(one["u0-0"]["content_crowd"] - math.log(2 / 3)) < 1e-9
    assert abs(one["h0"]["content_crowd"] - math.log(1 / 3)) < 1e-9
    assert one["h0"]["content_askers"] == 1.0 and abs(ten["h0"]["content_askers"] - 10) < 1e-9
