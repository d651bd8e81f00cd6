"""Sampling-time watermark for ``transformers``: a ``LogitsProcessor`` adding ``delta`` to green
logits (Kirchenbauer et al. 2023), keyed per account. Needs the ``watermark`` extra.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from numpy.typing import NDArray
from transformers import LogitsProcessor

from antidistill.watermark.greenlist import WatermarkConfig, vocab_green_mask
from antidistill.watermark.keys import WatermarkKey, watermark_key
from antidistill.watermark.serving import key_from_headers


class GreenMaskCache:
    """Green masks by (seed, context window): with ``context_width=1`` most steps are hits."""

    def __init__(self, config: WatermarkConfig, vocab_size: int, maxsize: int = 4096):
        self.config, self.vocab_size, self.maxsize = config, vocab_size, maxsize
        self._cache: OrderedDict[tuple[int, tuple[int, ...]], NDArray[np.bool_]] = OrderedDict()

    def mask(self, seed: int, window: tuple[int, ...]) -> NDArray[np.bool_]:
        k = (seed, window)
        hit = self._cache.get(k)
        if hit is not None:
            self._cache.move_to_end(k)
            return hit
        m = vocab_green_mask(seed, window, self.vocab_size, self.config)
        self._cache[k] = m
        if len(self._cache) > self.maxsize:
            self._cache.popitem(last=False)
        return m


def bias_logits(scores: torch.Tensor, windows: Sequence[Sequence[int] | None],
                seeds: Sequence[int | None], cache: GreenMaskCache) -> torch.Tensor:
    """Add ``delta`` to the green entries of each row of ``scores`` (rows with no key/window are
    left alone). Shared by the transformers and vLLM adapters."""
    rows = [i for i, (w, s) in enumerate(zip(windows, seeds, strict=True))
            if w is not None and s is not None]
    if not rows:
        return scores
    masks = np.stack([cache.mask(int(seeds[i]), tuple(int(t) for t in windows[i]))  # type: ignore[arg-type,union-attr]
                      for i in rows])
    bias = torch.from_numpy(masks).to(device=scores.device, dtype=scores.dtype)
    bias.mul_(cache.config.delta)
    idx = torch.tensor(rows, device=scores.device)
    return scores.index_add(0, idx, bias)


class WatermarkLogitsProcessor(LogitsProcessor):
    """Watermark every row with one key, or row ``i`` with ``keys[i]`` (``None``: no mark).

    Pass it as ``model.generate(..., logits_processor=LogitsProcessorList([proc]))``. The vocab
    size is taken from the scores, so it matches the model even when the tokenizer is smaller.
    """

    def __init__(self, keys: WatermarkKey | Sequence[WatermarkKey | None],
                 config: WatermarkConfig | None = None):
        self.config = config or WatermarkConfig()
        self.keys: list[WatermarkKey | None] | WatermarkKey = (
            keys if isinstance(keys, WatermarkKey) else list(keys))
        self._cache: GreenMaskCache | None = None

    def _seeds(self, batch: int) -> list[int | None]:
        if isinstance(self.keys, WatermarkKey):
            return [self.keys.seed] * batch
        if len(self.keys) != batch:
            raise ValueError(f"{len(self.keys)} keys for a batch of {batch} rows")
        return [k.seed if k is not None else None for k in self.keys]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        vocab = int(scores.shape[-1])
        if self._cache is None or self._cache.vocab_size != vocab:
            self._cache = GreenMaskCache(self.config, vocab)
        w = self.config.context_width
        if input_ids.shape[-1] < w:
            return scores
        windows = input_ids[:, -w:].tolist()
        return bias_logits(scores, windows, self._seeds(int(scores.shape[0])),  # type: ignore[return-value]
                           self._cache)


def processor_for_account(secret: bytes | str, account_id: str, epoch: int = 0,
                          config: WatermarkConfig | None = None) -> WatermarkLogitsProcessor:
    """The processor a model server attaches to one account's request."""
    return WatermarkLogitsProcessor(watermark_key(secret, account_id, epoch), config)


def processor_from_headers(headers: Mapping[str, str], secret: bytes | str,
                           config: WatermarkConfig | None = None, *,
                           default_epoch: int = 0) -> WatermarkLogitsProcessor | None:
    """The processor for a request forwarded by the gateway, or ``None`` if it asked for none."""
    key = key_from_headers(headers, secret, default_epoch=default_epoch)
    return None if key is None else WatermarkLogitsProcessor(key, config)
