"""A realistic traffic world: legitimate populations and distillation campaigns on real prompts.

``simulate_world`` writes ``exchanges.parquet`` (schema v1), ``labels.parquet``,
``exchange_labels.parquet`` and ``models.csv``; see ``docs/simulate.md``.
"""

from __future__ import annotations

from antidistill.simulate.world import EVASIONS, WorldSummary, simulate_world

#: every legitimate population name that appears in labels.parquet
LEGIT_POPULATIONS: tuple[str, ...] = (
    "casual_chat", "agent_developers", "team_orgs", "enterprise_batch", "eval_runners",
    "students", "reseller_customers",
)
#: legitimate populations built to resemble harvesting (the evaluator reports FPR per each)
HARD_NEGATIVES: tuple[str, ...] = (
    "enterprise_batch", "eval_runners", "agent_developers", "team_orgs", "students",
)
#: campaign id -> population name in labels.parquet
CAMPAIGNS: dict[str, str] = {
    "A-reasoning": "reasoning_harvest", "B-agentic": "agentic_harvest",
    "C-hydra": "hydra_proxy", "D-evasive": "evasive",
}

__all__ = ["CAMPAIGNS", "EVASIONS", "HARD_NEGATIVES", "LEGIT_POPULATIONS", "WorldSummary",
           "simulate_world"]
