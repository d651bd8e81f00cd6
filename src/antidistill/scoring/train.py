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


def plainly_asked(world: WorldData) -> WorldData:
    """The world as if every campaign account had asked plainly (wording features zeroed)."""
    x = np.array(world.x, dtype=np.float64, copy=True)
    x[np.ix_(world.y > 0, _WORDING_IDX)] = 0.0
    return replace(world, name=f"{world.name}-plain", x=x, group=world.group or world.name)


def train(worlds: list[WorldData], calibration: WorldData, *,
          threshold: float = 0.5, meta: dict[str, Any] | None = None,
          augment: bool = True,
          conditions: dict[str, list[WorldData]] | None = None) -> ScoringModel:
    """Fit stage 1 and 2 on ``worlds`` and the isotonic map on ``calibration``, and one more
    map per log condition on its worlds (``conditions``: e.g.
    ``{"usage": [the calibration world without its usage columns]}``, see
    :func:`~antidistill.scoring.model.condition_of`).

    ``augment`` adds each world once more as :func:`plainly_asked`, so that no score rests on
    wording alone: the model must also learn the volume, coverage, output and coordination
    evidence an adversary cannot drop for free.
    """
    if not worlds:
        raise ValueError("need at least one training world")
    if augment:
        worlds = [*worlds, *(plainly_asked(w) for w in worlds)]
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
    def isotonic(cal: list[WorldData]) -> tuple[np.ndarray, np.ndarray]:
        if not cal:
            raise ValueError("need at least one calibration world")
        raw_c = np.concatenate([
            np.asarray(stage2.predict(_stage2_matrix(
                c, np.asarray(stage1.predict(c.x), dtype=np.float64))), dtype=np.float64)
            for c in cal])
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(raw_c, np.concatenate([c.y for c in cal]).astype(np.float64))
        return (np.asarray(iso.X_thresholds_, dtype=np.float64),
                np.asarray(iso.y_thresholds_, dtype=np.float64))

    knots_x, knots_y = isotonic([calibration])
    by_condition = {k: isotonic(v) for k, v in (conditions or {}).items()}
    info = dict(meta or {})
    info.update({
        "train_worlds": [w.name for w in worlds],
        "calibration_world": calibration.name,
        "calibration_by_condition": {k: [c.name for c in v]
                                     for k, v in (conditions or {}).items()},
        "train_accounts": len(y_all), "train_positives": int(y_all.sum()),
    })
    return ScoringModel(stage1, stage2, knots_x, knots_y, threshold=threshold, meta=info,
                        conditions=by_condition)


def world_risk(model: ScoringModel, world: WorldData, condition: str | None = None
               ) -> np.ndarray:
    """Calibrated risk per account of a prepared world, as detection computes it (stage 1, the
    cluster context, stage 2, the isotonic map of the log's ``condition``), for evaluating a
    model on labelled worlds."""
    return model.calibrate(model.raw_score(_stage2_matrix(world, model.own_score(world.x))),
                           condition)
