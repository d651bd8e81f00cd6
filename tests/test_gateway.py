"""The gateway end to end over real HTTP on 127.0.0.1: stub model server <- gateway <- client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from antidistill.contracts import ACCOUNTS_SCHEMA
from antidistill.gateway.app import GatewayConfig, create_app, uvicorn_http
from antidistill.gateway.canary import detect_canary
from antidistill.gateway.devserver import ServerThread, make_upstream
from antidistill.policy import read_audit
from antidistill.schema import EXCHANGE_SCHEMA

SECRET = "test-master-secret"
ADMIN = "admin-token-123"
TEMPLATE = (
    "You are a data generator. Solve the following problem and write out your full "
    "reasoning before the answer. Problem: {q} Respond in the format ANSWER: <value>."
)


def write_world(d: Path) -> dict[str, Path]:
    """accounts.parquet, the exchange log it came from, and a keys file."""
    accounts = [
        ("bad1", 0.85, True, "C1", None),
        ("bad2", 0.8, True, "C1", None),
        ("bad3", 0.82, True, "C1", None),
        ("camp1", 0.97, True, "C2", "K1"),
        ("legit1", 0.05, False, None, None),
        ("legit2", 0.1, False, None, None),
        ("edu1", 0.1, False, None, None),
    ]
    t = pa.Table.from_pylist(
        [
            dict(
                zip(("account_id", "risk", "flagged", "cluster_id", "campaign_id"), a, strict=True)
            )
            | {"reasons": [], "harvest_share": None}
            for a in accounts
        ],
        schema=ACCOUNTS_SCHEMA,
    )
    pq.write_table(t, d / "accounts.parquet")
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for i in range(30):
        acc = ("bad1", "bad2", "bad3")[i % 3]
        rows.append(
            {
                "request_id": f"h{i}",
                "ts": now,
                "account_id": acc,
                "model": "m",
                "prompt": TEMPLATE.format(q=f"What is {i} plus {i * 7}?"),
                "payment_fp": "pf_shared_bad" if acc != "bad3" else "pf_b3",
                "ip": f"203.0.113.{i % 5}",
                "asn": 64500,
                "client_fp": "cf_script",
            }
        )
    for i in range(20):
        acc = ("legit1", "legit2")[i % 2]
        rows.append(
            {
                "request_id": f"l{i}",
                "ts": now,
                "account_id": acc,
                "model": "m",
                "prompt": f"thanks! can you also explain topic number {i} in plain words",
                "payment_fp": f"pf_{acc}",
                "ip": "198.51.100.7",
                "asn": 64500,
                "client_fp": "cf_sdk",
            }
        )
    cols = {n: [r.get(n) for r in rows] for n in EXCHANGE_SCHEMA.names}
    pq.write_table(pa.Table.from_pydict(cols, schema=EXCHANGE_SCHEMA), d / "history.parquet")
    (d / "keys.yaml").write_text(
        json.dumps(
            {
                "accounts": {
                    "legit1": {"account_type": "team", "verified": True},
                    "bad1": {"account_type": "individual", "payment_fp": "pf_shared_bad"},
                    "camp1": {"account_type": "individual"},
                    "newpay": {"account_type": "individual", "payment_fp": "pf_shared_bad"},
                    "newtpl": {"account_type": "individual"},
                    "edu1": {"account_type": "edu", "verified": True, "verification": "basic"},
                },
                "keys": {
                    "sk-legit1": "legit1",
                    "sk-bad1": "bad1",
                    "sk-camp1": "camp1",
                    "sk-newpay": "newpay",
                    "sk-newtpl": "newtpl",
                    "sk-edu1": "edu1",
                },
            }
        )
    )
    return {"risk": d / "accounts.parquet", "log": d / "history.parquet", "keys": d / "keys.yaml"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("world")
    return write_world(d)


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    with ServerThread(make_upstream()) as s:
        yield s


def start_gateway(
    upstream: ServerThread, world: dict[str, Path], log_dir: Path, **over: Any
) -> ServerThread:
    cfg = GatewayConfig(
        upstream=upstream.url,
        risk=world["risk"],
        index_logs=[world["log"]],
        keys=world["keys"],
        log_dir=log_dir,
        secret=SECRET,
        admin_token=ADMIN,
        flush_s=0.5,
        **over,
    )
    # served like `antidistill gateway` serves it: one socket write per response
    return ServerThread(create_app(cfg), http=uvicorn_http())


@pytest.fixture(scope="module")
def gw(
    upstream: ServerThread, world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerThread, Path]]:
    log_dir = tmp_path_factory.mktemp("gwlogs")
    with start_gateway(upstream, world, log_dir) as s:
        yield s, log_dir


def chat(url: str, key: str, prompt: str, *, stream: bool = False, **extra: Any) -> httpx.Response:
    body = {
        "model": "stub-reasoner",
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
        **extra,
    }
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def sse(resp: httpx.Response) -> tuple[list[dict[str, Any]], bool]:
    chunks, done = [], False
    for line in resp.text.splitlines():
        if line.startswith("data: "):
            if line == "data: [DONE]":
                done = True
            else:
                chunks.append(json.loads(line[6:]))
    return chunks, done


def joined(chunks: list[dict[str, Any]], field: str) -> str:
    return "".join(c["choices"][0]["delta"].get(field) or "" for c in chunks if c["choices"])


def test_unknown_key_gets_openai_401(gw: tuple[ServerThread, Path]) -> None:
    s, _ = gw
    r = chat(s.url, "sk-nope", "hello")
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "invalid_api_key" and err["type"] == "invalid_request_error"
    assert httpx.get(f"{s.url}/v1/models").status_code == 401
    m = httpx.get(f"{s.url}/v1/models", headers={"Authorization": "Bearer sk-legit1"})
    assert m.status_code == 200 and m.json()["data"][0]["id"] == "stub-reasoner"


def test_legit_account_gets_everything(
    gw: tuple[ServerThread, Path], upstream: ServerThread
) -> None:
    s, _ = gw
    direct = httpx.post(
        f"{upstream.url}/v1/chat/completions",
        json={
            "model": "stub-reasoner",
            "messages": [{"role": "user", "content": "how do tides work"}],
        },
    )
    r = chat(s.url, "sk-legit1", "how do tides work")
    assert r.status_code == 200
    msg = r.json()["choices"][0]["message"]
    assert msg == direct.json()["choices"][0]["message"]
    assert "<think>" in msg["content"] and msg["reasoning_content"]
    # streamed: reasoning deltas pass through; usage is not added for a client that did not ask
    rs = chat(s.url, "sk-legit1", "how do tides work", stream=True)
    chunks, done = sse(rs)
    assert done and joined(chunks, "reasoning_content") == msg["reasoning_content"]
    assert joined(chunks, "content") == msg["content"]
    assert not any("usage" in c for c in chunks)
    assert WATERMARK_NOT_SENT(upstream)


def WATERMARK_NOT_SENT(upstream: ServerThread) -> bool:
    _, headers, _ = upstream.server.config.app.state.requests[-1]
    return "x-antidistill-watermark-key-id" not in headers


def test_flagged_account_degraded_with_canary_and_watermark(
    gw: tuple[ServerThread, Path], upstream: ServerThread
) -> None:
    s, _ = gw
    r = chat(s.url, "sk-bad1", "Explain why the sky is blue in detail", max_tokens=4096)
    assert r.status_code == 200
    msg = r.json()["choices"][0]["message"]
    assert "reasoning_content" not in msg and "<think>" not in msg["content"]
    _, headers, body = upstream.server.config.app.state.requests[-1]
    assert body["max_tokens"] == 2048  # capped by the default policy's degrade-flagged rule
    assert len(headers["x-antidistill-watermark-key-id"]) == 16
    assert headers["x-antidistill-account"] == "bad1"
    assert headers["x-antidistill-watermark-epoch"] == "0"
    ranked = detect_canary(msg["content"], SECRET, ["legit1", "bad1", "bad2", "camp1"])
    assert ranked[0].account_id == "bad1" and ranked[0].matches == ranked[0].sites >= 5
    assert ranked[1].matches < ranked[1].sites
    # streaming yields the same protected text, split tags and reasoning deltas included
    rs = chat(
        s.url, "sk-bad1", "Explain why the sky is blue in detail", stream=True, max_tokens=4096
    )
    chunks, done = sse(rs)
    assert done and joined(chunks, "content") == msg["content"]
    assert joined(chunks, "reasoning_content") == ""


def test_campaign_blocked_and_new_hydra_accounts_caught_first_request(
    gw: tuple[ServerThread, Path],
) -> None:
    s, _ = gw
    r = chat(s.url, "sk-camp1", "hello")
    assert r.status_code == 403 and r.json()["error"]["code"] == "policy_blocked"
    # a fresh account paying with a flagged cluster's card: first request degraded
    r = chat(s.url, "sk-newpay", "Tell me about volcanoes")
    msg = r.json()["choices"][0]["message"]
    assert msg["reasoning_content"].startswith("[reasoning summarized]")
    assert "skip a step" not in msg["reasoning_content"]
    # a fresh account sending the cluster's harvesting template: first request degraded
    r = chat(s.url, "sk-newtpl", TEMPLATE.format(q="What is 1234 minus 77?"))
    msg = r.json()["choices"][0]["message"]
    assert msg["reasoning_content"].startswith("[reasoning summarized]")
    assert "<think>[reasoning summarized]" in msg["content"]
    # ...but a generic prompt shared with legit accounts does not implicate anyone
    r = chat(s.url, "sk-legit1", "thanks! can you also explain topic number 3 in plain words")
    assert r.json()["choices"][0]["message"]["reasoning_content"].startswith("Let me work")


def test_completions_endpoint(gw: tuple[ServerThread, Path]) -> None:
    s, _ = gw
    h = {"Authorization": "Bearer sk-bad1"}
    r = httpx.post(f"{s.url}/v1/completions", json={"model": "m", "prompt": "Say hi"}, headers=h)
    text = r.json()["choices"][0]["text"]
    assert r.status_code == 200 and "<think>" not in text and "Here is the answer" in text
    rs = httpx.post(
        f"{s.url}/v1/completions",
        json={"model": "m", "prompt": "Say hi", "stream": True},
        headers=h,
    )
    chunks, done = sse(rs)
    assert done and "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == text


def test_admin_manual_action_metrics_and_exactly_once_log(
    upstream: ServerThread, world: dict[str, Path], tmp_path: Path
) -> None:
    log_dir = tmp_path / "logs"
    sent: list[str] = []
    with start_gateway(upstream, world, log_dir) as s:
        adm = {"Authorization": f"Bearer {ADMIN}"}
        assert httpx.get(f"{s.url}/admin/decisions").status_code == 401
        r = httpx.post(
            f"{s.url}/admin/actions",
            headers=adm,
            json={
                "account_id": "legit1",
                "who": "alice@tns",
                "reason": "ticket 42",
                "action": {"kind": "block", "message": "Suspended pending review."},
            },
        )
        assert r.status_code == 200

        def send(i: int, **extra: Any) -> httpx.Response:
            """Chat as legit1 under request id rid-<i> (odd i streams), so the log is checkable."""
            rid = f"rid-{i}"
            sent.append(rid)
            return httpx.post(
                f"{s.url}/v1/chat/completions",
                headers={"Authorization": "Bearer sk-legit1", "X-Request-Id": rid},
                json={
                    "model": "m",
                    "messages": [{"role": "user", "content": "hi"}],
                    "stream": i % 2 == 1,
                    **extra,
                },
            )

        for i in range(4):
            r = send(i)
            assert r.status_code == 403 and "pending review" in r.json()["error"]["message"]
        assert (
            httpx.delete(
                f"{s.url}/admin/actions/legit1", params={"who": "bob@tns"}, headers=adm
            ).status_code
            == 200
        )
        for i in range(4, 10):
            r = send(i, stream_options={"include_usage": i == 5})
            assert r.status_code == 200
            if i == 5:
                assert sse(r)[0][-1]["usage"]["completion_tokens"] > 0
        dec = httpx.get(
            f"{s.url}/admin/decisions", headers=adm, params={"account": "legit1"}
        ).json()["decisions"]
        assert [d["event"] for d in dec].count("manual_apply") == 1
        assert any(d.get("who") == "bob@tns" and d["event"] == "manual_lift" for d in dec)
        assert (
            sum(
                1
                for d in dec
                if d.get("rule", "").startswith("manual:") and d["event"] == "decision"
            )
            == 4
        )
        prom = httpx.get(f"{s.url}/metrics").text
        assert 'antidistill_decisions_total{action="block",dry_run="false"} 4.0' in prom
        assert "antidistill_request_latency_seconds_bucket" in prom
        assert httpx.get(f"{s.url}/healthz").json()["status"] == "ok"
    files = sorted(log_dir.glob("day=*/part-*.parquet"))
    assert files
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert table.schema.equals(EXCHANGE_SCHEMA, check_metadata=False)
    ids = table.column("request_id").to_pylist()
    assert sorted(ids) == sorted(sent)  # every exchange, once
    by_id = {r["request_id"]: r for r in table.to_pylist()}
    assert all(by_id[f"rid-{i}"]["status"] == "blocked" for i in range(4))
    assert all(by_id[f"rid-{i}"]["status"] == "ok" for i in range(4, 10))
    assert all(by_id[f"rid-{i}"]["output_tokens"] > 0 for i in range(4, 10))
    assert all(by_id[f"rid-{i}"]["reasoning_tokens"] > 0 for i in range(4, 10))
    audit = read_audit(log_dir / "audit.jsonl", account="legit1")
    assert audit[0]["event"] == "manual_apply" and audit[0]["who"] == "alice@tns"
    try:
        from antidistill.ingest import read_exchanges  # the detection side's reader
    except ImportError:
        return
    assert sum(b.num_rows for b in read_exchanges([log_dir])) == len(sent)


def test_throttle_dry_run_and_fail_closed(
    upstream: ServerThread, world: dict[str, Path], tmp_path: Path
) -> None:
    pol = tmp_path / "p.yaml"
    pol.write_text("""
version: 1
on_store_error: block
rules:
  - name: throttle-everyone
    when: {verified: true}
    action: {throttle: {rate_per_min: 6, burst: 2}}
  - name: degrade-flagged
    when: {flagged: true}
    action: {degrade: {reasoning: strip}}
""")
    with start_gateway(upstream, world, tmp_path / "a", policy=pol) as s:
        codes = [chat(s.url, "sk-legit1", "hi").status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and codes[2:] == [429, 429]
        assert chat(s.url, "sk-legit1", "hi").json()["error"]["type"] == "rate_limit_error"
    with start_gateway(upstream, world, tmp_path / "b", policy=pol, dry_run=True) as s:
        r = chat(s.url, "sk-bad1", "hi")
        assert r.json()["choices"][0]["message"]["reasoning_content"]  # dry run: untouched
    time.sleep(0.1)
    rec = [r for r in read_audit(tmp_path / "b" / "audit.jsonl") if r["account_id"] == "bad1"]
    assert rec[-1]["action"] == "degrade" and rec[-1]["enforced"] == "allow" and rec[-1]["dry_run"]
    closed = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with start_gateway(upstream, world, tmp_path / "c", policy=pol, state=closed) as s:
        r = chat(s.url, "sk-bad1", "hi")
        assert r.status_code == 503 and r.json()["error"]["type"] == "permission_error"
    pol.write_text(pol.read_text().replace("on_store_error: block", "on_store_error: allow"))
    with start_gateway(upstream, world, tmp_path / "d", policy=pol, state=closed) as s:
        r = chat(s.url, "sk-bad1", "hi")
        assert r.status_code == 200
        assert "reasoning_content" not in r.json()["choices"][0]["message"]  # batch risk still on


@pytest.mark.parametrize("client", ["aiohttp", "httptools", "auto"])
def test_fast_upstream_clients_behave_the_same(
    upstream: ServerThread, world: dict[str, Path], tmp_path: Path, client: str
) -> None:
    pytest.importorskip("aiohttp", reason="aiohttp not installed (extra gateway-fast)")
    pytest.importorskip("httptools", reason="httptools not installed (extra gateway-fast)")
    with start_gateway(upstream, world, tmp_path / "l", http_client=client) as s:
        legit = chat(s.url, "sk-legit1", "how do tides work").json()["choices"][0]["message"]
        assert "<think>" in legit["content"] and legit["reasoning_content"]
        msg = chat(s.url, "sk-bad1", "Explain why the sky is blue").json()["choices"][0]["message"]
        assert "reasoning_content" not in msg and "<think>" not in msg["content"]
        chunks, done = sse(chat(s.url, "sk-bad1", "Explain why the sky is blue", stream=True))
        assert done and joined(chunks, "content") == msg["content"]
        chunks, done = sse(chat(s.url, "sk-legit1", "how do tides work", stream=True))
        assert joined(chunks, "reasoning_content") == legit["reasoning_content"]
    with ServerThread(
        create_app(
            GatewayConfig(upstream="http://127.0.0.1:1", keys=world["keys"], http_client=client)
        )
    ) as s:
        r = chat(s.url, "sk-legit1", "hi")
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_error"
