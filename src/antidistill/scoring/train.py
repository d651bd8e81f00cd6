"""Training the two-stage scorer on labelled worlds (used by ``benchmarks/train_scoring.py``).

Stage 2 learns from cluster features built on *out-of-fold* stage-1 scores (each training world
is scored by a stage 1 that never saw it), so it learns how much to trust peers as they will look
at detection time, not as an overfitted stage 1 makes them look.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

from antidistill.features.accounts import FEATURES
from antidistill.linking.communities import Clustering
from antidistill.scoring.model import (
    STAGE2_FEATURES,
    ScoringModel,
    cluster_features,
    fit_booster,
)
from antidistill.scoring.score import decide

#: features that only say how a request is worded; an adversary changes wording for free
WORDING_FEATURES: tuple[str, ...] = ("share_cot", "share_rubric", "share_rewrite_ask",
                                     "share_elicit")
_WORDING_IDX = np.array([FEATURES.index(f) for f in WORDING_FEATURES])


@dataclass
class WorldData:
    """One labelled world, prepared by the detection pipeline (features + clustering)."""

    name: str
    accounts: list[str]
    x: np.ndarray
    harvest: np.ndarray
    n_exchanges: np.ndarray
    clustering: Clustering
    y: np.ndarray
    #: worlds of one group (e.g. one seed, truncated at several cutoffs) are held out together
    group: str = ""


def _stage2_matrix(world: WorldData, p1: np.ndarray) -> np.ndarray:
    c = cluster_features(world.accounts, p1, world.harvest, world.n_exchanges, world.clustering)
    return np.hstack([world.x, c])


def _reworded(world: WorldData, rows: np.ndarray, columns: np.ndarray,
              values: np.ndarray | float, suffix: str) -> WorldData:
    """A copy of ``world`` with ``columns`` of ``rows`` set to ``values``, in ``world``'s group
    (held out together with it)."""
    x = np.array(world.x, dtype=np.float64, copy=True)
    x[np.ix_(rows, columns)] = values
    return replace(world, name=f"{world.name}-{suffix}", x=x, group=world.group or world.name)


def plainly_asked(world: WorldData) -> WorldData:
    """The world as if every campaign account had asked plainly (wording features zeroed): an
    evaluation probe (``benchmarks/generalisation.py``); training rewords every account alike
    (:func:`worded_alike`)."""
    return _reworded(world, world.y > 0, _WORDING_IDX, 0.0, "plain")


#: what a habitual step-by-step user's wording features look like (every request asks for it)
HABIT_WORDING: dict[str, float] = {"share_cot": 1.0, "share_elicit": 1.0}
_HABIT_IDX = np.array([FEATURES.index(f) for f in HABIT_WORDING])
_HABIT_VALUES = np.array(list(HABIT_WORDING.values()))


def habitually_asked(world: WorldData) -> WorldData:
    """The world as if every legitimate account asked for step-by-step reasoning every time.

    The mirror of :func:`plainly_asked`, for evaluation: wording is free for an honest user too
    ("Let's think step by step." on every question is a common habit). Only the wording
    features change; the harvest-like counts, which also need a hard problem, keep their values
    (an approximation: a multi-turn hard request would become harvest-like).
    """
    return _reworded(world, world.y == 0, _HABIT_IDX, _HABIT_VALUES, "habit")


def worded_alike(world: WorldData, *, habit: bool) -> WorldData:
    """A training copy of ``world`` in which *every* account is worded the same: all plainly
    (wording features 0) or all habitually (:data:`HABIT_WORDING`).

    In such a copy the wording carries no label, so the scorer learns what decides at either
    extreme from the rest of the evidence. Copies that reworded one side only (campaign
    accounts plain, legitimate ones habitual: :func:`plainly_asked`, :func:`habitually_asked`)
    taught the opposite lie: "asks for reasoning every time" became evidence of an honest user,
    and a harvester who did so scored lower for it (a left-out agentic campaign whose system
    prompt asks for reasoning on every request: -2.1 log-odds from ``share_cot`` and
    ``share_elicit``).
    """
    rows = np.ones(len(world.accounts), dtype=bool)
    if habit:
        return _reworded(world, rows, _HABIT_IDX, _HABIT_VALUES, "all-habit")
    return _reworded(world, rows, _WORDING_IDX, 0.0, "all-plain")


def train(worlds: list[WorldData], calibration: WorldData, *,
          threshold: float = 0.5, meta: dict[str, Any] | None = None,
          augment: bool = True,
          conditions: dict[str, WorldData] | None = None) -> ScoringModel:
    """Fit stage 1 and 2 on ``worlds`` and the isotonic map on ``calibration``, and one more
    map per log condition on its world (``conditions``: e.g.
    ``{"usage": the calibration world without its usage columns}``, see
    :func:`~antidistill.scoring.model.condition_of`).

    ``augment`` adds each world twice more, every account worded plainly and every account
    worded habitually (:func:`worded_alike`), so that no score rests on wording alone, either
    way: the model must also learn the volume, coverage, output and coordination evidence an
    adversary cannot drop for free and an honest user with a habit does not show.
    """
    if not worlds:
        raise ValueError("need at least one training world")
    if augment:
        worlds = [*worlds, *(worded_alike(w, habit=False) for w in worlds),
                  *(worded_alike(w, habit=True) for w in worlds)]
    x_all = np.vstack([w.x for w in worlds])
    y_all = np.concatenate([w.y for w in worlds])
    stage1 = fit_booster(x_all, y_all, FEATURES)
    x2_parts = []
    fold: dict[str, Any] = {}  # one out-of-fold stage 1 per group (its worlds share "others")
    for world in worlds:
        group = world.group or world.name
        if group not in fold:
            others = [w for w in worlds if (w.group or w.name) != group]
            fold[group] = fit_booster(np.vstack([w.x for w in others]),
                                      np.concatenate([w.y for w in others]),
                                      FEATURES) if others else stage1
        p1 = np.asarray(fold[group].predict(world.x), dtype=np.float64)
        x2_parts.append(_stage2_matrix(world, p1))
    stage2 = fit_booster(np.vstack(x2_parts), y_all, STAGE2_FEATURES)
    conditions = conditions or {}
    info = dict(meta or {})
    info.update({
        "train_worlds": [w.name for w in worlds],
        "calibration_world": calibration.name,
        "calibration_by_condition": {k: [w.name] for k, w in conditions.items()},
        "train_accounts": len(y_all), "train_positives": int(y_all.sum()),
    })
    model = ScoringModel(stage1, stage2, np.zeros(0), np.zeros(0), threshold=threshold,
                         meta=info)
    model.calib_x, model.calib_y = _isotonic(model, calibration)
    model.conditions = {k: _isotonic(model, w) for k, w in conditions.items()}
    return model


def _raw(model: ScoringModel, world: WorldData) -> np.ndarray:
    """Stage 2's output per account of a prepared world (stage 1, cluster context, stage 2)."""
    return model.raw_score(_stage2_matrix(world, model.own_score(world.x)))


def _isotonic(model: ScoringModel, world: WorldData) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the isotonic map from ``model``'s raw score to the share of campaign accounts
    on a calibration world."""
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(_raw(model, world), world.y.astype(np.float64))
    return (np.asarray(iso.X_thresholds_, dtype=np.float64),
            np.asarray(iso.y_thresholds_, dtype=np.float64))


def world_risk(model: ScoringModel, world: WorldData, condition: str | None = None
               ) -> np.ndarray:
    """Calibrated risk per account of a prepared world, as detection computes it (stage 1, the
    cluster context, stage 2, the isotonic map of the log's ``condition``), for evaluating a
    model on labelled worlds."""
    return model.calibrate(_raw(model, world), condition)


def world_flags(model: ScoringModel, world: WorldData, condition: str | None = None
                ) -> np.ndarray:
    """Which accounts of a prepared world detection flags
    (:func:`antidistill.scoring.score.decide`), for evaluating a model on labelled worlds."""
    # share_harvest_like is an average over the account's exchanges: times their count, the count
    n_harvest = np.rint(world.harvest * world.n_exchanges)
    return decide(model, world.accounts, world.x, world.harvest, world.n_exchanges, n_harvest,
                  world.clustering, condition).flagged
