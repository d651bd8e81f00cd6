"""Per-exchange details every population shares: which IP it came from, usage, status."""

from __future__ import annotations

import numpy as np

from antidistill.simulate.accounts import IP_OFFICE, IP_PER_REQUEST, IP_STICKY_DAY
from antidistill.simulate.context import REASONING, Ctx
from antidistill.simulate.rows import DAY, HOUR, KIND_PARAMS, PARTS, STATUS_BLOCKED, Rows

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a bijection on uint64, so distinct inputs give distinct outputs."""
    z = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = (z + np.uint64(0x9E3779B97F4A7C15)) & _M64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
    return z ^ (z >> np.uint64(31))


def resolve_ips(ctx: Ctx, r: Rows, rng: np.random.Generator) -> None:
    """Fill ``ip`` (pool index) for rows whose population left it to the account's habits."""
    f = ctx.accounts.frozen
    todo = np.flatnonzero(r["ip"] < 0)
    if todo.size == 0:
        return
    a = r["acct"][todo]
    mode, base, k = f["ip_mode"][a], f["ip_base"][a], np.maximum(f["ip_k"][a], 1)
    ts = r["ts"][todo]
    u = rng.random(todo.size)
    # home users: mostly the first address (home), sometimes phone or elsewhere
    ip = base + np.minimum((u * u * k).astype(np.int64), k - 1)
    per_req = mode == IP_PER_REQUEST
    ip[per_req] = base[per_req] + (u[per_req] * k[per_req]).astype(np.int64)
    sticky = mode == IP_STICKY_DAY
    if sticky.any():
        day = (ts[sticky] - ctx.start_us) // DAY
        h = mix64(a[sticky].astype(np.uint64) * np.uint64(1_000_003) + day.astype(np.uint64)
                  + np.uint64(ctx.seed))
        ip[sticky] = base[sticky] + (h % k[sticky].astype(np.uint64)).astype(np.int64)
    office = (mode == IP_OFFICE) & (f["office_ip"][a] >= 0)
    if office.any():
        local = (ts[office] - ctx.start_us) / HOUR + f["tz"][a[office]]
        lh = np.floor(local).astype(np.int64)
        at_work = ((lh // 24) % 7 < 5) & (lh % 24 >= 8) & (lh % 24 < 18)
        idx = np.flatnonzero(office)[at_work]
        ip[idx] = f["office_ip"][a[idx]]
    r["ip"][todo] = ip.astype(np.int32)


def usage(ctx: Ctx, r: Rows, rng: np.random.Generator) -> None:
    """Tokens and status from what was asked, of which model, with which caps."""
    n = r["ts"].size
    lengths = ctx.pool.lengths
    assert lengths is not None
    chars = sum(lengths[r[p]].astype(np.int64) for p in PARTS)
    sys_chars = np.where(r["sys"] >= 0, lengths[np.maximum(r["sys"], 0)], 0)
    inp = (np.ceil((chars + sys_chars) / 3.8) + r["hist"] + 110 * r["n_tools"].astype(np.int64)
           + 1100 * r["has_image"] + 4 * r["n_messages"].astype(np.int64))
    kp = KIND_PARAMS[r["kind"]]
    out = rng.lognormal(np.log(kp[:, 0]), kp[:, 1])
    reasoning = np.where(REASONING[r["model"]] & (kp[:, 2] > 0),
                         rng.lognormal(np.log(np.maximum(kp[:, 2], 1) * r["effort"]), 0.7), 0.0)
    u = rng.random(n)
    refused = u < kp[:, 3]
    error = (u >= kp[:, 3]) & (u < kp[:, 3] + 0.004)
    out = np.where(refused, rng.lognormal(np.log(45), 0.3, n), out)
    reasoning = np.where(refused, reasoning * 0.1, reasoning)
    cap = r["max_tokens"]
    capped = cap > 0
    out = np.where(capped, np.minimum(out, cap), out)
    reasoning = np.where(capped, np.minimum(reasoning, np.maximum(cap - out, 0)), reasoning)
    blocked = r["status"] == STATUS_BLOCKED
    out = np.where(error | blocked, 0, out)
    reasoning = np.where(error | blocked, 0, reasoning)
    r["input_tokens"] = np.clip(inp, 1, 2**31 - 1).astype(np.int32)
    r["output_tokens"] = np.maximum(out, 0).astype(np.int32)
    r["reasoning_tokens"] = np.maximum(reasoning, 0).astype(np.int32)
    r["status"] = np.select([blocked, error, refused], [STATUS_BLOCKED, 1, 2], 0
                            ).astype(np.int8)
