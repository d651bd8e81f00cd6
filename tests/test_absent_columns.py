"""Logs without some optional columns: their features are unknown (null), not zero, the run
says which columns were absent, and reasons never cite an unknown value."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from antidistill.detect import connect, detect
from antidistill.features.accounts import FEATURES, REQUIRES, build_account_features
from antidistill.features.hops import HopValue, SharedHops, find_shared_hops
from antidistill.schema import COLUMN_GROUPS, OPTIONAL, without_groups
from antidistill.scoring.model import STAGE2_FEATURES
from antidistill.scoring.reasons import reasons_for
from test_detect_world import trained  # noqa: F401
from test_scoring_features import _row


def test_column_groups_are_optional_schema_columns() -> None:
    grouped = [c for cols in COLUMN_GROUPS.values() for c in cols]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) <= set(OPTIONAL)
    # every column a feature needs belongs to a group, so blind training covers it
    assert {c for cols in REQUIRES.values() for c in cols} <= set(grouped)
    assert set(REQUIRES) <= set(FEATURES)


def test_without_groups_drops_only_those_columns() -> None:
    table = pa.table({"ts": [1], "account_id": ["a"], "ip": ["10.0.0.1"], "asn": [1],
                      "output_tokens": [5], "prompt": ["p"]})
    out = without_groups(table, ["identity"])
    assert out.schema.names == ["ts", "account_id", "output_tokens", "prompt"]
    with pytest.raises(ValueError, match="unknown column group 'tokens'"):
        without_groups(table, ["tokens"])


def _account(tmp: Path, rows: list[dict]) -> dict:
    con = connect(tmp)
    con.register("_r", pa.Table.from_pylist(rows))
    con.execute("""CREATE TABLE ex AS SELECT * REPLACE (
      CAST(template_hash AS UBIGINT) AS template_hash,
      CAST(content_hash AS UBIGINT) AS content_hash,
      CAST(family_id AS BIGINT) AS family_id, CAST(p_cot AS FLOAT) AS p_cot,
      CAST(org_id AS VARCHAR) AS org_id) FROM _r""")
    table = build_account_features(con)
    con.close()
    return table.to_pylist()[0]


def _blank(rows: list[dict], columns: tuple[str, ...]) -> list[dict]:
    return [{k: (None if k in columns else v) for k, v in r.items()} for r in rows]


def test_absent_usage_columns_make_their_features_unknown(tmp_path: Path) -> None:
    rows = [_row(i, hard=True, content=100 + i) for i in range(30)]
    full = _account(tmp_path / "full", rows)
    blind = _account(tmp_path / "blind", _blank(rows, COLUMN_GROUPS["usage"]))
    for name in ("reasoning_share", "log_mean_output", "log_harvest_output",
                 "share_max_tokens_hit", "log_mean_max_tokens", "share_not_ok"):
        assert full[name] is not None and not math.isnan(full[name]), name
        assert blind[name] is None, name
    # features that do not read the usage columns keep their values
    for name in ("log_exchanges", "share_cot", "distinct_content_ratio", "log_ips", "verified"):
        assert blind[name] == full[name], name


def test_a_column_null_on_some_rows_keeps_its_meaning(tmp_path: Path) -> None:
    rows = [_row(i, hard=True, content=100 + i) for i in range(30)]
    for r in rows[::2]:
        r["max_tokens"] = None  # "no cap requested" on half the requests
    got = _account(tmp_path, rows)
    assert got["log_mean_max_tokens"] == pytest.approx(math.log10(4096))
    assert got["share_max_tokens_hit"] == 0.0


def test_absent_account_and_identity_columns(tmp_path: Path) -> None:
    rows = [_row(i, hard=True, content=100 + i) for i in range(10)]
    got = _account(tmp_path, _blank(rows, COLUMN_GROUPS["account"] + COLUMN_GROUPS["identity"]))
    for name, cols in REQUIRES.items():
        if set(cols) & set(COLUMN_GROUPS["account"] + COLUMN_GROUPS["identity"]):
            assert got[name] is None, name


def test_reasons_skip_unknown_features() -> None:
    j_unknown = STAGE2_FEATURES.index("reasoning_share")
    j_known = STAGE2_FEATURES.index("log_exchanges")
    contrib = np.zeros((1, len(STAGE2_FEATURES) + 1))
    contrib[0, j_unknown] = 3.0  # the trees' missing-value branch pushed hard
    contrib[0, j_known] = 1.0
    row = {"reasoning_share": None, "log_exchanges": 2.0, "n_exchanges": 120}
    assert reasons_for([row], contrib) == [["120 requests in the window"]]
    row["reasoning_share"] = float("nan")
    assert reasons_for([row], contrib) == [["120 requests in the window"]]
    row["reasoning_share"] = 0.5
    assert reasons_for([row], contrib)[0][0] == "reasoning tokens are 50% of output tokens"


def test_detect_names_the_absent_columns(trained: dict, tmp_path: Path) -> None:  # noqa: F811
    log = tmp_path / "blind.parquet"
    full = pq.read_table(trained["world"] / "exchanges.parquet")
    pq.write_table(without_groups(full, ["usage"]), log)
    res = detect([log], tmp_path / "out", model_path=trained["model"], progress=False)
    # the test world never sets a few shape columns; with usage gone, those are absent too
    never_set = [c for c in OPTIONAL if c != "request_id" and (
        c not in full.schema.names or full.column(c).null_count == full.num_rows)]
    expected = [c for c in OPTIONAL if c in set(COLUMN_GROUPS["usage"]) | set(never_set)]
    assert res.absent_columns == expected
    meta = json.loads((tmp_path / "out" / "campaigns.json").read_text())["meta"]
    assert meta["absent_columns"] == expected
    # the test model was trained without blind copies: it has only the full-log map
    assert meta["calibrated_for"] == ("full log (the model has no map for logs without "
                                      "several groups of columns)")
    assert f"Absent from the log:</b> {', '.join(expected)}." in (
        tmp_path / "out" / "report.html").read_text()
    accounts = pq.read_table(tmp_path / "out" / "accounts.parquet")
    assert accounts.column("reasoning_share").null_count == accounts.num_rows
    assert accounts.column("log_exchanges").null_count == 0
    for reasons in accounts.column("reasons").to_pylist():
        assert not any("reasoning tokens are" in r or "max_tokens" in r for r in reasons)


def test_training_worlds_include_blind_copies(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from test_detect_world import make_world

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import train_scoring as ts

    specs = ts.training_specs([1, 2], [3], [24.0])
    base = [s for s in specs if s.blind is None]
    blind = [s for s in specs if s.blind is not None]
    assert len(base) == len(blind) == 2 + 2 + 2
    assert [s.blind for s in blind] == [ts.BLIND_VARIANTS[i % 5] for i in range(6)]
    assert [s._replace(blind=None) for s in blind] == base
    assert ts.training_specs([1], [], [], blind=False) == [ts.Spec(1)]
    assert [s.blind for s in ts.calibration_specs(4)] == [None, *ts.BLIND_VARIANTS]

    monkeypatch.setattr(ts, "CACHE", tmp_path)
    make_world(tmp_path / "seed-1", seed=1)
    wd = ts.seeded(1, blind="usage")
    assert wd.name == "seed-1-blind-usage" and wd.group == "seed-1"
    copy = pq.read_table(tmp_path / "seed-1-blind-usage" / "exchanges.parquet")
    assert not set(COLUMN_GROUPS["usage"]) & set(copy.schema.names)
    assert pq.read_table(tmp_path / "seed-1-blind-usage" / "labels.parquet").equals(
        pq.read_table(tmp_path / "seed-1" / "labels.parquet"))
    col = FEATURES.index("reasoning_share")
    assert np.isnan(wd.x[:, col]).all()
    full = ts.seeded(1)
    assert full.accounts == wd.accounts and not np.isnan(full.x[:, col]).any()


def test_unknown_turn_count_is_no_evidence_of_single_turn(tmp_path: Path) -> None:
    rows = [_row(i, hard=True, content=100 + i) | {"n_messages": 8, "p_cot": 0.0}
            for i in range(30)]
    known = _account(tmp_path / "known", rows)
    assert known["share_harvest_like"] == 0.0 and known["share_single_turn"] == 0.0
    blind = _account(tmp_path / "blind", _blank(rows, COLUMN_GROUPS["shape"]))
    # before, an unknown count read as one message: every hard request looked harvest-like
    assert blind["share_harvest_like"] == 0.0 and blind["n_harvest_like"] == 0
    assert blind["share_single_turn"] is None and blind["mean_messages"] is None


def test_campaigns_without_creation_dates_say_unknown(trained: dict,  # noqa: F811
                                                       tmp_path: Path) -> None:
    log = tmp_path / "blind.parquet"
    full = pq.read_table(trained["world"] / "exchanges.parquet")
    pq.write_table(full.drop_columns(["account_created_at"]), log)
    res = detect([log], tmp_path / "out", model_path=trained["model"], progress=False,
                 report=False)
    assert res.campaigns
    for camp in res.campaigns:
        assert camp["accounts_created_in_window"] is None
        assert not any("opened in the window" in a["why"] for a in camp["atlas"])


def _columns_resolve_is_told(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Spy on campaign resolution: each call's ``absent`` columns, appended as detect runs."""
    import antidistill.campaigns.build as build_module

    seen: list[list[str]] = []
    real = build_module.resolve

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(list(kwargs["absent"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(build_module, "resolve", spy)
    return seen


def test_campaign_resolution_is_told_the_absent_columns(
        trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # the rule itself is tested in test_campaigns_resolve; here: detect hands it the columns
    from antidistill.campaigns.resolve import INFRA_COLUMNS

    seen = _columns_resolve_is_told(monkeypatch)
    log = tmp_path / "blind.parquet"
    full = pq.read_table(trained["world"] / "exchanges.parquet")
    pq.write_table(without_groups(full, ["identity"]), log)
    res = detect([log], tmp_path / "out", model_path=trained["model"], progress=False,
                 report=False)
    assert seen == [res.absent_columns] and set(INFRA_COLUMNS) <= set(seen[0])
    detect([trained["world"] / "exchanges.parquet"], tmp_path / "full",
           model_path=trained["model"], progress=False, report=False)
    assert not set(INFRA_COLUMNS) & set(seen[1])


def _identity_log(tmp: Path, ips: list[str]) -> SharedHops:
    con = connect(tmp)
    n = len(ips)
    con.register("_r", pa.table({"account_id": [f"a{i}" for i in range(n)], "ip": ips,
                                 "payment_fp": [f"card-{i % 7}" for i in range(n)],
                                 "client_fp": [None] * n}))
    con.execute("CREATE TABLE ex AS SELECT * FROM _r")
    out = find_shared_hops(con)
    con.close()
    return out


def test_identity_logged_at_a_shared_hop_is_found(tmp_path: Path) -> None:
    hop = "203.0.113.7"
    assert _identity_log(tmp_path / "cdn", [hop] * 150).columns == {"ip": 1.0}
    # nine in ten accounts behind the proxy (the rest with their own address): the column
    mixed = _identity_log(tmp_path / "mixed", [hop] * 135 + [f"10.0.0.{i}" for i in range(15)])
    assert mixed.columns == {"ip": 0.9} and mixed.values == []
    # four in ten: that address only
    part = _identity_log(tmp_path / "part", [hop] * 60 + [f"10.0.0.{i}" for i in range(90)])
    assert part.columns == {} and part.values == [HopValue("ip", hop, 60, 0.4)]
    assert "ip 203.0.113.7 (60 accounts, 40%: blanked on its rows)" in part.note()
    assert "--trust-forwarded" in part.note()
    assert "--trust-forwarded" not in SharedHops(columns={"payment_fp": 1.0}).note()
    # an office or carrier NAT behind which a sixth of the accounts sit is left alone
    office = _identity_log(tmp_path / "office", [hop] * 25 + [f"10.0.0.{i}" for i in range(125)])
    assert not office
    # a small log of accounts on one address is a hydra on one address: keep it
    assert not _identity_log(tmp_path / "small", [hop] * 99)
    # one card for seven accounts each is no shared hop either
    assert "payment_fp" not in _identity_log(tmp_path / "cdn2", [hop] * 150).columns


def _detect_with_ip(model: Path, tmp: Path, name: str, table: pa.Table,
                    report: bool = False) -> Any:
    pq.write_table(table, tmp / f"{name}.parquet")
    return detect([tmp / f"{name}.parquet"], tmp / name, model_path=model, progress=False,
                  report=report)


def test_a_proxy_address_for_everybody_is_scored_as_no_address(
        trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import antidistill.features.hops as hops_module

    full = pq.read_table(trained["world"] / "exchanges.parquet")
    # the test world is small (49 accounts); the rule is the same at any size
    monkeypatch.setattr(hops_module, "MIN_ACCOUNTS", 20)
    proxied = full.set_column(full.schema.get_field_index("ip"), "ip",
                              pa.array(["203.0.113.7"] * full.num_rows, pa.string()))
    got = _detect_with_ip(trained["model"], tmp_path, "proxied", proxied, report=True)
    want = _detect_with_ip(trained["model"], tmp_path, "no_ip", full.drop_columns(["ip"]))
    assert got.shared_hops.columns == {"ip": 1.0} and not got.shared_hops.values
    assert "ip" in got.absent_columns and got.absent_columns == want.absent_columns
    # the same log as one that never had the column: same features, risks and groups
    keep = ["account_id", "risk", "flagged", "campaign_id", "log_ips", "max_ip_sharers"]
    assert got.accounts.select(keep).equals(want.accounts.select(keep))
    assert got.accounts.column("max_ip_sharers").null_count == got.accounts.num_rows
    meta = json.loads((tmp_path / "proxied" / "campaigns.json").read_text())["meta"]
    assert meta["shared_hops"] == {"columns": {"ip": 1.0}, "values": []}
    assert ("Logged at a shared hop:</b> ip (one value for 100% of accounts: treated as absent"
            in (tmp_path / "proxied" / "report.html").read_text())


def test_an_address_many_accounts_sit_behind_is_blanked_on_its_rows(
        trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import antidistill.features.hops as hops_module

    monkeypatch.setattr(hops_module, "MIN_ACCOUNTS", 20)
    seen = _columns_resolve_is_told(monkeypatch)
    full = pq.read_table(trained["world"] / "exchanges.parquet")
    ids = full.column("account_id").to_pylist()
    behind = set(sorted(set(ids))[::2])  # every other account only ever seen behind the hop
    ips = [("203.0.113.7" if a in behind else ip)
           for a, ip in zip(ids, full.column("ip").to_pylist(), strict=True)]
    log = full.set_column(full.schema.get_field_index("ip"), "ip", pa.array(ips, pa.string()))
    got = _detect_with_ip(trained["model"], tmp_path, "half", log)
    n = len(set(ids))
    assert got.shared_hops.columns == {}
    assert got.shared_hops.values == [HopValue("ip", "203.0.113.7", len(behind),
                                               len(behind) / n)]
    assert "ip" not in got.absent_columns
    # campaigns are grouped as in a log without addresses: half the accounts have none
    assert seen == [[*got.absent_columns, "ip"]]
    rows = {r["account_id"]: r for r in got.accounts.to_pylist()}
    for a in set(ids):
        # behind the hop the address features are unknown, not "shared with half the log"
        assert (rows[a]["max_ip_sharers"] is None) == (a in behind), a
        assert (rows[a]["log_ips"] is None) == (a in behind), a
    meta = json.loads((tmp_path / "half" / "campaigns.json").read_text())["meta"]
    assert meta["shared_hops"]["values"] == [{"column": "ip", "value": "203.0.113.7",
                                              "accounts": len(behind),
                                              "share": len(behind) / n}]
