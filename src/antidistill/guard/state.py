"""State stores for the online guard: one small interface, two backends.

The guard needs a handful of atomic operations per request (counters, a count-min sketch,
HyperLogLogs, a token bucket). It sends them as one batch so the Redis backend costs a single
round trip. ``MemoryStore`` keeps everything in process and snapshots to SQLite (at shutdown and
periodically, driven by the caller) so a restart does not forget who was hammering the API;
``RedisStore`` shares state between gateway instances. Both raise :class:`StateStoreError` when
unreachable; whether that fails open or closed is the guard's (configured) decision.

Ops are tuples, cheap to build on the hot path:
``("incr", key, amount, ttl_s)``, ``("get", key)``, ``("cms_add", sketch, item, amount, ttl_s)``,
``("cms_get", sketch, item)``, ``("pfadd", key, member, ttl_s)``, ``("pfcount", key)``.
Every op returns an int (the new/current value or estimate).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from antidistill.errors import StateStoreError
from antidistill.guard.sketches import CMS_DEPTH, CMS_WIDTH, CountMinSketch, Distinct, cms_indices

Op = tuple[Any, ...]


class StateStore(Protocol):
    """What the guard needs from a store."""

    remote: bool

    def execute(self, ops: Sequence[Op]) -> list[int]: ...

    def take_token(self, key: str, rate_per_s: float, burst: float, now: float) -> bool: ...

    def persist(self) -> None: ...

    def close(self) -> None: ...


class MemoryStore:
    """In-process store; ``path`` (SQLite) makes it survive restarts via :meth:`persist`."""

    remote = False

    def __init__(self, path: str | Path | None = None, *, sweep_every_s: float = 30.0):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._counters: dict[str, list[float]] = {}  # key -> [value, expires]
        self._cms: dict[str, tuple[CountMinSketch, float]] = {}
        self._hll: dict[str, tuple[Distinct, float]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last_ts)
        self._sweep_every = sweep_every_s
        self._next_sweep = time.time() + sweep_every_s
        if self.path and self.path.exists():
            self._load()

    # -- operations -------------------------------------------------------------------------
    def execute(self, ops: Sequence[Op]) -> list[int]:
        now = time.time()
        out: list[int] = []
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            for op in ops:
                out.append(self._one(op, now))
        return out

    def _one(self, op: Op, now: float) -> int:
        kind = op[0]
        if kind == "incr":
            _, key, amount, ttl = op
            cell = self._counters.get(key)
            if cell is None or cell[1] <= now:
                cell = self._counters[key] = [0.0, now + ttl]
            cell[0] += amount
            return int(cell[0])
        if kind == "get":
            cell = self._counters.get(op[1])
            return int(cell[0]) if cell is not None and cell[1] > now else 0
        if kind == "cms_add":
            _, name, item, amount, ttl = op
            entry = self._cms.get(name)
            if entry is None or entry[1] <= now:
                entry = self._cms[name] = (CountMinSketch(), now + ttl)
            return entry[0].add(item, amount)
        if kind == "cms_get":
            entry = self._cms.get(op[1])
            return entry[0].estimate(op[2]) if entry is not None and entry[1] > now else 0
        if kind == "pfadd":
            _, key, member, ttl = op
            hentry = self._hll.get(key)
            if hentry is None or hentry[1] <= now:
                hentry = self._hll[key] = (Distinct(), now + ttl)
            return hentry[0].add(member)
        if kind == "pfcount":
            hentry = self._hll.get(op[1])
            return hentry[0].count() if hentry is not None and hentry[1] > now else 0
        raise ValueError(f"unknown state op {kind!r}")

    def take_token(self, key: str, rate_per_s: float, burst: float, now: float) -> bool:
        with self._lock:
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - last) * rate_per_s)
            ok = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
            return ok

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self._sweep_every
        for k in [k for k, c in self._counters.items() if c[1] <= now]:
            del self._counters[k]
        for k in [k for k, e in self._cms.items() if e[1] <= now]:
            del self._cms[k]
        for k in [k for k, h in self._hll.items() if h[1] <= now]:
            del self._hll[k]
        stale = now - 3600
        for k in [k for k, b in self._buckets.items() if b[1] < stale]:
            del self._buckets[k]

    def size(self) -> dict[str, int]:
        """Entries per structure (for tests and the memory benchmark)."""
        return {
            "counters": len(self._counters),
            "cms": len(self._cms),
            "hll": len(self._hll),
            "buckets": len(self._buckets),
        }

    # -- persistence -----------------------------------------------------------------------
    def persist(self) -> None:
        """Snapshot to SQLite (atomic replace of the previous snapshot)."""
        if self.path is None:
            return
        now = time.time()
        with self._lock:
            rows: list[tuple[str, str, float, bytes | None, float]] = [
                (k, "counter", c[0], None, c[1]) for k, c in self._counters.items() if c[1] > now
            ]
            rows += [
                (k, "cms", 0.0, e[0].to_bytes(), e[1]) for k, e in self._cms.items() if e[1] > now
            ]
            rows += [
                (k, "hll", 0.0, h[0].to_bytes(), h[1]) for k, h in self._hll.items() if h[1] > now
            ]
            rows += [(k, "bucket", b[0], None, b[1]) for k, b in self._buckets.items()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = sqlite3.connect(self.path)
            with con:
                con.execute(
                    "CREATE TABLE IF NOT EXISTS state (key TEXT, kind TEXT, value REAL,"
                    " blob BLOB, expires REAL, PRIMARY KEY (kind, key))"
                )
                con.execute("DELETE FROM state")
                con.executemany("INSERT INTO state VALUES (?, ?, ?, ?, ?)", rows)
            con.close()
        except sqlite3.Error as exc:
            raise StateStoreError(f"{self.path}: cannot persist guard state: {exc}") from exc

    def _load(self) -> None:
        assert self.path is not None
        now = time.time()
        try:
            con = sqlite3.connect(self.path)
            rows = con.execute("SELECT key, kind, value, blob, expires FROM state").fetchall()
            con.close()
        except sqlite3.Error as exc:
            raise StateStoreError(f"{self.path}: cannot read guard state: {exc}") from exc
        for key, kind, value, blob, expires in rows:
            if kind == "bucket":
                self._buckets[key] = (value, expires)
            elif expires <= now:
                continue
            elif kind == "counter":
                self._counters[key] = [value, expires]
            elif kind == "cms":
                self._cms[key] = (CountMinSketch.from_bytes(blob), expires)
            elif kind == "hll":
                self._hll[key] = (Distinct.from_bytes(blob), expires)

    def close(self) -> None:
        self.persist()


_TOKEN_LUA = """
local t = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(t[1]) or burst
local last = tonumber(t[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local ok = 0
if tokens >= 1 then tokens = tokens - 1; ok = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return ok
"""


class RedisStore:
    """Redis backend (plain redis-server: counters, PFADD/PFCOUNT, a hash-field count-min)."""

    remote = True

    def __init__(self, url: str, *, timeout_s: float = 0.25, prefix: str = "antidistill:"):
        import redis

        self.url = url
        self._prefix = prefix
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._r = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._token = self._r.register_script(_TOKEN_LUA)

    def execute(self, ops: Sequence[Op]) -> list[int]:
        p = self._prefix
        pipe = self._r.pipeline(transaction=False)
        plan: list[tuple[str, int]] = []  # (how to read, number of replies)
        for op in ops:
            kind = op[0]
            if kind == "incr":
                pipe.incrby(p + op[1], int(op[2]))
                pipe.expire(p + op[1], int(op[3]))
                plan.append(("first", 2))
            elif kind == "get":
                pipe.get(p + op[1])
                plan.append(("first", 1))
            elif kind in ("cms_add", "cms_get"):
                key = p + "cms:" + op[1]
                fields = [
                    f"{r}:{c}" for r, c in enumerate(cms_indices(op[2], CMS_WIDTH, CMS_DEPTH))
                ]
                if kind == "cms_add":
                    for f in fields:
                        pipe.hincrby(key, f, int(op[3]))
                    pipe.expire(key, int(op[4]))
                    plan.append(("min", CMS_DEPTH + 1))
                else:
                    pipe.hmget(key, fields)
                    plan.append(("minlist", 1))
            elif kind == "pfadd":
                pipe.pfadd(p + op[1], op[2])
                pipe.pfcount(p + op[1])
                pipe.expire(p + op[1], int(op[3]))
                plan.append(("second", 3))
            elif kind == "pfcount":
                pipe.pfcount(p + op[1])
                plan.append(("first", 1))
            else:
                raise ValueError(f"unknown state op {kind!r}")
        try:
            replies = pipe.execute()
        except self._errors as exc:
            raise StateStoreError(f"redis {self.url}: {exc}".splitlines()[0]) from exc
        out: list[int] = []
        i = 0
        for how, n in plan:
            chunk = replies[i : i + n]
            i += n
            if how == "first":
                out.append(int(chunk[0] or 0))
            elif how == "second":
                out.append(int(chunk[1] or 0))
            elif how == "min":
                out.append(min(int(v) for v in chunk[:CMS_DEPTH]))
            else:
                out.append(min(int(v or 0) for v in chunk[0]))
        return out

    def take_token(self, key: str, rate_per_s: float, burst: float, now: float) -> bool:
        try:
            return bool(
                self._token(keys=[self._prefix + "tb:" + key], args=[rate_per_s, burst, now])
            )
        except self._errors as exc:
            raise StateStoreError(f"redis {self.url}: {exc}".splitlines()[0]) from exc

    def persist(self) -> None:
        """Redis persists itself."""

    def close(self) -> None:
        self._r.close()


def open_store(spec: str | None) -> StateStore:
    """``None``/``memory`` -> in-process; ``sqlite:PATH`` or ``*.db``/``*.sqlite`` -> in-process
    persisted to SQLite; ``redis://...`` -> Redis."""
    if not spec or spec == "memory":
        return MemoryStore()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(spec)
    if spec.startswith("sqlite:"):
        return MemoryStore(spec.removeprefix("sqlite:"))
    return MemoryStore(spec)
