"""World properties: every population and campaign present, with the traits that define it."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from antidistill.schema import (
    ACCOUNT_TYPES,
    EXCHANGE_LABELS_SCHEMA,
    EXCHANGE_SCHEMA,
    LABELS_SCHEMA,
    REQUIRED,
    STATUSES,
    valid_pathway,
)
from antidistill.simulate import (
    CAMPAIGNS,
    HARD_NEGATIVES,
    LEGIT_POPULATIONS,
    WorldSummary,
    simulate_world,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WorldSummary]:
    out = tmp_path_factory.mktemp("world")
    return out, simulate_world(out, seed=11, days=3, accounts=400, progress=False)


@pytest.fixture(scope="module")
def db(world: tuple[Path, WorldSummary]) -> Iterator[duckdb.DuckDBPyConnection]:
    out, _ = world
    con = duckdb.connect()
    con.execute(f"CREATE VIEW e AS SELECT * FROM '{out / 'exchanges.parquet'}'")
    con.execute(f"CREATE VIEW l AS SELECT * FROM '{out / 'labels.parquet'}'")
    con.execute(f"CREATE VIEW x AS SELECT * FROM '{out / 'exchange_labels.parquet'}'")
    con.execute("CREATE VIEW el AS SELECT * FROM e JOIN l USING (account_id) "
                "JOIN x USING (request_id)")
    yield con
    con.close()


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:  # type: ignore[type-arg]
    row = con.execute(sql).fetchone()
    assert row is not None
    return row


def release(out: Path) -> datetime:
    with (out / "models.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    released = [r for r in rows if r["released_at"]]
    assert len(released) == 1
    return datetime.strptime(released[0]["released_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# ---------------------------------------------------------------- schema and labels


def test_files_conform_to_schemas(world: tuple[Path, WorldSummary]) -> None:
    out, summary = world
    ex = pq.read_table(out / "exchanges.parquet")
    assert ex.schema.equals(EXCHANGE_SCHEMA, check_metadata=False)
    assert pq.read_schema(out / "labels.parquet").equals(LABELS_SCHEMA, check_metadata=False)
    assert pq.read_schema(out / "exchange_labels.parquet").equals(EXCHANGE_LABELS_SCHEMA,
                                                                  check_metadata=False)
    assert ex.num_rows == summary.exchanges > 10_000
    for name in REQUIRED:
        assert ex.column(name).null_count == 0, name
    assert set(ex.column("status").to_pylist()) <= STATUSES
    assert set(ex.column("account_type").to_pylist()) <= ACCOUNT_TYPES
    assert all(valid_pathway(p) for p in set(ex.column("pathway").to_pylist()))
    ts = ex.column("ts").to_numpy()
    assert (ts[1:] >= ts[:-1]).all(), "rows are sorted by time"
    assert len(ex.column("request_id").unique()) == ex.num_rows


def test_models_csv_has_a_mid_window_release(world: tuple[Path, WorldSummary]) -> None:
    out, summary = world
    with (out / "models.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 2
    assert summary.start < release(out) < summary.start + timedelta(days=summary.days)
    models = set(pq.read_table(out / "exchanges.parquet", columns=["model"])
                 .column("model").to_pylist())
    assert models <= {r["model"] for r in rows}


def test_labels_are_consistent(db: duckdb.DuckDBPyConnection) -> None:
    assert one(db, "SELECT count(DISTINCT account_id) FROM e WHERE account_id NOT IN "
                   "(SELECT account_id FROM l)")[0] == 0
    assert one(db, "SELECT count(*) FROM l WHERE account_id NOT IN "
                   "(SELECT account_id FROM e)")[0] == 0
    assert one(db, "SELECT count(*) FROM l")[0] == one(db, "SELECT count(DISTINCT account_id) "
                                                          "FROM l")[0]
    n, matched = one(db, "SELECT (SELECT count(*) FROM x), count(*) FROM e JOIN x "
                         "USING (request_id)")
    assert n == matched == one(db, "SELECT count(*) FROM e")[0]
    assert one(db, "SELECT count(*) FROM el WHERE is_attack AND campaign IS NULL")[0] == 0
    pops = dict(db.execute("SELECT population, any_value(campaign) FROM l GROUP BY 1")
                .fetchall())
    for p in LEGIT_POPULATIONS:
        assert p in pops and pops[p] is None, p
    assert set(HARD_NEGATIVES) <= set(LEGIT_POPULATIONS)
    for campaign, pop in CAMPAIGNS.items():
        assert pops.get(pop) == campaign
        assert one(db, f"SELECT count(*) FROM el WHERE campaign = '{campaign}' "
                       "AND is_attack")[0] > 0
    assert one(db, "SELECT count(*) FROM l WHERE population IN "
                   f"{tuple(CAMPAIGNS.values())} AND campaign IS NULL")[0] == 0


def test_scale_of_populations(world: tuple[Path, WorldSummary]) -> None:
    _, s = world
    assert 300 <= s.accounts <= 520
    assert s.populations["casual_chat"] > s.populations["eval_runners"]
    assert set(s.campaigns) == set(CAMPAIGNS)


# ---------------------------------------------------------------- legitimate populations


def test_agent_developers_share_one_agents_prompt_across_unrelated_accounts(
        db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        "SELECT system_prompt, count(DISTINCT account_id), count(DISTINCT payment_fp), "
        "count(DISTINCT org_id), min(n_tools), max(length(system_prompt)) FROM el "
        "WHERE population = 'agent_developers' AND system_prompt IS NOT NULL "
        "GROUP BY 1 ORDER BY 2 DESC").fetchall()
    assert len(rows) >= 2
    _, accounts, payments, orgs, tools, length = rows[0]
    assert accounts >= 10 and payments == accounts and orgs == 0
    assert tools > 0 and length > 1500
    # the same agent prompt reaches the model through a tool-use harness with long contexts
    assert one(db, "SELECT median(input_tokens) FROM el WHERE population = "
                   "'agent_developers' AND system_prompt IS NOT NULL")[0] > 2000


def test_team_members_share_org_payment_and_office_ip(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        "SELECT org_id, count(DISTINCT account_id), count(DISTINCT payment_fp) FROM el "
        "WHERE population = 'team_orgs' GROUP BY 1").fetchall()
    assert rows and all(org is not None and pay == 1 for org, _, pay in rows)
    assert max(n for _, n, _ in rows) >= 3
    shared_ips = one(db, "SELECT count(*) FROM (SELECT org_id, ip FROM el WHERE population = "
                         "'team_orgs' GROUP BY 1, 2 HAVING count(DISTINCT account_id) >= 3)")[0]
    assert shared_ips >= 1


def test_enterprise_batch_is_one_template_pinned_model_steady(
        world: tuple[Path, WorldSummary], db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        "SELECT account_id, count(*), count(DISTINCT system_prompt), count(DISTINCT model), "
        "count(DISTINCT left(prompt, 60)), bool_and(verified), any_value(account_type), "
        "count(DISTINCT prompt) FROM el WHERE population = 'enterprise_batch' GROUP BY 1"
    ).fetchall()
    assert rows
    per_account_other = one(db, "SELECT max(c) FROM (SELECT count(*) c FROM el WHERE "
                                "population <> 'enterprise_batch' GROUP BY account_id)")[0]
    for _, n, sys, models, heads, verified, typ, distinct in rows:
        assert sys == 1 and models == 1 and heads == 1 and verified and typ == "enterprise"
        assert n > per_account_other  # the heaviest accounts in the world
        assert distinct > 50  # slots vary
    hourly = db.execute(
        "SELECT account_id, stddev(c) / avg(c), count(*) FROM (SELECT account_id, "
        "date_trunc('hour', ts) h, count(*) c FROM el WHERE population = 'enterprise_batch' "
        "GROUP BY 1, 2) GROUP BY 1").fetchall()
    for _, cv, hours in hourly:
        assert hours == world[1].days * 24 and cv < 0.35  # every hour, 24/7, steady


def test_eval_runners_run_a_benchmark_once_in_a_burst(
        world: tuple[Path, WorldSummary], db: duckdb.DuckDBPyConnection) -> None:
    out, _ = world
    bursts = db.execute(
        "SELECT account_id, count(*), count(DISTINCT prompt), "
        "epoch(max(ts) - min(ts)) / 3600, min(ts), any_value(model), "
        "bool_or(prompt ILIKE '%step by step%') FROM el WHERE population = 'eval_runners' "
        "AND temperature = 0 AND max_tokens IS NOT NULL GROUP BY 1").fetchall()
    assert len(bursts) >= 3
    for _, n, distinct, hours, _, _, _ in bursts:
        # each item once (a few benchmark items share their text), in a burst
        assert n >= 80 and distinct >= 0.98 * n and hours < 3
    rel = release(out)
    launch = [b for b in bursts if b[5] == "atlas-4" and rel <= b[4] < rel + timedelta(hours=24)]
    assert launch, "some runners evaluate the new model on its release day"
    assert one(db, "SELECT count(*) FROM el WHERE population = 'eval_runners' AND "
                   "(prompt ILIKE '%step by step%' OR n_tools > 0)")[0] > 0


def test_students_do_homework_in_school_rhythm(db: duckdb.DuckDBPyConnection) -> None:
    types = {r[0] for r in db.execute("SELECT DISTINCT account_type FROM el WHERE "
                                      "population = 'students'").fetchall()}
    assert types == {"edu"}
    assert one(db, "SELECT count(*) FROM el WHERE population = 'students' AND "
                   "(prompt ILIKE '%step%' OR prompt ILIKE '%homework%')")[0] > 20
    # campus NAT: many students behind one address
    assert one(db, "SELECT max(c) FROM (SELECT count(DISTINCT account_id) c FROM el "
                   "WHERE population = 'students' GROUP BY ip)")[0] >= 5


def test_reseller_carries_many_end_customers(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute("SELECT pathway, count(DISTINCT account_id), count(DISTINCT payment_fp) "
                      "FROM el WHERE population = 'reseller_customers' GROUP BY 1").fetchall()
    assert rows and all(p.startswith("reseller:") and n >= 5 and pay == 1
                        for p, n, pay in rows)


def test_new_model_adoption_is_gradual(world: tuple[Path, WorldSummary],
                                       db: duckdb.DuckDBPyConnection) -> None:
    out, _ = world
    rel = release(out).isoformat()
    shares = [r[1] for r in db.execute(
        "SELECT floor(epoch(ts - TIMESTAMPTZ '" + rel + "') / 3600 / 8) k, "
        "avg((model = 'atlas-4')::INT) FROM el WHERE population = 'casual_chat' "
        "AND ts >= TIMESTAMPTZ '" + rel + "' GROUP BY 1 ORDER BY 1").fetchall()]
    assert one(db, "SELECT count(*) FROM el WHERE model = 'atlas-4' AND ts < TIMESTAMPTZ '"
               + rel + "'")[0] == 0
    assert len(shares) >= 3 and shares[0] < shares[-1] and shares[0] < 0.25


# ---------------------------------------------------------------- campaigns


def test_campaign_a_shares_payment_and_is_synchronised(db: duckdb.DuckDBPyConnection) -> None:
    accounts, payments = one(db, "SELECT count(DISTINCT account_id), count(DISTINCT payment_fp)"
                                 " FROM el WHERE campaign = 'A-reasoning'")
    assert accounts >= 4 and payments <= max(2, accounts // 4)

    def active_share(where: str) -> float:
        return one(db, f"""
            WITH h AS (SELECT date_trunc('hour', ts) hr, count(DISTINCT account_id) k
                       FROM el WHERE {where} GROUP BY 1)
            SELECT avg(k) / (SELECT count(DISTINCT account_id) FROM el WHERE {where}) FROM h
        """)[0]

    assert active_share("campaign = 'A-reasoning'") > 0.8  # load balanced: all move together
    assert active_share("population = 'casual_chat'") < 0.2
    kinds = one(db, "SELECT count(*) FILTER (prompt ILIKE '%score%' OR prompt ILIKE '%grade%' "
                    "OR prompt ILIKE '%rate the%'), count(*) FILTER (prompt ILIKE '%rewrite%' "
                    "OR prompt ILIKE '%paraphrase%' OR prompt ILIKE '%censorship%'), "
                    "avg(reasoning_tokens) FROM el WHERE campaign = 'A-reasoning'")
    assert kinds[0] > 50 and kinds[1] > 50 and kinds[2] > 1000


def test_campaign_b_spans_pathways_and_harvests_agentic_work(
        world: tuple[Path, WorldSummary], db: duckdb.DuckDBPyConnection) -> None:
    _, s = world
    kinds = {r[0].split(":")[0] for r in db.execute(
        "SELECT DISTINCT pathway FROM el WHERE campaign = 'B-agentic'").fetchall()}
    assert kinds == {"direct", "cloud", "reseller"}
    tools, images, recon_early, recon_late = one(db, f"""
        SELECT count(*) FILTER (n_tools > 0), count(*) FILTER (has_image),
               count(*) FILTER (prompt ILIKE '%reconstruct%' AND ts < TIMESTAMPTZ
                   '{s.start.isoformat()}' + INTERVAL {s.days * 12} HOUR),
               count(*) FILTER (prompt ILIKE '%reconstruct%')
        FROM el WHERE campaign = 'B-agentic'""")
    assert tools > 100 and images > 20 and recon_early == 0 and recon_late > 20


def test_campaign_c_mixes_customers_replaces_accounts_and_pivots(
        world: tuple[Path, WorldSummary], db: duckdb.DuckDBPyConnection) -> None:
    out, s = world
    mixed, total = one(db, "SELECT count(*) FILTER (a AND NOT b), count(*) FROM "
                           "(SELECT account_id, bool_or(is_attack) a, bool_and(is_attack) b "
                           "FROM el WHERE campaign = 'C-hydra' GROUP BY 1)")
    assert mixed / total > 0.9
    assert one(db, "SELECT count(DISTINCT account_id) FROM el WHERE campaign = 'C-hydra' AND "
                   f"account_created_at > TIMESTAMPTZ '{s.start.isoformat()}'")[0] >= 1
    rel = release(out).isoformat()
    before, day1 = one(db, f"""
        SELECT avg((model = 'atlas-4')::INT) FILTER (ts < TIMESTAMPTZ '{rel}'),
               avg((model = 'atlas-4')::INT) FILTER (ts >= TIMESTAMPTZ '{rel}' + INTERVAL 18 HOUR
                                                      AND ts < TIMESTAMPTZ '{rel}'
                                                      + INTERVAL 24 HOUR)
        FROM el WHERE campaign = 'C-hydra' AND is_attack""")
    assert before == 0 and 0.35 < day1 < 0.65


def test_campaign_d_v1_evades_the_obvious(world: tuple[Path, WorldSummary],
                                          db: duckdb.DuckDBPyConnection) -> None:
    _, s = world
    accounts, clients, payments, min_age_days = one(db, f"""
        SELECT count(DISTINCT account_id), count(DISTINCT client_fp),
               count(DISTINCT payment_fp),
               min(epoch(TIMESTAMPTZ '{s.start.isoformat()}' - account_created_at)) / 86400
        FROM el WHERE campaign = 'D-evasive'""")
    assert accounts >= 4 and clients == accounts and payments == accounts
    assert min_age_days > 150
    firsts, distinct = one(db, "SELECT count(*), count(DISTINCT prompt) FROM el WHERE "
                               "campaign = 'D-evasive' AND is_attack AND n_messages = 1")
    assert firsts > 50 and distinct == firsts  # dataset split: nothing asked twice
    cover = one(db, "SELECT avg((NOT is_attack)::INT) FROM el WHERE campaign = 'D-evasive'")[0]
    assert 0.1 < cover < 0.6
    d_day, casual_p90 = one(db, f"""
        SELECT (SELECT median(c) FROM (SELECT count(*) / {s.days} c FROM el
                 WHERE campaign = 'D-evasive' GROUP BY account_id)),
               (SELECT quantile_cont(c, 0.9) FROM (SELECT count(*) / {s.days} c FROM el
                 WHERE population = 'casual_chat' GROUP BY account_id))""")
    assert d_day < casual_p90  # low and slow
    ips_per_account = one(db, "SELECT avg(k) FROM (SELECT count(DISTINCT ip) k FROM el "
                              "WHERE campaign = 'D-evasive' GROUP BY account_id)")[0]
    assert ips_per_account >= 2  # residential proxy rotation


def test_hydra_customer_traffic_looks_ordinary(db: duckdb.DuckDBPyConnection) -> None:
    cust, cust_harvesty, follow = one(db, """
        SELECT count(*), count(*) FILTER (prompt ILIKE '%step by step%' OR n_tools > 0
                                          OR prompt ILIKE '%score%'),
               count(*) FILTER (n_messages > 1)
        FROM el WHERE campaign = 'C-hydra' AND NOT is_attack""")
    assert cust > 100 and cust_harvesty / cust < 0.03 and follow / cust > 0.2
    # both kinds of traffic leave through the same proxy egress addresses
    assert one(db, "SELECT count(*) FROM (SELECT ip FROM el WHERE campaign = 'C-hydra' "
                   "GROUP BY ip HAVING bool_or(is_attack) AND bool_or(NOT is_attack))")[0] > 3


def test_campaign_b_shares_infrastructure(db: duckdb.DuckDBPyConnection) -> None:
    shared = one(db, "SELECT avg((k >= 2)::INT) FROM (SELECT ip, count(DISTINCT account_id) k "
                     "FROM el WHERE campaign = 'B-agentic' AND pathway NOT LIKE 'reseller:%' "
                     "GROUP BY ip)")[0]
    assert shared > 0.8
    assert one(db, "SELECT count(DISTINCT client_fp) FROM el WHERE campaign = 'B-agentic' "
                   "AND pathway NOT LIKE 'reseller:%'")[0] <= 3


def test_token_usage_is_plausible(db: duckdb.DuckDBPyConnection) -> None:
    bad = one(db, """
        SELECT count(*) FILTER (input_tokens <= 0 OR output_tokens < 0 OR reasoning_tokens < 0),
               count(*) FILTER (max_tokens IS NOT NULL
                                AND output_tokens + reasoning_tokens > max_tokens + 1),
               count(*) FILTER (model = 'atlas-3-mini' AND reasoning_tokens > 0)
        FROM e""")
    assert bad == (0, 0, 0)
    harvest, chat = one(db, """
        SELECT median(reasoning_tokens) FILTER (campaign = 'A-reasoning'),
               median(reasoning_tokens) FILTER (population = 'casual_chat' AND
                                                model = 'atlas-3')
        FROM el""")
    assert harvest > 2 * chat


def test_banned_hydra_accounts_end_in_blocked_retries(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute("""
        SELECT account_id, min(ts) FILTER (status = 'blocked') b,
               max(ts) FILTER (status <> 'blocked') last_ok, sum(output_tokens) FILTER
               (status = 'blocked') out
        FROM el WHERE campaign = 'C-hydra' GROUP BY 1 HAVING b IS NOT NULL""").fetchall()
    assert rows, "some hydra accounts are banned mid-window"
    assert all(last_ok is None or last_ok < b for _, b, last_ok, _ in rows)
    assert all(out == 0 for *_, out in rows)
    assert one(db, "SELECT count(*) FROM el WHERE status = 'blocked' AND campaign IS NULL"
               )[0] == 0


def test_string_columns_keep_dictionary_pages(world: tuple[Path, WorldSummary]) -> None:
    """Guards the writer's invariant: dictionaries handed to Parquet hold distinct values.
    If one did not, Parquet would silently fall back to plain pages (slower, and we saw such
    pages come out with run-to-run different bytes)."""
    out, _ = world
    meta = pq.read_metadata(out / "exchanges.parquet")
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    for rg in range(meta.num_row_groups):
        for name in ("account_id", "payment_fp", "ip", "client_fp", "system_prompt", "model"):
            col = meta.row_group(rg).column(names.index(name))
            assert "RLE_DICTIONARY" in col.encodings, (rg, name, col.encodings)
