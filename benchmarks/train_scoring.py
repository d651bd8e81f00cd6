"""Train the shipped scoring model reproducibly on simulated worlds.

    python benchmarks/train_scoring.py                      # seeds 101-103 (v1) and 111-118
                                                            # (mix) train, 104 calibrates
    python benchmarks/train_scoring.py --train-seeds 101 102 --calib-seed 104 --out model.json
    python benchmarks/train_scoring.py --world DIR ... --calib-world DIR   # pre-built worlds

Worlds are simulated with ``evasion="v1"`` into ``benchmarks/.cache/worlds/seed-N`` and with
``evasion="mix"`` (v1 plus cells of randomly drawn tactics, so the model learns harvesting rather
than four recipes) into ``mix-N``, and reused when present; v2 is held out for evaluation. The
model is written to ``src/antidistill/data/models/scoring_v1.json`` by default.
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from antidistill.scoring.train import WorldData

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "worlds"
PREPARED = ROOT / "benchmarks" / ".cache" / "prepared"
DEFAULT_OUT = ROOT / "src" / "antidistill" / "data" / "models" / "scoring_v1.json"


def world_data(world: Path, name: str, until_hours: float | None = None) -> WorldData:
    """Prepare one labelled world with the same code detection runs.

    ``until_hours``: only the first hours of the log, as a replay with ``--until`` sees it (so
    the model also learns what campaigns look like on their first day).
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
                     group=name.split("-first-")[0])


def world_name(seed: int, evasion: str = "v1", until_hours: float | None = None) -> str:
    """``seed-N`` (v1) or ``<evasion>-N``, with ``-first-<H>h`` for a truncated replay."""
    name = f"seed-{seed}" if evasion == "v1" else f"{evasion}-{seed}"
    return name if until_hours is None else f"{name}-first-{until_hours:g}h"


def simulated(seed: int, evasion: str = "v1") -> Path:
    from antidistill.simulate import simulate_world

    path = CACHE / world_name(seed, evasion)
    if not (path / "labels.parquet").is_file():
        simulate_world(path, seed=seed, evasion=evasion, progress=False)
    return path


def seeded(seed: int, evasion: str = "v1", until_hours: float | None = None, *,
           reuse: bool = False) -> WorldData:
    """The prepared world of one simulated seed (simulated on first use).

    ``reuse``: keep the prepared world in ``benchmarks/.cache/prepared/<name>.pkl`` and load it
    from there next time (preparing 42 worlds takes ~10 minutes). The cache does not know which
    code prepared it: delete the folder after changing anything upstream of scoring.
    """
    name = world_name(seed, evasion, until_hours)
    cache = PREPARED / f"{name}.pkl"
    if reuse and cache.is_file():
        return pickle.loads(cache.read_bytes())
    wd = world_data(simulated(seed, evasion), name, until_hours=until_hours)
    if reuse:
        PREPARED.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(wd))
    return wd


def training_specs(train_seeds: list[int], mix_seeds: list[int], cutoff_hours: list[float]
                   ) -> list[tuple[int, str, float | None]]:
    """(seed, evasion, until_hours) of every training world, in training order: each v1 seed,
    then its first-hours cuts, then each mix seed with its cuts."""
    specs: list[tuple[int, str, float | None]] = [(s, "v1", None) for s in train_seeds]
    specs += [(s, "v1", h) for s in train_seeds for h in cutoff_hours]
    specs += [(s, "mix", h) for s in mix_seeds for h in (None, *cutoff_hours)]
    return specs


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
    args = ap.parse_args(argv)
    from antidistill.scoring.train import train

    reuse = args.reuse_prepared

    if args.world:
        worlds = [world_data(w, w.name) for w in args.world]
        if args.calib_world is None:
            ap.error("--calib-world is required with --world")
        calib = world_data(args.calib_world, args.calib_world.name)
        meta = {"worlds": [str(w) for w in args.world], "calibration": str(args.calib_world)}
    else:
        specs = training_specs(args.train_seeds, args.mix_seeds, args.cutoff_hours)
        worlds = [seeded(s, ev, h, reuse=reuse) for s, ev, h in specs]
        calib = seeded(args.calib_seed, reuse=reuse)
        meta = {"train_seeds": args.train_seeds, "calib_seed": args.calib_seed,
                "evasion": "v1", "mix_seeds": args.mix_seeds, "cutoff_hours": args.cutoff_hours}
    model = train(worlds, calib, threshold=args.threshold, meta=meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): "
          f"{model.meta['train_accounts']} accounts, {model.meta['train_positives']} positives")
    return 0


if __name__ == "__main__":
    sys.exit(main())
