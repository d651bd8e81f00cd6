"""Bounded-memory streaming counters: a count-min sketch and a HyperLogLog wrapper.

No maintained count-min library fits (RedisBloom is a server module; the PyPI ones are
unmaintained), so this is the textbook sketch in numpy: ``depth`` rows of ``width`` counters,
indices from one blake2b digest by double hashing. The same :func:`cms_indices` drives the Redis
store's hash-field sketch, so both stores agree on estimates. Distinct counts use
``datasketch.HyperLogLog`` in-process and native ``PFADD``/``PFCOUNT`` in Redis.
"""

from __future__ import annotations

import hashlib

import numpy as np
from datasketch import HyperLogLog

CMS_WIDTH = 2048
CMS_DEPTH = 4
HLL_P = 8


def cms_indices(item: str, width: int = CMS_WIDTH, depth: int = CMS_DEPTH) -> list[int]:
    """Column of ``item`` in each row (Kirsch-Mitzenmacher double hashing)."""
    d = hashlib.blake2b(item.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    a = int.from_bytes(d[:8], "little")
    b = int.from_bytes(d[8:], "little") | 1
    return [(a + i * b) % width for i in range(depth)]


class CountMinSketch:
    """Over-estimating frequency counter: error <= e/width * total with prob 1 - e^-depth."""

    __slots__ = ("_flat", "depth", "table", "width")

    def __init__(
        self, width: int = CMS_WIDTH, depth: int = CMS_DEPTH, table: np.ndarray | None = None
    ):
        self.width, self.depth = width, depth
        tab = table if table is not None else np.zeros((depth, width), dtype=np.int64)
        self.table = np.ascontiguousarray(tab, dtype=np.int64)
        # a flat view of the same memory: indexing it yields plain ints, several times cheaper
        # than numpy scalar access on the gateway's per-request path
        self._flat = self.table.reshape(-1).data

    def _cells(self, item: str) -> list[int]:
        w = self.width
        return [r * w + c for r, c in enumerate(cms_indices(item, w, self.depth))]

    def add(self, item: str, count: int = 1) -> int:
        """Add ``count`` and return the new estimate (conservative update: only raise minima)."""
        flat = self._flat
        cells = self._cells(item)
        est = min([flat[i] for i in cells]) + count
        for i in cells:
            if flat[i] < est:
                flat[i] = est
        return int(est)

    def estimate(self, item: str) -> int:
        flat = self._flat
        return int(min([flat[i] for i in self._cells(item)]))

    def to_bytes(self) -> bytes:
        return self.table.astype("<i8").tobytes()

    @classmethod
    def from_bytes(
        cls, raw: bytes, width: int = CMS_WIDTH, depth: int = CMS_DEPTH
    ) -> CountMinSketch:
        return cls(width, depth, np.frombuffer(raw, dtype="<i8").reshape(depth, width).copy())


class Distinct:
    """Distinct counter: exact while small (most accounts use few scaffolds an hour), then a
    datasketch HyperLogLog (bounded memory). Serialises to bytes for the SQLite snapshot."""

    __slots__ = ("hll", "members")

    EXACT_LIMIT = 64

    def __init__(self, reg: np.ndarray | None = None, members: set[str] | None = None):
        self.hll: HyperLogLog | None = HyperLogLog(p=HLL_P, reg=reg) if reg is not None else None
        self.members: set[str] | None = (
            (members if members is not None else set()) if self.hll is None else None
        )

    def add(self, item: str) -> int:
        if self.members is not None:
            self.members.add(item)
            if len(self.members) <= self.EXACT_LIMIT:
                return len(self.members)
            self.hll = HyperLogLog(p=HLL_P)
            for m in self.members:
                self.hll.update(m.encode("utf-8", "surrogatepass"))
            self.members = None
            return round(self.hll.count())
        assert self.hll is not None
        self.hll.update(item.encode("utf-8", "surrogatepass"))
        return round(self.hll.count())

    def count(self) -> int:
        if self.members is not None:
            return len(self.members)
        assert self.hll is not None
        return round(self.hll.count())

    def to_bytes(self) -> bytes:
        if self.members is not None:
            return b"S" + "\x1f".join(sorted(self.members)).encode("utf-8", "surrogatepass")
        assert self.hll is not None
        return b"H" + self.hll.reg.astype(np.int8).tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Distinct:
        if raw[:1] == b"S":
            body = raw[1:].decode("utf-8", "surrogatepass")
            return cls(members=set(body.split("\x1f")) if body else set())
        return cls(reg=np.frombuffer(raw[1:], dtype=np.int8).copy())
