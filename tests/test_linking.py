"""Coordination signals and community detection on small hand-made logs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from antidistill.detect import connect
from antidistill.linking import build_edges, detect_communities
from antidistill.linking.edges import ALL_PAIRS_MAX, _block_pairs
from test_detect_world import T0


def _con(tmp: Path, rows: list[dict]):  # type: ignore[no-untyped-def]
    con = connect(tmp)
    base = {"capability": "chat", "p_cot": 0.0, "p_rubric": 0.0, "p_rewrite": 0.0,
            "template_hash": 1, "content_hash": 1, "family_id": 1}
    table = pa.Table.from_pylist([{**base, **r} for r in rows])
    con.register("_rows", table)
    con.execute("""CREATE TABLE ex AS SELECT request_id, ts, account_id,
        org_id::VARCHAR AS org_id, 'individual' AS account_type,
        NULL::TIMESTAMPTZ AS account_created_at, NULL::BOOLEAN AS verified, pathway,
        payment_fp::VARCHAR AS payment_fp, ip::VARCHAR AS ip, NULL::INTEGER AS asn,
        NULL::VARCHAR AS client_fp, 'm' AS model, 1 AS n_messages, 0 AS n_tools,
        false AS has_image, 10 AS input_tokens, 10 AS output_tokens, 0 AS reasoning_tokens,
        100 AS max_tokens, 0.0::FLOAT AS temperature, 'ok' AS status, capability,
        p_cot::FLOAT AS p_cot, p_rubric::FLOAT AS p_rubric, p_rewrite::FLOAT AS p_rewrite,
        template_hash::UBIGINT AS template_hash, content_hash::UBIGINT AS content_hash,
        family_id::BIGINT AS family_id FROM _rows""")
    return con


def _row(acc: str, i: int, **kw: object) -> dict:
    return {"request_id": f"{acc}-{i}", "ts": T0 + timedelta(minutes=7 * i + hash(acc) % 5),
            "account_id": acc, "pathway": "direct", "org_id": None, "payment_fp": None,
            "ip": None, **kw}


def test_shared_payment_links_but_declared_org_is_damped(tmp_path: Path) -> None:
    rows = [_row(f"h{i}", j, payment_fp="card-1") for i in range(4) for j in range(3)]
    rows += [_row(f"t{i}", j, payment_fp="card-org", org_id="org") for i in range(4)
             for j in range(3)]
    rows += [_row(f"u{i}", j, payment_fp=f"own-{i}") for i in range(4) for j in range(3)]
    con = _con(tmp_path, rows)
    edges = build_edges(con).to_pylist()
    w = {(e["a"], e["b"]): e for e in edges}
    assert w[("h0", "h1")]["payment"] == 1.0
    assert w[("t0", "t1")]["payment"] < 0.2
    assert not any(e["a"].startswith("u") for e in edges)
    clusters = detect_communities(build_edges(con))
    assert sorted(clusters.members.values()) == [["h0", "h1", "h2", "h3"]]
    assert clusters.evidence["K0001"]["payment"] == 1.0


def test_dataset_split_links_disjoint_coverage(tmp_path: Path) -> None:
    rows = []
    for i in range(3):  # three accounts, one family, 20 distinct problems each, no overlap
        rows += [_row(f"s{i}", j, family_id=42, content_hash=1000 * i + j + 1,
                      template_hash=7000 + i) for j in range(20)]
    for i in range(2):  # two eval runners: same 20 problems
        rows += [_row(f"e{i}", j, family_id=43, content_hash=5000 + j, template_hash=8000)
                 for j in range(20)]
    con = _con(tmp_path, rows)
    h42, h43 = con.execute("SELECT hash(42::BIGINT), hash(43::BIGINT)").fetchall()[0]
    spec = pa.table({"template_hash": pa.array([h42, h43], pa.uint64()),
                     "specificity": [0.9, 0.9]})
    edges = {(e["a"], e["b"]): e
             for e in build_edges(con, family_specificity=spec).to_pylist()}
    assert edges[("s0", "s1")]["split"] > 0
    assert edges.get(("e0", "e1"), {}).get("split", 0.0) == 0.0
    # a generic family (low specificity) never yields a split edge
    generic = pa.table({"template_hash": pa.array([h42], pa.uint64()), "specificity": [0.1]})
    assert not any(e["split"] for e in build_edges(con, family_specificity=generic).to_pylist())


def test_large_blocks_are_chained_not_all_pairs(tmp_path: Path) -> None:
    con = connect(tmp_path)
    n = ALL_PAIRS_MAX * 3
    con.register("_kv", pa.table({"kind": ["ip"] * n, "value": ["1.2.3.4"] * n,
                                  "account_id": [f"a{i}" for i in range(n)]}))
    pairs = con.execute(f"SELECT count(*) FROM ({_block_pairs('_kv', 10_000)})").fetchall()[0][0]
    assert pairs <= 3 * n  # linear, not n^2/2
    none = con.execute(f"SELECT count(*) FROM ({_block_pairs('_kv', n - 1)})").fetchall()[0][0]
    assert none == 0  # above the cap: public infrastructure, ignored


def test_synchronised_accounts_are_linked(tmp_path: Path) -> None:
    rows = []
    for i in range(5):  # load-balanced bursts: same 10-minute windows, different hours
        rows += [_row(f"b{i}", j, capability="reasoning", p_cot=0.9, content_hash=100 * i + j,
                      ts=T0 + timedelta(hours=5 * j, minutes=i)) for j in range(12)]
    for i in range(5):  # unrelated users
        rows += [_row(f"n{i}", j, capability="reasoning", p_cot=0.9, content_hash=9000 + 50 * i + j,
                      ts=T0 + timedelta(hours=3 * j + i, minutes=37 * i % 60)) for j in range(12)]
    con = _con(tmp_path, rows)
    edges = build_edges(con).to_pylist()
    sync = {(e["a"], e["b"]) for e in edges if e["sync"] > 0}
    assert ("b0", "b1") in sync
    assert not any(a.startswith("n") and b.startswith("n") for a, b in sync)


def test_accounts_fed_by_one_queue_have_correlated_volumes(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(5)
    block_start = [3, 14, 9, 20, 6, 17]  # the queue runs at other hours every day
    rows: list[dict] = []

    def add(acc: str, day: int, hour: int, n: int) -> None:
        for k in range(n):
            i = len(rows)
            rows.append(_row(acc, i, capability="reasoning", p_cot=0.9, content_hash=i,
                             ts=T0 + timedelta(days=day, hours=hour, minutes=(7 * k) % 60)))

    for q in range(4):  # one job queue dispatched over four accounts
        for day, start in enumerate(block_start):
            for hour in range(start, start + 3):
                add(f"q{q}", day, hour, int(rng.poisson(4)) + 1)
    for o in range(4):  # office workers: the same hours every weekday, the weekend off
        for day in range(6):
            if day == 5:
                continue
            for hour in range(9, 17):
                add(f"o{o}", day, hour, int(rng.poisson(8)))
    for e in range(2):  # two benchmark runs started in the same hours, twice: too few bins
        for day, hour in ((2, 10), (2, 11), (4, 15)):
            add(f"e{e}", day, hour, 20)
    con = _con(tmp_path, rows)
    edges = build_edges(con).to_pylist()
    volume = {(e["a"], e["b"]) for e in edges if e["volume"] > 0}
    queue = {(f"q{i}", f"q{j}") for i in range(4) for j in range(i + 1, 4)}
    assert volume == queue


def test_volume_edges_need_two_accounts_whose_schedule_changes(tmp_path: Path) -> None:
    # one account a day, the same hours every day: nothing to correlate, no error
    rows = [_row(f"s{d % 2}", d * 24 + h, capability="reasoning", p_cot=0.9,
                 content_hash=d * 24 + h, ts=T0 + timedelta(days=d, hours=h))
            for d in range(4) for h in range(9, 15)]
    con = _con(tmp_path, rows)
    assert not any(e["volume"] > 0 for e in build_edges(con).to_pylist())


def test_a_phrase_anybody_types_does_not_link_but_a_private_scaffold_does(
        tmp_path: Path) -> None:
    """Two strangers who end every question with "Let's think step by step." share a template
    nobody else uses; it must not link them. Two accounts wrapping problems in one long private
    scaffold must stay linked (full pipeline up to the communities, no model)."""
    import pyarrow.parquet as pq

    from antidistill import corpora
    from antidistill.detect import prepare
    from antidistill.schema import EXCHANGE_SCHEMA

    gsm = [p.text for p in corpora.load("gsm8k")]
    chat = [p.text for p in corpora.load("arena_hard")]
    scaffold = ("You are generating training data for our tutor. Solve the problem below, label "
                "each reasoning step as Step k, then give the final answer on its own line.\n"
                "Problem: {p}")
    rows: list[dict[str, object]] = []
    rng = np.random.default_rng(5)

    def add(acc: str, i: int, prompt: str) -> None:  # independent times: no synchrony
        rows.append({"request_id": f"{acc}-{i}", "account_id": acc, "model": "m", "prompt": prompt,
                     "ts": T0 + timedelta(minutes=float(rng.uniform(0, 7 * 24 * 60)))})

    for i in range(40):
        add("habit-a", i, f"{chat[i]} Let's think step by step.")
        add("habit-b", i, f"{gsm[100 + i]} Let's think step by step.")
        add("tool-a", i, scaffold.format(p=gsm[200 + i]))
        add("tool-b", i, scaffold.format(p=gsm[300 + i]))
    for u in range(30):  # ordinary users, so that the log has a population
        for i in range(5):
            add(f"user-{u}", i, chat[(40 + 5 * u + i) % len(chat)])
    pq.write_table(pa.Table.from_pylist(rows, schema=EXCHANGE_SCHEMA), tmp_path / "log.parquet")
    con = connect(tmp_path)
    prep = prepare(con, [tmp_path / "log.parquet"])
    template = {(e["a"], e["b"]): e["template"] for e in prep.edges.to_pylist()}
    assert template.get(("habit-a", "habit-b"), 0.0) == 0.0
    assert template[("tool-a", "tool-b")] > 0.8  # 2 of 34 accounts: share damping 0.88
    cluster = prep.clustering.cluster_of
    assert cluster.get("habit-a") is None or cluster.get("habit-a") != cluster.get("habit-b")
    assert cluster["tool-a"] == cluster["tool-b"]
