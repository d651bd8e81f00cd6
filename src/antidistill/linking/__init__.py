"""Coordination signals → weighted account graph → communities (hydra clusters)."""

from __future__ import annotations

from antidistill.linking.communities import Clustering, detect_communities
from antidistill.linking.edges import KINDS, build_edges

__all__ = ["KINDS", "Clustering", "build_edges", "detect_communities"]
