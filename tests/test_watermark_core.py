"""Watermark core (numpy only): hashing, exact p-values, dedup, attribution, keys, serving."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from antidistill.errors import ConfigError, InputError
from antidistill.keys import derive_key, key_id
from antidistill.watermark.attribute import adjust, attribute_tokens
from antidistill.watermark.detect import binomial_pvalue, score_tokens, tail_table
from antidistill.watermark.greenlist import (
    WatermarkConfig,
    green_counts,
    is_green,
    pair_hashes,
    unique_pairs,
    vocab_green_mask,
    window_pair_hashes,
)
from antidistill.watermark.keys import KeyRing, epoch_at, watermark_key
from antidistill.watermark.serving import (
    HEADER_ACCOUNT,
    HEADER_EPOCH,
    HEADER_KEY_ID,
    key_from_headers,
)

VOCAB = 5000
CFG = WatermarkConfig(gamma=0.25, delta=2.0, context_width=1)


def watermarked(key_seed: int, n: int, rng: np.random.Generator, cfg: WatermarkConfig = CFG,
                delta: float | None = None) -> list[int]:
    """Sample ``n`` tokens from a uniform 'model' biased by the green list (generation side)."""
    d = cfg.delta if delta is None else delta
    toks = [int(rng.integers(VOCAB)) for _ in range(cfg.context_width)]
    for _ in range(n):
        green = vocab_green_mask(key_seed, toks[-cfg.context_width:], VOCAB, cfg)
        w = np.exp(d * green)
        toks.append(int(rng.choice(VOCAB, p=w / w.sum())))
    return toks


def test_generation_and_detection_agree_on_green() -> None:
    rng = np.random.default_rng(0)
    key = watermark_key("s", "acct-1")
    toks = rng.integers(0, VOCAB, 300)
    per_pos = is_green(key.seed, pair_hashes(toks, 2), WatermarkConfig(context_width=2))
    cfg2 = WatermarkConfig(context_width=2)
    for t in range(2, 300, 37):
        mask = vocab_green_mask(key.seed, toks[t - 2 : t].tolist(), VOCAB, cfg2)
        assert mask[toks[t]] == per_pos[t - 2]
    explicit = window_pair_hashes(np.lib.stride_tricks.sliding_window_view(toks[:-1], 2)[:298],
                                  toks[2:])
    assert np.array_equal(explicit, pair_hashes(toks, 2))


def test_green_counts_matches_per_key_and_gamma() -> None:
    rng = np.random.default_rng(1)
    seeds = rng.integers(0, 2**64 - 1, 3000, dtype=np.uint64)
    pairs = unique_pairs(rng.integers(0, VOCAB, 400), 1)
    for gamma in (0.1, 0.25, 0.5):
        cfg = WatermarkConfig(gamma=gamma)
        counts = green_counts(seeds, pairs, cfg, chunk=97)
        slow = np.array([is_green(int(s), pairs, cfg).sum() for s in seeds[:200]])
        assert np.array_equal(counts[:200], slow)
        assert abs(counts.mean() / pairs.size - gamma) < 0.01
        mask = vocab_green_mask(int(seeds[0]), [7], VOCAB, cfg)
        assert abs(mask.mean() - gamma) < 0.03


def test_exact_pvalue_is_binomial_tail_and_uniform_under_h0() -> None:
    assert binomial_pvalue(30, 100, 0.25) == pytest.approx(binom.sf(29, 100, 0.25))
    assert binomial_pvalue(0, 100, 0.25) == pytest.approx(1.0)
    assert binomial_pvalue(0, 0, 0.25) == 1.0
    table = tail_table(50, 0.25)
    assert table[0] == pytest.approx(1.0) and table[50] == pytest.approx(0.25**50)
    # H0: text written without the key -> discrete p-values stochastically >= uniform
    rng = np.random.default_rng(2)
    pv = [score_tokens(rng.integers(0, VOCAB, 120), watermark_key("s", f"a{i}"), CFG).p_value
          for i in range(400)]
    assert np.mean(np.array(pv) <= 0.05) <= 0.08
    assert np.mean(np.array(pv) <= 0.5) <= 0.56


def test_watermark_detected_with_right_key_only() -> None:
    rng = np.random.default_rng(3)
    key = watermark_key("s", "acct-1")
    toks = watermarked(key.seed, 200, rng)
    det = score_tokens(toks, key, CFG)
    assert det.p_value < 1e-10 and det.green_fraction > 0.5 and det.z > 6
    assert score_tokens(toks, watermark_key("s", "acct-2"), CFG).p_value > 1e-3
    assert score_tokens(toks, watermark_key("s", "acct-1", epoch=1), CFG).p_value > 1e-3


def test_repeating_text_does_not_shrink_p_value() -> None:
    rng = np.random.default_rng(4)
    key = watermark_key("s", "acct-1")
    para = watermarked(key.seed, 60, rng)
    once = score_tokens(para, key, CFG)
    tenfold = score_tokens(para * 10, key, CFG)
    # the only new pairs are the 9 joins (last token -> first token)
    assert tenfold.n_scored <= once.n_scored + 1
    assert tenfold.p_value >= once.p_value * 1e-1
    assert tenfold.n_tokens == 10 * once.n_tokens


def test_attribution_finds_the_account_among_many() -> None:
    rng = np.random.default_rng(5)
    accounts = [f"acct-{i}" for i in range(3000)]
    ring = KeyRing.build("master", accounts, epochs=(12, 11))
    assert len(ring) == 6000
    leaked = watermarked(watermark_key("master", "acct-1234", 11).seed, 200, rng)
    res = attribute_tokens(leaked, ring, CFG, alpha=1e-6, top=3)
    assert res.n_keys == 6000 and len(res.candidates) == 3
    best = res.candidates[0]
    assert (best.account_id, best.epoch, best.significant) == ("acct-1234", 11, True)
    assert best.p_adjusted < 1e-6 and best.p_adjusted >= best.p_value
    assert [c.account_id for c in res.attributed] == ["acct-1234"]
    # unwatermarked text: nobody attributed
    clean = attribute_tokens(rng.integers(0, VOCAB, 200), ring, CFG, alpha=0.01)
    assert clean.attributed == ()


def test_holm_and_bonferroni_adjustment() -> None:
    p = np.array([0.001, 0.01, 0.02])
    assert np.allclose(adjust(p, 10, "bonferroni"), [0.01, 0.1, 0.2])
    assert np.allclose(adjust(p, 10, "holm"), [0.01, 0.09, 0.16])
    assert np.allclose(adjust(np.array([0.2, 0.2]), 10, "holm"), [1.0, 1.0])
    with pytest.raises(ValueError):
        adjust(p, 10, "fdr")  # type: ignore[arg-type]


def test_keys_use_shared_derivation_and_rotate() -> None:
    k = watermark_key("s", "a", 3)
    raw = derive_key("s", "a", purpose="watermark", epoch=3)
    assert k.seed == int.from_bytes(raw[:8], "little")
    assert k.seed != watermark_key("s", "a", 4).seed
    assert k.seed != int.from_bytes(derive_key("s", "a", purpose="canary", epoch=3)[:8], "little")
    from datetime import UTC, datetime
    assert epoch_at(datetime(1970, 1, 31, tzinfo=UTC), 30) == 1
    assert epoch_at(datetime(1970, 1, 30, 23, 59, tzinfo=UTC), 30) == 0


def test_key_from_headers_checks_key_id() -> None:
    key = watermark_key("s", "acct-9", 5)
    hdrs = {HEADER_ACCOUNT.lower(): "acct-9", HEADER_KEY_ID: key.key_id, HEADER_EPOCH: "5"}
    assert key_from_headers(hdrs, "s") == key
    assert key_from_headers({}, "s") is None
    # what the gateway forwards today: key_id(derive_key(secret, account, purpose="watermark"))
    gateway_kid = key_id(derive_key("s", "acct-9", purpose="watermark"))
    assert key_from_headers({HEADER_ACCOUNT: "acct-9", HEADER_KEY_ID: gateway_kid}, "s") == \
        watermark_key("s", "acct-9", 0)
    with pytest.raises(ConfigError, match="disagree"):
        key_from_headers(hdrs, "other-secret")
    with pytest.raises(InputError, match="Epoch"):
        key_from_headers({HEADER_ACCOUNT: "a", HEADER_EPOCH: "x"}, "s")


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        WatermarkConfig(gamma=1.0)
    with pytest.raises(ValueError):
        WatermarkConfig(context_width=0)
    with pytest.raises(ValueError):
        pair_hashes(np.array([[1, 2]]), 1)
    assert pair_hashes([1], 1).size == 0
