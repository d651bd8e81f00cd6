"""One request in, one verdict out: guard scores, policy decides, the decision is audited.

Shared by the gateway, the Generic Guardrail API service and the LiteLLM ``CustomGuardrail`` so
all three enforce identically.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from antidistill.errors import StateStoreError
from antidistill.gateway.keys_file import Account
from antidistill.gateway.metrics import Metrics
from antidistill.guard import Guard, GuardRequest, GuardResult
from antidistill.keys import derive_key, key_id
from antidistill.policy import (
    AuditLog,
    Block,
    Decision,
    Degrade,
    Evaluator,
    Facts,
    ManualActions,
    Policy,
    RequireVerification,
    Throttle,
)
from antidistill.policy.audit import iso

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str | None = None
    asn: int | None = None
    client_fp: str | None = None


def client_fingerprint(headers: dict[str, str] | Any) -> str | None:
    """Hash of the client's SDK identity (user agent and the SDKs' self-describing headers)."""
    parts = [
        headers.get(h) or ""
        for h in (
            "user-agent",
            "x-stainless-lang",
            "x-stainless-package-version",
            "x-stainless-os",
            "x-stainless-runtime-version",
        )
    ]
    if not any(parts):
        return None
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


@dataclass(slots=True)
class Verdict:
    request_id: str
    account: Account
    guard: GuardResult
    facts: Facts
    decision: Decision
    denied: tuple[int, str, str] | None = None  # (http status, error code, message)
    canary_key: bytes | None = None
    canary_key_id: str | None = None
    watermark_key_id: str | None = None

    @property
    def degrade(self) -> Degrade | None:
        act = self.decision.enforced
        return act if isinstance(act, Degrade) and self.denied is None else None


class Enforcer:
    def __init__(
        self,
        policy: Policy,
        guard: Guard,
        *,
        audit: AuditLog | None = None,
        manual: ManualActions | None = None,
        secret: bytes | str | None = None,
        dry_run: bool = False,
        metrics: Metrics | None = None,
    ):
        self.guard = guard
        self.evaluator = Evaluator(policy, manual, force_dry_run=dry_run)
        self.audit = audit or AuditLog(None)
        self.secret = secret or None
        self.metrics = metrics or Metrics()
        self._warned_secret = False

    @property
    def policy(self) -> Policy:
        return self.evaluator.policy

    @property
    def manual(self) -> ManualActions:
        return self.evaluator.manual

    def assess(
        self,
        account: Account,
        request_id: str,
        prompt: str,
        system_prompt: str | None,
        model: str | None,
        client: ClientInfo,
        now: float | None = None,
    ) -> Verdict:
        t0 = time.perf_counter()
        now = time.time() if now is None else now
        g = self.guard.assess(
            GuardRequest(
                account.account_id,
                prompt,
                system_prompt,
                now,
                account.payment_fp,
                client.client_fp,
                client.ip,
                client.asn,
            )
        )
        known = g.account
        age = (
            (now - account.created_at.timestamp()) / 86400.0
            if account.created_at is not None
            else None
        )
        facts = Facts(
            account_id=account.account_id,
            risk=known.risk if known else None,
            flagged=bool(known and known.flagged),
            cluster_id=known.cluster_id if known else None,
            campaign_id=known.campaign_id if known else None,
            guard_score=g.score,
            link_score=g.link,
            behaviour_score=g.behaviour,
            account_type=account.account_type,
            verified=account.verified,
            verification=account.verification,
            pathway=account.pathway,
            store_ok=g.store_ok,
            known=known is not None,
            account_age_days=age,
            model=model,
            evidence_kinds=frozenset(g.components),
            evidence=tuple(g.evidence),
        )
        self.evaluator.complete(facts)
        decision = self.evaluator.decide(facts, now)
        v = Verdict(request_id, account, g, facts, decision)
        act = decision.enforced
        if isinstance(act, Block):
            v.denied = (act.status, "policy_blocked", act.message)
        elif isinstance(act, RequireVerification):
            v.denied = (403, "verification_required", act.message)
        elif isinstance(act, Throttle):
            try:
                ok = self.guard.store.take_token(
                    f"throttle:{account.account_id}", act.rate_per_min / 60.0, act.burst, now
                )
            except StateStoreError:
                ok = self.policy.on_store_error != "block"
            if not ok:
                v.denied = (
                    429,
                    "rate_limit_exceeded",
                    "Rate limit reached for this account; slow down and retry later.",
                )
        elif isinstance(act, Degrade):
            if self.secret is not None:
                if act.canary:
                    v.canary_key = derive_key(self.secret, account.account_id, purpose="canary")
                    v.canary_key_id = key_id(v.canary_key)
                if act.watermark:
                    v.watermark_key_id = key_id(
                        derive_key(self.secret, account.account_id, purpose="watermark")
                    )
            elif (act.canary or act.watermark) and not self._warned_secret:
                self._warned_secret = True
                log.warning("degrade asks for canary/watermark but no secret is configured")
        if not g.store_ok:
            self.metrics.store_errors.inc()
        self.metrics.child(
            self.metrics.decisions,
            act.kind if v.denied is None or act.kind != "throttle" else "throttle_denied",
            "true" if decision.dry_run else "false",
        ).inc()
        self.metrics.decision_latency.observe(time.perf_counter() - t0)
        self.audit.write(self.audit_record(v, now))
        return v

    def audit_record(self, v: Verdict, now: float) -> dict[str, Any]:
        d = v.decision
        rec: dict[str, Any] = {
            "ts": iso(now),
            "event": "decision",
            "account_id": v.account.account_id,
            "request_id": v.request_id,
            "rule": d.rule,
            "action": d.action.kind,
            "params": d.action.params(),
            "enforced": d.enforced.kind,
            "dry_run": d.dry_run,
            "denied": v.denied[1] if v.denied else None,
            "tier": v.facts.tier,
            "scores": {
                "guard": round(v.guard.score, 4),
                "link": round(v.guard.link, 4),
                "behaviour": round(v.guard.behaviour, 4),
                "risk": v.facts.risk,
            },
            "clusters": list(v.guard.clusters),
            "evidence": v.guard.evidence,
        }
        if d.shadow:
            rec["shadow"] = [{"rule": r, "action": a} for r, a in d.shadow]
        if d.who:
            rec["who"] = d.who
        if v.canary_key_id:
            rec["canary_key_id"] = v.canary_key_id
        if v.watermark_key_id:
            rec["watermark_key_id"] = v.watermark_key_id
        if not v.guard.store_ok:
            rec["store_ok"] = False
        return rec
