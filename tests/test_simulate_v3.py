"""Campaign D ``--evasion v3`` (held out): the claims of :mod:`antidistill.simulate.heldout`
hold in the written files, and the v1/v2/mix worlds are untouched by it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from antidistill.simulate import EVASIONS, WorldSummary, simulate_world
from antidistill.simulate.campaigns import Evasive
from antidistill.simulate.heldout import ContractorSeats
from antidistill.simulate.world import plan_world
from test_simulate import one

#: default head counts (an ``accounts`` target would rescale every population to the
#: v3 world's own total, so v1 and v3 could not be compared row by row)
SEED, DAYS = 23, 3
D = "campaign = 'D-evasive'"
#: words an explicit reasoning request would use; v3 uses none of them in what it harvests
COT_WORDS = ("step by step", "step-by-step", "chain of thought", "reasoning", "think",
             "show your work", "explain", "walk me through", "justify", "rubric")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, WorldSummary]]:
    out = {}
    for ev in ("v3", "v1"):
        d = tmp_path_factory.mktemp(f"world_{ev}")
        out[ev] = d, simulate_world(d, seed=SEED, days=DAYS, evasion=ev, progress=False)
    return out


def _views(con: duckdb.DuckDBPyConnection, out: Path, suffix: str = "") -> None:
    con.execute(f"CREATE VIEW el{suffix} AS SELECT * FROM '{out / 'exchanges.parquet'}' "
                f"JOIN '{out / 'labels.parquet'}' USING (account_id) "
                f"JOIN '{out / 'exchange_labels.parquet'}' USING (request_id)")


@pytest.fixture(scope="module")
def db(worlds: dict[str, tuple[Path, WorldSummary]]) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    _views(con, worlds["v3"][0])
    _views(con, worlds["v1"][0], "_v1")
    yield con
    con.close()


# ---------------------------------------------------------------- size and volume


def test_default_size_and_volume_at_least_v2() -> None:
    assert "v3" in EVASIONS
    ctx, pops = plan_world(301, 7, None, None, "v3")
    camp = np.asarray(ctx.accounts.cols["campaign"], dtype=object)
    assert 150 <= int((camp == "D-evasive").sum()) <= 300
    d3 = [p for p in pops if p.campaign == "D-evasive"]
    assert len(d3) == 1 and isinstance(d3[0], ContractorSeats)
    assert not any(isinstance(p, Evasive) for p in pops)
    ctx2, pops2 = plan_world(301, 7, None, None, "v2")
    (d2,) = [p for p in pops2 if p.campaign == "D-evasive"]
    assert sum(d3[0].expected(ctx)) >= 1.5 * sum(d2.expected(ctx2))


def test_campaign_is_labelled_and_mostly_harvest(db: duckdb.DuckDBPyConnection) -> None:
    pops = db.execute(f"SELECT DISTINCT population FROM el WHERE {D}").fetchall()
    assert pops == [("evasive",)]
    n_acct, n, harvest = one(db, f"SELECT count(DISTINCT account_id), count(*), "
                                 f"sum(is_attack::int) FROM el WHERE {D}")
    assert n_acct >= 40 and harvest >= 0.8 * n and harvest < n  # a little cover traffic
    assert harvest / n_acct > 30  # harvests at scale, not a trickle
    # cover sessions are ordinary chats: no agent prompt, no tools
    assert one(db, f"SELECT count(*) FROM el WHERE {D} AND NOT is_attack AND "
                   "(system_prompt IS NOT NULL OR n_tools > 0)")[0] == 0


# ---------------------------------------------------------------- disguise: team orgs


def test_seats_of_team_orgs_with_own_card_and_office(db: duckdb.DuckDBPyConnection) -> None:
    assert one(db, f"SELECT count(*) FROM el WHERE {D} AND (account_type <> 'team' "
                   "OR org_id IS NULL OR payment_fp IS NULL)")[0] == 0
    orgs = db.execute(f"SELECT org_id, count(DISTINCT account_id), count(DISTINCT payment_fp) "
                      f"FROM el WHERE {D} GROUP BY 1").fetchall()
    assert len(orgs) >= 3
    assert all(seats >= 3 and pay == 1 for _, seats, pay in orgs)
    # one card per org, never shared with another org or with anyone outside the campaign
    assert one(db, f"SELECT max(c) FROM (SELECT payment_fp, count(DISTINCT org_id) c FROM el "
                   f"WHERE {D} GROUP BY 1)")[0] == 1
    assert one(db, "SELECT count(*) FROM el WHERE campaign IS DISTINCT FROM 'D-evasive' AND "
                   f"(payment_fp IN (SELECT payment_fp FROM el WHERE {D}) OR "
                   f"org_id IN (SELECT org_id FROM el WHERE {D}))")[0] == 0
    # each org's seats meet at the office NAT (a business ISP), as real teams do
    office = dict(db.execute(
        f"SELECT org_id, max(s) FROM (SELECT org_id, ip, count(DISTINCT account_id) s FROM el "
        f"WHERE {D} GROUP BY 1, 2) GROUP BY 1").fetchall())
    assert all(s >= 3 for s in office.values())
    # no address is used by two orgs
    assert one(db, f"SELECT max(c) FROM (SELECT ip, count(DISTINCT org_id) c FROM el "
                   f"WHERE {D} GROUP BY 1)")[0] == 1


def test_no_account_creation_burst(db: duckdb.DuckDBPyConnection) -> None:
    created = np.sort(np.array([r[0] for r in db.execute(
        f"SELECT epoch(any_value(account_created_at)) FROM el WHERE {D} GROUP BY account_id"
    ).fetchall()], dtype=float))
    day = 86400.0
    assert created[-1] - created[0] > 60 * day
    in_any_day = np.searchsorted(created, created + day) - np.arange(created.size)
    assert in_any_day.max() <= max(3, 0.05 * created.size)


# ---------------------------------------------------------------- content


def test_fresh_generated_tasks_never_repeat_nor_come_from_a_corpus(
        db: duckdb.DuckDBPyConnection) -> None:
    n, distinct, accts = one(db, f"SELECT count(*), count(DISTINCT prompt), "
                                 f"count(DISTINCT account_id) FROM el WHERE {D} AND is_attack "
                                 "AND n_messages = 2")
    assert n >= 200 and distinct == n and accts >= 40
    # not one task text is sent by anyone else in the world (no benchmark item, no template)
    assert one(db, f"SELECT count(*) FROM el a JOIN el b USING (prompt) WHERE a.{D} AND "
                   "a.is_attack AND a.n_messages = 2 AND b.campaign IS DISTINCT FROM "
                   "'D-evasive'")[0] == 0
    # no constant head or tail around slots: the most common 30-character head is rare
    heads = Counter(r[0] for r in db.execute(
        f"SELECT left(prompt, 30) FROM el WHERE {D} AND is_attack AND n_messages = 2"
    ).fetchall())
    assert heads.most_common(1)[0][1] < 0.05 * n


def test_no_reasoning_wording_in_what_it_harvests(db: duckdb.DuckDBPyConnection) -> None:
    cond = " OR ".join(f"lower(prompt) LIKE '%{w}%'" for w in COT_WORDS)
    assert one(db, f"SELECT count(*) FROM el WHERE {D} AND is_attack AND ({cond})")[0] == 0


def test_agent_loops_with_one_agent_per_org_and_self_review(
        db: duckdb.DuckDBPyConnection) -> None:
    # every harvesting exchange carries a popular coding agent's exact prompt and tools
    assert one(db, f"SELECT count(*) FROM el WHERE {D} AND is_attack AND "
                   "(system_prompt IS NULL OR n_tools = 0)")[0] == 0
    assert one(db, f"SELECT max(c) FROM (SELECT org_id, count(DISTINCT system_prompt) c "
                   f"FROM el WHERE {D} AND is_attack GROUP BY 1)")[0] == 1
    # ...the same prompt ordinary agent developers send
    assert one(db, f"SELECT count(*) FROM (SELECT DISTINCT system_prompt FROM el WHERE {D} "
                   "AND is_attack) WHERE system_prompt NOT IN (SELECT system_prompt FROM el "
                   "WHERE population = 'agent_developers')")[0] == 0
    # long loops: most harvesting exchanges are later agent steps
    assert one(db, f"SELECT avg((n_messages > 2)::int) FROM el WHERE {D} AND is_attack")[0] > 0.7
    reviews = one(db, f"SELECT count(*) FROM el WHERE {D} AND is_attack AND n_messages > 2 AND "
                      "(prompt LIKE '%reviewer%' OR prompt LIKE '%verdict%' OR prompt LIKE "
                      "'%score from 1 to 10%' OR prompt LIKE '%request changes%')")[0]
    assert reviews > 20


def test_ordinary_gradual_model_adoption(worlds: dict[str, tuple[Path, WorldSummary]],
                                         db: duckdb.DuckDBPyConnection) -> None:
    rel = worlds["v3"][1].release
    soon = (rel + timedelta(hours=3)).isoformat()
    early = one(db, f"SELECT avg((model = 'atlas-4')::int), count(*) FROM el WHERE {D} AND "
                    f"ts >= '{rel.isoformat()}' AND ts < '{soon}'")
    late = one(db, f"SELECT avg((model = 'atlas-4')::int) FROM el WHERE {D} AND "
                   f"ts >= '{(rel + timedelta(hours=12)).isoformat()}'")[0]
    assert early[1] == 0 or early[0] < 0.25
    assert 0.15 < late < 0.95


# ---------------------------------------------------------------- other worlds unchanged


def test_only_campaign_d_differs_from_the_v1_world(db: duckdb.DuckDBPyConnection) -> None:
    cols = "account_id, ts, model, prompt, system_prompt"
    for a, b in (("el", "el_v1"), ("el_v1", "el")):
        assert one(db, f"SELECT count(*) FROM (SELECT {cols} FROM {a} WHERE campaign IS "
                       f"DISTINCT FROM 'D-evasive' EXCEPT ALL SELECT {cols} FROM {b} "
                       "WHERE campaign IS DISTINCT FROM 'D-evasive')")[0] == 0
    # v1's D is still the scripted evasive campaign: loose accounts, own cards, no org
    types = {r[0] for r in db.execute(f"SELECT DISTINCT account_type FROM el_v1 WHERE {D}")
             .fetchall()}
    assert types <= {"individual", "startup"}
    assert one(db, f"SELECT count(*) FROM el_v1 WHERE {D} AND org_id IS NOT NULL")[0] == 0


def test_v3_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        simulate_world(d, seed=4, days=2, accounts=300, evasion="v3", progress=False)
    for name in ("exchanges.parquet", "labels.parquet", "exchange_labels.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert pq.read_metadata(a / "exchanges.parquet").num_rows > 5000
