"""Score text against one key: green count, z-score and the exact binomial p-value.

Only distinct ``(context window, token)`` pairs are scored: under H0 (text written without the
key) each distinct pair is green with probability ``gamma`` independently, so the green count
is exactly Binomial(T, gamma) and the p-value is its upper tail (not a normal approximation,
which is badly anti-conservative far in the tail). Repeats are dropped because a repeated pair
is not new evidence: pasting a paragraph ten times must not make it ten times as convincing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binom

from antidistill.watermark.greenlist import WatermarkConfig, is_green, pair_hashes, unique_pairs
from antidistill.watermark.keys import WatermarkKey


@dataclass(frozen=True)
class Detection:
    """Evidence that one key watermarked a text."""

    account_id: str
    epoch: int
    key_id: str
    n_tokens: int  # tokens in the text
    n_scored: int  # distinct (context, token) pairs scored: T
    n_green: int
    gamma: float
    z: float
    p_value: float  # P[Binomial(T, gamma) >= n_green]

    @property
    def green_fraction(self) -> float:
        return self.n_green / self.n_scored if self.n_scored else float("nan")


def binomial_pvalue(n_green: int, n_scored: int, gamma: float) -> float:
    """Exact one-sided p-value ``P[Binomial(n_scored, gamma) >= n_green]``."""
    if n_scored == 0:
        return 1.0
    return float(binom.sf(n_green - 1, n_scored, gamma))


@lru_cache(maxsize=256)
def tail_table(n_scored: int, gamma: float) -> NDArray[np.float64]:
    """``P[Binomial(n, gamma) >= k]`` for ``k = 0..n``: p-values for many keys by lookup."""
    table = binom.sf(np.arange(-1, n_scored), n_scored, gamma).astype(np.float64)
    table.setflags(write=False)
    return table


def z_score(n_green: int, n_scored: int, gamma: float) -> float:
    """Normal-approximation score, reported for readability alongside the exact p-value."""
    if n_scored == 0:
        return 0.0
    return (n_green - gamma * n_scored) / math.sqrt(n_scored * gamma * (1 - gamma))


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` with no special tokens, for a transformers or tokenizers tokenizer."""
    try:
        out = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        out = tokenizer.encode(text)
    ids = getattr(out, "ids", out)
    return [int(i) for i in ids]


def score_tokens(tokens: Sequence[int] | NDArray[np.integer], key: WatermarkKey,
                 config: WatermarkConfig | None = None) -> Detection:
    """Detection statistics of ``tokens`` (ids of the leaked/suspect text) under ``key``."""
    cfg = config or WatermarkConfig()
    pairs = unique_pairs(tokens, cfg.context_width)
    t = int(pairs.size)
    g = int(is_green(key.seed, pairs, cfg).sum())
    return Detection(key.account_id, key.epoch, key.key_id, len(tokens), t, g, cfg.gamma,
                     z_score(g, t, cfg.gamma), binomial_pvalue(g, t, cfg.gamma))


def score_text(text: str, tokenizer: Any, key: WatermarkKey,
               config: WatermarkConfig | None = None) -> Detection:
    """:func:`score_tokens` on ``text`` tokenised with the model's own tokenizer."""
    return score_tokens(encode(tokenizer, text), key, config)


def green_positions(tokens: Sequence[int], key: WatermarkKey,
                    config: WatermarkConfig | None = None) -> NDArray[np.bool_]:
    """Per-position green flags (no dedup), for highlighting which tokens carry the mark."""
    cfg = config or WatermarkConfig()
    return is_green(key.seed, pair_hashes(tokens, cfg.context_width), cfg)
