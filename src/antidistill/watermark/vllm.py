"""vLLM adapter: the same keyed green-list bias as a vLLM per-request logits processor.

vLLM (GPU-only, not a dependency) batches requests; its ``AdapterLogitsProcessor`` wraps a
per-request callable ``(prompt_ids, output_ids, logits_row) -> logits_row``. All the logic is in
:class:`RequestWatermark` and :func:`request_watermark` (plain torch, tested on CPU); the vLLM
class built by :func:`vllm_logits_processor_class` only routes requests to them. A request asks
for a watermark through ``SamplingParams.extra_args`` (``vllm_xargs`` in the OpenAI-compatible
server): ``{"antidistill_account": ..., "antidistill_key_id": ..., "antidistill_epoch": ...}``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from antidistill.errors import ConfigError, DependencyError
from antidistill.watermark.greenlist import WatermarkConfig
from antidistill.watermark.keys import WatermarkKey
from antidistill.watermark.processors import GreenMaskCache, bias_logits
from antidistill.watermark.serving import (
    HEADER_ACCOUNT,
    HEADER_EPOCH,
    HEADER_KEY_ID,
    key_from_headers,
)

SECRET_ENV = "ANTIDISTILL_WM_SECRET"
ARG_ACCOUNT = "antidistill_account"
ARG_KEY_ID = "antidistill_key_id"
ARG_EPOCH = "antidistill_epoch"


class RequestWatermark:
    """Per-request processor: bias one logits row given the request's prompt and output so far."""

    def __init__(self, key: WatermarkKey, config: WatermarkConfig | None = None):
        self.key = key
        self.config = config or WatermarkConfig()
        self._cache: GreenMaskCache | None = None

    def __call__(self, prompt_ids: Sequence[int], output_ids: Sequence[int],
                 logits: torch.Tensor) -> torch.Tensor:
        w = self.config.context_width
        window = (list(prompt_ids[-w:]) + list(output_ids[-w:]))[-w:]
        if len(window) < w:
            return logits
        vocab = int(logits.shape[-1])
        if self._cache is None or self._cache.vocab_size != vocab:
            self._cache = GreenMaskCache(self.config, vocab)
        return bias_logits(logits.unsqueeze(0), [window], [self.key.seed], self._cache)[0]


def request_watermark(extra_args: Mapping[str, Any] | None, secret: bytes | str,
                      config: WatermarkConfig | None = None) -> RequestWatermark | None:
    """The processor for one request's ``extra_args``, or ``None`` when it asks for no mark."""
    args = extra_args or {}
    headers = {h: str(args[a]) for h, a in ((HEADER_ACCOUNT, ARG_ACCOUNT),
               (HEADER_KEY_ID, ARG_KEY_ID), (HEADER_EPOCH, ARG_EPOCH)) if args.get(a) is not None}
    key = key_from_headers(headers, secret)
    return None if key is None else RequestWatermark(key, config)


def vllm_logits_processor_class(config: WatermarkConfig | None = None) -> type:
    """A vLLM ``AdapterLogitsProcessor`` subclass; pass it as ``LLM(logits_processors=[cls])``.

    The master secret is read from ``$ANTIDISTILL_WM_SECRET`` when vLLM instantiates it.
    """
    try:
        from vllm.v1.sample.logits_processor import AdapterLogitsProcessor
    except ImportError as exc:  # pragma: no cover - vLLM needs a GPU build
        raise DependencyError("vLLM is not installed; use the transformers processor") from exc
    cfg = config or WatermarkConfig()

    class AntidistillWatermark(AdapterLogitsProcessor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            secret = os.environ.get(SECRET_ENV, "")
            if not secret:
                raise ConfigError(f"set {SECRET_ENV} to the master watermark secret")
            self._secret = secret

        def is_argmax_invariant(self) -> bool:
            return False  # the bias changes which token is most likely

        def new_req_logits_processor(self, params: Any) -> RequestWatermark | None:
            return request_watermark(getattr(params, "extra_args", None), self._secret, cfg)

    return AntidistillWatermark
