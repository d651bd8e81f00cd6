"""Flagged clusters joined into campaigns: timelines, model pivots, MITRE ATLAS techniques."""

from __future__ import annotations

from antidistill.campaigns.build import ATLAS, Campaigns, build_campaigns, model_pivots

__all__ = ["ATLAS", "Campaigns", "build_campaigns", "model_pivots"]
