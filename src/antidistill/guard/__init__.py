"""The online guard: streaming per-request scores and evidence (deciding is the policy's job)."""

from __future__ import annotations

from antidistill.guard.cot import CotScorer, cot_elicitation
from antidistill.guard.guard import Guard, GuardConfig, GuardRequest, GuardResult
from antidistill.guard.index import BadIndex, Link, network_of, request_features
from antidistill.guard.risk import AccountRisk, RiskTable
from antidistill.guard.sketches import CountMinSketch, Distinct
from antidistill.guard.state import MemoryStore, RedisStore, StateStore, open_store
from antidistill.guard.templates import normalise_template, scaffold_features, template_hash

__all__ = [
    "AccountRisk",
    "BadIndex",
    "CotScorer",
    "CountMinSketch",
    "Distinct",
    "Guard",
    "GuardConfig",
    "GuardRequest",
    "GuardResult",
    "Link",
    "MemoryStore",
    "RedisStore",
    "RiskTable",
    "StateStore",
    "cot_elicitation",
    "network_of",
    "normalise_template",
    "open_store",
    "request_features",
    "scaffold_features",
    "template_hash",
]
