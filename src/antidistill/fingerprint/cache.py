"""A bounded per-process cache of numpy rows keyed by uint64 hashes (sorted arrays, no dicts).

``detect`` calls the request stage once per chunk of a log, and popular segments, scaffolds and
system prompts recur in every chunk: caching their per-text work (classifier scores, MinHash
signatures) makes a run pay for each distinct text once. Keys are the in-process hashes of
:func:`antidistill.fingerprint.hashing.fast_hash`, so a cache never outlives the process. Memory
is bounded by ``max_entries`` rows: when an insert would exceed it, the cache restarts from the
latest batch (old entries are simply recomputed if they recur).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np


class HashCache:
    """Rows of a fixed width and dtype, looked up by uint64 key in bulk."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self.keys = np.zeros(0, dtype=np.uint64)
        self.values: np.ndarray | None = None
        self.lock = threading.Lock()

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask, rows for the found keys in order; None when nothing is cached)."""
        with self.lock:
            if len(self.keys) == 0 or self.values is None:
                return np.zeros(len(keys), dtype=bool), None
            pos = np.clip(np.searchsorted(self.keys, keys), 0, len(self.keys) - 1)
            found = self.keys[pos] == keys
            return found, self.values[pos[found]]

    def put(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Add rows (keys distinct; rows keep the dtype and width of the first call).

        Keys another thread stored meanwhile (both computed the same miss) are skipped.
        """
        if len(keys) == 0:
            return
        with self.lock:
            if len(self.keys):
                pos = np.clip(np.searchsorted(self.keys, keys), 0, len(self.keys) - 1)
                new = self.keys[pos] != keys
                if not new.all():
                    keys, values = keys[new], values[new]
                    if len(keys) == 0:
                        return
            if (self.values is None or len(self.keys) + len(keys) > self.max_entries
                    or self.values.shape[1:] != values.shape[1:]):
                all_keys, all_values = keys, values
            else:
                all_keys = np.concatenate([self.keys, keys])
                all_values = np.concatenate([self.values, values])
            order = np.argsort(all_keys, kind="stable")
            self.keys, self.values = all_keys[order], all_values[order]

    def clear(self) -> None:
        """Forget everything (tests, or a caller that switches models)."""
        with self.lock:
            self.keys = np.zeros(0, dtype=np.uint64)
            self.values = None


def cached_rows(cache: HashCache, keys: np.ndarray,
                compute: Callable[[np.ndarray], np.ndarray], width: tuple[int, ...],
                dtype: type) -> np.ndarray:
    """Rows for ``keys`` (distinct): cached ones looked up, the rest ``compute(miss_positions)``
    and stored."""
    out: np.ndarray = np.zeros((len(keys), *width), dtype=dtype)
    found, rows = cache.get(keys)
    if rows is not None and found.any():
        out[found] = rows
    miss = np.flatnonzero(~found)
    if len(miss):
        fresh = compute(miss)
        out[miss] = fresh
        cache.put(keys[miss], np.asarray(fresh, dtype=dtype))
    return out
