"""Duplicate request_id detection in bounded memory: 8 bytes per distinct id seen.

Ids are hashed to 64 bits (BLAKE2b) and kept in a sorted numpy array, merged from a small
pending buffer, so 16M distinct ids cost ~128 MiB (plus a transient copy while merging) instead
of the ~100 bytes per entry a Python set of strings would take. The chance that two different
ids collide is about n^2 / 2^65 (7e-6 for 16M ids); a collision quarantines a row as a
duplicate, it never loses it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_MERGE_AT = 1 << 20


def id_hash(request_id: str) -> int:
    """64-bit hash of a request id (stable across runs and machines)."""
    return int.from_bytes(
        hashlib.blake2b(request_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
        "little")


class Deduper:
    """Remembers ids in arrival order; ``check`` marks every id seen before (earlier batches or
    earlier in the same batch)."""

    def __init__(self) -> None:
        self._sorted = np.empty(0, dtype=np.uint64)
        self._pending: list[np.ndarray] = []
        self._n_pending = 0

    def __len__(self) -> int:
        return int(self._sorted.size) + self._n_pending

    @property
    def nbytes(self) -> int:
        return int(self._sorted.nbytes) + sum(int(p.nbytes) for p in self._pending)

    def check(self, ids: Sequence[str]) -> np.ndarray:
        """Boolean mask: True where the id is a duplicate; adds the first occurrences."""
        h = np.fromiter((id_hash(i) for i in ids), dtype=np.uint64, count=len(ids))
        dup = np.zeros(len(h), dtype=bool)
        if len(h) == 0:
            return dup
        _, first = np.unique(h, return_index=True)
        dup[:] = True
        dup[first] = False
        for arr in (self._sorted, *self._pending):
            dup |= _member(arr, h)
        new = np.unique(h[~dup])
        if new.size:
            self._pending.append(new)
            self._n_pending += int(new.size)
        if self._n_pending >= _MERGE_AT:
            self._sorted = np.union1d(self._sorted, np.concatenate(self._pending))
            self._pending, self._n_pending = [], 0
        return dup


def _member(sorted_arr: np.ndarray, h: np.ndarray) -> np.ndarray:
    if not sorted_arr.size:
        return np.zeros(len(h), dtype=bool)
    pos = np.searchsorted(sorted_arr, h)
    pos[pos == sorted_arr.size] = 0
    return np.asarray(sorted_arr[pos] == h)
