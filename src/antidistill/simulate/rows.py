"""Columnar exchange rows before they become Arrow: numpy arrays only, so nothing loops per row.

Populations emit :data:`Rows` (a dict of equal-length arrays, text as pool indices); the world
concatenates, sorts and finishes them (IPs, tokens, status) and the writer turns them into Arrow.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Rows(dict[str, np.ndarray]):
    """Equal-length columns; assigning a scalar broadcasts it, and known columns keep their
    dtype (so ``r["kind"] = TOOL`` or an int64 ``np.where`` result are both fine)."""

    def __setitem__(self, key: str, value: Any) -> None:
        arr = np.asarray(value)
        if key in FIELDS:
            arr = arr.astype(FIELDS[key][0], copy=False)
        if arr.ndim == 0 and dict.__contains__(self, "ts"):
            arr = np.full(dict.__getitem__(self, "ts").size, arr)
        dict.__setitem__(self, key, arr)

US = 1_000_000
HOUR = 3600 * US
DAY = 24 * HOUR

#: column -> (dtype, default)
FIELDS: dict[str, tuple[type, float]] = {
    "acct": (np.int32, 0),
    "ts": (np.int64, 0),
    "model": (np.int8, 0),
    "p0": (np.int32, 0),
    "p1": (np.int32, 0),
    "p2": (np.int32, 0),
    "p3": (np.int32, 0),
    "p4": (np.int32, 0),
    "sys": (np.int32, -1),
    "n_messages": (np.int16, 1),
    "n_tools": (np.int16, 0),
    "has_image": (np.bool_, 0),
    "kind": (np.int8, 0),
    "is_attack": (np.bool_, 0),
    "ip": (np.int32, -1),
    "max_tokens": (np.int32, -1),
    "temperature": (np.float32, np.nan),
    "hist": (np.int32, 0),
    "effort": (np.float32, 1.0),
    "status": (np.int8, 0),
}

PARTS = ("p0", "p1", "p2", "p3", "p4")
STATUSES = ("ok", "error", "refused", "blocked")
#: a population may pre-set this status (the request was rejected before reaching the model)
STATUS_BLOCKED = 3

# request kinds: drive token usage and refusals (not written to the log)
CHAT, FOLLOWUP, SAFETY, MATH, MATH_COT, CODING, CODE_EXPLAIN, TOOL, AGENT_STEP, COMPUTER, \
    RUBRIC, REWRITE, RECONSTRUCT, TEMPLATE, EVAL_MATH, EVAL_CODE, TOOL_PLAN = range(17)

#: kind -> (output median, output sigma, reasoning median, refusal probability)
KIND_PARAMS = np.array([
    (450, 0.8, 300, 0.01),    # CHAT
    (250, 0.9, 150, 0.0),     # FOLLOWUP
    (300, 0.8, 200, 0.12),    # SAFETY
    (350, 0.6, 900, 0.0),     # MATH
    (700, 0.5, 2500, 0.0),    # MATH_COT
    (600, 0.7, 1200, 0.0),    # CODING
    (1200, 0.5, 2500, 0.0),   # CODE_EXPLAIN
    (120, 0.6, 400, 0.0),     # TOOL
    (250, 0.8, 600, 0.0),     # AGENT_STEP
    (150, 0.5, 800, 0.0),     # COMPUTER
    (500, 0.5, 1500, 0.0),    # RUBRIC
    (450, 0.6, 600, 0.05),    # REWRITE
    (1500, 0.5, 3000, 0.0),   # RECONSTRUCT
    (40, 0.3, 0, 0.0),        # TEMPLATE
    (400, 0.5, 1500, 0.0),    # EVAL_MATH
    (200, 0.5, 800, 0.0),     # EVAL_CODE
    (800, 0.5, 2000, 0.0),    # TOOL_PLAN
])


def empty(n: int = 0) -> Rows:
    return Rows({k: np.full(n, d, dtype=t) for k, (t, d) in FIELDS.items()})


def concat(parts: list[Rows]) -> Rows:
    parts = [p for p in parts if p["ts"].size]
    if not parts:
        return empty()
    return Rows({k: np.concatenate([p[k] for p in parts]) for k in FIELDS})


def take(rows: Rows, idx: np.ndarray) -> Rows:
    return Rows({k: v[idx] for k, v in rows.items()})


def sessions(acct: np.ndarray, t0: np.ndarray, turns: np.ndarray, gap_s: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Expand sessions into turns: (acct, ts, turn index, session index) per exchange.

    Successive turns are separated by exponential think times (mean ``gap_s`` seconds) plus the
    time to read the previous answer, as a person or an agent loop would.
    """
    turns = np.maximum(turns.astype(np.int64), 1)
    n = int(turns.sum())
    sess = np.repeat(np.arange(turns.size), turns)
    starts = np.cumsum(turns) - turns
    turn = np.arange(n) - np.repeat(starts, turns)
    gaps = (rng.exponential(gap_s, n) + 2.0) * US
    gaps[turn == 0] = 0
    cs = np.cumsum(gaps)
    ts = np.repeat(t0, turns) + (cs - np.repeat(cs[starts], turns)).astype(np.int64)
    return np.repeat(acct, turns), ts, turn.astype(np.int32), sess
