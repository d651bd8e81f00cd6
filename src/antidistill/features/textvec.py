"""Hashed bag-of-n-grams features for the request classifiers, per *segment*, over Arrow arrays.

sklearn's ``HashingVectorizer`` tokenises in Python, one document at a time; detection must
classify hundreds of thousands of distinct prompts per run, so tokenising, hashing and building
the sparse matrix happen here with Arrow compute and numpy instead.

A text's features are built from its segments (lines, sentences, ``label:`` prefixes: the same
cut as the fingerprint's scaffold/payload split, ``fingerprint.templates.split_segments``): each
segment contributes binary indicators of its word unigrams, word bigrams, 5-character word
prefixes (a cheap stemmer: "reasoning"/"reasons"/"reasoned" share "reaso") and prefix bigrams;
a text's vector is the sum over its distinct segments divided by the square root of that
sum's total.
Digits are folded to ``0``. Long texts keep the segments in their head and tail, where
instructions live. Because the vector is a sum over segments, a linear score is too:
``w·x(text) = Σ w·b(segment) / sqrt(Σ |b(segment)|)``, so detection scores each *distinct
segment* once (a scaffold sentence shared by thousands of prompts costs one featurisation) and
pools per text with numpy. Training uses :func:`featurize`, built from the same segment vectors,
so the shipped weights and run-time scores cannot drift apart. (Bigrams that would cross a
segment boundary are not features: measured effect in ``docs/signals.md``.)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import csr_matrix

from antidistill.fingerprint.hashing import combine, hash_strings, unique_values
from antidistill.fingerprint.normalize import normalize
from antidistill.fingerprint.templates import split_segments

N_FEATURES = 1 << 16
HEAD_CHARS = 1500
TAIL_CHARS = 1000
#: a segment is featurised on its first SEGMENT_CHARS characters (one-line pastes can be huge)
SEGMENT_CHARS = 2000
#: a text's summed segment vector is divided by (its total count) ** POOL_EXPONENT
POOL_EXPONENT = 0.4
_PREFIX = 5
_NS_BIGRAM = np.uint64(0x51ED270B2EA1F3C1)
_NS_PREFIX = np.uint64(0x2545F4914F6CDD1D)
_NS_PREFIX_BIGRAM = np.uint64(0x9FB21C651E98DF25)


def segment_pairs(segments: pa.Array, *, n_features: int = N_FEATURES) -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """Sorted distinct (segment index, feature index) pairs of normalised segments' n-grams."""
    arr = pc.fill_null(segments, "")
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) and pc.max(pc.utf8_length(arr)).as_py() > SEGMENT_CHARS:
        arr = pc.utf8_slice_codeunits(arr, 0, SEGMENT_CHARS)
    # replace only punctuation runs (few matches: fast); digits are folded on the vocabulary
    toks = pc.utf8_split_whitespace(pc.replace_substring_regex(arr, r"[^\p{L}\p{N}\s]+", " "))
    flat = toks.flatten()
    owner = np.asarray(pc.list_parent_indices(toks), dtype=np.int64)
    if len(flat) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    enc = pc.dictionary_encode(flat)
    vocab = pc.replace_substring_regex(enc.dictionary, r"\d+", "0")
    idx = np.asarray(enc.indices, dtype=np.int64)
    uni = hash_strings(vocab)
    pre = combine(hash_strings(pc.utf8_slice_codeunits(vocab, 0, _PREFIX)),
                  np.full(len(vocab), _NS_PREFIX))
    h, hp = uni[idx], pre[idx]
    same = owner[1:] == owner[:-1]
    bi = combine(h[:-1][same], h[1:][same] ^ _NS_BIGRAM)
    pbi = combine(hp[:-1][same], hp[1:][same] ^ _NS_PREFIX_BIGRAM)
    pair_owner = owner[:-1][same]
    rows = np.concatenate([owner, owner, pair_owner, pair_owner])
    hashes = np.concatenate([h, hp, bi, pbi])
    cols = (hashes % np.uint64(n_features)).astype(np.int64)  # every hash is already mixed
    keys = np.sort(rows * n_features + cols)  # binary features: each pair once
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]]  # (np.unique's hash path is far slower)
    return keys // n_features, keys % n_features


def head_tail(seg_chars: np.ndarray, parent: np.ndarray, n: int) -> np.ndarray:
    """Per segment occurrence: does it start in the text's first HEAD_CHARS or end in its last
    TAIL_CHARS characters (counted over segments; ``parent`` ascending)."""
    if len(parent) == 0:
        return np.zeros(0, dtype=bool)
    seg_chars = np.asarray(seg_chars, dtype=np.int64)
    end = np.cumsum(seg_chars)
    totals = np.bincount(parent, weights=seg_chars, minlength=n).astype(np.int64)
    base = np.cumsum(totals) - totals
    end = end - base[parent]
    start = end - seg_chars
    return (start < HEAD_CHARS) | (end > totals[parent] - TAIL_CHARS)


class Segmented:
    """Texts as distinct segments plus the kept (text, distinct segment) pairs, by text."""

    def __init__(self, segments: pa.Array, seg_index: np.ndarray, parent: np.ndarray, n: int):
        self.segments = segments  # distinct normalised segments
        self.n = n  # number of texts
        chars = np.asarray(pc.utf8_length(segments), dtype=np.int64)
        keep = head_tail(chars[seg_index], parent, n)
        # a segment repeated within one text ("yes", "no", a list's separators) counts once
        pairs = unique_values(parent[keep] * max(len(segments), 1) + seg_index[keep])
        self.seg_index = pairs % max(len(segments), 1)
        self.parent = pairs // max(len(segments), 1)


def segment(texts: pa.Array | pa.ChunkedArray, *, normalized: bool = False) -> Segmented:
    """Split texts (normalising first unless ``normalized``) into distinct segments."""
    arr = texts if normalized else normalize(texts)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    flat, parent = split_segments(pc.fill_null(arr, ""))
    enc = pc.dictionary_encode(flat)
    return Segmented(enc.dictionary, np.asarray(enc.indices, dtype=np.int64), parent, len(arr))


def featurize(texts: pa.Array | pa.ChunkedArray, *, normalized: bool = False,
              n_features: int = N_FEATURES) -> csr_matrix:
    """Sparse (len(texts), n_features) float32 matrix: summed segment indicators, L2-scaled.

    Each row is ``Σ b(segment) / sqrt(Σ |b(segment)|)`` over the text's kept segments, the
    exact quantity :func:`pool` rebuilds from per-segment scores.
    """
    seg = segment(texts, normalized=normalized)
    rows, cols = segment_pairs(seg.segments, n_features=n_features)
    m = len(seg.segments)
    seg_cnt = np.bincount(rows, minlength=m)
    seg_ptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(seg_cnt, out=seg_ptr[1:])
    lengths = seg_cnt[seg.seg_index]
    total = int(lengths.sum())
    occ_start = np.cumsum(lengths) - lengths
    owner = np.repeat(np.arange(len(lengths)), lengths)
    src = seg_ptr[seg.seg_index][owner] + (np.arange(total, dtype=np.int64) - occ_start[owner])
    out_rows = seg.parent[owner]
    counts = np.bincount(out_rows, minlength=seg.n)
    indptr = np.zeros(seg.n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    scale = (np.maximum(counts, 1) ** -POOL_EXPONENT).astype(np.float32)
    x = csr_matrix((scale[out_rows], cols[src], indptr), shape=(seg.n, n_features))
    x.sum_duplicates()
    return x


def segment_scores(segments: pa.Array, weights_t: np.ndarray, *,
                   chunk: int = 8192) -> np.ndarray:
    """(m, k + 1) float32: per segment ``b(segment) @ weights_t`` and, last, ``|b(segment)|``.

    ``weights_t`` is (n_features, k) and C-contiguous; chunks of segments bound memory.
    """
    n_features, k = weights_t.shape
    out = np.zeros((len(segments), k + 1), dtype=np.float32)
    for start in range(0, len(segments), chunk):
        part = segments.slice(start, chunk)
        rows, cols = segment_pairs(part, n_features=n_features)
        counts = np.bincount(rows, minlength=len(part))
        indptr = np.zeros(len(part) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        x = csr_matrix((np.ones(len(cols), dtype=np.float32), cols, indptr),
                       shape=(len(part), n_features))
        out[start:start + len(part), :k] = x @ weights_t
        out[start:start + len(part), k] = counts
    return out


def pool(seg_scores: np.ndarray, seg_index: np.ndarray, parent: np.ndarray,
         n: int) -> np.ndarray:
    """(n, k) per-text linear scores from :func:`segment_scores` rows of kept occurrences."""
    k = seg_scores.shape[1] - 1
    out = np.zeros((n, k + 1), dtype=np.float64)
    if len(parent):  # parent is ascending: one reduceat over each text's run of occurrences
        counts = np.bincount(parent, minlength=n)
        nz = counts > 0
        starts = (np.cumsum(counts) - counts)[nz]
        out[nz] = np.add.reduceat(seg_scores[seg_index].astype(np.float64), starts, axis=0)
    return (out[:, :k] * np.maximum(out[:, k:], 1.0) ** -POOL_EXPONENT).astype(np.float32)


def linear_scores(texts: pa.Array, weights_t: np.ndarray, *,
                  normalized: bool = False) -> np.ndarray:
    """``featurize(texts) @ weights_t`` computed per distinct segment (same values, faster)."""
    seg = segment(texts, normalized=normalized)
    return pool(segment_scores(seg.segments, weights_t), seg.seg_index, seg.parent, seg.n)
