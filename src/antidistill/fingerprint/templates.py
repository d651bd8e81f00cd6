"""Scaffold extraction: split each prompt into a template (wrapper) and a payload (the problem).

A distillation pipeline wraps thousands of dataset items in one scaffold ("Solve the following
problem. Show every step. Problem: ... Put the final answer in \\boxed{}"). Over a batch of
distinct prompts, the scaffold's sentences recur while each payload sentence is (nearly) unique.
So a prompt is cut into segments (lines, sentences, "label:" prefixes; a fenced code block stays
one segment), each segment is masked (numbers, strings, ids... become slots) and counted over the
*distinct* masked prompts of the batch (its support: prompts that differ only in numbers or other
slots count once). A segment is scaffold when its support is at least ``min_support`` and either
twice the support of the rarest segment of the same prompt (the payload: a dataset item re-asked
under two or three wrappers stays payload) or at least ``HIGH_SUPPORT`` (a sentence common to
many contexts, even next to other common sentences); the rest is payload. A family of prompts
that differ *only* in slots is therefore all payload (trivial template, distinct contents).

- template = the masked scaffold segments in order, each run of payload segments replaced by
  ``{x}`` — the same wrapper around different problems gives the same template;
- content = the payload segments, unmasked — the same problem in different wrappers gives the
  same content (when every segment is scaffold the whole normalised text is the content).

Both are order-sensitive hashes over segment hashes; the template's text is only materialised
once per distinct template (for the near-duplicate families).

Everything is vectorised over Arrow arrays of unique texts; nothing loops per row in Python.
Support is counted per batch, so a scaffold must recur a few times in the batch to be
recognised; with fewer texts the whole prompt is payload and the template is the trivial ``{x}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from antidistill.fingerprint.hashing import combine, fast_hash, mix64, powers, unique
from antidistill.fingerprint.normalize import SLOT_PAYLOAD, mask, protect_code_newlines

#: segment boundaries: line breaks, sentence ends, "label: " prefixes
SEGMENT_SPLIT = r"\n+|[.!?;]+(?:\s+|$)|:\s+"
_SLOTS = r"\{(?:n|str|url|email|id|path|code|x)\}"
_LARGE = pa.large_string()
_SEQ_SALT = np.uint64(0xD6E8FEB86659FD93)
#: scaffold segments recur at least RATIO times more than the payload of the same text ...
RATIO = 2
#: ... or in at least HIGH_SUPPORT distinct texts (then the whole text may be scaffold)
HIGH_SUPPORT = 8
#: a period after these does not end a sentence ("mr. smith", "e.g. this", "j. k. rowling")
_ABBREVIATIONS = (r"\b(mr|mrs|ms|dr|prof|st|jr|sr|vs|etc|e\.g|i\.e|no|fig|approx|inc|ltd|co|"
                  r"u\.s|a\.m|p\.m|[a-z])\.")


@dataclass(frozen=True)
class Templates:
    """Per input text: template hash and content hash; template text of distinct templates."""

    template_hash: np.ndarray  # uint64 per text
    content_hash: np.ndarray  # uint64 per text
    template_keys: np.ndarray  # uint64: the distinct template hashes ...
    template_text: pa.Array  # ... and their texts (for near-duplicate families)
    masked_hash: np.ndarray  # uint64 per text: the whole text masked (slots folded)
    segments: pa.Array  # distinct segments (normalised, unmasked) ...
    segment_hash: np.ndarray  # ... their fast_hash ...
    segment_index: np.ndarray  # ... and per occurrence (texts in order): distinct segment ...
    segment_parent: np.ndarray  # ... and text index (ascending)
    masked_segments: pa.Array  # distinct segments masked (parallel to ``segments``) ...
    masked_segment_hash: np.ndarray  # ... and their fast_hash
    part_template: np.ndarray  # per part of a distinct template (ascending): its index ...
    part_segment: np.ndarray  # ... and the masked segment it is, or -1 for a payload slot


def constant_words(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Words of fixed text in each masked template or system prompt (slots do not count).

    A word is a run of two or more letters; each CJK character counts as one, as such scripts
    do not separate words. It says how much a shared scaffold can tell: two unrelated people
    write "Let's think step by step." alike, but not a paragraph of an operation's instructions.
    """
    if len(texts) == 0:
        return np.zeros(0, dtype=np.int32)
    fixed = pc.replace_substring_regex(texts, _SLOTS, " ")
    words = pc.count_substring_regex(fixed, r"\p{L}\p{L}+")
    cjk = pc.count_substring_regex(fixed, r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
    return (np.asarray(words.fill_null(0), dtype=np.int32)
            + np.asarray(cjk.fill_null(0), dtype=np.int32))


def _list_from(parent: np.ndarray, values: pa.Array, n: int) -> pa.LargeListArray:
    counts = np.bincount(parent, minlength=n) if len(parent) else np.zeros(n, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return pa.LargeListArray.from_arrays(pa.array(offsets), values)


def sequence_hash(values: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Order-sensitive hash of each owner's run of uint64 values (owner sorted ascending)."""
    out = np.zeros(n, dtype=np.uint64)
    counts = np.bincount(owner, minlength=n) if len(owner) else np.zeros(n, dtype=np.int64)
    if len(values):
        starts = np.cumsum(counts) - counts
        pos_from_end = counts[owner] - 1 - (np.arange(len(owner)) - starts[owner])
        with np.errstate(over="ignore"):
            terms = mix64(values) * powers(int(counts.max()))[pos_from_end]
        nz = counts > 0
        out[nz] = np.add.reduceat(terms, starts[nz])
    with np.errstate(over="ignore"):
        return mix64(out + counts.astype(np.uint64) * _SEQ_SALT + _SEQ_SALT)


#: hash of one payload slot: a template reduced to ``{x}``
SLOT_HASH = np.uint64(0x5E6A_1D0C_2B7F_3A91)
TRIVIAL_HASH = int(sequence_hash(np.array([SLOT_HASH]), np.zeros(1, dtype=np.int64), 1)[0])


def split_segments(normalized: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Non-empty trimmed segments of already-normalised texts, in order, and their text index.

    Shared by the scaffold split and the request classifiers' features, so a classifier scores
    exactly the segments the fingerprint sees.
    """
    normalized = normalized.cast(_LARGE)
    guarded = pc.replace_substring_regex(protect_code_newlines(normalized), _ABBREVIATIONS, "\\1")
    parts = pc.split_pattern_regex(guarded, SEGMENT_SPLIT)
    flat = pc.utf8_trim_whitespace(parts.flatten())
    parent = np.asarray(pc.list_parent_indices(parts), dtype=np.int64)
    keep = pc.greater(pc.utf8_length(flat), 0).fill_null(False)
    if not pc.all(keep).as_py():
        flat = flat.filter(keep)
        parent = parent[np.asarray(keep)]
    return flat, parent


def extract(normalized: pa.Array, *, min_support: int = 3,
            text_hash: np.ndarray | None = None) -> Templates:
    """Templates and content hashes of already-normalised texts (see module docstring).

    The caller should pass each distinct normalised text once: support counts texts, so a
    prompt repeated verbatim does not make its own sentences look like a scaffold.
    ``text_hash`` (the texts' :func:`fast_hash`) is the content of texts without payload.
    """
    n = len(normalized)
    if n == 0:
        empty = np.zeros(0, dtype=np.uint64)
        none = np.zeros(0, dtype=np.int64)
        return Templates(empty, empty, empty, pa.array([], _LARGE), empty, pa.array([], _LARGE),
                         empty, none, none, pa.array([], _LARGE), empty, none, none)
    normalized = normalized.cast(_LARGE)
    if text_hash is None:
        text_hash = fast_hash(normalized)
    flat, parent = split_segments(normalized)

    # scaffold sentences repeat across texts: mask and hash each distinct segment once
    enc = pc.dictionary_encode(flat)
    seg_index = np.asarray(enc.indices, dtype=np.int64)
    distinct = enc.dictionary
    masked_d = mask(distinct)
    raw_hash_d = fast_hash(distinct)
    raw_hash = raw_hash_d[seg_index]
    masked_hash_d = fast_hash(masked_d)
    key = masked_hash_d[seg_index]
    # a segment made only of slots (a number, a code block, a quoted string) is payload
    words = pc.match_substring_regex(pc.replace_substring_regex(masked_d, _SLOTS, ""),
                                     r"\p{L}\p{L}")
    has_words = np.asarray(words.fill_null(False))[seg_index]

    # support counts distinct *masked* texts: a dataset item re-sent under a wrapper that only
    # varies a number ("item 17 of 500") is one context, not many
    masked_text = sequence_hash(key, parent, n)
    support = _distinct_support(key, masked_text[parent])
    # a segment is scaffold when it recurs clearly more than the text's rarest segment (the
    # payload), or so often that no dataset item would be re-asked that many times
    rarest = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(rarest, parent[has_words], support[has_words])
    bar = np.maximum(min_support, np.minimum(RATIO * rarest[parent], HIGH_SUPPORT))
    scaffold = (support >= bar) & has_words

    # template: scaffold keys in order, each run of payload segments as one slot
    prev_same = np.zeros(len(parent), dtype=bool)
    prev_same[1:] = parent[1:] == parent[:-1]
    prev_payload = np.zeros(len(parent), dtype=bool)
    prev_payload[1:] = ~scaffold[:-1]
    kept = scaffold | ~(prev_same & prev_payload)
    reprs = np.where(scaffold, key, SLOT_HASH)[kept]
    template = sequence_hash(reprs, parent[kept], n)
    no_segments = np.bincount(parent, minlength=n) == 0
    template[no_segments] = np.uint64(TRIVIAL_HASH)

    payload = ~scaffold
    content = sequence_hash(raw_hash[payload], parent[payload], n)
    no_payload = np.bincount(parent[payload], minlength=n) == 0
    content[no_payload] = text_hash[no_payload]

    # the parts of each distinct template (scaffold segments and payload slots), taken from one
    # representative text; MinHash signatures are built from them per scaffold segment
    keys, first, _ = unique(template)
    template_of_text = np.full(n, -1, dtype=np.int64)
    template_of_text[first] = np.arange(len(keys))
    part_t = template_of_text[parent[kept]]
    part_s = np.where(scaffold, seg_index, -1)[kept]
    sel = part_t >= 0
    order = np.argsort(part_t[sel], kind="stable")
    part_t, part_s = part_t[sel][order], part_s[sel][order]
    # the template's text: only the representatives' parts are gathered
    with_slot = pa.concat_arrays([pa.array([SLOT_PAYLOAD], _LARGE), masked_d.cast(_LARGE)])
    part_text = with_slot.take(pa.array(part_s + 1))
    text = pc.fill_null(pc.binary_join(_list_from(part_t, part_text, len(keys)),
                                       pa.scalar("\n", _LARGE)), "")
    return Templates(template, content, keys, text, masked_text, distinct, raw_hash_d, seg_index,
                     parent, masked_d, masked_hash_d, part_t, part_s)


def _distinct_support(key: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """For every segment: in how many distinct texts (``parent`` ids) its key occurs.

    Distinct (key, parent) pairs are found by sorting one 64-bit hash of the pair (a lexsort
    over two columns was measured ~3x slower); a collision would merge two pairs, at odds of
    about n**2 / 2**64.
    """
    if len(key) == 0:
        return np.zeros(0, dtype=np.int64)
    key = np.asarray(key, dtype=np.uint64)
    _, first, _ = unique(combine(key, np.asarray(parent).astype(np.uint64)))
    pair_keys = np.sort(key[first])
    starts = np.flatnonzero(np.r_[True, pair_keys[1:] != pair_keys[:-1]])
    uk = pair_keys[starts]
    per_key = np.diff(np.r_[starts, len(pair_keys)])
    return per_key[np.searchsorted(uk, key)].astype(np.int64)
