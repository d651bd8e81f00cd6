"""Prompt fingerprints: scaffolds with variable slots, payload hashes and near-duplicate families.

Public API (used by :mod:`antidistill.features.requests` and the detection stages):

- :func:`fingerprint` — per row ``template_hash``, ``content_hash``, ``family_id``;
- :func:`template_specificity` — how specific each template is across accounts;
- :func:`normalize`, :func:`mask` — the text normalisation behind the hashes;
- :data:`TRIVIAL_TEMPLATE_HASH` — the template of a bare payload with no scaffold.

See ``docs/signals.md`` for the method and its limits.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from antidistill.fingerprint.families import families
from antidistill.fingerprint.hashing import combine, fast_hash
from antidistill.fingerprint.normalize import mask, normalize
from antidistill.fingerprint.specificity import template_specificity
from antidistill.fingerprint.templates import TRIVIAL_HASH, extract

#: the template of a prompt without any recognised scaffold and without a system prompt
TRIVIAL_TEMPLATE_HASH: int = TRIVIAL_HASH
#: prompts are fingerprinted on their first MAX_CHARS characters (huge pastes are truncated)
MAX_CHARS = 20_000
MIN_SUPPORT = 3

FINGERPRINT_SCHEMA = pa.schema([
    pa.field("template_hash", pa.uint64(), nullable=False),
    pa.field("content_hash", pa.uint64(), nullable=False),
    pa.field("family_id", pa.int64(), nullable=False),
])

__all__ = ["FINGERPRINT_SCHEMA", "MAX_CHARS", "TRIVIAL_TEMPLATE_HASH", "Encoded",
           "encode_unique", "fingerprint", "fingerprint_details", "mask", "normalize",
           "template_specificity"]


class Encoded:
    """A string column as (distinct normalised texts, row -> index), so work runs once per text.

    Two raw strings that normalise to the same text share one index.
    """

    def __init__(self, texts: pa.Array, index: np.ndarray, hashes: np.ndarray):
        self.texts = texts  # distinct normalised texts
        self.index = index  # int64 per input row
        self.hashes = hashes  # uint64 per distinct text (fast_hash)


def encode_unique(column: pa.Array | pa.ChunkedArray, *, max_chars: int = MAX_CHARS) -> Encoded:
    """Deduplicate raw strings (Arrow hash table), normalise each once, deduplicate again."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_null(column.type):
        column = column.cast(pa.string())
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    enc = pc.dictionary_encode(pc.fill_null(column, ""))
    raw_index = np.asarray(enc.indices, dtype=np.int64)
    norm = normalize(enc.dictionary, max_chars=max_chars)
    h = fast_hash(norm)
    uniq, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    return Encoded(norm.take(pa.array(first)), inverse[raw_index].astype(np.int64), uniq)


def fingerprint(prompt: pa.Array | pa.ChunkedArray,
                system_prompt: pa.Array | pa.ChunkedArray | None = None, *,
                min_support: int = MIN_SUPPORT, prompts: Encoded | None = None) -> pa.Table:
    """Row-aligned ``template_hash`` (uint64), ``content_hash`` (uint64), ``family_id`` (int64).

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
                        min_support: int = MIN_SUPPORT,
                        prompts: Encoded | None = None) -> tuple[pa.Table, np.ndarray]:
    """:func:`fingerprint` plus, per distinct prompt of ``prompts``, the hash of its masked text.

    Texts that differ only in slots (numbers, quoted strings, ids) share that hash, so the
    request classifiers can score each masked form once.
    """
    n = len(prompt)
    if system_prompt is not None and len(system_prompt) != n:
        from antidistill.errors import InputError

        raise InputError(f"system_prompt has {len(system_prompt)} rows, prompt has {n}",
                         field="system_prompt")
    enc = prompts or encode_unique(prompt)
    if n == 0:
        return FINGERPRINT_SCHEMA.empty_table(), np.zeros(len(enc.texts), dtype=np.uint64)
    tpl = extract(enc.texts, min_support=min_support, text_hash=enc.hashes)
    if system_prompt is None:
        sys_index = np.zeros(n, dtype=np.int64)
        sys_text = pa.array([""], pa.large_string())
    else:
        sys_enc = encode_unique(system_prompt)
        sys_index = sys_enc.index
        sys_text = mask(sys_enc.texts)
    sys_hash = fast_hash(sys_text)
    sys_empty = np.asarray(pc.equal(pc.utf8_length(sys_text), 0))
    # distinct (system, prompt-template) pairs: their combined template and its family
    n_sys = len(sys_text)
    tpl_slot = np.searchsorted(tpl.template_keys, tpl.template_hash)  # per distinct prompt
    pair = tpl_slot[enc.index] * n_sys + sys_index
    pairs, pair_inverse = np.unique(pair, return_inverse=True)
    p_tpl = pairs // n_sys
    p_sys = pairs % n_sys
    p_key = tpl.template_keys[p_tpl]
    combined = np.where(sys_empty[p_sys], p_key, combine(sys_hash[p_sys], p_key))
    full_text = pc.binary_join_element_wise(
        sys_text.take(pa.array(p_sys)), tpl.template_text.take(pa.array(p_tpl)),
        pa.scalar("\n", pa.large_string()))
    uniq_c, first_c, inv_c = np.unique(combined, return_index=True, return_inverse=True)
    fam = families(full_text.take(pa.array(first_c)), uniq_c)
    table = pa.table({
        "template_hash": pa.array(combined[pair_inverse], pa.uint64()),
        "content_hash": pa.array(tpl.content_hash[enc.index], pa.uint64()),
        "family_id": pa.array(fam[inv_c][pair_inverse], pa.int64()),
    }, schema=FINGERPRINT_SCHEMA)
    return table, tpl.masked_hash
