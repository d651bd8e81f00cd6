"""How well the scorer generalises to harvesting it was not trained on (training seeds only).

    python benchmarks/generalisation.py                 # seeds 101-103 train, 104 calibrates,
                                                        # 105-106 evaluate; writes results JSON
    python benchmarks/generalisation.py --mix-seeds 111 112 113 114 115 116 117 118
                                                        # as shipped: also the randomised cells
    python benchmarks/generalisation.py --no-augment    # without the plainly-asked copies

Three stress tests, all built from the training distribution (the held-out v2 and v3 worlds
are never touched here, so choices made with this script do not tune on them):

* **leave one campaign out** — each campaign kind (A-D) is removed from every training and
  calibration world in turn; the recall on that kind in the evaluation worlds is how well the
  scorer finds a tactic it has never seen labelled;
* **wording-blind** — the evaluation worlds' campaign accounts have their wording features
  (chain-of-thought, rubric and rewrite asks) set to zero, as if every harvester asked plainly:
  wording is the cheapest thing an adversary can change, volume, coverage, long outputs and
  coordination are not;
* **column-blind** — the evaluation worlds' logs without one group of optional columns
  (identity, usage, account metadata, request shape, or all four), as providers that do not
  record them would write them; recall and FPR of the full model on each.

Legitimate FPR is reported overall and for every legitimate population, for the full model.
Accounts are flagged as detection flags them (``scoring.score.flag_rule``: above the threshold,
with the solo and neighbour rules; before 2026-12-02 the bare ``risk >= threshold``).
Results go to ``benchmarks/results/generalisation.json``, one entry per configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_scoring import (
    BLIND_VARIANTS,
    Spec,
    calibration_specs,
    prepared,
    simulated,
    training_specs,
)

OUT = Path(__file__).resolve().parent / "results" / "generalisation.json"
CAMPAIGNS = ("A-reasoning", "B-agentic", "C-hydra", "D-evasive")


def _prepared(spec: Spec) -> tuple[Any, dict[str, dict]]:
    """WorldData plus labels of one world (prepared worlds are reused, see ``seeded``)."""
    world = simulated(spec.seed, spec.evasion)
    labels = {r["account_id"]: r for r in pq.read_table(world / "labels.parquet").to_pylist()}
    return prepared(spec, reuse=True), labels


def _without(wd: Any, labels: dict[str, dict], *campaigns: str) -> Any:
    keep = np.array([labels.get(a, {}).get("campaign") not in campaigns for a in wd.accounts])
    kept = [a for a, k in zip(wd.accounts, keep, strict=True) if k]
    return replace(wd, accounts=kept, x=wd.x[keep],
                   harvest=wd.harvest[keep], n_exchanges=wd.n_exchanges[keep], y=wd.y[keep])


def evaluate(model: Any, evals: list[tuple[Any, dict[str, dict]]], *,
             only: str | None = None, blind: bool = False,
             condition: str | None = None) -> dict[str, Any]:
    """Recall per campaign (account and exchange-weighted) and FPR per legit population;
    ``blind``: with the campaign accounts' wording features zeroed; ``condition``: the
    worlds are column-blind copies, calibrated as detection would calibrate them."""
    from antidistill.scoring.train import plainly_asked, world_flags

    hit: dict[str, list[float]] = {}
    fp: dict[str, list[float]] = {}
    for wd, labels in evals:
        camp = np.array([labels.get(a, {}).get("campaign") or "" for a in wd.accounts])
        pop = np.array([labels.get(a, {}).get("population") or "" for a in wd.accounts])
        # detection's decision, not the bare threshold: the solo and neighbour rules
        flagged = world_flags(model, plainly_asked(wd) if blind else wd, condition)
        for c in CAMPAIGNS:
            if only is not None and c != only:
                continue
            m = camp == c
            hit.setdefault(c, [0, 0, 0.0, 0.0])
            hit[c][0] += int(flagged[m].sum())
            hit[c][1] += int(m.sum())
            hit[c][2] += float(wd.n_exchanges[m & flagged].sum())
            hit[c][3] += float(wd.n_exchanges[m].sum())
        for p in np.unique(pop[camp == ""]):
            m = (pop == p) & (camp == "")
            fp.setdefault(p, [0, 0])
            fp[p][0] += int(flagged[m].sum())
            fp[p][1] += int(m.sum())
    out: dict[str, Any] = {"recall": {c: round(v[0] / max(v[1], 1), 4) for c, v in hit.items()},
                           "exchange_recall": {c: round(v[2] / max(v[3], 1.0), 4)
                                               for c, v in hit.items()}}
    if only is None and not blind:
        legit = np.array([v for v in fp.values()]).sum(axis=0)
        out["fpr"] = round(legit[0] / max(legit[1], 1), 5)
        out["fpr_by_population"] = {p: round(v[0] / max(v[1], 1), 4) for p, v in fp.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-seeds", type=int, nargs="*", default=[101, 102, 103])
    ap.add_argument("--calib-seed", type=int, default=104)
    ap.add_argument("--eval-seeds", type=int, nargs="*", default=[105, 106])
    ap.add_argument("--cutoff-hours", type=float, nargs="*", default=[24.0, 48.0])
    ap.add_argument("--mix-seeds", type=int, nargs="*", default=[],
                    help="also train on these evasion='mix' worlds (randomised tactic cells)")
    ap.add_argument("--no-augment", action="store_true",
                    help="train without the plainly-asked copies of the training worlds")
    ap.add_argument("--no-blind", action="store_true",
                    help="train without the column-blind copies of the worlds")
    ap.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override a LightGBM parameter (experiments)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    from antidistill.scoring import model as scoring_model
    from antidistill.scoring.train import train as train_model

    for kv in args.param:
        key, _, value = kv.partition("=")
        scoring_model.PARAMS[key] = type(scoring_model.PARAMS.get(key, 0.0))(value)

    def train(worlds: list[Any], calibration: dict[str | None, Any]) -> Any:
        """``calibration``: the calibration world (key None) and its blind copies by variant."""
        conditions = {b: w for b, w in calibration.items() if b is not None}
        return train_model(worlds, calibration[None], augment=not args.no_augment,
                           conditions=conditions)

    blind = not args.no_blind
    specs = training_specs(args.train_seeds, args.mix_seeds, args.cutoff_hours, blind=blind)
    train_w = [_prepared(spec) for spec in specs]
    mix_w = [w for spec, w in zip(specs, train_w, strict=True) if spec.evasion == "mix"]
    calib = {spec.blind: _prepared(spec)
             for spec in calibration_specs(args.calib_seed, blind=blind)}
    evals = [_prepared(Spec(s)) for s in args.eval_seeds]
    full = train([w for w, _ in train_w], {b: w for b, (w, _) in calib.items()})
    result: dict[str, Any] = {"train_seeds": args.train_seeds, "calib_seed": args.calib_seed,
                              "eval_seeds": args.eval_seeds, "mix_seeds": args.mix_seeds,
                              "augment": not args.no_augment, "column_blind_training": blind,
                              "params": dict(scoring_model.PARAMS),
                              "full_model": evaluate(full, evals),
                              "wording_blind": evaluate(full, evals, blind=True),
                              "column_blind": {
                                  v: evaluate(full, [_prepared(Spec(s, blind=v))
                                                     for s in args.eval_seeds], condition=v)
                                  for v in BLIND_VARIANTS}}
    print(f"column-blind: {result['column_blind']}", flush=True)
    loco: dict[str, Any] = {}
    for c in CAMPAIGNS:
        model = train([_without(w, lab, c) for w, lab in train_w],
                      {b: _without(w, lab, c) for b, (w, lab) in calib.items()})
        loco[c] = evaluate(model, evals, only=c)
        print(f"left out {c}: {loco[c]}", flush=True)
    result["leave_one_campaign_out"] = loco
    rec = [v["recall"][c] for c, v in loco.items()]
    result["leave_one_campaign_out_mean_recall"] = round(float(np.mean(rec)), 4)
    if len(args.mix_seeds) >= 2:
        # none of the four scripted recipes seen: randomised cells only, calibrated on the
        # last mix world's cells
        cal_mix = _prepared(Spec(args.mix_seeds[-1], "mix"))
        rest = [w for w in mix_w if not w[0].name.startswith(f"mix-{args.mix_seeds[-1]}")]
        model = train([_without(w, lab, *CAMPAIGNS) for w, lab in rest],
                      {None: _without(*cal_mix, *CAMPAIGNS)})
        result["scripted_unseen"] = evaluate(model, evals)
        print(f"scripted recipes unseen: {result['scripted_unseen']}", flush=True)
    print(json.dumps(result, indent=1))
    # one entry per configuration, so runs with and without the copies sit side by side
    key = ("augmented" if not args.no_augment else "no_augmentation") + (
        "" if blind else ",no_blind") + "".join(
        f",{kv}" for kv in args.param) + (f",mix{len(args.mix_seeds)}" if args.mix_seeds else "")
    previous = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    previous[key] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(previous, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
