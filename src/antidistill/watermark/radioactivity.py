"""Radioactivity: was a suspect model trained on text watermarked with our key?

Sander et al. (2024, "Watermarking makes language models radioactive"): a model fine-tuned on
watermarked outputs inherits the green-list bias. Two tests, both with an exact binomial p-value
over *distinct* ``(context window, token)`` pairs (repeats would inflate the evidence):

* **black box** — score the suspect's generations with the key, pooling and de-duplicating pairs
  across all generations;
* **open weights** — run the suspect on chosen contexts and score its top-``k`` next-token
  predictions after every window (Sander et al. score the top-1; more candidates per window give
  more distinct pairs and more power at no cost to validity). With contexts *not* written by our
  watermarked model (the vendored corpora by default), the scored pairs of a model independent of
  the key do not depend on the key, so each distinct pair is green with probability ``gamma`` and
  H0 is exact. Pairs that also occur in the contexts are dropped, so a model copying its input
  adds no evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from antidistill.watermark.detect import binomial_pvalue, z_score
from antidistill.watermark.greenlist import (
    WatermarkConfig,
    is_green,
    pair_hashes,
    window_pair_hashes,
)
from antidistill.watermark.keys import WatermarkKey


@dataclass(frozen=True)
class RadioactivityResult:
    """The test's outcome and the amount of evidence it used."""

    method: str  # "black-box" | "open-weights"
    account_id: str
    epoch: int
    n_texts: int  # generations scored, or contexts run through the model
    n_tokens: int  # (window, token) pairs scored before de-duplication
    n_scored: int  # distinct pairs scored: T
    n_green: int
    gamma: float
    z: float
    p_value: float

    @property
    def green_fraction(self) -> float:
        return self.n_green / self.n_scored if self.n_scored else float("nan")


def _result(method: str, key: WatermarkKey, cfg: WatermarkConfig, n_texts: int, n_tokens: int,
            pairs: NDArray[np.uint64]) -> RadioactivityResult:
    t = int(pairs.size)
    g = int(is_green(key.seed, pairs, cfg).sum())
    return RadioactivityResult(method, key.account_id, key.epoch, n_texts, n_tokens, t, g,
                               cfg.gamma, z_score(g, t, cfg.gamma),
                               binomial_pvalue(g, t, cfg.gamma))


def blackbox_test(generations: Iterable[Sequence[int]], key: WatermarkKey,
                  config: WatermarkConfig | None = None) -> RadioactivityResult:
    """Score the suspect model's generations (token ids, without their prompts)."""
    cfg = config or WatermarkConfig()
    parts = [pair_hashes(g, cfg.context_width) for g in generations]
    all_pairs = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    return _result("black-box", key, cfg, len(parts), int(all_pairs.size), np.unique(all_pairs))


def open_weights_test(model: Any, contexts: Sequence[Sequence[int]], key: WatermarkKey,
                      config: WatermarkConfig | None = None, *, top_k: int = 10,
                      batch_size: int = 32, max_len: int | None = None,
                      exclude_context_pairs: bool = True) -> RadioactivityResult:
    """Score a causal LM's top-``k`` next-token predictions on ``contexts`` (token ids).

    ``model`` is any ``transformers`` causal LM (``model(input_ids=...).logits``).
    """
    import torch

    cfg = config or WatermarkConfig()
    w = cfg.context_width
    limit = max_len or int(getattr(model.config, "n_positions", 0) or
                           getattr(model.config, "max_position_embeddings", 1024))
    ctxs = [list(c)[:limit] for c in contexts if len(c) >= w]
    hashes: list[NDArray[np.uint64]] = []
    seen: list[NDArray[np.uint64]] = []
    n_tokens = 0
    was_training = bool(getattr(model, "training", False))
    model.eval()
    with torch.no_grad():
        for start in range(0, len(ctxs), batch_size):
            chunk = ctxs[start : start + batch_size]
            width = max(len(c) for c in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, c in enumerate(chunk):
                ids[r, : len(c)] = torch.tensor(c)
                mask[r, : len(c)] = 1
            # right padding: a causal model's predictions at real positions are unaffected
            logits = model(input_ids=ids, attention_mask=mask).logits
            topk = logits.topk(min(top_k, int(logits.shape[-1])), dim=-1).indices.numpy()
            for r, c in enumerate(chunk):
                arr = np.asarray(c, dtype=np.int64)
                n = arr.size - w + 1  # positions t = w-1 .. len-1 predict token t+1
                windows = np.lib.stride_tricks.sliding_window_view(arr, w)[:n]
                preds = topk[r, w - 1 : arr.size]  # (n, k)
                k = preds.shape[1]
                hashes.append(window_pair_hashes(np.repeat(windows, k, axis=0), preds.reshape(-1)))
                n_tokens += n * k
                if exclude_context_pairs:
                    seen.append(pair_hashes(arr, w))
    if was_training:
        model.train()
    pairs = np.unique(np.concatenate(hashes)) if hashes else np.empty(0, dtype=np.uint64)
    if exclude_context_pairs and seen:
        pairs = np.setdiff1d(pairs, np.concatenate(seen), assume_unique=False)
    return _result("open-weights", key, cfg, len(ctxs), n_tokens, pairs)
