"""Assemble a world: register every population's accounts, then stream exchanges hour range by
hour range into Parquet (sorted by time within the window; memory bounded by the chunk)."""

from __future__ import annotations

import csv
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import Progress, TaskID

from antidistill.errors import InputError
from antidistill.schema import LABELS_SCHEMA
from antidistill.simulate.accounts import Accounts
from antidistill.simulate.base import Population
from antidistill.simulate.campaigns import CAMPAIGNS, Evasive
from antidistill.simulate.context import MODELS, Ctx
from antidistill.simulate.finish import resolve_ips, usage
from antidistill.simulate.heldout import ContractorSeats
from antidistill.simulate.network import Net
from antidistill.simulate.populations import LEGIT
from antidistill.simulate.prompts import pool
from antidistill.simulate.randomized import RandomizedHarvest
from antidistill.simulate.rows import HOUR, US, Rows, concat, take
from antidistill.simulate.writer import WorldWriter

#: v1: the scripted evasive campaign; v2: other tactics (partly held out); mix: v1 plus cells
#: of randomly drawn tactics (:mod:`antidistill.simulate.randomized`, for training worlds only);
#: v3: a held-out operation written without reading the detector
#: (:mod:`antidistill.simulate.heldout`)
EVASIONS = ("v1", "v2", "mix", "v3")
#: rows per chunk to aim for: large enough for fast Arrow/Parquet, small enough for memory
TARGET_CHUNK_ROWS = 300_000


@dataclass
class WorldSummary:
    """What was written, with counts (all measured from the written rows)."""

    out: Path
    seed: int
    days: int
    evasion: str
    accounts: int
    exchanges: int
    attack_exchanges: int
    start: datetime
    release: datetime
    seconds: float
    populations: dict[str, int] = field(default_factory=dict)
    campaigns: dict[str, int] = field(default_factory=dict)

    @property
    def exchanges_per_second(self) -> float:
        return self.exchanges / self.seconds if self.seconds > 0 else float("inf")


def _plan(seed: int, days: int, scale: float, vol: float, evasion: str
          ) -> tuple[Ctx, list[Population]]:
    rng = np.random.default_rng([seed, 1])
    ctx = Ctx(seed=seed, days=days, scale=scale, vol=vol, evasion=evasion, pool=pool(),
              accounts=Accounts(seed), net=Net(np.random.default_rng([seed, 2])), rng=rng)
    # v3 replaces the scripted D campaign in place (same position: earlier draws are unchanged)
    pops: list[Population] = [ContractorSeats() if evasion == "v3" and cls is Evasive else cls()
                              for cls in (*LEGIT, *CAMPAIGNS)]
    if evasion == "mix":
        pops.append(RandomizedHarvest())
    for p in pops:
        p.build(ctx)
    return ctx, pops


def _expected(ctx: Ctx, pops: list[Population]) -> tuple[float, float]:
    fixed = scaled = 0.0
    for p in pops:
        f, s = p.expected(ctx)
        fixed += f
        scaled += s
    return fixed, scaled


def plan_world(seed: int, days: int, accounts: int | None, exchanges: int | None,
               evasion: str) -> tuple[Ctx, list[Population]]:
    """Choose account scale and per-account volume so the requested sizes come out.

    ``accounts`` scales every population's head count; ``exchanges`` alone scales head counts
    too (so per-account behaviour stays realistic); both together also scale volume per account.
    """
    if accounts is None and exchanges is None:
        return _plan(seed, days, 1.0, 1.0, evasion)
    probe, probe_pops = _plan(seed, days, 1.0, 1.0, evasion)
    if accounts is not None:
        scale = accounts / probe.accounts.n
    else:
        assert exchanges is not None
        scale = exchanges / max(sum(_expected(probe, probe_pops)), 1.0)
    ctx, pops = _plan(seed, days, scale, 1.0, evasion)
    if exchanges is not None:
        fixed, scaled = _expected(ctx, pops)
        ctx.vol = max(exchanges - fixed, 0.0) / max(scaled, 1.0)
    return ctx, pops


def _check(days: int, accounts: int | None, exchanges: int | None, evasion: str) -> None:
    if days < 1 or days > 366:
        raise InputError(f"days must be between 1 and 366, got {days}", field="days")
    if accounts is not None and accounts < 20:
        raise InputError(f"accounts must be at least 20, got {accounts}", field="accounts")
    if exchanges is not None and exchanges < 10_000:
        # below this, fixed-size evaluation bursts alone would exceed the target
        raise InputError(f"exchanges must be at least 10000, got {exchanges}",
                         field="exchanges")
    if evasion not in EVASIONS:
        raise InputError(f"evasion must be one of {', '.join(EVASIONS)}, got {evasion!r}",
                         field="evasion")


def simulate_world(out: Path, *, seed: int = 7, days: int = 7, accounts: int | None = None,
                   exchanges: int | None = None, evasion: str = "v1",
                   progress: bool = True) -> WorldSummary:
    """Simulate ``days`` of API traffic with legitimate populations and campaigns into ``out``.

    Writes ``exchanges.parquet``, ``labels.parquet``, ``exchange_labels.parquet`` and
    ``models.csv``. The same arguments always produce byte-identical files.
    """
    _check(days, accounts, exchanges, evasion)
    t_start = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError("output path exists and is not a directory", where=str(out))
    out.mkdir(parents=True, exist_ok=True)
    ctx, pops = plan_world(seed, days, accounts, exchanges, evasion)
    ctx.accounts.freeze()
    per_hour = sum(_expected(ctx, pops)) / (days * 24)
    step = int(np.clip(TARGET_CHUNK_ROWS / max(per_hour, 1.0), 1, 24))
    rngs = [np.random.default_rng([seed, 3, i]) for i in range(len(pops))]
    finish_rng = np.random.default_rng([seed, 4])
    seen = np.zeros(ctx.accounts.n, bool)
    hours = days * 24
    carry: Rows = concat([])
    # Arrow/Parquet encoding runs in a second thread (it releases the GIL) while the next hours
    # are generated; chunks are written strictly in order, so output bytes do not depend on it.
    pending: deque[Future[None]] = deque()
    with WorldWriter(out, ctx) as writer, ThreadPoolExecutor(1) as pool_, \
            _progress(progress, hours) as bar:
        for h0 in range(0, hours, step):
            h1 = min(h0 + step, hours)
            rows = concat([carry, *(p.emit(ctx, h0, h1, g) for p, g in zip(pops, rngs,
                                                                              strict=True))])
            end = ctx.start_us + h1 * HOUR
            later = rows["ts"] >= end
            carry = take(rows, np.flatnonzero(later & (rows["ts"] < ctx.end_us)))
            keep = np.flatnonzero(~later)
            now = take(rows, keep[np.argsort(rows["ts"][keep], kind="stable")])
            resolve_ips(ctx, now, finish_rng)
            usage(ctx, now, finish_rng)
            seen[now["acct"]] = True
            while len(pending) >= 2:
                pending.popleft().result()
            pending.append(pool_.submit(writer.write, now))
            bar(h1 - h0)
        while pending:
            pending.popleft().result()
        n_rows, n_attack = writer.rows, writer.attacks
    _write_labels(out, ctx, seen)
    _write_models(out, ctx)
    f = ctx.accounts.frozen
    pop_names = np.asarray(f["population"].to_pylist(), dtype=object)[seen]
    camp_names = np.asarray(f["campaign"].to_pylist(), dtype=object)[seen]
    return WorldSummary(
        out=out, seed=seed, days=days, evasion=evasion, accounts=int(seen.sum()),
        exchanges=n_rows, attack_exchanges=n_attack,
        start=datetime.fromtimestamp(ctx.start_us / US, UTC),
        release=datetime.fromtimestamp(ctx.release_us / US, UTC),
        seconds=time.perf_counter() - t_start,
        populations={str(k): int(v) for k, v in zip(*np.unique(pop_names.astype(str),
                                                           return_counts=True), strict=True)},
        campaigns={str(k): int((camp_names == k).sum()) for k in sorted(
            {c for c in camp_names.tolist() if c is not None})},
    )


def _write_labels(out: Path, ctx: Ctx, seen: np.ndarray) -> None:
    f = ctx.accounts.frozen
    keep = pa.array(np.flatnonzero(seen))
    table = pa.Table.from_arrays(
        [f["account_id"].take(keep), f["population"].take(keep), f["campaign"].take(keep)],
        schema=LABELS_SCHEMA)
    pq.write_table(table.sort_by("account_id"), out / "labels.parquet", compression="zstd")


def _write_models(out: Path, ctx: Ctx) -> None:
    with (out / "models.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["model", "released_at"])
        for name, _, in_window in MODELS:
            released = datetime.fromtimestamp(ctx.release_us / US, UTC) if in_window else None
            w.writerow([name, released.strftime("%Y-%m-%dT%H:%M:%SZ") if released else ""])


class _progress:
    """A rich progress bar over simulated hours (silent when disabled)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total
        self.prog: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> Callable[[int], None]:
        if self.enabled:
            self.prog = Progress(transient=True)
            self.prog.start()
            self.task = self.prog.add_task("simulating traffic (hours)", total=self.total)
        return self._advance

    def _advance(self, k: int) -> None:
        if self.prog is not None and self.task is not None:
            self.prog.advance(self.task, k)

    def __exit__(self, *exc: object) -> None:
        if self.prog is not None:
            self.prog.stop()
