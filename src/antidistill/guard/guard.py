"""The online guard: scores each request; it never decides (the policy does).

Score = noisy-or of two parts. *Link*: what the request shares with flagged clusters (see
:mod:`antidistill.guard.index`) — this is what catches a brand-new hydra account on its first
request. *Behaviour*: streaming per-account state in the store — request rate (two-minute sliding
window), repetition of one specific scaffold (count-min), few distinct scaffolds for the volume
(HyperLogLog), the share of requests eliciting chain-of-thought, and synchronized bursts of
several accounts of one cluster within the same few seconds. Every part comes with evidence text.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from antidistill.errors import StateStoreError
from antidistill.guard.cot import CotScorer, cot_elicitation
from antidistill.guard.index import BadIndex, Link, request_features
from antidistill.guard.risk import AccountRisk, RiskTable
from antidistill.guard.state import MemoryStore, StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuardConfig:
    """Thresholds of the behavioural signals (``ramp(x, lo, hi)`` -> 0 below lo, 1 above hi)."""

    rate_per_min: tuple[float, float] = (30.0, 120.0)
    repeat_per_hour: tuple[float, float] = (30.0, 300.0)
    low_diversity_min_requests: int = 50
    cot_rate: tuple[float, float] = (0.3, 0.8)
    cot_min_requests: int = 10
    burst_accounts: tuple[float, float] = (3.0, 8.0)
    burst_window_s: int = 10
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "tpl": 0.85,
            "sys": 0.7,
            "pre": 0.5,
            "suf": 0.5,
            "pay": 0.95,
            "cfp": 0.3,
            "net": 0.5,
            "asn": 0.15,
            "rate": 0.5,
            "repeat": 0.35,
            "diversity": 0.25,
            "cot": 0.4,
            "burst": 0.6,
        }
    )
    other_penalty: float = 3.0
    max_other_accounts: int = 20


@dataclass(slots=True)
class GuardRequest:
    """The facts of one request the guard looks at."""

    account_id: str
    prompt: str
    system_prompt: str | None = None
    ts: float | None = None  # unix seconds; now when None
    payment_fp: str | None = None
    client_fp: str | None = None
    ip: str | None = None
    asn: int | None = None


@dataclass(slots=True)
class GuardResult:
    """Scores in [0, 1] and the evidence behind them; ``store_ok`` False when the store failed."""

    score: float
    link: float
    behaviour: float
    components: dict[str, float]
    evidence: list[str]
    clusters: tuple[str, ...]
    account: AccountRisk | None
    store_ok: bool = True
    cot: float = 0.0


def ramp(x: float, lo: float, hi: float) -> float:
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    return (x - lo) / (hi - lo)


def noisy_or(values: list[float]) -> float:
    p = 1.0
    for v in values:
        p *= 1.0 - min(1.0, max(0.0, v))
    return 1.0 - p


class Guard:
    """Scores requests from the risk table, the bad-feature index and a state store."""

    def __init__(
        self,
        risk: RiskTable | None = None,
        index: BadIndex | None = None,
        store: StateStore | None = None,
        config: GuardConfig | None = None,
        cot_scorer: CotScorer = cot_elicitation,
        learn: bool = True,
    ):
        self.config = config or GuardConfig()
        self.risk = risk or RiskTable()
        self.index = index or BadIndex(
            other_penalty=self.config.other_penalty, max_others=self.config.max_other_accounts
        )
        self.store: StateStore = store or MemoryStore()
        self.cot_scorer = cot_scorer
        self.learn = learn

    def set_risk(self, risk: RiskTable, index: BadIndex | None = None) -> None:
        """Swap in a new batch run's results (atomic reference swap)."""
        self.risk = risk
        if index is not None:
            self.index = index

    def assess(self, req: GuardRequest) -> GuardResult:
        cfg = self.config
        w = cfg.weights
        now = req.ts if req.ts is not None else time.time()
        acct = req.account_id
        known = self.risk.get(acct)
        feats = request_features(
            req.prompt,
            req.system_prompt,
            payment_fp=req.payment_fp,
            client_fp=req.client_fp,
            ip=req.ip,
            asn=req.asn,
        )
        links: list[Link] = self.index.links(acct, feats)
        comps: dict[str, float] = {}
        evidence: list[str] = []
        for link in links:
            comps[link.kind] = w.get(link.kind, 0.5) * link.weight
            evidence.append(link.text())
        link_score = noisy_or(list(comps.values()))
        clusters: tuple[str, ...] = ()
        if known is not None and known.cluster_id:
            clusters = (known.cluster_id,)
        elif links:
            seen = dict.fromkeys(c for link in links for c in link.clusters)
            clusters = tuple(seen)

        if self.learn:
            if known is not None and known.flagged:
                self.index.observe_bad(acct, known.cluster_id, feats)
            elif known is not None:
                self.index.observe_cleared(acct, feats)

        cot = self.cot_scorer(req.prompt, req.system_prompt)
        tpl = next((v for k, v in feats if k == "tpl"), "")
        minute = int(now // 60)
        hour = int(now // 3600)
        ops: list[tuple[object, ...]] = [
            ("incr", f"r:{acct}:{minute}", 1, 180),
            ("get", f"r:{acct}:{minute - 1}"),
            ("incr", f"n:{acct}:{hour}", 1, 7200),
            ("incr", f"c:{acct}:{hour}", round(cot * 2), 7200),
            ("cms_add", f"tpl:{hour}", f"{acct}|{tpl}", 1, 7200),
            ("pfadd", f"dt:{acct}:{hour}", tpl, 7200),
        ]
        burst_cluster = clusters[0] if clusters else None
        if burst_cluster:
            b = int(now // cfg.burst_window_s)
            ops.append(("pfadd", f"ba:{burst_cluster}:{b}", acct, cfg.burst_window_s * 3))
        store_ok = True
        try:
            res = self.store.execute(ops)
        except StateStoreError as exc:
            log.warning("guard state store unavailable: %s", exc)
            store_ok = False
            evidence.append(f"state store unavailable: {exc}")
            res = []
        if res:
            cur, prev, n, cot_units, rep, distinct = res[:6]
            frac = (now % 60) / 60.0
            rpm = cur + prev * (1.0 - frac)
            s_rate = ramp(rpm, *cfg.rate_per_min)
            s_rep = ramp(rep, *cfg.repeat_per_hour)
            s_div = 0.0
            if n >= cfg.low_diversity_min_requests:
                s_div = max(0.0, 1.0 - distinct / n) * ramp(
                    n, cfg.low_diversity_min_requests, 4 * cfg.low_diversity_min_requests
                )
            s_cot = 0.0
            if n >= cfg.cot_min_requests:
                s_cot = ramp(cot_units / (2.0 * n), *cfg.cot_rate)
            s_burst = ramp(res[6], *cfg.burst_accounts) if burst_cluster else 0.0
            # evidence text only for the signals that fired (most requests: none)
            if s_rate > 0:
                comps["rate"] = w.get("rate", 0.5) * s_rate
                evidence.append(f"{rpm:.0f} requests/min")
            if s_rep > 0:
                comps["repeat"] = w.get("repeat", 0.5) * s_rep
                evidence.append(f"same scaffold {rep} times this hour")
            if s_div > 0:
                comps["diversity"] = w.get("diversity", 0.5) * s_div
                evidence.append(f"{distinct} distinct scaffolds in {n} requests this hour")
            if s_cot > 0:
                comps["cot"] = w.get("cot", 0.5) * s_cot
                evidence.append(f"{cot_units / (2.0 * max(n, 1)):.0%} of requests elicit reasoning")
            if s_burst > 0:
                comps["burst"] = w.get("burst", 0.5) * s_burst
                evidence.append(
                    f"{res[6]} accounts of {burst_cluster} active within {cfg.burst_window_s}s"
                )
        behaviour = noisy_or(
            [v for k, v in comps.items() if k in ("rate", "repeat", "diversity", "cot", "burst")]
        )
        score = noisy_or([link_score, behaviour])
        return GuardResult(
            score, link_score, behaviour, comps, evidence, clusters, known, store_ok, cot
        )
