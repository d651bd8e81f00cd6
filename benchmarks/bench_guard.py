"""Guard + policy decision latency (p50/p99), in-process and on Redis.

Builds a risk table and bad-feature index from real prompts (the vendored corpora): flagged
clusters sharing harvesting scaffolds, payment instruments and /24s, plus many cleared accounts;
then times ``Enforcer.assess`` (guard score + policy decision + audit record) on a mixed stream of
requests from cleared, flagged and brand-new accounts. Bar: p99 <= 1 ms in-process.

    .venv/bin/python benchmarks/bench_guard.py [--requests 20000] [--redis redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa

from antidistill.corpora import FILES, load
from antidistill.gateway.enforcer import ClientInfo, Enforcer
from antidistill.gateway.keys_file import Account
from antidistill.guard import AccountRisk, BadIndex, Guard, MemoryStore, RedisStore, RiskTable
from antidistill.policy import AuditLog, guard_config, load_policy

SCAFFOLDS = [
    "You are generating training data. Solve: {q}\nShow every reasoning step, then 'ANSWER:'.",
    "Grade the following response on a 1-10 rubric and justify each point in detail.\n{q}",
    "Rewrite the answer to the question below so it is neutral and safe. Question: {q}",
    "Act as an autonomous coding agent. Task: {q}\nThink step by step and output the full plan.",
]


def world(seed: int = 0) -> tuple[RiskTable, pa.Table, list[str]]:
    rng = random.Random(seed)
    prompts = [p.text for name in FILES for p in load(name)]
    rows: dict[str, AccountRisk] = {}
    log: list[dict[str, object]] = []
    for c in range(20):  # 20 clusters x 10 flagged accounts
        for a in range(10):
            acc = f"bad{c}_{a}"
            rows[acc] = AccountRisk(0.9, True, f"C{c}")
            for _ in range(20):
                log.append(
                    {
                        "account_id": acc,
                        "prompt": SCAFFOLDS[c % 4].format(q=rng.choice(prompts)),
                        "payment_fp": f"pf_c{c}_{a % 3}",
                        "ip": f"203.0.{c}.{a}",
                        "asn": 64500 + c,
                    }
                )
    for i in range(5000):  # cleared accounts with ordinary prompts
        acc = f"ok{i}"
        rows[acc] = AccountRisk(rng.random() * 0.3, False)
        for _ in range(4):
            log.append(
                {
                    "account_id": acc,
                    "prompt": rng.choice(prompts),
                    "payment_fp": f"pf_ok{i}",
                    "ip": f"198.{i % 200}.{i % 97}.{i % 250}",
                    "asn": 16509 if i % 2 else 7922,
                }
            )
    return RiskTable(rows), pa.Table.from_pylist(log), prompts


def run(
    store_name: str,
    store: object,
    n: int,
    risk: RiskTable,
    log: pa.Table,
    prompts: list[str],
    audit_path: Path,
) -> dict[str, float]:
    policy = load_policy()
    gcfg = guard_config(policy)
    index = BadIndex.build(
        risk, log, other_penalty=gcfg.other_penalty, max_others=gcfg.max_other_accounts
    )
    enf = Enforcer(
        policy,
        Guard(risk, index, store, gcfg),
        audit=AuditLog(audit_path),  # type: ignore[arg-type]
        secret="bench",
    )
    gc.collect()
    gc.freeze()  # as build_enforcer does for the gateway
    rng = random.Random(1)
    reqs = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.8:
            acc, prompt = f"ok{rng.randrange(5000)}", rng.choice(prompts)
        elif kind < 0.9:
            c = rng.randrange(20)
            acc, prompt = (
                f"bad{c}_{rng.randrange(10)}",
                SCAFFOLDS[c % 4].format(q=rng.choice(prompts)),
            )
        else:
            c = rng.randrange(20)
            acc, prompt = f"new{i}", SCAFFOLDS[c % 4].format(q=rng.choice(prompts))
        reqs.append((Account(acc, "individual"), prompt, ClientInfo(f"203.0.{i % 20}.9", 64500)))
    for acc, prompt, cl in reqs[:500]:  # warm-up
        enf.assess(acc, "w", prompt, None, "m", cl)
    lat = np.empty(n)
    cpu = np.empty(n)
    t_start = time.time()
    for i, (acc, prompt, cl) in enumerate(reqs):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        enf.assess(acc, f"r{i}", prompt, None, "m", cl, t_start + i * 0.001)
        lat[i] = time.perf_counter() - t0
        cpu[i] = time.thread_time() - c0
    enf.audit.close()
    ms, cms = lat * 1000, cpu * 1000
    # wall time includes preemption by other processes on a shared machine; CPU time is the
    # decision's own cost. Both are reported.
    return {
        "store": store_name,
        "requests": n,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "cpu_p50_ms": float(np.percentile(cms, 50)),
        "cpu_p99_ms": float(np.percentile(cms, 99)),
        "index_features": len(index),
        "loadavg_1m": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--redis", default=os.environ.get("ANTIDISTILL_REDIS_URL"))
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_guard.json"
    )
    args = ap.parse_args()
    risk, log, prompts = world()
    tmp = Path("/tmp") / f"bench_guard_{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    results = [run("memory", MemoryStore(), args.requests, risk, log, prompts, tmp / "a.jsonl")]
    if args.redis:
        results.append(
            run(
                "redis",
                RedisStore(args.redis, prefix=f"bench:{uuid.uuid4().hex}:"),
                args.requests,
                risk,
                log,
                prompts,
                tmp / "b.jsonl",
            )
        )
    out = {
        "benchmark": "guard_decision",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "results": results,
        "bar": {"p99_ms_in_process": 1.0},
        "pass_wall": results[0]["p99_ms"] <= 1.0,
        "pass_cpu": results[0]["cpu_p99_ms"] <= 1.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    for r in results:
        print(
            f"{r['store']:>6}: wall p50 {r['p50_ms']:.3f} ms  p90 {r['p90_ms']:.3f} ms  "
            f"p99 {r['p99_ms']:.3f} ms  max {r['max_ms']:.2f} ms | cpu p50 "
            f"{r['cpu_p50_ms']:.3f} ms  p99 {r['cpu_p99_ms']:.3f} ms  ({r['requests']} "
            f"decisions, load {r['loadavg_1m']:.1f})"
        )
    print(
        f"in-process p99 <= 1 ms: wall {'PASS' if out['pass_wall'] else 'FAIL'}, "
        f"cpu {'PASS' if out['pass_cpu'] else 'FAIL'} -> {args.out}"
    )


if __name__ == "__main__":
    main()
