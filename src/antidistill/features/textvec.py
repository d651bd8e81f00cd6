"""Hashed bag-of-n-grams features for the request classifiers, vectorised over Arrow arrays.

sklearn's ``HashingVectorizer`` tokenises in Python, one document at a time; detection must
classify hundreds of thousands of distinct prompts per run, so tokenising, hashing and building
the sparse matrix happen here with Arrow compute and numpy instead. The same function builds the
training matrix, so the shipped weights and run-time features cannot drift apart.

Features (binary, then L2-normalised per text): word unigrams, word bigrams, and 5-character word
prefixes (a cheap stemmer: "reasoning"/"reasons"/"reasoned" share "reaso"), plus prefix bigrams.
Digits are folded to ``0``. Long texts keep their head and tail, where instructions live.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import csr_matrix

from antidistill.fingerprint.hashing import combine, hash_strings
from antidistill.fingerprint.normalize import normalize

N_FEATURES = 1 << 18
HEAD_CHARS = 1500
TAIL_CHARS = 1000
_PREFIX = 5
_NS_BIGRAM = np.uint64(0x51ED270B2EA1F3C1)
_NS_PREFIX = np.uint64(0x2545F4914F6CDD1D)
_NS_PREFIX_BIGRAM = np.uint64(0x9FB21C651E98DF25)


def _head_tail(texts: pa.Array) -> pa.Array:
    long = pc.greater(pc.utf8_length(texts), HEAD_CHARS + TAIL_CHARS)
    if not pc.any(long).as_py():
        return texts
    head = pc.utf8_slice_codeunits(texts, 0, HEAD_CHARS)
    tail = pc.utf8_slice_codeunits(texts, -TAIL_CHARS)
    joined = pc.binary_join_element_wise(head, tail, pa.scalar(" \n ", texts.type))
    return pc.if_else(long, joined, texts)


def tokens(texts: pa.Array | pa.ChunkedArray, *, normalized: bool = False) -> pa.ListArray:
    """Word tokens of every text (runs of letters and digits)."""
    arr = texts if normalized else normalize(texts)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = _head_tail(pc.fill_null(arr, ""))
    # replace only punctuation runs (few matches: fast); digits are folded on the vocabulary
    arr = pc.replace_substring_regex(arr, r"[^\p{L}\p{N}\s]+", " ")
    return pc.utf8_split_whitespace(arr)


def feature_pairs(texts: pa.Array | pa.ChunkedArray, *, normalized: bool = False,
                  n_features: int = N_FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct (text index, feature index) pairs of the texts' hashed n-grams."""
    toks = tokens(texts, normalized=normalized)
    flat = toks.flatten()
    owner = np.asarray(pc.list_parent_indices(toks), dtype=np.int64)
    nonempty = pc.greater(pc.utf8_length(flat), 0)
    if not pc.all(nonempty).as_py():
        flat = flat.filter(nonempty)
        owner = owner[np.asarray(nonempty)]
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


def featurize(texts: pa.Array | pa.ChunkedArray, *, normalized: bool = False,
              n_features: int = N_FEATURES) -> csr_matrix:
    """Sparse (len(texts), n_features) float32 matrix: binary n-gram indicators, L2-normalised.

    Built straight from the sorted pairs (indptr from counts): no COO conversion, no sorting.
    """
    rows, cols = feature_pairs(texts, normalized=normalized, n_features=n_features)
    n = len(texts)
    counts = np.bincount(rows, minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    scale = (1.0 / np.sqrt(np.maximum(counts, 1))).astype(np.float32)
    return csr_matrix((scale[rows], cols, indptr), shape=(n, n_features))


def linear_scores(texts: pa.Array, weights_t: np.ndarray, *, normalized: bool = False,
                  chunk: int = 4096) -> np.ndarray:
    """``featurize(texts) @ weights_t`` computed in chunks of texts (bounded memory).

    ``weights_t`` is (n_features, k) and C-contiguous. (Running chunks on two threads was
    measured slower on the shared 2-core machine, so this stays sequential.)
    """
    n_features, k = weights_t.shape
    out = np.zeros((len(texts), k), dtype=np.float32)
    for start in range(0, len(texts), chunk):
        part = texts.slice(start, chunk)
        x = featurize(part, normalized=normalized, n_features=n_features)
        out[start:start + len(part)] = x @ weights_t
    return out
