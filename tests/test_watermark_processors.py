"""Sampling-time adapters: transformers ``LogitsProcessor`` (inside ``generate``) and vLLM logic."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import LogitsProcessorList  # noqa: E402

from antidistill.errors import ConfigError  # noqa: E402
from antidistill.watermark.detect import score_tokens  # noqa: E402
from antidistill.watermark.greenlist import WatermarkConfig, vocab_green_mask  # noqa: E402
from antidistill.watermark.keys import watermark_key  # noqa: E402
from antidistill.watermark.processors import (  # noqa: E402
    WatermarkLogitsProcessor,
    processor_for_account,
    processor_from_headers,
)
from antidistill.watermark.serving import HEADER_ACCOUNT, HEADER_EPOCH, HEADER_KEY_ID  # noqa: E402
from antidistill.watermark.tinymodels import tiny_gpt2  # noqa: E402
from antidistill.watermark.vllm import RequestWatermark, request_watermark  # noqa: E402

CFG = WatermarkConfig(gamma=0.25, delta=2.0, context_width=1)


def test_processor_adds_delta_to_green_logits_per_row() -> None:
    k1, k2 = watermark_key("s", "a"), watermark_key("s", "b")
    proc = WatermarkLogitsProcessor([k1, None, k2], CFG)
    ids = torch.tensor([[5, 9], [5, 9], [1, 3]])
    scores = torch.zeros(3, 500)
    out = proc(ids, scores)
    assert torch.equal(out[0], 2.0 * torch.from_numpy(vocab_green_mask(k1.seed, [9], 500, CFG)))
    assert torch.equal(out[1], scores[1])
    assert torch.equal(out[2], 2.0 * torch.from_numpy(vocab_green_mask(k2.seed, [3], 500, CFG)))
    assert torch.equal(scores, torch.zeros(3, 500))  # input not modified in place
    with pytest.raises(ValueError):
        proc(ids[:2], scores[:2])


def test_generate_with_processor_is_detectable_and_plain_is_not() -> None:
    model = tiny_gpt2(512, n_embd=16, n_layer=1, n_positions=96, seed=1)
    key = processor_for_account("secret", "acct-5", epoch=2, config=CFG)
    prompt = torch.tensor([[11, 12, 13, 14]] * 2)
    common = {"do_sample": True, "top_k": 0, "max_new_tokens": 80, "min_new_tokens": 80,
              "pad_token_id": 0}
    torch.manual_seed(0)
    marked = model.generate(prompt, logits_processor=LogitsProcessorList([key]), **common)
    torch.manual_seed(0)
    plain = model.generate(prompt, **common)
    k = watermark_key("secret", "acct-5", 2)
    for row in range(2):
        assert score_tokens(marked[row, 4:].tolist(), k, CFG).p_value < 1e-8
        assert score_tokens(plain[row, 4:].tolist(), k, CFG).p_value > 1e-4


def test_processor_from_gateway_headers() -> None:
    key = watermark_key("s", "acct-1", 7)
    proc = processor_from_headers({HEADER_ACCOUNT: "acct-1", HEADER_KEY_ID: key.key_id,
                                   HEADER_EPOCH: "7"}, "s", CFG)
    assert proc is not None and proc.keys == key
    assert processor_from_headers({}, "s") is None


def test_vllm_request_processor_matches_transformers_processor() -> None:
    key = watermark_key("s", "acct-3", 1)
    req = request_watermark({"antidistill_account": "acct-3", "antidistill_epoch": 1,
                             "antidistill_key_id": key.key_id}, "s", CFG)
    assert isinstance(req, RequestWatermark)
    assert request_watermark({}, "s") is None
    assert request_watermark(None, "s") is None
    with pytest.raises(ConfigError):
        request_watermark({"antidistill_account": "acct-3", "antidistill_key_id": "0" * 16}, "s")
    logits = torch.randn(300)
    hf = WatermarkLogitsProcessor(key, CFG)
    # first output token: window comes from the prompt; later ones from the output
    assert torch.equal(req([4, 8, 15], [], logits.clone()),
                       hf(torch.tensor([[4, 8, 15]]), logits[None].clone())[0])
    assert torch.equal(req([4, 8], [15, 16], logits.clone()),
                       hf(torch.tensor([[4, 8, 15, 16]]), logits[None].clone())[0])
    wide = RequestWatermark(key, WatermarkConfig(context_width=3))
    assert torch.equal(wide([], [1, 2], logits), logits)  # not enough context yet
