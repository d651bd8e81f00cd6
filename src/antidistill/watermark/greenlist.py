"""Keyed green lists (Kirchenbauer et al. 2023) as 64-bit hashes, vectorised in numpy.

A token ``v`` following the context window ``c`` (the previous ``context_width`` tokens) is
*green* for a key iff ``mix(key_seed ^ pair(c, v)) < gamma * 2**64``. ``pair`` and ``mix`` are
splitmix64-style bijective mixers, so for a key independent of the text every distinct
``(c, v)`` pair is green with probability ``gamma`` independently: the green count over ``T``
distinct pairs is exactly Binomial(T, gamma) under H0. Green membership is a per-pair hash (not a
vocabulary permutation) so that detection for many keys is one ``keys x pairs`` array operation,
and the same function biases the logits at generation time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

U64 = NDArray[np.uint64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_CTX_SALT = np.uint64(0x6A09E667F3BCC908)  # sqrt(2) digits: nothing-up-my-sleeve salts
_TOK_SALT = np.uint64(0xBB67AE8584CAA73B)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


@dataclass(frozen=True)
class WatermarkConfig:
    """Parameters shared by generation and detection; both sides must use the same values.

    ``gamma`` is the green share of the vocabulary, ``delta`` the logit bonus for green tokens,
    ``context_width`` how many previous tokens seed the green list (1 survives edits best and is
    what a fine-tuned student inherits most readily; larger widths resist watermark stealing).
    """

    gamma: float = 0.25
    delta: float = 2.0
    context_width: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.gamma < 1.0:
            raise ValueError(f"gamma must be in (0, 1), got {self.gamma}")
        if self.delta < 0:
            raise ValueError(f"delta must be >= 0, got {self.delta}")
        if self.context_width < 1:
            raise ValueError(f"context_width must be >= 1, got {self.context_width}")

    @property
    def threshold(self) -> np.uint64:
        """Hash values below this are green: ``gamma * 2**64`` rounded down to a multiple of
        ``2**31``, so the comparison depends only on the top 33 bits of the hash (see
        :func:`green_counts`). The rounding moves the green probability by < 2**-33."""
        return np.uint64((min(int(self.gamma * 2.0**64), 2**64 - 1) >> 31) << 31)


def splitmix64(x: U64) -> U64:
    """The splitmix64 output function (a bijection on uint64), applied elementwise."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        return np.asarray(z ^ (z >> _S31), dtype=np.uint64)


def _as_tokens(tokens: Sequence[int] | NDArray[np.integer]) -> U64:
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        raise ValueError("tokens must be a 1-D sequence of token ids")
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or int(arr.min()) < 0):
        raise ValueError("token ids must be non-negative integers")
    return arr.astype(np.uint64, copy=False)


def context_hash(window: Sequence[int] | NDArray[np.integer]) -> np.uint64:
    """Hash of one context window (the previous ``context_width`` tokens, oldest first)."""
    h = np.array([_CTX_SALT], dtype=np.uint64)
    for tok in _as_tokens(window):
        h = splitmix64(h ^ tok)
    return np.uint64(h[0])


def _context_hashes(toks: U64, width: int) -> U64:
    """Hash of ``toks[t-width:t]`` for every scored position ``t = width .. n-1``."""
    n = toks.size - width
    h = np.full(n, _CTX_SALT, dtype=np.uint64)
    for j in range(width):
        h = splitmix64(h ^ toks[j : j + n])
    return h


def _token_mix(toks: U64) -> U64:
    return splitmix64(toks ^ _TOK_SALT)


def pair_hashes(tokens: Sequence[int] | NDArray[np.integer], context_width: int) -> U64:
    """One key-independent hash per scored ``(context window, token)`` pair, in text order.

    The first ``context_width`` tokens have no full window and are not scored.
    """
    toks = _as_tokens(tokens)
    if toks.size <= context_width:
        return np.empty(0, dtype=np.uint64)
    ctx = _context_hashes(toks, context_width)
    return splitmix64(ctx ^ _token_mix(toks[context_width:]))


def unique_pairs(tokens: Sequence[int] | NDArray[np.integer], context_width: int) -> U64:
    """Scored pairs with repeats removed, so repeated text adds no evidence."""
    return np.unique(pair_hashes(tokens, context_width))


def _keyed(seeds: U64 | np.uint64, pairs: U64) -> U64:
    """The keyed mix ``mix(seed ^ pair)`` for every (seed, pair) combination (broadcast)."""
    with np.errstate(over="ignore"):
        z = seeds ^ pairs
        z ^= z >> _S30
        z *= _M1
        z ^= z >> _S27
        z *= _M2
        z ^= z >> _S31
    return z


def is_green(seed: int, pairs: U64, config: WatermarkConfig) -> NDArray[np.bool_]:
    """Green membership of each pair for one key."""
    return _keyed(np.uint64(seed), np.asarray(pairs, dtype=np.uint64)) < config.threshold


def green_counts(seeds: U64, pairs: U64, config: WatermarkConfig, chunk: int = 0) -> NDArray[
        np.int64]:
    """Green count of ``pairs`` under every key in ``seeds``: shape ``(len(seeds),)``.

    Works in key chunks sized to stay in the CPU cache, with in-place ufuncs, because this is
    the inner loop of attribution over tens of thousands of keys.
    """
    seeds = np.asarray(seeds, dtype=np.uint64)
    pairs = np.asarray(pairs, dtype=np.uint64)
    k, t = seeds.size, pairs.size
    out = np.zeros(k, dtype=np.int64)
    if k == 0 or t == 0:
        return out
    rows = chunk or max(1, min(k, (1 << 17) // t))
    buf = np.empty((rows, t), dtype=np.uint64)
    tmp = np.empty_like(buf)
    green = np.empty((rows, t), dtype=np.bool_)
    thr = config.threshold
    with np.errstate(over="ignore"):
        for start in range(0, k, rows):
            stop = min(k, start + rows)
            n = stop - start
            b, m, g = buf[:n], tmp[:n], green[:n]
            np.bitwise_xor(seeds[start:stop, None], pairs[None, :], out=b)
            np.right_shift(b, _S30, out=m)
            np.bitwise_xor(b, m, out=b)
            np.multiply(b, _M1, out=b)
            np.right_shift(b, _S27, out=m)
            np.bitwise_xor(b, m, out=b)
            np.multiply(b, _M2, out=b)
            # The final ``z ^= z >> 31`` leaves the top 33 bits unchanged and the threshold's
            # low 31 bits are zero, so it cannot change ``z < thr``: skip it here.
            np.less(b, thr, out=g)
            out[start:stop] = np.count_nonzero(g, axis=1)
    return out


@lru_cache(maxsize=8)
def _vocab_mix(vocab_size: int) -> U64:
    arr = _token_mix(np.arange(vocab_size, dtype=np.uint64))
    arr.setflags(write=False)
    return arr


def vocab_green_mask(seed: int, window: Sequence[int], vocab_size: int,
                     config: WatermarkConfig) -> NDArray[np.bool_]:
    """Which of the ``vocab_size`` next tokens are green after ``window`` (generation side)."""
    if len(window) != config.context_width:
        raise ValueError(f"window has {len(window)} tokens, expected {config.context_width}")
    pairs = splitmix64(context_hash(window) ^ _vocab_mix(vocab_size))
    return is_green(seed, pairs, config)


def window_pair_hashes(windows: NDArray[np.integer], tokens: NDArray[np.integer]) -> U64:
    """Pair hashes for explicit ``(window, token)`` rows: ``windows`` is ``(n, context_width)``.

    Used where the scored token is not the next token of the text (e.g. a suspect model's top-1
    prediction after each window); agrees with :func:`pair_hashes` on consecutive text.
    """
    win = np.asarray(windows)
    if win.ndim != 2:
        raise ValueError("windows must be a 2-D array (n, context_width)")
    h = np.full(win.shape[0], _CTX_SALT, dtype=np.uint64)
    for j in range(win.shape[1]):
        h = splitmix64(np.bitwise_xor(h, win[:, j].astype(np.uint64)))
    return splitmix64(h ^ _token_mix(np.asarray(tokens).astype(np.uint64)))
