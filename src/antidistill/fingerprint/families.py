"""Near-duplicate families of scaffolds with MinHash-LSH (datasketch's scheme, numpy-batched).

An evasive hydra mutates its wrapper a little per account (a word swapped, a line added), so
exact template hashes stop matching; templates whose word-bigram sets have a high Jaccard
similarity are put in one family. The MinHash values are exactly datasketch's ``affine64``
scheme (its permutations and finaliser, checked against ``datasketch.MinHash`` in the tests),
computed for all templates at once; the band/row split is datasketch's optimum for the
threshold. Candidate pairs sharing any band are joined by connected components, so families are
transitive (a chain of small edits is one family).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketch import MinHash
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from antidistill.fingerprint.hashing import combine, fast_hash, mix64

NUM_PERM = 64
THRESHOLD = 0.5
_SEED = 1
_BLOCK = 4096  # shingles per block when applying the permutations


@cache
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = MinHash(num_perm=num_perm, seed=_SEED, scheme="affine64").permutations
    return np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64)


@cache
def _bands(threshold: float, num_perm: int) -> tuple[int, int]:
    try:
        from datasketch.lsh import _optimal_param

        b, r = _optimal_param(threshold, num_perm, 0.5, 0.5)
        return int(b), int(r)
    except ImportError:  # private helper moved: a sound default for 64 permutations at 0.5
        return 16, 4


def _fmix64(hv: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, as datasketch applies it before the permutations."""
    with np.errstate(over="ignore"):
        hv = hv ^ (hv >> np.uint64(33))
        hv = hv * np.uint64(0xFF51AFD7ED558CCD)
        hv = hv ^ (hv >> np.uint64(33))
        hv = hv * np.uint64(0xC4CEB9FE1A85EC53)
        return hv ^ (hv >> np.uint64(33))


def shingles(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(owner index, uint64 shingle hash): word bigrams, or the single word of one-word texts."""
    words = pc.utf8_split_whitespace(
        pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.fill_null(texts, ""),
                                                           r"[^\p{L}\p{N}{}]+", " ")))
    flat = words.flatten()
    owner = np.asarray(pc.list_parent_indices(words), dtype=np.int64)
    keep = np.asarray(pc.greater(pc.utf8_length(flat), 0).fill_null(False))
    h = fast_hash(flat)[keep]
    owner = owner[keep]
    if len(h) == 0:
        return owner, h
    same_next = np.zeros(len(h), dtype=bool)
    same_next[:-1] = owner[1:] == owner[:-1]
    bigram_owner = owner[:-1][same_next[:-1]]
    bigrams = combine(h[:-1][same_next[:-1]], h[1:][same_next[:-1]])
    counts = np.bincount(owner, minlength=len(texts))
    single = counts[owner] == 1
    return (np.concatenate([bigram_owner, owner[single]]),
            np.concatenate([bigrams, h[single]]))


def minhash_signatures(owner: np.ndarray, values: np.ndarray, n: int,
                       num_perm: int = NUM_PERM) -> np.ndarray:
    """(n, num_perm) MinHash signatures; texts without shingles keep the all-max signature."""
    a, b = _permutations(num_perm)
    sig = np.full((n, num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    if len(values) == 0:
        return sig
    order = np.argsort(owner, kind="stable")
    owner, values = owner[order], _fmix64(values[order].astype(np.uint64))
    for start in range(0, len(values), _BLOCK):
        o = owner[start:start + _BLOCK]
        with np.errstate(over="ignore"):
            phv = values[start:start + _BLOCK, None] * a[None, :] + b[None, :]
        bounds = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])
        mins = np.minimum.reduceat(phv, bounds, axis=0)
        rows = o[bounds]
        sig[rows] = np.minimum(sig[rows], mins)
    return sig


def signatures(texts: pa.Array, num_perm: int = NUM_PERM) -> tuple[np.ndarray, np.ndarray]:
    """(MinHash signatures (n, num_perm), has-shingles mask) of texts' word-bigram sets.

    The signature of a union of sets is the element-wise minimum of their signatures, so a
    caller can combine a system prompt's and a scaffold's signatures without re-hashing text.
    """
    n = len(texts)
    owner, values = shingles(texts)
    return (minhash_signatures(owner, values, n, num_perm),
            np.bincount(owner, minlength=n) > 0)


def families(texts: pa.Array, keys: np.ndarray, *, threshold: float = THRESHOLD,
             num_perm: int = NUM_PERM) -> np.ndarray:
    """Family id (int64) of each text: the smallest ``keys`` value (as int64) in its family.

    ``texts`` should be distinct (e.g. unique templates) and ``keys`` their uint64 hashes, so a
    family id is stable for as long as its smallest member is present.
    """
    if len(texts) == 0:
        return np.zeros(0, dtype=np.int64)
    sig, has_shingles = signatures(texts, num_perm)
    return families_of(sig, has_shingles, keys, threshold=threshold)


def families_of(sig: np.ndarray, has_shingles: np.ndarray, keys: np.ndarray, *,
                threshold: float = THRESHOLD) -> np.ndarray:
    """:func:`families` from precomputed :func:`signatures` (LSH bands + connected components)."""
    n, num_perm = sig.shape
    keys = np.asarray(keys, dtype=np.uint64)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    n_bands, rows = _bands(threshold, num_perm)
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    idx = np.flatnonzero(has_shingles)
    for band in range(n_bands if len(idx) > 1 else 0):
        block = sig[idx, band * rows:(band + 1) * rows]
        bucket = mix64(np.full(len(idx), band, dtype=np.uint64))
        for col in range(block.shape[1]):
            bucket = combine(bucket, block[:, col])
        order = np.argsort(bucket, kind="stable")
        sb = bucket[order]
        starts = np.r_[True, sb[1:] != sb[:-1]]
        first = order[np.flatnonzero(starts)][np.cumsum(starts) - 1]
        linked = first != order
        src.append(idx[order[linked]])
        dst.append(idx[first[linked]])
    s = np.concatenate(src) if src else np.zeros(0, dtype=np.int64)
    d = np.concatenate(dst) if dst else np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(s), dtype=np.int8), (s, d)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    signed = keys.view(np.int64)
    rep = np.full(label.max() + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(rep, label, signed)
    return rep[label]
