"""Deciding: facts in, one action out. The first rule (by priority, then file order) whose
conditions all hold decides; no rule -> the policy's ``default_action``.

A manual action set by an operator on an account overrides the rules while it lasts. Dry-run
(policy-wide or per rule) records what would have happened but enforces ``allow``; a dry-run rule
does not stop evaluation, so the live rule below it still decides (shadow testing a new rule).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from antidistill.policy.manual import ManualActions
from antidistill.policy.model import (
    VERIFICATION_LEVELS,
    Action,
    Allow,
    Block,
    Facts,
    Policy,
    Tier,
)


@dataclass(frozen=True)
class Decision:
    """What the policy concluded; ``enforced`` is what the gateway actually does."""

    action: Action
    rule: str
    enforced: Action
    dry_run: bool = False
    shadow: tuple[tuple[str, str], ...] = ()  # (rule, action) of dry-run rules that matched
    who: str | None = None  # operator, for manual actions
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.enforced.kind


class Evaluator:
    """Holds the current policy and manual actions; :meth:`decide` is pure and fast."""

    def __init__(
        self, policy: Policy, manual: ManualActions | None = None, force_dry_run: bool = False
    ):
        self.policy = policy
        self.manual = manual or ManualActions()
        self.force_dry_run = force_dry_run
        # tier by (account type, pathway) for the current policy: glob matching on every request
        # was a measurable share of the gateway's CPU, and the answer only changes with the policy
        self._tiers: tuple[Policy | None, dict[tuple[str | None, str | None], Tier | None]] = (
            None,
            {},
        )

    def _tier(self, account_type: str | None, pathway: str | None) -> Tier | None:
        pol, cache = self._tiers
        if pol is not self.policy:
            pol, cache = self._tiers = (self.policy, {})
        key = (account_type, pathway)
        if key not in cache:
            if len(cache) > 10_000:  # pathways are free text: stay bounded
                cache.clear()
            cache[key] = pol.tier_of(account_type, pathway)
        return cache[key]

    def complete(self, facts: Facts) -> Facts:
        """Fill the policy-derived facts (tier, meets_verification) in place and return them."""
        tier = self._tier(facts.account_type, facts.pathway)
        if tier is not None:
            facts.tier = tier.name
            have = facts.verification if facts.verification in VERIFICATION_LEVELS else "none"
            facts.meets_verification = VERIFICATION_LEVELS.index(have) >= VERIFICATION_LEVELS.index(
                tier.required_verification
            )
        return facts

    def decide(self, facts: Facts, now: float | None = None) -> Decision:
        pol = self.policy
        dry = pol.dry_run or self.force_dry_run
        manual = self.manual.get(facts.account_id, now if now is not None else time.time())
        if manual is not None:
            return Decision(
                manual.action,
                f"manual:{manual.id}",
                manual.action,
                False,
                who=manual.who,
                extra={"reason": manual.reason},
            )
        if not facts.store_ok and pol.on_store_error == "block":
            act: Action = Block(
                message="Service temporarily unavailable; please retry.", status=503
            )
            return Decision(act, "on_store_error", act, False)
        shadow: list[tuple[str, str]] = []
        for rule in pol.rules:
            if not rule.matches(facts):
                continue
            if rule.dry_run:
                shadow.append((rule.name, rule.action.kind))
                continue
            enforced = Allow() if dry else rule.action
            return Decision(rule.action, rule.name, enforced, dry, tuple(shadow))
        enforced = Allow() if dry else pol.default_action
        return Decision(pol.default_action, "default", enforced, dry, tuple(shadow))
