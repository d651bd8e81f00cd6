"""Train the shipped scoring model reproducibly on simulated worlds.

    python benchmarks/train_scoring.py                      # seeds 101-103 (v1) and 111-118
                                                            # (mix) train, 104 calibrates
    python benchmarks/train_scoring.py --train-seeds 101 102 --calib-seed 104 --out model.json
    python benchmarks/train_scoring.py --world DIR ... --calib-world DIR   # pre-built worlds

Worlds are simulated with ``evasion="v1"`` into ``benchmarks/.cache/worlds/seed-N`` and with
``evasion="mix"`` (v1 plus cells of randomly drawn tactics, so the model learns harvesting rather
than four recipes) into ``mix-N``, and reused when present; v2 and v3 are held out for
evaluation. Every training world is also trained on once more as a **column-blind** copy: its
log without one group of optional columns (identity, usage, account metadata, request shape, or
all four, in turn; :data:`antidistill.schema.COLUMN_GROUPS`), so that a provider whose logs lack
them is scored on the signals it does have. The calibration world's five blind copies each
calibrate their own log condition (``scoring.model.condition_of``). The model is written to
``src/antidistill/data/models/scoring_v1.json`` by default.
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pyarrow.parquet as pq

from antidistill.schema import BLIND_VARIANTS as GROUPS_OF

if TYPE_CHECKING:
    from antidistill.scoring.train import WorldData

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "worlds"
PREPARED = ROOT / "benchmarks" / ".cache" / "prepared"
DEFAULT_OUT = ROOT / "src" / "antidistill" / "data" / "models" / "scoring_v1.json"
#: the column-blind variants' names, assigned to training worlds in turn
BLIND_VARIANTS: tuple[str, ...] = tuple(GROUPS_OF)


class Spec(NamedTuple):
    """One training world: a simulated seed, optionally cut to its first hours and blinded."""

    seed: int
    evasion: str = "v1"
    until_hours: float | None = None
    blind: str | None = None


def world_data(world: Path, name: str, until_hours: float | None = None, *,
               group: str | None = None) -> WorldData:
    """Prepare one labelled world with the same code detection runs.

    ``until_hours``: only the first hours of the log, as a replay with ``--until`` sees it (so
    the model also learns what campaigns look like on their first day). ``group``: worlds
    derived from one simulation (cuts, blind copies) share it, so out-of-fold scoring holds
    them out together (default: the name before any ``-first-`` suffix).
    """
    from antidistill.detect import connect, prepare, read_models
    from antidistill.scoring.train import WorldData

    log = world / "exchanges.parquet"
    tmp = Path(tempfile.mkdtemp(prefix="antidistill-train-"))
    try:
        con = connect(tmp)
        until = None
        if until_hours is not None:
            from datetime import timedelta

            first = con.execute("SELECT min(ts) FROM read_parquet(?)", [str(log)]).fetchall()
            until = first[0][0] + timedelta(hours=until_hours)
        prep = prepare(con, [log], models=read_models(None, [log]), until=until)
        con.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    labels = pq.read_table(world / "labels.parquet").to_pylist()
    is_campaign = {r["account_id"]: r["campaign"] is not None for r in labels}
    ids = prep.account_ids
    y = np.array([1.0 if is_campaign.get(a, False) else 0.0 for a in ids])
    return WorldData(name, ids, prep.matrix(), prep.column("share_harvest_like"),
                     prep.column("n_exchanges"), prep.clustering, y,
                     group=group or name.split("-first-")[0])


def world_name(seed: int, evasion: str = "v1", until_hours: float | None = None,
               blind: str | None = None) -> str:
    """``seed-N`` (v1) or ``<evasion>-N``, with ``-blind-<variant>`` for a column-blind copy
    and ``-first-<H>h`` for a truncated replay."""
    name = f"seed-{seed}" if evasion == "v1" else f"{evasion}-{seed}"
    if blind is not None:
        name += f"-blind-{blind}"
    return name if until_hours is None else f"{name}-first-{until_hours:g}h"


def simulated(seed: int, evasion: str = "v1", blind: str | None = None) -> Path:
    """The simulated world's folder (simulated on first use); a blind copy is written beside
    it from the full log."""
    from antidistill.simulate import simulate_world

    path = CACHE / world_name(seed, evasion)
    if not (path / "labels.parquet").is_file():
        simulate_world(path, seed=seed, evasion=evasion, progress=False)
    if blind is None:
        return path
    from antidistill.schema import without_groups

    copy = CACHE / world_name(seed, evasion, blind=blind)
    if not (copy / "labels.parquet").is_file():
        copy.mkdir(parents=True, exist_ok=True)
        log = without_groups(pq.read_table(path / "exchanges.parquet"), GROUPS_OF[blind])
        pq.write_table(log, copy / "exchanges.parquet")
        for name in ("models.csv", "exchange_labels.parquet", "labels.parquet"):  # labels last
            if (path / name).is_file():
                shutil.copyfile(path / name, copy / name)
    return copy


def seeded(seed: int, evasion: str = "v1", until_hours: float | None = None, *,
           blind: str | None = None, reuse: bool = False) -> WorldData:
    """The prepared world of one simulated seed (simulated on first use).

    ``reuse``: keep the prepared world in ``benchmarks/.cache/prepared/<name>.pkl`` and load it
    from there next time (preparing the recipe's 72 worlds takes ~30 minutes). The cache does
    not know which code prepared it: delete the folder after changing anything upstream of
    scoring.
    """
    name = world_name(seed, evasion, until_hours, blind)
    cache = PREPARED / f"{name}.pkl"
    if reuse and cache.is_file():
        return pickle.loads(cache.read_bytes())
    wd = world_data(simulated(seed, evasion, blind), name, until_hours=until_hours,
                    group=world_name(seed, evasion))
    if reuse:
        PREPARED.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(wd))
    return wd


def prepared(spec: Spec, *, reuse: bool = False) -> WorldData:
    return seeded(spec.seed, spec.evasion, spec.until_hours, blind=spec.blind, reuse=reuse)


def training_specs(train_seeds: list[int], mix_seeds: list[int], cutoff_hours: list[float],
                   *, blind: bool = True) -> list[Spec]:
    """Every training world, in training order: each v1 seed, then its first-hours cuts, then
    each mix seed with its cuts; then (``blind``) each of those once more as a column-blind
    copy, the variants of :data:`BLIND_VARIANTS` in turn."""
    specs = [Spec(s) for s in train_seeds]
    specs += [Spec(s, "v1", h) for s in train_seeds for h in cutoff_hours]
    specs += [Spec(s, "mix", h) for s in mix_seeds for h in (None, *cutoff_hours)]
    if blind:
        specs += [spec._replace(blind=BLIND_VARIANTS[i % len(BLIND_VARIANTS)])
                  for i, spec in enumerate(list(specs))]
    return specs


def calibration_specs(seed: int, *, blind: bool = True) -> list[Spec]:
    """The calibration world, and (``blind``) each of its column-blind copies."""
    return [Spec(seed), *(Spec(seed, blind=b) for b in (BLIND_VARIANTS if blind else ()))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-seeds", type=int, nargs="*", default=[101, 102, 103])
    ap.add_argument("--calib-seed", type=int, default=104)
    ap.add_argument("--mix-seeds", type=int, nargs="*", default=list(range(111, 119)),
                    help="evasion='mix' worlds (v1 plus cells of random tactics) to train on")
    ap.add_argument("--world", type=Path, nargs="*", default=None,
                    help="pre-built labelled worlds to train on (instead of seeds)")
    ap.add_argument("--calib-world", type=Path, default=None)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--cutoff-hours", type=float, nargs="*", default=[24.0, 48.0],
                    help="also train on each training world truncated to these first hours")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--reuse-prepared", action="store_true",
                    help="load/save prepared seeds in benchmarks/.cache/prepared (clear it after "
                         "changing anything upstream of scoring)")
    ap.add_argument("--no-blind", action="store_true",
                    help="train without the column-blind copies of the worlds")
    args = ap.parse_args(argv)
    from antidistill.scoring.train import train

    reuse = args.reuse_prepared

    if args.world:
        worlds = [world_data(w, w.name) for w in args.world]
        if args.calib_world is None:
            ap.error("--calib-world is required with --world")
        calib = world_data(args.calib_world, args.calib_world.name)
        conditions: dict[str, WorldData] = {}
        meta = {"worlds": [str(w) for w in args.world], "calibration": str(args.calib_world)}
    else:
        blind = not args.no_blind
        specs = training_specs(args.train_seeds, args.mix_seeds, args.cutoff_hours, blind=blind)
        worlds = [prepared(spec, reuse=reuse) for spec in specs]
        calib = prepared(Spec(args.calib_seed), reuse=reuse)
        conditions = {spec.blind: prepared(spec, reuse=reuse)
                      for spec in calibration_specs(args.calib_seed, blind=blind)
                      if spec.blind is not None}
        meta = {"train_seeds": args.train_seeds, "calib_seed": args.calib_seed,
                "evasion": "v1", "mix_seeds": args.mix_seeds, "cutoff_hours": args.cutoff_hours,
                "column_blind": list(BLIND_VARIANTS) if blind else []}
    model = train(worlds, calib, threshold=args.threshold, meta=meta, conditions=conditions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): "
          f"{model.meta['train_accounts']} accounts, {model.meta['train_positives']} positives")
    return 0


if __name__ == "__main__":
    sys.exit(main())
