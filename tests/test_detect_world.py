"""A small hand-built world for the detection tests (independent of the simulator).

Real prompts from the vendored corpora; a coordinated CoT-harvesting hydra (shared payment,
synchronised, dataset split, two quiet members), ordinary chat users, a team org sharing payment
and office IP, and an eval runner that bursts through a benchmark once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from antidistill import corpora
from antidistill.schema import EXCHANGE_SCHEMA, LABELS_SCHEMA

T0 = datetime(2026, 11, 1, tzinfo=UTC)
COT = ("Solve this step by step and show all of your reasoning before the final answer:\n{p}",
       "Think through the problem carefully, explaining each step of your reasoning.\n\n{p}",
       "{p}\n\nWork it out step-by-step; write out your full chain of thought.")


def make_world(out: Path, *, seed: int, days: int = 3) -> Path:
    """Write exchanges.parquet, labels.parquet, models.csv into ``out``; return ``out``."""
    rng = np.random.default_rng(seed)
    gsm = [p.text for p in corpora.load("gsm8k")]
    chat = [p.text for p in corpora.load("arena_hard")] + [p.text for p in corpora.load("mt_bench")]
    code = [p.text for p in corpora.load("humaneval")]
    rows: list[dict[str, object]] = []
    labels: list[tuple[str, str, str | None]] = []
    span = days * 86400

    def add(acc: str, ts: float, prompt: str, **kw: object) -> None:
        rows.append({"request_id": f"{acc}-{len(rows)}", "ts": T0 + timedelta(seconds=ts),
                     "account_id": acc, "model": kw.pop("model", "m-1"), "prompt": prompt,
                     **kw})

    # chat users: few multi-turn chats in daytime, own payment and IP
    for i in range(30):
        acc = f"s{seed}-chat-{i}"
        labels.append((acc, "casual_chat", None))
        base = dict(account_type="individual", verified=bool(i % 2), pathway="direct",
                    payment_fp=f"pay-{seed}-c{i}", ip=f"10.{i}.{seed % 200}.{i}",
                    asn=7000 + i, client_fp=f"sdk-{i % 4}",
                    account_created_at=T0 - timedelta(days=int(rng.integers(30, 900))))
        for _ in range(int(rng.integers(8, 40))):
            day = int(rng.integers(0, days))
            ts = day * 86400 + float(rng.normal(14, 2.5)) * 3600
            add(acc, min(max(ts, 0), span - 1), chat[int(rng.integers(len(chat)))],
                n_messages=int(rng.integers(1, 7)), input_tokens=300, output_tokens=int(
                    rng.integers(100, 700)), reasoning_tokens=0, max_tokens=2048, status="ok",
                **base)
    # team org: shared org payment and office IP, coding + chat
    for i in range(6):
        acc = f"s{seed}-team-{i}"
        labels.append((acc, "team_org", None))
        base = dict(account_type="team", org_id=f"org-{seed}", verified=True, pathway="direct",
                    payment_fp=f"pay-{seed}-org", ip=f"172.16.{seed % 200}.1", asn=9000,
                    client_fp="sdk-1", account_created_at=T0 - timedelta(days=200))
        for _ in range(int(rng.integers(20, 60))):
            day = int(rng.integers(0, days))
            ts = day * 86400 + float(rng.normal(13, 2)) * 3600
            pool = code + chat
            add(acc, min(max(ts, 0), span - 1), pool[int(rng.integers(len(pool)))],
                n_messages=int(rng.integers(1, 9)), input_tokens=900, output_tokens=int(
                    rng.integers(200, 900)), reasoning_tokens=0, max_tokens=4096, status="ok",
                **base)
    # eval runner: one burst through a benchmark slice with CoT prompts
    acc = f"s{seed}-eval-0"
    labels.append((acc, "eval_runner", None))
    start = float(rng.uniform(0.2, 0.6)) * span
    for j, p in enumerate(gsm[:200]):
        add(acc, start + j * 2.0, "Let's think step by step.\n" + p, account_type="research",
            verified=True, pathway="direct", payment_fp=f"pay-{seed}-eval", ip="192.0.2.9",
            asn=9100, client_fp="lm-eval", n_messages=1, input_tokens=200, output_tokens=400,
            reasoning_tokens=300, max_tokens=1024, status="ok",
            account_created_at=T0 - timedelta(days=400))
    # the hydra: 12 accounts, 3 payment instruments, synchronised waves, dataset split
    order = rng.permutation(len(gsm))[: 12 * 80]
    waves = np.sort(rng.uniform(0, span, size=40))
    for i in range(12):
        acc = f"s{seed}-hydra-{i}"
        labels.append((acc, "campaign", "A-hydra"))
        quiet = i >= 10
        items = order[i * 80: i * 80 + (6 if quiet else 80)]
        base = dict(account_type="individual", verified=False, pathway="direct",
                    payment_fp=f"pay-{seed}-h{i % 3}", ip=f"203.0.{seed % 200}.{i}",
                    asn=64500, client_fp=f"py-{i}",
                    account_created_at=T0 - timedelta(hours=int(rng.integers(1, 30))))
        for j, item in enumerate(items):
            ts = waves[j % len(waves)] + float(rng.uniform(0, 120))
            add(acc, min(ts, span - 1), COT[j % len(COT)].format(p=gsm[int(item)]),
                n_messages=1, input_tokens=250, output_tokens=4000, reasoning_tokens=3500,
                max_tokens=4000, status="ok", **base)
    table = pa.Table.from_pylist(rows, schema=EXCHANGE_SCHEMA)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.sort_by("ts"), out / "exchanges.parquet")
    pq.write_table(pa.Table.from_pylist(
        [{"account_id": a, "population": p, "campaign": c} for a, p, c in labels],
        schema=LABELS_SCHEMA), out / "labels.parquet")
    (out / "models.csv").write_text("model,released_at\nm-1,\n", encoding="utf-8")
    return out


def test_world_has_every_population(tmp_path: Path) -> None:
    world = make_world(tmp_path, seed=1)
    labels = pq.read_table(world / "labels.parquet")
    pops = set(labels.column("population").to_pylist())
    assert {"casual_chat", "team_org", "eval_runner", "campaign"} <= pops
    ex = pq.read_table(world / "exchanges.parquet")
    assert set(ex.column("account_id").to_pylist()) == set(labels.column("account_id").to_pylist())


_CACHE: dict[str, dict[str, Path]] = {}


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Worlds 1-3 (train 1-2, calibrate 3), a model trained on them, and a held-out world 4.

    Cached at module level: the fixture is imported into several test modules, and pytest would
    otherwise build it once per module.
    """
    import sys

    if "trained" in _CACHE:
        return _CACHE["trained"]
    base = tmp_path_factory.mktemp("detect-worlds")
    worlds = {s: make_world(base / f"w{s}", seed=s) for s in (1, 2, 3, 4)}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import train_scoring

    model = base / "model.json"
    train_scoring.main(["--world", str(worlds[1]), str(worlds[2]), "--calib-world",
                        str(worlds[3]), "--out", str(model)])
    _CACHE["trained"] = {"model": model, "world": worlds[4], "base": base}
    return _CACHE["trained"]


@pytest.fixture(scope="session")
def detected(trained: dict[str, Path]) -> Path:
    """Detection on the held-out world 4 with the test-trained model."""
    from antidistill.detect import detect

    out = trained["base"] / "out4"
    if (out / "report.html").is_file():
        return out
    detect([trained["world"] / "exchanges.parquet"], out, model_path=trained["model"],
           progress=False)
    return out
