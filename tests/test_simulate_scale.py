"""Determinism, sizing knobs, the held-out evasion mix, and the CLI's handling of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from antidistill.errors import InputError
from antidistill.simulate import simulate_world

FILES = ("exchanges.parquet", "labels.parquet", "exchange_labels.parquet", "models.csv")


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    simulate_world(a, seed=3, days=2, accounts=150, progress=False)
    simulate_world(b, seed=3, days=2, accounts=150, progress=False)
    simulate_world(c, seed=4, days=2, accounts=150, progress=False)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "exchanges.parquet").read_bytes() != (c / "exchanges.parquet").read_bytes()


@pytest.mark.parametrize("target", [20_000, 60_000])
def test_exchanges_knob_scales_the_world(tmp_path: Path, target: int) -> None:
    s = simulate_world(tmp_path, seed=5, days=2, exchanges=target, progress=False)
    assert abs(s.exchanges - target) / target < 0.15
    per_account = s.exchanges / s.accounts
    assert 30 < per_account < 300  # accounts scale along, per-account behaviour stays plausible


def test_accounts_and_exchanges_together(tmp_path: Path) -> None:
    s = simulate_world(tmp_path, seed=5, days=2, accounts=200, exchanges=40_000,
                       progress=False)
    assert 150 <= s.accounts <= 260
    assert abs(s.exchanges - 40_000) / 40_000 < 0.15


def test_evasion_v2_is_a_different_tactic_mix(tmp_path: Path) -> None:
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    simulate_world(v1, seed=9, days=3, accounts=300, evasion="v1", progress=False)
    simulate_world(v2, seed=9, days=3, accounts=300, evasion="v2", progress=False)
    con = duckdb.connect()
    for name, d in (("v1", v1), ("v2", v2)):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM '{d / 'exchanges.parquet'}' "
                    f"JOIN '{d / 'labels.parquet'}' USING (account_id) "
                    f"JOIN '{d / 'exchange_labels.parquet'}' USING (request_id) "
                    "WHERE campaign = 'D-evasive'")

    def q(sql: str) -> tuple:  # type: ignore[type-arg]
        row = con.execute(sql).fetchone()
        assert row is not None
        return row

    # v2: reseller/cloud pathways and edu/research disguises; v1: direct, individual/startup
    assert {r[0] for r in con.execute("SELECT DISTINCT split_part(pathway, ':', 1) FROM v2")
            .fetchall()} == {"direct", "cloud", "reseller"}
    assert q("SELECT count(*) FROM v1 WHERE pathway <> 'direct'")[0] == 0
    assert q("SELECT count(*) FROM v2 WHERE account_type IN ('edu', 'research')")[0] > 0
    # v2 still harvests: many distinct problems, reasoning pulled out through follow-ups
    firsts, distinct, follow = q("SELECT count(*) FILTER (n_messages = 1), count(DISTINCT "
                                 "prompt) FILTER (n_messages = 1), count(*) FILTER "
                                 "(n_messages > 1) FROM v2 WHERE is_attack")
    assert firsts > 50 and distinct == firsts and follow > firsts
    assert q("SELECT avg((NOT is_attack)::INT) FROM v2")[0] == 0  # no cover traffic
    # accounts rotate: each lives about three days at most
    assert q("SELECT max(span) FROM (SELECT epoch(max(ts) - min(ts)) / 86400 span FROM v2 "
             "GROUP BY account_id)")[0] < 3.1
    # and the two mixes are not the same traffic
    assert q("SELECT avg(n_messages) FROM v2 WHERE is_attack")[0] > q(
        "SELECT avg(n_messages) FROM v1 WHERE is_attack")[0]


def test_evasion_mix_draws_varied_tactics_per_cell() -> None:
    """Training worlds: the randomised cells span the operator's choices across seeds."""
    from antidistill.simulate.randomized import RandomizedHarvest
    from antidistill.simulate.world import _plan

    seen: dict[str, set[object]] = {k: set() for k in (
        "ask", "target", "cover", "turns", "deep", "system", "rotating", "pathway", "type", "mt",
        "fresh")}
    for seed in range(1, 9):
        ctx, pops = _plan(seed, 7, 1.0, 1.0, "mix")
        r = pops[-1]
        assert isinstance(r, RandomizedHarvest)
        assert not any(isinstance(p, RandomizedHarvest) for p in _plan(seed, 7, 1.0, 1.0,
                                                                         "v1")[1])
        seen["ask"] |= set(r.ask.tolist())
        seen["target"] |= set(r.target.tolist())
        seen["cover"] |= {bool(c > 0) for c in r.cover}
        seen["turns"] |= {bool(t < 1) for t in r.turns_p}
        seen["deep"] |= {bool(t < 0.2) for t in r.turns_p}  # over 5 turns a session: agent loops
        seen["system"] |= {bool(s >= 0) for s in r.system}  # a harness's system prompt
        seen["rotating"] |= {bool(t < ctx.end_us) for t in r.active_to}
        seen["mt"] |= {int(m) > 4096 for m in r.mt}
        cols = ctx.accounts.cols
        idx = range(r.first, r.first + r.n)
        seen["pathway"] |= {cols["pathway"][i].split(":")[0] for i in idx}
        seen["type"] |= {cols["account_type"][i] for i in idx}
        seen["fresh"] |= {(ctx.start_us - cols["created_at"][i]) < 60 * 86_400 * 10**6
                          for i in idx}
        assert {cols["campaign"][i] for i in idx} == {"R-randomized"}
    assert seen["ask"] == {0, 1, 2, 3} and seen["target"] == {0, 1, 2, 3}
    assert seen["pathway"] == {"direct", "cloud", "reseller"}
    assert {"individual", "edu", "research", "startup"} <= seen["type"]
    for key in ("cover", "turns", "deep", "system", "rotating", "mt", "fresh"):
        assert seen[key] == {False, True}, key


def test_evasion_mix_cells_harvest_without_repeats(tmp_path: Path) -> None:
    simulate_world(tmp_path, seed=9, days=2, accounts=600, evasion="mix", progress=False)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW r AS SELECT * FROM '{tmp_path / 'exchanges.parquet'}' "
                f"JOIN '{tmp_path / 'labels.parquet'}' USING (account_id) "
                f"JOIN '{tmp_path / 'exchange_labels.parquet'}' USING (request_id) "
                "WHERE campaign = 'R-randomized'")
    row = con.execute("SELECT count(*), count(DISTINCT account_id), count(DISTINCT prompt) "
                      "FROM r WHERE is_attack AND n_messages = 1 + (system_prompt IS NOT NULL)::INT"
                      ).fetchone()
    assert row is not None
    firsts, accounts, distinct = row
    assert accounts >= 12 and firsts > 100
    assert distinct >= 0.95 * firsts  # a dataset covered, not sampled with repeats


@pytest.mark.parametrize("kwargs", [{"days": 0}, {"evasion": "v9"}, {"accounts": 3},
                                    {"exchanges": 10}])
def test_bad_arguments_raise_input_error(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError):
        simulate_world(tmp_path, progress=False, **kwargs)  # type: ignore[arg-type]


def test_cli_simulate_and_stats(tmp_path: Path) -> None:
    out = tmp_path / "w"
    run = [sys.executable, "-m", "antidistill"]
    proc = subprocess.run([*run, "simulate", "--out", str(out), "--accounts", "120", "--days",
                           "2", "--quiet"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "exchanges" in proc.stdout and (out / "exchanges.parquet").exists()
    proc = subprocess.run([*run, "stats", str(out)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "casual_chat" in proc.stdout and "C-hydra" in proc.stdout
    bad = subprocess.run([*run, "simulate", "--out", str(out), "--evasion", "v9"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "evasion" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_hourly_chunks_stream_deterministically(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Small chunks (as in a 16M-exchange world): sessions spill across chunk boundaries and
    Parquet encoding overlaps generation, yet the bytes are stable and rows stay sorted."""
    import pyarrow.parquet as pq

    from antidistill.simulate import world

    monkeypatch.setattr(world, "TARGET_CHUNK_ROWS", 100)
    a, b = tmp_path / "a", tmp_path / "b"
    sa = simulate_world(a, seed=8, days=2, accounts=150, progress=False)
    simulate_world(b, seed=8, days=2, accounts=150, progress=False)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    meta = pq.read_metadata(a / "exchanges.parquet")
    assert meta.num_row_groups >= 40 and meta.num_rows == sa.exchanges
    ts = pq.read_table(a / "exchanges.parquet", columns=["ts"]).column("ts").to_numpy()
    assert (ts[1:] >= ts[:-1]).all()


def test_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "world"
    target.write_text("not a directory")
    with pytest.raises(InputError, match="not a directory"):
        simulate_world(target, progress=False)
