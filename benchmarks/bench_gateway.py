"""Gateway overhead and sustained throughput against the local stub model server.

Three processes besides this one: the stub upstream, the gateway (``antidistill gateway``), and
a load generator (its own process: an open-loop client on raw asyncio streams that sends request
i at ``start + i/rate`` and times it from then, or ``wrk`` closed loop on request).

1. Overhead: the same open-loop load at ``--rate`` (500 req/s) against the upstream directly
   and through the gateway, alternating in ``--rounds`` rounds (ABBA order, so load that drifts
   on the shared box hits both sides); bar: median over rounds of the p50 difference <= 2 ms.
2. Sustained: ``--sustain-rate`` (1000 req/s, open loop) through the gateway for ``--duration``
   seconds (300 by hand; a short smoke run by default), sampling the gateway's RSS; bar: zero
   errors, achieved rate >= 98% of target, RSS flat (last sample within 10% + 20 MiB of the
   sample after warm-up).

Each phase records CPU ms per request of the gateway and the stub, and the load average: the
box is shared, so latency figures are only comparable within one run.

    .venv/bin/python benchmarks/bench_gateway.py [--rate 500] [--phase-s 20]
        [--sustain-rate 1000] [--duration 300] [--sustain-load paced|wrk]
        [--state redis://127.0.0.1:6379/15]
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
import threading
import time
from collections.abc import Callable
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
def _requests(url: str, key: str) -> tuple[str, int, list[bytes]]:
    """Host, port and one pre-built HTTP/1.1 request per account (the generator's cost is tiny)."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    body = json.dumps(CHAT).encode()
    reqs = [
        (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
            f"Authorization: Bearer {key}-{i}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for i in range(ACCOUNTS)
    ]
    return str(u.hostname), int(u.port or 80), reqs


async def _load(url: str, key: str, rate: float, duration: float, conns: int) -> dict[str, object]:
    """Open loop: request i is due at ``start + i / rate`` whatever earlier ones are doing.

    Latency counts from the due time, not the send time, so a stalled server cannot hide its
    queueing (no coordinated omission). Keep-alive connections are reused; at most ``conns``
    are open, beyond that requests wait for one (and that wait is part of their latency).
    Raw asyncio streams with pre-built requests, so the generator costs ~0.1 ms CPU a request
    and does not starve the gateway and stub it shares the cores with.
    """
    host, port, reqs = _requests(url, key)
    lat: list[float] = []
    errors: dict[str, int] = {}
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    opened = 0
    max_lag = 0.0

    async def conn() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        nonlocal opened
        if idle.empty() and opened < conns:
            opened += 1
            try:
                return await asyncio.open_connection(host, port)
            except BaseException:
                opened -= 1
                raise
        return await idle.get()

    async def one(i: int, due: float) -> None:
        nonlocal opened
        rw = None
        try:
            rw = await conn()
            reader, writer = rw
            writer.write(reqs[i % ACCOUNTS])
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            status = int(head[9:12])
            low = head.lower()
            at = low.find(b"content-length:")
            if at < 0:
                raise ValueError("response without Content-Length")
            n = int(low[at + 15 : low.index(b"\r\n", at)])
            await asyncio.wait_for(reader.readexactly(n), 30)
            idle.put_nowait(rw)
            rw = None
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
                return
            lat.append(time.perf_counter() - due)
        except Exception as exc:  # every failure counts as an error
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        finally:
            if rw is not None:  # broken connection: drop it
                rw[1].close()
                opened -= 1

    for _ in range(min(conns, 16)):  # a few warm connections, like a client's pool
        idle.put_nowait(await asyncio.open_connection(host, port))
        opened += 1
    tasks: set[asyncio.Task[None]] = set()
    n = int(rate * duration)
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            max_lag = max(max_lag, -delay)
        t = asyncio.create_task(one(i, due))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait()[1].close()
    ms = np.array(lat) * 1000 if lat else np.array([float("nan")])
    return {
        "tool": "open-loop (raw asyncio, latency from due time)",
        "target_rps": rate,
        "sent": n,
        "ok": len(lat),
        "errors": errors,
        "achieved_rps": len(lat) / wall,
        "connections_used": opened,
        "max_schedule_lag_ms": 1000 * max_lag,
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
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


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process (load-independent cost, unlike latency)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


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


def _phase(
    name: str,
    run: Callable[[], dict[str, object]],
    pids: dict[str, int],
) -> dict[str, object]:
    """Run one load phase; add CPU ms per ok request of each process and the load average."""
    load0 = os.getloadavg()[0]
    c0 = {k: cpu_split(p) for k, p in pids.items()}
    res = run()
    c1 = {k: cpu_split(p) for k, p in pids.items()}
    ok = max(int(res["ok"]), 1)  # type: ignore[call-overload]
    res["cpu_ms_per_request"] = {
        k: {
            "user": round(1000 * (c1[k][0] - c0[k][0]) / ok, 3),
            "sys": round(1000 * (c1[k][1] - c0[k][1]) / ok, 3),
            "total": round(1000 * (sum(c1[k]) - sum(c0[k])) / ok, 3),
        }
        for k in pids
    }
    res["loadavg_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    print(
        f"{name}: {float(res['achieved_rps']):.0f} req/s ok, p50 {float(res['p50_ms']):.2f} ms, "  # type: ignore[arg-type]
        f"p99 {float(res['p99_ms']):.2f} ms, errors {res['errors']}, CPU ms/request "  # type: ignore[arg-type]
        + ", ".join(f"{k} {v['total']}" for k, v in res["cpu_ms_per_request"].items())  # type: ignore[index]
        + f", load {res['loadavg_1m']}",
        flush=True,
    )
    return res


def _overhead(
    rate: float, phase_s: float, rounds: int, up_url: str, gw_url: str, up_pid: int, gw_pid: int
) -> dict[str, object]:
    """Direct and via-gateway phases alternating ABBA, so background load that drifts during
    the run hits both sides alike; the reported overhead is the median over rounds."""
    per_round: list[dict[str, object]] = []
    deltas: dict[str, list[float]] = {"p50": [], "p90": [], "p99": []}
    for r in range(max(1, rounds)):
        sides = ["direct", "gateway"] if r % 2 == 0 else ["gateway", "direct"]
        got: dict[str, dict[str, object]] = {}
        for side in sides:
            if side == "direct":
                got[side] = _phase(
                    f"round {r + 1} direct  @{rate:.0f}/s",
                    lambda: load_process(up_url, "x", rate, phase_s),
                    {"upstream": up_pid},
                )
            else:
                got[side] = _phase(
                    f"round {r + 1} gateway @{rate:.0f}/s",
                    lambda: load_process(gw_url, "sk-bench", rate, phase_s),
                    {"gateway": gw_pid, "upstream": up_pid},
                )
        row: dict[str, object] = {"direct": got["direct"], "gateway": got["gateway"]}
        for q, values in deltas.items():
            d = _f(got["gateway"][f"{q}_ms"]) - _f(got["direct"][f"{q}_ms"])
            values.append(d)
            row[f"{q}_overhead_ms"] = d
        per_round.append(row)
    out: dict[str, object] = {
        "rate": rate,
        "seconds_per_side_and_round": phase_s,
        "rounds": per_round,
        "p50_overhead_ms_per_round": [round(v, 3) for v in deltas["p50"]],
    }
    for q, values in deltas.items():
        out[f"{q}_overhead_ms"] = float(np.median(values))
    return out


def _f(v: object) -> float:
    return float(v)  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=500, help="open-loop rate of the overhead phase")
    ap.add_argument("--phase-s", type=float, default=20, help="seconds per round and side")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="overhead rounds, direct and gateway alternating (ABBA), median reported",
    )
    ap.add_argument("--sustain-rate", type=float, default=1000)
    ap.add_argument("--duration", type=float, default=30, help="sustained run (300 by hand)")
    ap.add_argument(
        "--sustain-load",
        choices=["paced", "wrk"],
        default="paced",
        help="paced: open loop at --sustain-rate; wrk: closed loop, as fast as it goes",
    )
    ap.add_argument("--sustain-conns", type=int, default=64)
    ap.add_argument("--state", default=None, help="guard state store (default: in-process)")
    ap.add_argument("--http-client", default="httptools", choices=["httpx", "aiohttp", "httptools"])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "bench_gateway.json")
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
        "--http-client",
        args.http_client,
    ]
    if args.state:
        gw_cmd += ["--state", args.state]
    env = {**os.environ, "ANTIDISTILL_SECRET": "bench-secret"}
    procs.append(subprocess.Popen(gw_cmd, env=env))
    try:
        wait_http(up_url + "/v1/models")
        wait_http(gw_url + "/healthz")
        up_pid, gw_pid = procs[0].pid, procs[1].pid
        load_process(up_url, "x", 200, 3, 32)  # warm-up both
        load_process(gw_url, "sk-bench", 200, 3, 32)
        overhead = _overhead(args.rate, args.phase_s, args.rounds, up_url, gw_url, up_pid, gw_pid)
        pids = {"gateway": gw_pid, "upstream": up_pid}
        print(
            f"overhead at {args.rate:.0f} req/s open loop, median of {args.rounds} rounds: "
            f"+{overhead['p50_overhead_ms']:.2f} ms p50",
            flush=True,
        )
        # sustained run; RSS sampled in a thread while the load process runs
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            t0 = time.time()
            while not stop.is_set():
                samples.append((round(time.time() - t0, 1), round(rss_mib(gw_pid), 1)))
                stop.wait(5.0)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        if args.sustain_load == "wrk":
            if shutil.which("wrk") is None:
                raise SystemExit("--sustain-load wrk needs wrk on PATH")
            sustained = _phase(
                f"sustained wrk -c {args.sustain_conns}",
                lambda: wrk(gw_url, "sk-bench", args.duration, args.sustain_conns),
                pids,
            )
        else:
            sustained = _phase(
                f"sustained @{args.sustain_rate:.0f}/s for {args.duration:.0f}s",
                lambda: load_process(
                    gw_url, "sk-bench", args.sustain_rate, args.duration, args.sustain_conns
                ),
                pids,
            )
        stop.set()
        th.join()
        samples.append((samples[-1][0] + 0.1, round(rss_mib(gw_pid), 1)))
        warm = samples[min(len(samples) - 1, max(1, len(samples) // 5))][1]
        last = samples[-1][1]
        flat = last <= warm * 1.10 + 20
        errs = sum(int(v) for v in dict(sustained["errors"]).values())  # type: ignore[call-overload]
        ok_rate = float(sustained["achieved_rps"]) >= 0.98 * args.sustain_rate  # type: ignore[arg-type]
        print(
            f"sustained: RSS {warm:.0f} -> {last:.0f} MiB (max "
            f"{max(v for _, v in samples):.0f}), errors {errs}",
            flush=True,
        )
        procs[1].terminate()
        procs[1].wait(timeout=60)
        import pyarrow.parquet as pq

        logged = sum(
            pq.read_metadata(f).num_rows for f in (tmp / "logs").glob("day=*/part-*.parquet")
        )
        via = [r["gateway"] for r in overhead["rounds"]]  # type: ignore[attr-defined]
        sent = sum(int(x["sent"]) for x in [*via, sustained] if "sent" in x)  # type: ignore[call-overload]
        out = {
            "benchmark": "gateway",
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "loadavg_end": list(os.getloadavg()),
            "state": args.state or "memory",
            "http_client": args.http_client,
            "overhead": overhead,
            "sustained": {
                **sustained,
                "load": args.sustain_load,
                "target_rps": args.sustain_rate,
                "seconds": args.duration,
                "rss_mib": samples,
                "rss_flat": flat,
                "errors_total": errs,
            },
            "exchange_rows_logged": logged,
            "exchange_rows_expected_min": sent,
            "bars": {
                "p50_overhead_le_2ms": _f(overhead["p50_overhead_ms"]) <= 2.0,
                "sustained_rate": ok_rate,
                "zero_errors": errs == 0,
                "rss_flat": flat,
            },
        }
        print(f"exchange rows logged by the gateway: {logged} (sent in measured phases: {sent})")
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
        try:
            from uvloop import run as arun  # cheaper event loop for the generator
        except ImportError:
            arun = asyncio.run
        print(json.dumps(arun(_load(u, k, float(r), float(d), int(c)))))
    else:
        main()
