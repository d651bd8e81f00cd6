"""How specific a scaffold is: shared by a handful of accounts (a hydra) or by everybody.

A coding agent's system prompt, "thanks" and "continue" are shared by thousands of unrelated
accounts and must not link them; a campaign's private wrapper is shared only by its own accounts.
Specificity is a smooth, documented function of *how many distinct accounts* use a template:

    specificity = hill(n_accounts) * share_damping(n_accounts / N)
    hill(n)            = 1 / (1 + (n / HALF_ACCOUNTS) ** 2)
    share_damping(s)   = max(0, 1 - s / MAX_SHARE)        (only when N >= MIN_POPULATION)

``HALF_ACCOUNTS`` (default 100) is the account count at which a template is half as specific
(30 accounts -> 0.92, 100 -> 0.5, 300 -> 0.1, 1,000 -> 0.01); the share damping is the IDF-like
floor for small logs: a template used by half of all accounts or more (N = distinct accounts in
the input) carries no linking evidence whatever its absolute count. The trivial template (a bare
payload without any scaffold, see :data:`antidistill.fingerprint.TRIVIAL_TEMPLATE_HASH`) is 0.

When the template's fixed words are known (``template_words`` of
:func:`antidistill.fingerprint.fingerprint`), specificity is also scaled by

    information(w) = min(1, w / INFO_WORDS)

A rare template is not a shared tool's scaffold when its fixed text is a phrase people type
unprompted: two unrelated users who end every question with "Let's think step by step." (5
words) share a template that only they use, yet it says nothing about who they are; an
operation's wrapper of a dozen words or more keeps its full weight.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HALF_ACCOUNTS = 100.0
MAX_SHARE = 0.5
MIN_POPULATION = 20
#: fixed words at which a template's wording is distinctive enough to count in full
INFO_WORDS = 12.0

SPECIFICITY_SCHEMA = pa.schema([
    pa.field("template_hash", pa.uint64()),
    pa.field("n_accounts", pa.int64(), nullable=False),
    pa.field("n_requests", pa.int64(), nullable=False),
    pa.field("specificity", pa.float64(), nullable=False),
])


def specificity_of(n_accounts: np.ndarray, population: int, *,
                   half_accounts: float = HALF_ACCOUNTS, max_share: float = MAX_SHARE,
                   min_population: int = MIN_POPULATION) -> np.ndarray:
    """The formula above, for an array of account counts."""
    n = np.asarray(n_accounts, dtype=np.float64)
    spec = 1.0 / (1.0 + (n / half_accounts) ** 2)
    if population >= min_population:
        spec *= np.clip(1.0 - (n / population) / max_share, 0.0, 1.0)
    return spec


def information(words: np.ndarray, *, info_words: float = INFO_WORDS) -> np.ndarray:
    """How much a template's fixed wording can say, from its count of fixed words (0-1)."""
    return np.clip(np.asarray(words, dtype=np.float64) / info_words, 0.0, 1.0)


def template_specificity(template_hash: pa.Array | pa.ChunkedArray,
                         account_id: pa.Array | pa.ChunkedArray, *,
                         trivial: int | None = None,
                         half_accounts: float = HALF_ACCOUNTS, max_share: float = MAX_SHARE,
                         min_population: int = MIN_POPULATION) -> pa.Table:
    """One row per template: distinct accounts, requests and specificity in [0, 1].

    Rows whose account is null count as requests but not as accounts. ``trivial`` (default: the
    trivial template's hash) always gets specificity 0.
    """
    from antidistill.errors import InputError
    from antidistill.fingerprint import TRIVIAL_TEMPLATE_HASH

    if len(template_hash) != len(account_id):
        raise InputError(f"template_hash has {len(template_hash)} rows but account_id has "
                         f"{len(account_id)}", field="account_id")
    trivial = TRIVIAL_TEMPLATE_HASH if trivial is None else trivial
    th = template_hash.cast(pa.uint64()) if template_hash.type != pa.uint64() else template_hash
    acc = account_id.cast(pa.string()) if account_id.type != pa.string() else account_id
    table = pa.table({"template_hash": th, "account_id": acc})
    if table.num_rows == 0:
        return SPECIFICITY_SCHEMA.empty_table()
    population = int(pc.count_distinct(table["account_id"]).as_py())
    grouped = table.group_by("template_hash").aggregate(
        [("account_id", "count_distinct"), ("account_id", "count", pc.CountOptions("all"))])
    return specificity_table(grouped["template_hash"], grouped["account_id_count_distinct"],
                             grouped["account_id_count"], population, trivial=trivial,
                             half_accounts=half_accounts, max_share=max_share,
                             min_population=min_population)


def specificity_table(template_hash: pa.Array | pa.ChunkedArray,
                      n_accounts: pa.Array | pa.ChunkedArray | np.ndarray,
                      n_requests: pa.Array | pa.ChunkedArray | np.ndarray, population: int, *,
                      trivial: int | None = None, half_accounts: float = HALF_ACCOUNTS,
                      max_share: float = MAX_SHARE,
                      min_population: int = MIN_POPULATION,
                      words: np.ndarray | None = None) -> pa.Table:
    """:func:`template_specificity` from per-template counts aggregated elsewhere.

    Lets a caller that holds the log in a database (detection's DuckDB) group there and pass
    one row per template instead of one per request. ``words``, when given, holds each
    template's fixed words and scales its specificity by :func:`information` (NaN or negative:
    unknown, left unscaled).
    """
    from antidistill.fingerprint import TRIVIAL_TEMPLATE_HASH

    trivial = TRIVIAL_TEMPLATE_HASH if trivial is None else trivial
    keys = template_hash.cast(pa.uint64()) if template_hash.type != pa.uint64() else template_hash
    n_acc = np.asarray(n_accounts, dtype=np.int64)
    n_req = np.asarray(n_requests, dtype=np.int64)
    spec = specificity_of(n_acc, population, half_accounts=half_accounts, max_share=max_share,
                          min_population=min_population)
    is_trivial = np.asarray(pc.fill_null(pc.equal(keys, pa.scalar(trivial, pa.uint64())), False))
    spec[is_trivial] = 0.0
    if words is not None:
        w = np.asarray(words, dtype=np.float64)
        known = np.isfinite(w) & (w >= 0)
        spec[known] *= information(w[known])
    out = pa.table({"template_hash": keys, "n_accounts": n_acc, "n_requests": n_req,
                    "specificity": spec}, schema=SPECIFICITY_SCHEMA)
    return out.sort_by([("n_accounts", "descending"), ("template_hash", "ascending")])
