"""Vectorised 64-bit hashing of Arrow strings: a stable one and a fast one.

- :func:`hash_strings` is fixed by this code (a polynomial hash over the UTF-8 bytes mod 2**64
  and the splitmix64 finaliser, in numpy): the shipped request classifier stores weights indexed
  by token hashes, so those must not depend on a library version or ``PYTHONHASHSEED``. It runs
  at about 30 MB/s, so it is used on small arrays (the vocabulary of a batch).
- :func:`fast_hash` is DuckDB's ``hash()`` (multi-threaded C++, ~20x faster) for the bulk work —
  deduplicating prompts, segment keys, template and content hashes — whose values only need to
  agree within one installation.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

_P = np.uint64(0x100000001B3)  # FNV prime as the polynomial base (odd, so invertible mod 2**64)
_LEN_SALT = np.uint64(0x9E3779B97F4A7C15)
_CHUNK_BYTES = 1 << 16  # small windows: temporaries stay in cache and the allocator reuses them

_powers_cache: np.ndarray = np.ones(1, dtype=np.uint64)


def powers(n: int) -> np.ndarray:
    """``_P**k mod 2**64`` for k < n (cached, grown by doubling)."""
    global _powers_cache
    if len(_powers_cache) < n:
        size = max(n, 2 * len(_powers_cache))
        out = np.empty(size, dtype=np.uint64)
        out[0] = 1
        with np.errstate(over="ignore"):
            # repeated squaring by blocks keeps this O(size) numpy work
            filled = 1
            while filled < size:
                step = min(filled, size - filled)
                block_mul = out[filled - 1] * _P
                out[filled : filled + step] = out[:step] * block_mul
                filled += step
        _powers_cache = out
    return _powers_cache[:n]


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads entropy so ``h % m`` and bit slices are uniform."""
    x = np.asarray(x, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Order-sensitive combination of two hash arrays (e.g. bigrams, system + prompt)."""
    with np.errstate(over="ignore"):
        return mix64(np.asarray(a, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
                     + np.asarray(b, dtype=np.uint64) + np.uint64(0x632BE59BD9B4E019))


def _plain_string_array(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())  # int64 offsets: no 2 GiB limit, one code path
    return arr


def hash_strings(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """uint64 hash of every string (null hashes like the empty string)."""
    arr = _plain_string_array(arr)
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64, count=arr.offset + n + 1)[arr.offset:]
    data = (np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None
            else np.zeros(0, dtype=np.uint8))
    if arr.null_count:
        valid = np.asarray(arr.is_valid())
        lengths = np.where(valid, np.diff(offsets), 0)
        starts = np.where(valid, offsets[:-1], 0)
    else:
        lengths = np.diff(offsets)
        starts = offsets[:-1]
    sums = np.zeros(n, dtype=np.uint64)
    # process strings in windows so temporaries stay bounded on huge prompts
    i = 0
    cum = np.cumsum(lengths)
    while i < n:
        base = cum[i - 1] if i else 0
        j = int(np.searchsorted(cum, base + _CHUNK_BYTES, side="right"))
        j = max(j, i + 1)
        _poly_sums(data, starts[i:j], lengths[i:j], sums[i:j])
        i = j
    with np.errstate(over="ignore"):
        return mix64(sums + lengths.astype(np.uint64) * _LEN_SALT + _LEN_SALT)


def _poly_sums(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, out: np.ndarray) -> None:
    total = int(lengths.sum())
    if total == 0:
        return
    nz = lengths > 0
    lens = lengths[nz]
    st = starts[nz]
    # index of every byte of the selected strings, concatenated
    rel_start = np.cumsum(lens) - lens
    owner = np.repeat(np.arange(len(lens)), lens)
    within = np.arange(total, dtype=np.int64) - rel_start[owner]
    src = st[owner] + within
    from_end = lens[owner] - 1 - within
    with np.errstate(over="ignore"):
        terms = data[src].astype(np.uint64) * powers(int(lens.max()))[from_end]
    out[nz] = np.add.reduceat(terms, rel_start)


_duck_lock = threading.Lock()
_duck: list[object] = []


def fast_hash(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """uint64 DuckDB ``hash()`` of every string; null hashes like the empty string.

    Chunked and ``string``/``large_string`` input is passed to DuckDB as is (no copy), so this
    is also the cheap way to deduplicate a whole column of rows.
    """
    import duckdb

    if isinstance(arr, pa.ChunkedArray) and pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    elif isinstance(arr, pa.Array):
        arr = _plain_string_array(arr) if pa.types.is_dictionary(arr.type) else arr
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    if len(arr) == 0:
        return np.zeros(0, dtype=np.uint64)
    tbl = pa.table({"s": arr})
    with _duck_lock:  # one in-memory connection, reused: connecting costs ~0.1 s
        if not _duck:
            _duck.append(duckdb.connect())
        con: duckdb.DuckDBPyConnection = _duck[0]  # type: ignore[assignment]
        con.register("_fast_hash_input", tbl)
        try:
            out = con.sql("SELECT hash(coalesce(s, '')) AS h FROM _fast_hash_input").fetchnumpy()
        finally:
            con.unregister("_fast_hash_input")
    return np.asarray(out["h"], dtype=np.uint64)


def unique(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(x, return_index=True, return_inverse=True)`` by one stable argsort.

    Same values (sorted uniques, first occurrences, inverse); numpy 2's hash-based path for
    integer arrays was measured several times slower here.
    """
    x = np.asarray(x)
    order = np.argsort(x, kind="stable")
    s = x[order]
    new = np.ones(len(s), dtype=bool)
    if len(s) > 1:
        new[1:] = s[1:] != s[:-1]
    inverse = np.empty(len(x), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return s[new], order[new], inverse


def unique_values(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (``np.unique(x)`` by sorting)."""
    s = np.sort(np.asarray(x))
    if len(s) < 2:
        return s
    return s[np.r_[True, s[1:] != s[:-1]]]


def hash_to_int64(h: np.ndarray) -> np.ndarray:
    """Reinterpret uint64 hashes as int64 (for columns and ids that must be signed)."""
    return np.asarray(h, dtype=np.uint64).view(np.int64)
