"""Gateway overhead and sustained throughput against the local stub model server.

Three processes besides this one: the stub upstream, the gateway (``antidistill gateway``), and
a load generator (a separate process: an open-loop asyncio/httpx client at a fixed rate, or
``wrk`` when installed, for the sustained run).

1. Overhead: the same open-loop load at ``--rate`` (500 req/s) against the upstream directly,
   then through the gateway; bar: p50 difference <= 2 ms.
2. Sustained: ``--sustain-rate`` (1000 req/s) through the gateway for ``--duration`` seconds
   (300 by hand; a short smoke run by default) with zero errors, sampling the gateway's RSS;
   bar: no errors, achieved rate >= target, RSS flat (last sample within 10% + 20 MiB of the
   sample after warm-up).

    .venv/bin/python benchmarks/bench_gateway.py [--rate 500] [--phase-s 20]
        [--sustain-rate 1000] [--duration 300] [--state redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
PY = sys.executable
ACCOUNTS = 2000
CHAT = {
    "model": "stub-reasoner",
    "messages": [{"role": "user", "content": "Explain in two sentences why the sky is blue."}],
    "max_tokens": 256,
}


# -- load generator (runs as its own process) ---------------------------------------------
async def _load(url: str, key: str, rate: float, duration: float, conns: int) -> dict[str, object]:
    import httpx

    lat: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            headers = {"Authorization": f"Bearer {key}-{i % ACCOUNTS}"}
            try:
                r = await client.post(url + "/v1/chat/completions", json=CHAT, headers=headers)
                if r.status_code != 200:
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                    return
                lat.append(time.perf_counter() - t0)
            except Exception as exc:  # every failure counts as an error
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        n = int(rate * duration)
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            t = asyncio.create_task(one(i))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
    ms = np.array(lat) * 1000 if lat else np.array([float("nan")])
    return {
        "sent": n,
        "ok": len(lat),
        "errors": errors,
        "achieved_rps": len(lat) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def load_process(
    url: str, key: str, rate: float, duration: float, conns: int = 256
) -> dict[str, object]:
    out = subprocess.run(
        [PY, __file__, "_load", url, key, str(rate), str(duration), str(conns)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def wrk(url: str, key: str, duration: float, conns: int = 32) -> dict[str, object]:
    """Closed-loop load with ``wrk`` (C; far cheaper than a Python client on a small box)."""
    script = Path(tempfile.mkdtemp()) / "post.lua"
    # many accounts, like real traffic: one account at 1000 req/s is (rightly) throttled
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = [[{json.dumps(CHAT)}]]\n'
        f'wrk.headers["Content-Type"] = "application/json"\nlocal n = 0\n'
        f"request = function()\n  n = n + 1\n"
        f'  wrk.headers["Authorization"] = "Bearer {key}-" .. (n % {ACCOUNTS})\n'
        f"  return wrk.format()\nend\n"
    )
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(conns),
            "-d",
            f"{int(duration)}s",
            "--latency",
            "-s",
            str(script),
            url + "/v1/chat/completions",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    res: dict[str, object] = {"tool": "wrk", "raw": out}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Requests/sec:"):
            res["achieved_rps"] = float(s.split()[1])
        elif s.startswith("Non-2xx or 3xx responses:"):
            res["non_2xx"] = int(s.split()[-1])
        elif s.startswith("Socket errors:"):
            res["socket_errors"] = s
        elif "requests in" in s:
            res["requests"] = int(s.split()[0])
        elif s.startswith(("50%", "90%", "99%")):
            res[f"p{s[:2]}_ms"] = _ms(s.split()[1])
    res["errors"] = {
        "non_2xx": int(res.get("non_2xx", 0) or 0),
        "socket": 1 if "socket_errors" in res else 0,
    }
    res["ok"] = int(res.get("requests", 0) or 0) - int(res.get("non_2xx", 0) or 0)
    return res


def _ms(v: str) -> float:
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    return float(v)


# -- orchestration -------------------------------------------------------------------------
def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (load-independent cost, unlike wall latency)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_http(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def free_port() -> int:
    from antidistill.gateway.devserver import free_port as fp

    return fp()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--phase-s", type=float, default=20)
    ap.add_argument("--sustain-rate", type=float, default=1000)
    ap.add_argument("--duration", type=float, default=30, help="sustained run (300 by hand)")
    ap.add_argument("--state", default=None, help="guard state store (default: in-process)")
    ap.add_argument(
        "--wrk",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="drive load with wrk when installed (else the Python open-loop client)",
    )
    ap.add_argument("--overhead-conns", type=int, default=4)
    ap.add_argument("--http-client", default="aiohttp", choices=["httpx", "aiohttp"])
    ap.add_argument("--sustain-conns", type=int, default=32)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_gw_"))
    (tmp / "keys.yaml").write_text(
        json.dumps(
            {
                "accounts": {
                    f"acct{i}": {"account_type": "team", "verified": True} for i in range(ACCOUNTS)
                },
                "keys": {f"sk-bench-{i}": f"acct{i}" for i in range(ACCOUNTS)},
            }
        )
    )
    up_port, gw_port = free_port(), free_port()
    up_url, gw_url = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{gw_port}"
    procs = [subprocess.Popen([PY, "-m", "antidistill.gateway.devserver", "--port", str(up_port)])]
    gw_cmd = [
        PY,
        "-m",
        "antidistill",
        "gateway",
        "--upstream",
        up_url,
        "--keys",
        str(tmp / "keys.yaml"),
        "--log-dir",
        str(tmp / "logs"),
        "--port",
        str(gw_port),
    ]
    if args.state:
        gw_cmd += ["--state", args.state]
    gw_cmd += ["--http-client", args.http_client]
    env = {**os.environ, "ANTIDISTILL_SECRET": "bench-secret"}
    procs.append(subprocess.Popen(gw_cmd, env=env))
    try:
        wait_http(up_url + "/v1/models")
        wait_http(gw_url + "/healthz")
        gw_pid = procs[1].pid
        use_wrk = args.wrk and shutil.which("wrk") is not None

        def drive(url: str, key: str, rate: float, seconds: float, conns: int) -> dict[str, object]:
            if use_wrk:
                return wrk(url, key, seconds, conns)
            return load_process(url, key, rate, seconds)

        drive(up_url, "x", 200, 3, 4)  # warm-up both
        drive(gw_url, "sk-bench", 200, 3, 4)
        up_pid = procs[0].pid
        c0 = cpu_s(up_pid)
        direct = drive(up_url, "x", args.rate, args.phase_s, args.overhead_conns)
        up_cpu_direct = cpu_s(up_pid) - c0
        g0, u0 = cpu_s(gw_pid), cpu_s(up_pid)
        via = drive(gw_url, "sk-bench", args.rate, args.phase_s, args.overhead_conns)
        gw_cpu, up_cpu_via = cpu_s(gw_pid) - g0, cpu_s(up_pid) - u0
        n_direct, n_via = int(direct["ok"]), int(via["ok"])  # type: ignore[call-overload]
        cpu = {
            "upstream_ms_per_request": 1000 * up_cpu_direct / max(n_direct, 1),
            "gateway_ms_per_request": 1000 * gw_cpu / max(n_via, 1),
            "upstream_ms_per_request_via_gateway": 1000 * up_cpu_via / max(n_via, 1),
        }
        print(
            f"CPU per request: gateway {cpu['gateway_ms_per_request']:.2f} ms, upstream stub "
            f"{cpu['upstream_ms_per_request']:.2f} ms (1-core ceiling ~"
            f"{1000 / max(cpu['gateway_ms_per_request'], 1e-9):.0f} req/s per gateway process)"
        )
        overhead = {
            "rate": args.rate,
            "seconds": args.phase_s,
            "direct": direct,
            "gateway": via,
            "cpu": cpu,
            "p50_overhead_ms": float(via["p50_ms"]) - float(direct["p50_ms"]),  # type: ignore[arg-type]
            "p99_overhead_ms": float(via["p99_ms"]) - float(direct["p99_ms"]),
        }  # type: ignore[arg-type]
        print(
            f"overhead ({f'wrk -c {args.overhead_conns}' if use_wrk else 'open loop'}) "
            f"direct {float(direct['achieved_rps']):.0f} req/s, gateway "  # type: ignore[arg-type]
            f"{float(via['achieved_rps']):.0f} req/s; "  # type: ignore[arg-type]
            f"direct p50 {direct['p50_ms']:.2f} ms, "
            f"gateway p50 {via['p50_ms']:.2f} ms -> +{overhead['p50_overhead_ms']:.2f} ms "
            f"(errors direct {direct['errors']}, gateway {via['errors']})"
        )
        # sustained run; RSS sampled in a thread while the load process runs
        samples: list[tuple[float, float]] = []
        import threading

        stop = threading.Event()

        def sample() -> None:
            t0 = time.time()
            while not stop.is_set():
                samples.append((time.time() - t0, rss_mib(gw_pid)))
                stop.wait(2.0)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        sustained = drive(gw_url, "sk-bench", args.sustain_rate, args.duration, args.sustain_conns)
        stop.set()
        th.join()
        warm = samples[min(len(samples) - 1, max(1, len(samples) // 5))][1]
        last = samples[-1][1]
        flat = last <= warm * 1.10 + 20
        errs = sum(int(v) for v in dict(sustained["errors"]).values())  # type: ignore[call-overload]
        ok_rate = float(sustained["achieved_rps"]) >= 0.98 * args.sustain_rate  # type: ignore[arg-type]
        print(
            f"sustained {args.sustain_rate:.0f} req/s for {args.duration:.0f}s: achieved "
            f"{sustained['achieved_rps']:.0f} req/s, p50 {sustained['p50_ms']:.2f} ms, p99 "
            f"{sustained['p99_ms']:.2f} ms, errors {errs}, RSS {warm:.0f} -> {last:.0f} MiB"
        )
        logged = 0
        procs[1].terminate()
        procs[1].wait(timeout=60)
        import pyarrow.parquet as pq

        for f in (tmp / "logs").glob("day=*/part-*.parquet"):
            logged += pq.read_metadata(f).num_rows
        sent_ok = sum(int(x["ok"]) for x in (direct, via, sustained)) - int(direct["ok"])  # type: ignore[call-overload]
        out = {
            "benchmark": "gateway",
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "loadavg_1m_end": os.getloadavg()[0],
            "state": args.state or "memory",
            "http_client": args.http_client,
            "load_generator": "wrk" if use_wrk else "httpx",
            "overhead": overhead,
            "sustained": {
                **sustained,
                "target_rps": args.sustain_rate,
                "seconds": args.duration,
                "rss_mib": samples,
                "rss_flat": flat,
                "errors_total": errs,
            },
            "exchange_rows_logged": logged,
            "bars": {
                "p50_overhead_le_2ms": overhead["p50_overhead_ms"] <= 2.0,
                "sustained_rate": ok_rate,
                "zero_errors": errs == 0,
                "rss_flat": flat,
            },
        }
        print(
            f"exchange rows logged by the gateway: {logged} (>= {sent_ok} measured ok "
            f"requests + warm-up)"
        )
        if args.out is None:
            args.out = HERE / "results" / f"bench_gateway_{args.http_client}.json"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2))
        print(json.dumps(out["bars"]), "->", args.out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_load":
        u, k, r, d, c = sys.argv[2:7]
        print(json.dumps(asyncio.run(_load(u, k, float(r), float(d), int(c)))))
    else:
        main()
