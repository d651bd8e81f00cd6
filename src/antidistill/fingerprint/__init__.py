"""Prompt fingerprints: scaffolds with variable slots, payload hashes and near-duplicate families.

Public API (used by :mod:`antidistill.features.requests` and the detection stages):

- :func:`fingerprint` — per row ``template_hash``, ``content_hash``, ``family_id``;
- :func:`template_specificity` — how specific each template is across accounts
  (:func:`specificity_table` from counts grouped elsewhere);
- :func:`normalize`, :func:`mask` — the text normalisation behind the hashes;
- :data:`TRIVIAL_TEMPLATE_HASH` — the template of a bare payload with no scaffold.

See ``docs/signals.md`` for the method and its limits.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from antidistill.fingerprint.cache import HashCache, cached_rows
from antidistill.fingerprint.families import NUM_PERM, families_of, signatures
from antidistill.fingerprint.hashing import combine, fast_hash, unique, unique_values
from antidistill.fingerprint.normalize import SLOT_PAYLOAD, mask, normalize
from antidistill.fingerprint.specificity import specificity_table, template_specificity
from antidistill.fingerprint.templates import (
    SLOT_HASH,
    TRIVIAL_HASH,
    Templates,
    constant_words,
    extract,
)

#: the template of a prompt without any recognised scaffold and without a system prompt
TRIVIAL_TEMPLATE_HASH: int = TRIVIAL_HASH
#: prompts are fingerprinted on their first MAX_CHARS characters (huge pastes are truncated)
MAX_CHARS = 20_000
MIN_SUPPORT = 3

FINGERPRINT_SCHEMA = pa.schema([
    pa.field("template_hash", pa.uint64(), nullable=False),
    pa.field("content_hash", pa.uint64(), nullable=False),
    pa.field("family_id", pa.int64(), nullable=False),
    pa.field("template_words", pa.int32(), nullable=False),
])

__all__ = ["FINGERPRINT_SCHEMA", "MAX_CHARS", "TRIVIAL_TEMPLATE_HASH", "Encoded",
           "Templates", "encode_unique", "fingerprint", "fingerprint_details", "mask", "normalize",
           "specificity_table", "template_specificity"]


class Encoded:
    """A string column as (distinct normalised texts, row -> index), so work runs once per text.

    Two raw strings that normalise to the same text share one index.
    """

    def __init__(self, texts: pa.Array, index: np.ndarray, hashes: np.ndarray):
        self.texts = texts  # distinct normalised texts
        self.index = index  # int64 per input row
        self.hashes = hashes  # uint64 per distinct text (fast_hash)


def _take(column: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """``column.take(rows)`` as one array, gathered chunk by chunk (a chunked take would first
    concatenate every chunk: a copy of the whole column)."""
    if isinstance(column, pa.Array):
        return column.take(pa.array(rows))
    if column.num_chunks == 1:
        return column.chunk(0).take(pa.array(rows))
    bounds = np.cumsum([0] + [len(c) for c in column.chunks])
    which = np.searchsorted(bounds, rows, side="right") - 1
    order = np.argsort(which, kind="stable")
    parts = [column.chunk(int(c)).take(pa.array(rows[order][which[order] == c] - bounds[c]))
             for c in unique_values(which)]
    gathered = pa.concat_arrays([p.cast(pa.large_string()) for p in parts])
    return gathered.take(pa.array(np.argsort(order, kind="stable")))


def encode_unique(column: pa.Array | pa.ChunkedArray, *, max_chars: int = MAX_CHARS) -> Encoded:
    """Deduplicate raw strings, normalise each once, deduplicate again.

    Rows are deduplicated by their DuckDB hash (multi-threaded, reads the Arrow buffers in
    place: no copy of the column), then only the distinct strings are gathered and normalised.
    Two different strings with the same 64-bit hash would be merged; at 2**-64 per pair this is
    negligible next to the input sizes a process handles.
    """
    if pa.types.is_null(column.type):
        column = column.cast(pa.string())
    row_hash = fast_hash(column)
    _, first, raw_index = unique(row_hash)
    raw = _take(column, first)
    norm = normalize(raw, max_chars=max_chars)
    h = fast_hash(norm)
    uniq, first_n, inverse = unique(h)
    return Encoded(norm.take(pa.array(first_n)), inverse[raw_index].astype(np.int64), uniq)


#: MinHash signatures of scaffolds and system prompts seen in this process (64 uint64 each:
#: 100k entries are about 51 MB)
_SIGNATURES = HashCache(max_entries=100_000)
_SIG_SALT = np.full(1, 0x5349474E, dtype=np.uint64)


def _cached_signatures(texts: pa.Array, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(signatures, has-shingles) of distinct texts with distinct ``keys``, via the cache.

    The has-shingles flag is stored as an extra column (0/1) after the signature.
    """
    def compute(miss: np.ndarray) -> np.ndarray:
        sig, has = signatures(texts.take(pa.array(miss)))
        return np.hstack([sig, has.astype(np.uint64)[:, None]])

    rows = cached_rows(_SIGNATURES, combine(keys, _SIG_SALT), compute, (NUM_PERM + 1,),
                       np.uint64)
    return rows[:, :NUM_PERM], rows[:, NUM_PERM] > 0


def _template_signatures(tpl: Templates) -> tuple[np.ndarray, np.ndarray]:
    """Signatures of the distinct templates as the minimum over their scaffold segments'.

    Each distinct masked scaffold segment is shingled once per process (cached). Payload slots
    are not shingles: a ``{x}`` shared by every wrapped template would make unrelated short
    scaffolds look alike. A template without scaffold segments (the trivial one) gets the
    signature of ``{x}``. Word bigrams that would span two segments are not shingles, so this
    is MinHash over the union of the segments' shingle sets.
    """
    n_t = len(tpl.template_keys)
    sig = np.full((n_t, NUM_PERM), np.iinfo(np.uint64).max, dtype=np.uint64)
    has = np.zeros(n_t, dtype=bool)
    slot_sig, slot_has = _cached_signatures(pa.array([SLOT_PAYLOAD], pa.large_string()),
                                            np.array([SLOT_HASH], dtype=np.uint64))
    scaffold = tpl.part_segment >= 0
    part_t, part_s = tpl.part_template[scaffold], tpl.part_segment[scaffold]
    if len(part_s):
        used, _, part_row = unique(part_s)
        part_sig, part_has = _cached_signatures(tpl.masked_segments.take(pa.array(used)),
                                                tpl.masked_segment_hash[used])
        counts = np.bincount(part_t, minlength=n_t)
        nz = counts > 0
        starts = (np.cumsum(counts) - counts)[nz]
        sig[nz] = np.minimum.reduceat(part_sig[part_row], starts, axis=0)
        has[nz] = np.maximum.reduceat(part_has[part_row].astype(np.int8), starts) > 0
    bare = np.bincount(part_t, minlength=n_t) == 0
    sig[bare], has[bare] = slot_sig[0], slot_has[0]
    return sig, has


def fingerprint(prompt: pa.Array | pa.ChunkedArray,
                system_prompt: pa.Array | pa.ChunkedArray | None = None, *,
                min_support: int = MIN_SUPPORT, prompts: Encoded | None = None) -> pa.Table:
    """Row-aligned ``template_hash`` (uint64), ``content_hash`` (uint64), ``family_id`` (int64),
    ``template_words`` (int32).

    ``template_hash`` covers the system prompt (masked) and the prompt's scaffold; it equals
    :data:`TRIVIAL_TEMPLATE_HASH` when there is neither. ``content_hash`` is the prompt's
    payload. ``family_id`` joins near-duplicate templates (MinHash-LSH on word bigrams).
    ``prompts`` lets a caller that already encoded the prompt column reuse it. Hash values are
    consistent within one installation (they use DuckDB's ``hash``), not across versions.
    """
    return fingerprint_details(prompt, system_prompt, min_support=min_support,
                               prompts=prompts)[0]


def fingerprint_details(prompt: pa.Array | pa.ChunkedArray,
                        system_prompt: pa.Array | pa.ChunkedArray | None = None, *,
                        min_support: int = MIN_SUPPORT, prompts: Encoded | None = None,
                        systems: Encoded | None = None) -> tuple[pa.Table, Templates]:
    """:func:`fingerprint` plus the per-distinct-prompt :class:`Templates` (with segments).

    The request classifiers reuse the segments (see :mod:`antidistill.features.textvec`).
    ``systems`` lets a caller reuse an encoding of the system-prompt column.
    """
    n = len(prompt)
    if system_prompt is not None and len(system_prompt) != n:
        from antidistill.errors import InputError

        raise InputError(f"system_prompt has {len(system_prompt)} rows, prompt has {n}",
                         field="system_prompt")
    enc = prompts or encode_unique(prompt)
    tpl = extract(enc.texts, min_support=min_support, text_hash=enc.hashes)
    if n == 0:
        return FINGERPRINT_SCHEMA.empty_table(), tpl
    if system_prompt is None:
        sys_index = np.zeros(n, dtype=np.int64)
        sys_text = pa.array([""], pa.large_string())
    else:
        sys_enc = systems or encode_unique(system_prompt)
        sys_index = sys_enc.index
        sys_text = mask(sys_enc.texts)
    sys_hash = fast_hash(sys_text)
    sys_empty = np.asarray(pc.equal(pc.utf8_length(sys_text), 0))
    # distinct (system, prompt-template) pairs: their combined template and its family
    n_sys = len(sys_text)
    tpl_slot = np.searchsorted(tpl.template_keys, tpl.template_hash)  # per distinct prompt
    pair = tpl_slot[enc.index] * n_sys + sys_index
    pairs, _, pair_inverse = unique(pair)
    p_tpl = pairs // n_sys
    p_sys = pairs % n_sys
    p_key = tpl.template_keys[p_tpl]
    combined = np.where(sys_empty[p_sys], p_key, combine(sys_hash[p_sys], p_key))
    # MinHash of (system ∪ scaffold) = element-wise min of their signatures: each distinct
    # scaffold and system prompt is shingled once per process (cached), pairs cost a minimum
    sig_t, has_t = _template_signatures(tpl)
    sig_s, has_s = _cached_signatures(sys_text, sys_hash)
    uniq_c, first_c, inv_c = unique(combined)
    c_tpl, c_sys = p_tpl[first_c], p_sys[first_c]
    sig = np.minimum(sig_t[c_tpl], sig_s[c_sys])
    has = has_t[c_tpl] | has_s[c_sys]
    fam = families_of(sig, has, uniq_c)
    # fixed words of the scaffold plus the system prompt: how much sharing the template says
    words = constant_words(tpl.template_text)[p_tpl] + np.where(
        sys_empty[p_sys], 0, constant_words(sys_text)[p_sys])
    table = pa.table({
        "template_hash": pa.array(combined[pair_inverse], pa.uint64()),
        "content_hash": pa.array(tpl.content_hash[enc.index], pa.uint64()),
        "family_id": pa.array(fam[inv_c][pair_inverse], pa.int64()),
        "template_words": pa.array(words[pair_inverse], pa.int32()),
    }, schema=FINGERPRINT_SCHEMA)
    return table, tpl
