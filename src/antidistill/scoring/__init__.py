"""Calibrated account risk with reasons: a two-stage LightGBM scorer plus transparent rules."""

from __future__ import annotations

from antidistill.scoring.model import CLUSTER_FEATURES, STAGE2_FEATURES, ScoringModel
from antidistill.scoring.score import Scored, score

__all__ = ["CLUSTER_FEATURES", "STAGE2_FEATURES", "Scored", "ScoringModel", "score"]
