"""Attribute leaked text to accounts: test every key at once, control the family-wise error.

With 25,000 accounts x 2 epochs, a per-key p-value of 1e-4 is expected by chance about five
times, so a key is only named when its p-value *adjusted* for the number of keys tested (Holm,
or Bonferroni) is below ``alpha``. Both are valid under any dependence between keys. The green
counts of all keys come from one vectorised hash (:func:`green_counts`) and the p-values from a
lookup table of the binomial tail, because the scored pairs are the same for every key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from antidistill.watermark.detect import tail_table, z_score
from antidistill.watermark.greenlist import WatermarkConfig, green_counts, unique_pairs
from antidistill.watermark.keys import KeyRing

Method = Literal["holm", "bonferroni"]


@dataclass(frozen=True)
class Candidate:
    """One (account, epoch) key and the evidence that it watermarked the text."""

    account_id: str
    epoch: int
    key_id: str
    n_green: int
    n_scored: int
    z: float
    p_value: float  # the key's own exact binomial p-value
    p_adjusted: float  # family-wise adjusted over every key tested
    significant: bool  # p_adjusted <= alpha


@dataclass(frozen=True)
class Attribution:
    """The best-scoring keys (significant or not) and what was tested."""

    candidates: tuple[Candidate, ...]  # by increasing p-value
    n_keys: int
    n_tokens: int
    n_scored: int
    alpha: float
    method: Method

    @property
    def attributed(self) -> tuple[Candidate, ...]:
        """Keys whose adjusted p-value is at most ``alpha``."""
        return tuple(c for c in self.candidates if c.significant)


def adjust(sorted_p: NDArray[np.float64], m: int, method: Method) -> NDArray[np.float64]:
    """Adjusted p-values for the smallest ``len(sorted_p)`` of ``m`` p-values (ascending)."""
    if method == "bonferroni":
        return np.minimum(1.0, sorted_p * m)
    if method == "holm":
        factors = m - np.arange(sorted_p.size)
        return np.minimum(1.0, np.maximum.accumulate(sorted_p * factors))
    raise ValueError(f"unknown method {method!r}; use 'holm' or 'bonferroni'")


def attribute_tokens(tokens: Sequence[int] | NDArray[np.integer], ring: KeyRing,
                     config: WatermarkConfig | None = None, *, alpha: float = 1e-3,
                     method: Method = "holm", top: int = 10) -> Attribution:
    """Test ``tokens`` against every key in ``ring``; return the ``top`` keys by p-value.

    Holm's adjusted p-values of the smallest p-values only need those p-values and ``m``, so
    only the ``top`` best keys are sorted.
    """
    cfg = config or WatermarkConfig()
    pairs = unique_pairs(tokens, cfg.context_width)
    t, m = int(pairs.size), len(ring)
    if m == 0:
        return Attribution((), 0, len(tokens), t, alpha, method)
    counts = green_counts(ring.seeds, pairs, cfg)
    pvals = tail_table(t, cfg.gamma)[counts]
    k = min(max(top, 1), m)
    best = np.argpartition(pvals, k - 1)[:k] if k < m else np.arange(m)
    best = best[np.lexsort((-counts[best], pvals[best]))]
    adj = adjust(pvals[best], m, method)
    cands = tuple(
        Candidate(ring.account_ids[i], int(ring.epochs[i]), ring.key_ids[i], int(counts[i]), t,
                  z_score(int(counts[i]), t, cfg.gamma), float(pvals[i]), float(a),
                  bool(a <= alpha))
        for i, a in zip(best.tolist(), adj.tolist(), strict=True)
    )
    return Attribution(cands[:top], m, len(tokens), t, alpha, method)
