"""Plain-sentence reasons, written from the features that actually drove each score.

The sentences come from stage 2's per-feature contributions (LightGBM ``pred_contrib``): the
features pushing an account's log-odds up the most are described with the account's own numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from antidistill.scoring.model import STAGE2_FEATURES

Row = dict[str, Any]


def _n(value: Any) -> str:
    return f"{round(float(value or 0)):,}"


def _pct(value: Any) -> str:
    return f"{100 * float(value or 0):.0f}%"


def _count_of(share_key: str, what: str) -> Callable[[Row], str]:
    def fmt(r: Row) -> str:
        n = float(r.get("n_exchanges") or 0)
        return f"{_n(n * float(r.get(share_key) or 0))} of {_n(n)} requests {what}"
    return fmt


SENTENCES: dict[str, Callable[[Row], str]] = {
    "share_cot": _count_of("share_cot", "ask for step-by-step reasoning"),
    "share_rubric": _count_of("share_rubric", "use the model as a grader (rubric scoring)"),
    "share_rewrite_ask": _count_of("share_rewrite_ask", "ask for policy-safe rewrites of a text"),
    "share_rewrite": _count_of("share_rewrite", "are rewrite tasks"),
    "share_elicit": _count_of("share_elicit", "elicit reasoning, grading or rewrites"),
    "share_harvest_like": _count_of("share_harvest_like",
                                    "are single-turn hard prompts (reasoning, code, tools)"),
    "share_reasoning": _count_of("share_reasoning", "are reasoning/math problems"),
    "share_coding": _count_of("share_coding", "are coding tasks"),
    "share_tool_use": _count_of("share_tool_use", "are tool-use calls"),
    "share_computer_use": _count_of("share_computer_use", "are computer-use steps"),
    "share_grading": _count_of("share_grading", "are grading tasks"),
    "share_chat": _count_of("share_chat", "are ordinary chat"),
    "share_tools": _count_of("share_tools", "carry tool definitions"),
    "share_single_turn": _count_of("share_single_turn", "are single-turn (no follow-up)"),
    "share_max_tokens_hit": lambda r: (
        f"{_pct(r.get('share_max_tokens_hit'))} of responses ran to the max_tokens cap"),
    "distinct_content_ratio": lambda r: (
        f"{_n(r.get('n_distinct_content'))} distinct problems in {_n(r.get('n_exchanges'))} "
        "requests (almost no repeats)"),
    "log_distinct_content": lambda r: (
        f"{_n(r.get('n_distinct_content'))} distinct prompts: dataset-scale coverage"),
    "log_exchanges": lambda r: f"{_n(r.get('n_exchanges'))} requests in the window",
    "log_harvest_like": lambda r: (
        f"{_n(r.get('n_harvest_like'))} hard single-turn or elicitation requests in the window"),
    "log_distinct_hard": lambda r: (
        f"{_n(r.get('n_distinct_hard'))} distinct hard problems asked: dataset-scale coverage"),
    "log_harvest_output": lambda r: (
        f"{_n(r.get('harvest_output_tokens'))} output tokens collected on hard requests"),
    "log_rate_per_active_hour": lambda r: (
        f"{float(r.get('n_exchanges') or 0) / max(float(r.get('active_hours') or 1), 1):,.0f}"
        " requests per active hour"),
    "reasoning_share": lambda r: (
        f"reasoning tokens are {_pct(r.get('reasoning_share'))} of output tokens"),
    "log_mean_output": lambda r: (
        f"{10 ** float(r.get('log_mean_output') or 0):,.0f} output+reasoning tokens per response "
        "on average"),
    "log_mean_max_tokens": lambda r: (
        f"requests max_tokens {10 ** float(r.get('log_mean_max_tokens') or 0):,.0f} on average"),
    "hour_entropy": lambda r: (
        f"activity spread over the day (rhythm entropy {float(r.get('hour_entropy') or 0):.2f} "
        "of 1.00)"),
    "gap_cv": lambda r: f"request spacing variability {float(r.get('gap_cv') or 0):.2f}",
    "daily_cv": lambda r: f"day-to-day volume variability {float(r.get('daily_cv') or 0):.2f}",
    "adoption_delay_hours": lambda r: (
        f"started on the newly released model {float(r.get('adoption_delay_hours') or 0):.1f} h "
        "after release"),
    "share_newest_model": lambda r: (
        f"{_pct(r.get('share_newest_model'))} of requests on the newest model"),
    "account_age_days": lambda r: (
        f"account was {float(r.get('account_age_days') or 0):.1f} days old at first request"),
    "created_in_window": lambda r: "account was created inside the observed window",
    "verified": lambda r: ("account is not verified" if float(r.get("verified") or 0) <= 0
                           else "account is verified"),
    "pathway_code": lambda r: f"traffic arrives via {r.get('pathway') or 'an unknown pathway'}",
    "content_crowd": lambda r: (
        "its problems are asked by no other account"
        if float(r.get("content_askers") or 1) < 1.1
        else f"each of its prompts is also sent by {float(r.get('content_askers') or 1):,.1f} "
        "accounts (geometric mean)"),
    "template_specificity": lambda r: (
        "its prompt templates are specific "
        f"(specificity {float(r.get('template_specificity') or 0):.2f})"),
    "top_template_share": lambda r: (
        f"{_pct(r.get('top_template_share'))} of requests use one template"),
    "max_payment_sharers": lambda r: (
        f"its payment instrument is shared by {_n(r.get('max_payment_sharers'))} accounts"),
    "max_ip_sharers": lambda r: f"its IP is shared by {_n(r.get('max_ip_sharers'))} accounts",
    "log_ips": lambda r: f"{_n(10 ** float(r.get('log_ips') or 0))} distinct IPs",
    "log_client_fps": lambda r: (
        f"{_n(10 ** float(r.get('log_client_fps') or 0))} distinct client fingerprints"),
    "cluster_log_size": lambda r: (
        f"linked into cluster {r.get('cluster_id')} of "
        f"{_n(10 ** float(r.get('cluster_log_size') or 0))} accounts"),
    "cluster_peer_mean": lambda r: (
        f"its cluster peers score {float(r.get('cluster_peer_mean') or 0):.2f} on average on "
        "their own behaviour"),
    "cluster_peer_max": lambda r: (
        f"a cluster peer scores {float(r.get('cluster_peer_max') or 0):.2f} on its own behaviour"),
    "cluster_peer_q75": lambda r: (
        f"a quarter of its cluster peers score above {float(r.get('cluster_peer_q75') or 0):.2f}"),
    "membership": lambda r: (
        f"{_pct(r.get('membership'))} of its link weight binds it to its cluster"),
    "cluster_harvest_share": lambda r: (
        f"{_pct(r.get('cluster_harvest_share'))} of its cluster's traffic is harvest-like"),
    "ev_payment": lambda r: "its cluster shares payment instruments",
    "ev_ip": lambda r: "its cluster shares IP addresses",
    "ev_subnet": lambda r: "its cluster shares /24 networks",
    "ev_asn": lambda r: "its cluster's accounts come from the same few network operators (ASNs)",
    "ev_client": lambda r: "its cluster shares client fingerprints",
    "ev_template": lambda r: "its cluster shares specific prompt templates",
    "ev_family": lambda r: "its cluster shares a specific prompt-scaffold family",
    "ev_split": lambda r: "its cluster splits one problem family between accounts without repeats",
    "ev_sync": lambda r: "its cluster's accounts are active in the same 10-minute windows",
    "ev_volume": lambda r: "its cluster's accounts' hourly volumes rise and fall together",
    "ev_creation": lambda r: "its cluster's accounts were created in a burst",
}


def _unknown(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def reasons_for(rows: list[Row], contrib: np.ndarray, *, top: int = 4,
                min_logodds: float = 0.25) -> list[list[str]]:
    """Sentences for each row from its largest positive contributions (bias column last)."""
    out: list[list[str]] = []
    names = STAGE2_FEATURES
    for row, c in zip(rows, contrib, strict=True):
        order = np.argsort(-c[:-1])
        sentences: list[str] = []
        for j in order[: top * 2]:
            if c[j] < min_logodds or len(sentences) >= top:
                break
            fmt = SENTENCES.get(names[j])
            if fmt is None or _unknown(row.get(names[j])):
                continue  # an absent column is no evidence, whatever the trees made of it
            text = fmt(row)
            if text not in sentences:
                sentences.append(text)
        out.append(sentences)
    return out
