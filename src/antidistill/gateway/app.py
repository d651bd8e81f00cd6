"""The OpenAI-compatible gateway: authenticate, decide, forward, protect, log.

Every proxied exchange is appended to the exchange log exactly once (in a ``finally``), blocked
ones included; the upstream is reached through one pooled ``httpx.AsyncClient``. Countermeasures
touch only degraded accounts' responses; everyone else's bytes stream through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from antidistill.errors import AntidistillError
from antidistill.gateway.canary import StreamingCanary, apply_canary
from antidistill.gateway.enforcer import ClientInfo, Enforcer, Verdict, client_fingerprint
from antidistill.gateway.exchange_log import ExchangeLogger
from antidistill.gateway.keys_file import Account, KeysFile
from antidistill.gateway.metrics import Metrics
from antidistill.gateway.reasoning import REASONING_FIELDS, StreamReasoning, protect_message
from antidistill.gateway.upstream import UpstreamError, make_upstream_client
from antidistill.guard import BadIndex, Guard, RiskTable, open_store
from antidistill.keys import watermark_headers
from antidistill.policy import AuditLog, ManualActions, action_from_dict, guard_config, load_policy
from antidistill.policy.audit import iso, read_audit

log = logging.getLogger(__name__)


@dataclass
class GatewayConfig:
    upstream: str
    risk: Path | None = None
    clusters: Path | None = None
    index_logs: list[Path] = field(default_factory=list)
    policy: Path | None = None
    keys: Path | None = None
    log_dir: Path | None = None
    audit: Path | None = None
    actions: Path | None = None
    state: str | None = None
    secret: str | None = None
    admin_token: str | None = None
    upstream_key: str | None = None
    dry_run: bool = False
    trust_forwarded: bool = False
    flush_s: float = 5.0
    flush_rows: int = 5000
    persist_s: float = 60.0
    timeout_s: float = 600.0
    max_connections: int = 512
    http_client: str = "httpx"  # aiohttp | httptools (least CPU) | auto; see upstream.py


def openai_error(status: int, message: str, code: str, etype: str | None = None) -> JSONResponse:
    etype = etype or ("invalid_request_error" if status < 500 else "server_error")
    return JSONResponse(
        {"error": {"message": message, "type": etype, "param": None, "code": code}},
        status_code=status,
    )


def build_enforcer(cfg: GatewayConfig, metrics: Metrics | None = None) -> Enforcer:
    """Policy, risk table, index, state store, audit log and manual actions from ``cfg``."""
    policy = load_policy(cfg.policy)
    risk = RiskTable.load(cfg.risk, cfg.clusters) if cfg.risk else RiskTable()
    gcfg = guard_config(policy)
    index = BadIndex.from_paths(
        risk, cfg.index_logs, other_penalty=gcfg.other_penalty, max_others=gcfg.max_other_accounts
    )
    guard = Guard(risk, index, open_store(cfg.state), gcfg)
    gc.collect()
    gc.freeze()  # the long-lived tables leave the collector's scans: no multi-ms GC pauses
    audit_path = cfg.audit or (cfg.log_dir / "audit.jsonl" if cfg.log_dir else None)
    actions_path = cfg.actions or (cfg.log_dir / "manual_actions.json" if cfg.log_dir else None)
    return Enforcer(
        policy,
        guard,
        audit=AuditLog(audit_path),
        manual=ManualActions(actions_path),
        secret=cfg.secret,
        dry_run=cfg.dry_run,
        metrics=metrics,
    )


# -- request parsing ----------------------------------------------------------------------
def _text(content: Any) -> tuple[str, bool]:
    """Text of a message content (string or parts) and whether it carried an image."""
    if isinstance(content, str):
        return content, False
    if isinstance(content, list):
        texts, image = [], False
        for part in content:
            if isinstance(part, dict):
                if part.get("type") == "text":
                    texts.append(str(part.get("text", "")))
                elif "image" in str(part.get("type", "")):
                    image = True
        return "\n".join(texts), image
    return "", False


@dataclass
class Parsed:
    prompt: str
    system_prompt: str | None
    n_messages: int
    n_tools: int
    has_image: bool


def parse_chat(body: dict[str, Any]) -> Parsed:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise ValueError("'messages' must be a non-empty list")
    system: list[str] = []
    prompt, image = "", False
    for m in msgs:
        if not isinstance(m, dict):
            raise ValueError("each message must be an object")
        text, img = _text(m.get("content"))
        image = image or img
        if m.get("role") in ("system", "developer"):
            system.append(text)
        elif m.get("role") == "user":
            prompt = text
    tools = body.get("tools") or body.get("functions") or []
    return Parsed(prompt, "\n".join(system) or None, len(msgs), len(tools), image)


def parse_completion(body: dict[str, Any]) -> Parsed:
    p = body.get("prompt")
    if isinstance(p, list):
        p = "\n".join(str(x) for x in p)
    if not isinstance(p, str):
        raise ValueError("'prompt' must be a string or a list of strings")
    return Parsed(p, None, 1, 0, False)


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _float(v: Any) -> float | None:
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


# -- the app ------------------------------------------------------------------------------
@dataclass(slots=True)
class RawRequest:
    """What the proxy needs of a request: lower-cased headers (first value wins), peer, body."""

    headers: dict[str, str]
    client_host: str | None
    body: bytes

    @classmethod
    async def read(cls, scope: Scope, receive: Receive) -> RawRequest:
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        client = scope.get("client")
        return cls(headers, client[0] if client else None, b"".join(chunks))


class GatewayApp(FastAPI):
    """FastAPI for the admin/health routes; the proxied POSTs bypass its routing and middleware.

    Per-request CPU is what caps a gateway process at ~1000 req/s on a small machine, and the
    generic request machinery cost as much as the guard and policy together (profiled with
    py-spy; see ``benchmarks/bench_gateway.py``).
    """

    fast_routes: dict[str, Callable[[RawRequest], Awaitable[Response]]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.fast_routes.get(scope["path"])
            if handler is not None:
                await _serve(handler, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def _serve(
    handler: Callable[[RawRequest], Awaitable[Response]],
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    started = False

    async def send_tracked(msg: Message) -> None:
        nonlocal started
        started = True
        await send(msg)

    try:
        req = await RawRequest.read(scope, receive)
        response = await handler(req)
        await response(scope, receive, send_tracked)
    except ClientDisconnect:
        return
    except Exception:
        log.exception("unhandled error on %s", scope["path"])
        if started:
            raise
        await openai_error(500, "Internal gateway error.", "internal_error")(scope, receive, send)


def uvicorn_http() -> Any:
    """uvicorn's ``http=`` for serving the gateway: one socket write per response
    (:mod:`antidistill.gateway.serve`) when httptools is installed (extra gateway-fast)."""
    try:
        from antidistill.gateway.serve import CoalescingHttpToolsProtocol
    except ImportError:
        return "auto"
    return CoalescingHttpToolsProtocol


def create_app(
    cfg: GatewayConfig, *, enforcer: Enforcer | None = None, keys: KeysFile | None = None
) -> GatewayApp:
    metrics = enforcer.metrics if enforcer is not None else Metrics()
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        base = cfg.upstream.rstrip("/")
        base = base.removesuffix("/v1")
        headers = {"Authorization": f"Bearer {cfg.upstream_key}"} if cfg.upstream_key else {}
        state["client"] = make_upstream_client(
            cfg.http_client, base, headers, cfg.timeout_s, cfg.max_connections
        )
        task = asyncio.create_task(_background())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await state["client"].aclose()
            await asyncio.to_thread(_flush_all, True)

    app = GatewayApp(title="antidistill gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.enf = enforcer or build_enforcer(cfg, metrics)
    app.state.keys = keys or (KeysFile.load(cfg.keys) if cfg.keys else KeysFile({}, {}))
    app.state.logger = ExchangeLogger(cfg.log_dir, flush_rows=cfg.flush_rows)
    app.state.metrics = metrics

    def enf() -> Enforcer:
        e: Enforcer = app.state.enf
        return e

    def _flush_all(final: bool = False) -> None:
        try:
            app.state.logger.flush()
        except Exception:
            log.exception("exchange log flush failed; rows kept for the next attempt")
        enf().audit.flush()
        metrics.log_pending.set(app.state.logger.pending())
        if final:
            enf().audit.close()
            with contextlib.suppress(AntidistillError):
                enf().guard.store.close()

    async def _background() -> None:
        last_persist = time.monotonic()
        while True:
            await asyncio.sleep(min(cfg.flush_s, 1.0) if cfg.flush_s < 1 else cfg.flush_s)
            await asyncio.to_thread(_flush_all)
            if time.monotonic() - last_persist >= cfg.persist_s:
                last_persist = time.monotonic()
                with contextlib.suppress(AntidistillError):
                    await asyncio.to_thread(enf().guard.store.persist)

    def _log(row: dict[str, Any]) -> None:
        if app.state.logger.append(row):
            asyncio.get_running_loop().run_in_executor(None, _flush_all)

    def _account(headers: Any) -> Account | None:
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("api-key")
        acct: Account | None = app.state.keys.resolve(key)
        return acct

    def _client(req: RawRequest) -> ClientInfo:
        ip = req.client_host
        asn = None
        if cfg.trust_forwarded:
            fwd = req.headers.get("x-forwarded-for")
            if fwd:
                ip = fwd.split(",")[0].strip()
            asn = _int(req.headers.get("x-antidistill-asn"))
        return ClientInfo(ip, asn, client_fingerprint(req.headers))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        e = enf()
        return {
            "status": "ok",
            "policy": e.policy.source,
            "risk_accounts": len(e.guard.risk),
            "index_features": len(e.guard.index),
            "dry_run": e.evaluator.force_dry_run or e.policy.dry_run,
            "log_pending": app.state.logger.pending(),
        }

    @app.get("/metrics")
    async def prom() -> Response:
        metrics.log_pending.set(app.state.logger.pending())
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        if _account(request.headers) is None:
            return _unauthorized()
        try:
            status, content, ctype = await state["client"].get("/v1/models")
        except UpstreamError as exc:
            return openai_error(502, f"Upstream unavailable: {exc}", "upstream_error")
        return Response(content, status_code=status, media_type=ctype)

    # The two proxied endpoints are served by ``GatewayApp.__call__`` straight from the ASGI
    # scope (no routing, middleware stack or Request object: a third of the per-request CPU).
    async def chat(req: RawRequest) -> Response:
        return await _proxy(req, "/v1/chat/completions", chat=True)

    async def completions(req: RawRequest) -> Response:
        return await _proxy(req, "/v1/completions", chat=False)

    app.fast_routes = {"/v1/chat/completions": chat, "/v1/completions": completions}

    def _unauthorized() -> JSONResponse:
        return openai_error(
            401, "Incorrect API key provided. Check the key and try again.", "invalid_api_key"
        )

    async def _proxy(request: RawRequest, path: str, *, chat: bool) -> Response:
        t0 = time.perf_counter()
        endpoint = path.rsplit("/", 1)[-1]
        account = _account(request.headers)
        if account is None:
            metrics.child(metrics.requests, endpoint, "unauthorized").inc()
            return _unauthorized()
        try:
            body = orjson.loads(request.body)
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            parsed = parse_chat(body) if chat else parse_completion(body)
        except ValueError as exc:
            metrics.child(metrics.requests, endpoint, "bad_request").inc()
            return openai_error(400, f"Invalid request: {exc}", "invalid_request")
        ts = datetime.now(UTC)
        request_id = request.headers.get("x-request-id") or f"req_{os.urandom(16).hex()}"
        client = _client(request)
        model = str(body.get("model") or "")
        e = enf()
        args = (
            account,
            request_id,
            parsed.prompt,
            parsed.system_prompt,
            model,
            client,
            ts.timestamp(),
        )
        verdict = (
            await asyncio.to_thread(e.assess, *args) if e.guard.store.remote else e.assess(*args)
        )
        row = {
            "request_id": request_id,
            "ts": ts,
            "account_id": account.account_id,
            "org_id": account.org_id,
            "account_type": account.account_type,
            "account_created_at": account.created_at,
            "verified": account.verified,
            "pathway": account.pathway,
            "payment_fp": account.payment_fp,
            "ip": client.ip,
            "asn": client.asn,
            "client_fp": client.client_fp,
            "model": model,
            "system_prompt": parsed.system_prompt,
            "prompt": parsed.prompt,
            "n_messages": parsed.n_messages,
            "n_tools": parsed.n_tools,
            "has_image": parsed.has_image,
            "max_tokens": _int(body.get("max_completion_tokens", body.get("max_tokens"))),
            "temperature": _float(body.get("temperature")),
            "status": "ok",
        }
        if verdict.denied is not None:
            status, code, message = verdict.denied
            row["status"] = "blocked"
            _log(row)
            metrics.child(metrics.requests, endpoint, "blocked").inc()
            metrics.child(metrics.latency, endpoint).observe(time.perf_counter() - t0)
            etype = "rate_limit_error" if status == 429 else "permission_error"
            return openai_error(status, message, code, etype)
        deg = verdict.degrade
        fwd_headers = {"X-Request-Id": request_id}
        if deg is not None:
            if deg.max_tokens is not None:
                key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
                asked = _int(body.get(key))
                body[key] = deg.max_tokens if asked is None else min(asked, deg.max_tokens)
            if verdict.watermark_key_id:
                fwd_headers.update(watermark_headers(account.account_id, verdict.watermark_key_id))
        if body.get("stream"):
            return await _stream(path, body, fwd_headers, verdict, row, endpoint, t0, chat)
        try:
            status, content, ctype = await state["client"].post(path, body, fwd_headers)
        except UpstreamError as exc:
            log.warning("upstream error on %s (request %s): %s", path, request_id, exc)
            row["status"] = "error"
            _log(row)
            metrics.child(metrics.requests, endpoint, "upstream_error").inc()
            return openai_error(502, f"Upstream unavailable: {exc}", "upstream_error")
        try:
            if status != 200:
                row["status"] = "error"
                metrics.child(metrics.requests, endpoint, "upstream_error").inc()
                return Response(content, status_code=status, media_type=ctype)
            data = orjson.loads(content)
            _usage(row, data.get("usage"))
            metrics.child(metrics.requests, endpoint, "ok").inc()
            if deg is not None:
                _protect_response(data, verdict, chat)
                return Response(orjson.dumps(data), media_type="application/json")
            return Response(content, media_type="application/json")
        except ValueError:
            log.warning("upstream sent invalid JSON on %s (request %s)", path, request_id)
            row["status"] = "error"
            metrics.child(metrics.requests, endpoint, "upstream_error").inc()
            return openai_error(502, "Upstream returned invalid JSON", "upstream_error")
        finally:
            _log(row)
            metrics.child(metrics.latency, endpoint).observe(time.perf_counter() - t0)

    async def _stream(
        path: str,
        body: dict[str, Any],
        fwd_headers: dict[str, str],
        v: Verdict,
        row: dict[str, Any],
        endpoint: str,
        t0: float,
        chat: bool,
    ) -> Response:
        opts = body.get("stream_options") or {}
        client_wants_usage = bool(opts.get("include_usage"))
        body["stream_options"] = {**opts, "include_usage": True}
        try:
            r = await state["client"].stream(path, body, fwd_headers)
        except UpstreamError as exc:
            log.warning("upstream error on %s (request %s): %s", path, row["request_id"], exc)
            row["status"] = "error"
            _log(row)
            metrics.child(metrics.requests, endpoint, "upstream_error").inc()
            return openai_error(502, f"Upstream unavailable: {exc}", "upstream_error")
        if r.status != 200:
            content = await r.read()
            await r.aclose()
            row["status"] = "error"
            _log(row)
            metrics.child(metrics.requests, endpoint, "upstream_error").inc()
            return Response(content, status_code=r.status, media_type=r.content_type)
        transform = StreamTransform(v, chat, client_wants_usage)

        async def gen() -> AsyncIterator[bytes]:
            status = "error"
            try:
                async for line in r.lines():
                    for out in transform.line(line):
                        yield out
                for out in transform.finish():
                    yield out
                status = "ok"
            finally:
                await r.aclose()
                row["status"] = status
                _usage(row, transform.usage)
                _log(row)
                metrics.child(metrics.requests, endpoint, status).inc()
                metrics.child(metrics.latency, endpoint).observe(time.perf_counter() - t0)

        return StreamingResponse(
            gen(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    # -- admin ------------------------------------------------------------------------------
    def _admin(request: Request) -> JSONResponse | None:
        if not cfg.admin_token:
            return openai_error(
                403,
                "Admin API disabled: start the gateway with an admin token.",
                "admin_disabled",
                "permission_error",
            )
        auth = request.headers.get("authorization", "")
        tok = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(tok.encode(), cfg.admin_token.encode()):
            return openai_error(
                401, "Invalid admin token.", "invalid_admin_token", "authentication_error"
            )
        return None

    @app.get("/admin/decisions")
    async def decisions(request: Request, account: str | None = None, limit: int = 100) -> Response:
        if (denied := _admin(request)) is not None:
            return denied
        e = enf()
        e.audit.flush()
        if e.audit.path is not None and e.audit.path.exists():
            recs = await asyncio.to_thread(read_audit, e.audit.path, account=account, limit=limit)
        else:
            recs = [r for r in e.audit.recent if account is None or r.get("account_id") == account]
            recs = recs[-limit:]
        return JSONResponse({"decisions": recs})

    @app.get("/admin/actions")
    async def list_actions(request: Request) -> Response:
        if (denied := _admin(request)) is not None:
            return denied
        return JSONResponse({"actions": [m.as_dict() for m in enf().manual.active()]})

    @app.post("/admin/actions")
    async def apply_action(request: Request) -> Response:
        if (denied := _admin(request)) is not None:
            return denied
        try:
            d = await request.json()
            account = str(d["account_id"])
            who = str(d["who"])
            action = action_from_dict(d["action"], "request body: action")
        except (ValueError, KeyError, TypeError, AntidistillError) as exc:
            return openai_error(400, f"Invalid manual action: {exc}", "invalid_request")
        e = enf()
        m = e.manual.apply(
            account, action, who=who, reason=str(d.get("reason", "")), ttl_s=_float(d.get("ttl_s"))
        )
        e.audit.write(
            {
                "ts": iso(m.ts),
                "event": "manual_apply",
                "account_id": account,
                "action": action.kind,
                "params": action.params(),
                "who": who,
                "reason": m.reason,
                "expires_at": m.expires_at,
                "rule": f"manual:{m.id}",
            }
        )
        return JSONResponse({"action": m.as_dict()})

    @app.delete("/admin/actions/{account_id}")
    async def lift_action(request: Request, account_id: str, who: str) -> Response:
        if (denied := _admin(request)) is not None:
            return denied
        e = enf()
        m = e.manual.lift(account_id)
        if m is None:
            return openai_error(404, f"No manual action on {account_id}", "not_found")
        e.audit.write(
            {
                "event": "manual_lift",
                "account_id": account_id,
                "action": m.action.kind,
                "who": who,
                "rule": f"manual:{m.id}",
            }
        )
        return JSONResponse({"lifted": m.as_dict()})

    @app.post("/admin/reload")
    async def reload(request: Request) -> Response:
        if (denied := _admin(request)) is not None:
            return denied
        e = enf()
        try:
            policy = await asyncio.to_thread(load_policy, cfg.policy)
            risk = (
                await asyncio.to_thread(RiskTable.load, cfg.risk, cfg.clusters)
                if cfg.risk
                else RiskTable()
            )
            gcfg = guard_config(policy)
            index = await asyncio.to_thread(
                BadIndex.from_paths,
                risk,
                cfg.index_logs,
                other_penalty=gcfg.other_penalty,
                max_others=gcfg.max_other_accounts,
            )
        except AntidistillError as exc:
            return openai_error(
                400, f"Reload failed, still running the old tables: {exc}", "reload_failed"
            )
        e.evaluator.policy = policy
        e.guard.set_risk(risk, index)
        e.audit.write(
            {
                "event": "reload",
                "account_id": None,
                "policy": policy.source,
                "risk_accounts": len(risk),
                "index_features": len(index),
            }
        )
        return JSONResponse(
            {"policy": policy.source, "risk_accounts": len(risk), "index_features": len(index)}
        )

    return app


def _usage(row: dict[str, Any], usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    row["input_tokens"] = _int(usage.get("prompt_tokens"))
    row["output_tokens"] = _int(usage.get("completion_tokens"))
    details = usage.get("completion_tokens_details") or {}
    row["reasoning_tokens"] = (
        _int(details.get("reasoning_tokens")) if isinstance(details, dict) else None
    )


def _protect_response(data: dict[str, Any], v: Verdict, chat: bool) -> None:
    deg = v.degrade
    assert deg is not None
    for choice in data.get("choices") or []:
        target = choice.get("message") if chat else choice
        if not isinstance(target, dict):
            continue
        protect_message(target, deg.reasoning, deg.summary_chars)
        field_ = "content" if chat else "text"
        if v.canary_key is not None and isinstance(target.get(field_), str):
            target[field_], _ = apply_canary(target[field_], v.canary_key)


class StreamTransform:
    """Rewrites an upstream SSE stream line by line for one verdict."""

    def __init__(self, v: Verdict, chat: bool, client_wants_usage: bool):
        self.v = v
        self.chat = chat
        self.client_wants_usage = client_wants_usage
        self.deg = v.degrade
        self.usage: dict[str, Any] | None = None
        self._choices: dict[int, tuple[StreamReasoning, StreamingCanary | None]] = {}
        self._last: dict[str, Any] | None = None  # template for a trailing chunk
        self._done = False

    def _state(self, idx: int) -> tuple[StreamReasoning, StreamingCanary | None]:
        st = self._choices.get(idx)
        if st is None:
            assert self.deg is not None
            can = StreamingCanary(self.v.canary_key) if self.v.canary_key is not None else None
            st = self._choices[idx] = (
                StreamReasoning(self.deg.reasoning, self.deg.summary_chars),
                can,
            )
        return st

    def line(self, line: str) -> list[bytes]:
        if not line.startswith("data:"):
            return []
        payload = line[5:].strip()
        if payload == "[DONE]":
            out = self.finish()
            self._done = True
            return [*out, b"data: [DONE]\n\n"]
        if self.deg is None and '"usage"' not in payload:
            return [f"data: {payload}\n\n".encode()]
        try:
            chunk = orjson.loads(payload)
        except ValueError:
            return [f"data: {payload}\n\n".encode()]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
            if not self.client_wants_usage:
                if not chunk.get("choices"):
                    return []
                chunk.pop("usage")
        if self.deg is not None:
            self._last = {k: chunk[k] for k in ("id", "object", "created", "model") if k in chunk}
            kept = []
            for choice in chunk.get("choices") or []:
                if self._choice(choice):
                    kept.append(choice)
            if not kept and chunk.get("choices") and not chunk.get("usage"):
                return []
            chunk["choices"] = kept
        return [b"data: " + orjson.dumps(chunk) + b"\n\n"]

    def _choice(self, choice: dict[str, Any]) -> bool:
        """Transform one streamed choice in place; False when nothing is left to send."""
        reasoning, canary = self._state(int(choice.get("index", 0)))
        delta = choice.get("delta") if self.chat else choice
        if not isinstance(delta, dict):
            return True
        for f in REASONING_FIELDS:
            val = delta.get(f)
            if isinstance(val, str):
                kept = reasoning.reasoning_delta(val)
                if kept is None:
                    delta.pop(f)
                else:
                    delta[f] = kept
        text_field = "content" if self.chat else "text"
        text = delta.get(text_field)
        finishing = choice.get("finish_reason") is not None
        if (isinstance(text, str) and text) or finishing or delta.get("tool_calls"):
            summary = reasoning.end_reasoning()
            if summary and self.chat:
                delta["reasoning_content"] = summary
        if isinstance(text, str):
            out = reasoning.content_delta(text)
            if finishing:
                out += reasoning.flush()
            if canary is not None:
                out = canary.feed(out) + (canary.flush() if finishing else "")
            delta[text_field] = out
        elif finishing:
            out = reasoning.flush()
            if canary is not None:
                out = canary.feed(out) + canary.flush()
            if out:
                delta[text_field] = out
        if finishing:
            self._choices.pop(int(choice.get("index", 0)), None)
        meaningful = any(
            delta.get(k)
            for k in (text_field, "tool_calls", "function_call", "role", *REASONING_FIELDS)
        )
        return meaningful or finishing or bool(choice.get("logprobs"))

    def finish(self) -> list[bytes]:
        """Text still held back (streams that end without finish_reason)."""
        if self._done or self.deg is None or not self._choices:
            return []
        out = []
        for idx, (reasoning, canary) in list(self._choices.items()):
            text = reasoning.flush()
            if canary is not None:
                text = canary.feed(text) + canary.flush()
            if text:
                delta = {"content": text} if self.chat else None
                choice = (
                    {"index": idx, "delta": delta, "finish_reason": None}
                    if self.chat
                    else {"index": idx, "text": text, "finish_reason": None}
                )
                chunk = {**(self._last or {}), "choices": [choice]}
                out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
        self._choices.clear()
        return out
