"""The online guard: scaffolds, sketches, the bad-feature index, streaming signals, state stores."""

from __future__ import annotations

import os
import uuid

import pytest

from antidistill.errors import StateStoreError
from antidistill.guard import (
    AccountRisk,
    BadIndex,
    CountMinSketch,
    Distinct,
    Guard,
    GuardRequest,
    MemoryStore,
    RedisStore,
    RiskTable,
    cot_elicitation,
    normalise_template,
    request_features,
    scaffold_features,
    template_hash,
)

TPL = (
    "Solve step by step and output your full reasoning. Problem: {q} "
    "Then give the final answer on the last line as ANSWER: <x>"
)


def test_scaffold_masks_payloads_and_keeps_structure() -> None:
    a = template_hash('Translate "good morning" to French. Use 2 sentences.')
    b = template_hash("Translate 'the red car parked outside' to French. Use 14 sentences.")
    assert a == b
    assert template_hash("Translate `x = 1` to French.") == template_hash(
        "Translate `print(42)` to French."
    )
    assert template_hash("Summarise this in 3 bullets") != template_hash("Translate 3 bullets")
    assert "<num>" in normalise_template("costs $4.50 or 1,200 units")
    assert "<code>" in normalise_template("fix this:\n```py\nprint(1)\n```\nthanks")
    # prose payloads are not masked, but the long prompt's opening and ending still match
    f1 = dict(scaffold_features(TPL.format(q="A train leaves the station at noon heading west")))
    f2 = dict(scaffold_features(TPL.format(q="Why is the sky blue during the day but red")))
    assert f1["tpl"] != f2["tpl"] and f1["pre"] == f2["pre"] and f1["suf"] == f2["suf"]


def test_count_min_never_underestimates_and_hll_counts() -> None:
    cms = CountMinSketch(width=64, depth=4)
    truth: dict[str, int] = {}
    for i in range(2000):
        k = f"k{i % 300}"
        truth[k] = truth.get(k, 0) + 1
        cms.add(k)
    assert all(cms.estimate(k) >= v for k, v in truth.items())
    back = CountMinSketch.from_bytes(cms.to_bytes(), 64, 4)
    assert back.estimate("k1") == cms.estimate("k1")
    d = Distinct()
    for i in range(1000):
        d.add(f"x{i % 400}")
    assert 340 <= d.count() <= 460
    assert Distinct.from_bytes(d.to_bytes()).count() == d.count()


def _risk() -> RiskTable:
    rows = {f"bad{i}": AccountRisk(0.9, True, "C1") for i in range(5)}
    rows.update({f"ok{i}": AccountRisk(0.05, False) for i in range(40)})
    return RiskTable(rows)


def _index(risk: RiskTable) -> BadIndex:
    import pyarrow as pa

    rows = []
    for i in range(5):
        rows.append(
            {
                "account_id": f"bad{i}",
                "prompt": TPL.format(q=f"question {i} about sets"),
                "payment_fp": "pf_c1",
                "ip": f"203.0.113.{i}",
                "asn": 16509,
            }
        )
        rows.append({"account_id": f"bad{i}", "prompt": "thanks", "ip": "203.0.113.9"})
    for i in range(40):  # cleared accounts share "thanks" and the cloud ASN, not the scaffold
        rows.append(
            {"account_id": f"ok{i}", "prompt": "thanks", "asn": 16509, "ip": f"198.51.{i}.1"}
        )
    return BadIndex.build(risk, pa.Table.from_pylist(rows))


def test_index_weighs_specificity() -> None:
    risk = _risk()
    idx = _index(risk)
    hydra = idx.links("new", request_features(TPL.format(q="a fresh question"), ip="203.0.113.77"))
    kinds = {link.kind: link for link in hydra}
    assert {"pre", "suf", "net"} <= set(kinds) and kinds["pre"].clusters == ("C1",)
    assert kinds["pre"].weight == pytest.approx(5 / 6)
    # "thanks" and a cloud ASN shared with 40 cleared accounts implicate nobody
    assert idx.links("new", request_features("thanks", asn=16509)) == []
    assert idx.links("new", request_features("hello", payment_fp="pf_c1"))[0].kind == "pay"


def test_guard_catches_new_hydra_account_on_first_request() -> None:
    risk = _risk()
    g = Guard(risk, _index(risk))
    r = g.assess(
        GuardRequest("brand-new", TPL.format(q="how many primes below 100"), ip="203.0.113.200")
    )
    assert r.link > 0.6 and r.clusters == ("C1",) and any("C1" in e for e in r.evidence)
    legit = g.assess(GuardRequest("ok3", "thanks", asn=16509))
    assert legit.score == 0.0


def test_guard_learns_from_flagged_traffic_and_cleared_use_dilutes() -> None:
    risk = _risk()
    g = Guard(risk, BadIndex())
    scaffold = "As an expert annotator, grade this answer on a 1-10 rubric: {a} Output JSON."
    assert g.assess(GuardRequest("fresh", scaffold.format(a="'x'"))).link == 0.0
    for i in range(3):  # flagged accounts' live traffic teaches the index
        g.assess(GuardRequest(f"bad{i}", scaffold.format(a=f"'answer {i}'")))
    first = g.assess(GuardRequest("fresh", scaffold.format(a="'y'"))).link
    assert first > 0.5
    for i in range(25):  # then 25 cleared customers turn out to use it too
        g.assess(GuardRequest(f"ok{i}", scaffold.format(a=f"'z{i}'")))
    assert g.assess(GuardRequest("fresh2", scaffold.format(a="'w'"))).link == 0.0


def test_behaviour_rate_cot_and_cluster_burst() -> None:
    risk = _risk()
    g = Guard(risk, BadIndex())
    t0 = 1_800_000_000.0
    last = None
    for i in range(150):
        last = g.assess(
            GuardRequest(
                "ok1", f"Think step by step and show your full reasoning: {i}", ts=t0 + i * 0.2
            )
        )
    assert last is not None
    assert last.components["rate"] > 0 and last.components["cot"] > 0
    assert any("requests/min" in e for e in last.evidence)
    quiet = g.assess(GuardRequest("ok2", "what's a good pasta recipe", ts=t0 + 30))
    assert "rate" not in quiet.components and "cot" not in quiet.components
    assert cot_elicitation("please show your reasoning") == 1.0
    assert cot_elicitation("what is the capital of France") == 0.0
    res = [g.assess(GuardRequest(f"bad{i}", "go", ts=t0 + 100 + i * 0.5)) for i in range(5)]
    assert res[-1].components.get("burst", 0) > 0 and "burst" not in res[0].components


def test_memory_store_persists_to_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "state.db"
    s = MemoryStore(path)
    s.execute(
        [
            ("incr", "n:a", 5, 3600),
            ("cms_add", "t", "a|x", 7, 3600),
            ("pfadd", "h", "m1", 3600),
            ("pfadd", "h", "m2", 3600),
        ]
    )
    assert s.take_token("b", 1.0, 2, 100.0) and s.take_token("b", 1.0, 2, 100.0)
    assert not s.take_token("b", 1.0, 2, 100.0)
    s.close()
    s2 = MemoryStore(path)
    assert s2.execute([("get", "n:a"), ("cms_get", "t", "a|x"), ("pfcount", "h")]) == [5, 7, 2]
    assert not s2.take_token("b", 1.0, 2, 100.5) and s2.take_token("b", 1.0, 2, 101.5)


def _redis_url() -> str:
    url = os.environ.get("ANTIDISTILL_REDIS_URL")
    if not url:
        pytest.skip("ANTIDISTILL_REDIS_URL not set (.ci/run starts redis-server and sets it)")
    try:
        RedisStore(url).execute([("get", "ping")])
    except StateStoreError as exc:
        pytest.skip(f"redis at {url} unreachable: {exc}")
    return url


@pytest.mark.redis
def test_redis_store_matches_memory_store() -> None:
    url = _redis_url()
    r = RedisStore(url, prefix=f"test:{uuid.uuid4().hex}:")
    m = MemoryStore()
    ops = [
        ("incr", "n", 1, 60),
        ("incr", "n", 2, 60),
        ("get", "n"),
        ("get", "missing"),
        ("cms_add", "s", "a", 3, 60),
        ("cms_add", "s", "a", 1, 60),
        ("cms_get", "s", "a"),
        ("cms_get", "s", "b"),
        ("pfadd", "h", "x", 60),
        ("pfadd", "h", "x", 60),
        ("pfadd", "h", "y", 60),
        ("pfcount", "h"),
    ]
    assert r.execute(ops) == m.execute(ops)
    assert [r.take_token("k", 0.5, 2, 10.0) for _ in range(3)] == [True, True, False]
    assert r.take_token("k", 0.5, 2, 12.0)


@pytest.mark.redis
def test_guard_on_redis_shares_state_between_instances() -> None:
    url = _redis_url()
    prefix = f"test:{uuid.uuid4().hex}:"
    risk = _risk()
    g1 = Guard(risk, BadIndex(), RedisStore(url, prefix=prefix))
    g2 = Guard(risk, BadIndex(), RedisStore(url, prefix=prefix))
    t0 = 1_800_000_000.0
    for i in range(80):
        (g1 if i % 2 else g2).assess(GuardRequest("ok1", f"q{i}", ts=t0 + i * 0.5))
    r = g1.assess(GuardRequest("ok1", "q", ts=t0 + 40.5))
    assert r.components.get("rate", 0) > 0  # 81 requests/min seen across both instances


def test_unreachable_redis_raises_and_guard_degrades_gracefully() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", timeout_s=0.2)
    with pytest.raises(StateStoreError, match="redis"):
        store.execute([("incr", "x", 1, 10)])
    risk = _risk()
    g = Guard(risk, _index(risk), store)
    r = g.assess(GuardRequest("new", TPL.format(q="anything at all here"), ip="203.0.113.5"))
    assert not r.store_ok and r.link > 0.5  # index and batch risk still work without the store
