"""Keyed per-account watermarks, attribution of leaked text, and radioactivity tests.

The core (keys, green lists, detection, attribution) is numpy/scipy only; the ``transformers``
processor (:mod:`.processors`), vLLM adapter (:mod:`.vllm`), tiny local models
(:mod:`.tinymodels`) and the open-weights radioactivity test need the ``watermark`` extra and
are imported from their modules. See ``docs/watermark.md``.
"""

from __future__ import annotations

from antidistill.watermark.attribute import Attribution, Candidate, attribute_tokens
from antidistill.watermark.detect import Detection, binomial_pvalue, score_text, score_tokens
from antidistill.watermark.greenlist import WatermarkConfig
from antidistill.watermark.keys import KeyRing, WatermarkKey, epoch_at, watermark_key
from antidistill.watermark.radioactivity import RadioactivityResult, blackbox_test

__all__ = [
    "Attribution",
    "Candidate",
    "Detection",
    "KeyRing",
    "RadioactivityResult",
    "WatermarkConfig",
    "WatermarkKey",
    "attribute_tokens",
    "binomial_pvalue",
    "blackbox_test",
    "epoch_at",
    "score_text",
    "score_tokens",
    "watermark_key",
]
