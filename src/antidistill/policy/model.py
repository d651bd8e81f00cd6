"""The policy's data model: registered action and condition kinds, rules, tiers.

Action kinds are dataclasses registered by name, so the loader can validate a YAML mapping
against the dataclass fields and new kinds can be added without touching the loader.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

#: action name -> dataclass
ACTIONS: dict[str, type[Action]] = {}

#: strictness order, used to pick the stronger of a manual and a rule action and for metrics
SEVERITY = {
    "allow": 0,
    "monitor": 1,
    "throttle": 2,
    "degrade": 3,
    "require_verification": 4,
    "block": 5,
}


def register_action(name: str) -> Callable[[type[Action]], type[Action]]:
    def deco(cls: type[Action]) -> type[Action]:
        cls.kind = name
        ACTIONS[name] = cls
        return cls

    return deco


@dataclass(frozen=True)
class Action:
    """Base of every action; ``kind`` is its registered name."""

    kind: ClassVar[str] = ""
    #: accepted values of str fields with a closed set, checked by the loader
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    def validate(self) -> tuple[str, str] | None:
        """(field, problem) if parameters are inconsistent, else None."""
        return None

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.params()}


@register_action("allow")
@dataclass(frozen=True)
class Allow(Action):
    pass


@register_action("monitor")
@dataclass(frozen=True)
class Monitor(Action):
    """Allow, but mark the decision for review (it is audited like every decision)."""


@register_action("throttle")
@dataclass(frozen=True)
class Throttle(Action):
    """Token bucket per account: ``rate_per_min`` sustained, ``burst`` at once."""

    rate_per_min: float = 10.0
    burst: float = 5.0

    def validate(self) -> tuple[str, str] | None:
        if self.rate_per_min <= 0:
            return "rate_per_min", "must be > 0"
        if self.burst < 1:
            return "burst", "must be >= 1"
        return None


@register_action("require_verification")
@dataclass(frozen=True)
class RequireVerification(Action):
    message: str = (
        "This account must complete identity verification before using this "
        "model. Visit your account settings to verify."
    )


@register_action("degrade")
@dataclass(frozen=True)
class Degrade(Action):
    """Serve, but protect what distillation wants: the reasoning, long outputs, provenance."""

    choices: ClassVar[dict[str, tuple[str, ...]]] = {"reasoning": ("strip", "summarize", "keep")}
    reasoning: str = "strip"
    max_tokens: int | None = None
    canary: bool = True
    watermark: bool = False
    summary_chars: int = 160

    def validate(self) -> tuple[str, str] | None:
        if self.max_tokens is not None and self.max_tokens < 1:
            return "max_tokens", "must be >= 1"
        if self.summary_chars < 20:
            return "summary_chars", "must be >= 20"
        return None


@register_action("block")
@dataclass(frozen=True)
class Block(Action):
    message: str = "This request was blocked by the provider's usage policy."
    status: int = 403

    def validate(self) -> tuple[str, str] | None:
        if not 400 <= self.status <= 599:
            return "status", "must be an HTTP error status (400-599)"
        return None


# -- conditions ---------------------------------------------------------------------------
NUMERIC = ("risk", "guard_score", "link_score", "behaviour_score", "account_age_days")
BOOLEAN = (
    "flagged",
    "in_cluster",
    "in_campaign",
    "verified",
    "meets_verification",
    "store_ok",
    "known",
    "linked",
)
STRINGS = ("account_type", "pathway", "tier", "cluster_id", "campaign_id", "model")
COMPARATORS = {"gte": float.__ge__, "gt": float.__gt__, "lte": float.__le__, "lt": float.__lt__}


@dataclass(frozen=True)
class Condition:
    """One ``when:`` entry. ``op`` is a comparator, ``is`` (bool), ``in`` (globs) or ``any``."""

    name: str
    op: str
    value: Any

    def matches(self, facts: Facts) -> bool:
        if self.name == "evidence":
            return bool(facts.evidence_kinds & self.value)
        have = getattr(facts, self.name)
        if self.op == "is":
            return bool(have) is self.value
        if self.op == "in":
            if have is None:
                return "null" in self.value
            return any(fnmatch.fnmatchcase(str(have), pat) for pat in self.value)
        if have is None:
            return False
        return bool(COMPARATORS[self.op](float(have), float(self.value)))


@dataclass(frozen=True)
class Rule:
    name: str
    action: Action
    conditions: tuple[Condition, ...] = ()
    priority: int = 0
    dry_run: bool = False
    line: int = 0

    def matches(self, facts: Facts) -> bool:
        return all(c.matches(facts) for c in self.conditions)


VERIFICATION_LEVELS = ("none", "basic", "strong")


@dataclass(frozen=True)
class Tier:
    """Accounts a tier covers (by type/pathway globs) and the verification it requires."""

    name: str
    account_types: tuple[str, ...] = ()
    pathways: tuple[str, ...] = ()
    required_verification: str = "none"

    def covers(self, account_type: str | None, pathway: str | None) -> bool:
        if self.account_types and (account_type or "") not in self.account_types:
            return False
        return not self.pathways or any(
            fnmatch.fnmatchcase(pathway or "", p) for p in self.pathways
        )


@dataclass
class Facts:
    """Everything a rule can look at for one request (built by the caller from guard + keys)."""

    account_id: str
    risk: float | None = None
    flagged: bool = False
    cluster_id: str | None = None
    campaign_id: str | None = None
    guard_score: float = 0.0
    link_score: float = 0.0
    behaviour_score: float = 0.0
    account_type: str | None = None
    verified: bool | None = None
    verification: str = "none"
    pathway: str | None = None
    tier: str | None = None
    meets_verification: bool = True
    store_ok: bool = True
    known: bool = False
    account_age_days: float | None = None
    model: str | None = None
    evidence_kinds: frozenset[str] = frozenset()
    evidence: tuple[str, ...] = ()

    @property
    def in_cluster(self) -> bool:
        return self.cluster_id is not None

    @property
    def in_campaign(self) -> bool:
        return self.campaign_id is not None

    @property
    def linked(self) -> bool:
        return self.link_score > 0.0


@dataclass(frozen=True)
class Policy:
    """Rules in evaluation order (priority descending, file order within a priority)."""

    rules: tuple[Rule, ...]
    tiers: tuple[Tier, ...] = ()
    default_action: Action = field(default_factory=Allow)
    dry_run: bool = False
    on_store_error: str = "allow"  # allow = fail open; block = fail closed
    guard: dict[str, Any] = field(default_factory=dict)
    source: str = "<policy>"

    def tier_of(self, account_type: str | None, pathway: str | None) -> Tier | None:
        return next((t for t in self.tiers if t.covers(account_type, pathway)), None)
