"""LiteLLM's Generic Guardrail API, served: ``POST /beta/litellm_basic_guardrail_api``.

LiteLLM sends ``{input_type: request|response, texts, structured_messages, request_data:
{user_api_key_user_id, user_api_key_team_id, ...}, litellm_call_id, model, ...}`` and expects
``{action: BLOCKED|NONE|GUARDRAIL_INTERVENED, blocked_reason, texts}``.

* ``request``: the account is taken from ``request_data`` (``account_field`` in
  ``additional_provider_specific_params`` picks which; default user id, then team, end user, key
  hash); the guard scores, the policy decides; a denial -> ``BLOCKED``. The verdict is remembered
  by ``litellm_call_id`` for the response phase.
* ``response``: for a degraded account, ``<think>`` spans are stripped/summarised and canary
  marks applied to ``texts`` -> ``GUARDRAIL_INTERVENED``; anyone else -> ``NONE``.

Through this API LiteLLM only shows the guardrail the response *text*, so a separate
``reasoning_content`` field cannot be withheld here; use the in-process ``CustomGuardrail``
(:mod:`antidistill.gateway.litellm_guardrail`) or the gateway for that.
"""

from __future__ import annotations

import asyncio
import hmac
import uuid
from collections import OrderedDict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from antidistill.gateway.app import GatewayConfig, build_enforcer
from antidistill.gateway.canary import apply_canary
from antidistill.gateway.enforcer import ClientInfo, Enforcer, Verdict
from antidistill.gateway.keys_file import KeysFile
from antidistill.gateway.reasoning import protect_text

PATH = "/beta/litellm_basic_guardrail_api"
ACCOUNT_FIELDS = (
    "user_api_key_user_id",
    "user_api_key_team_id",
    "user_api_key_end_user_id",
    "user_api_key_org_id",
    "user_api_key_alias",
    "user_api_key_hash",
)


def account_from(request_data: dict[str, Any], field: str | None = None) -> str | None:
    if field:
        v = request_data.get(field)
        return str(v) if v else None
    return next((str(request_data[f]) for f in ACCOUNT_FIELDS if request_data.get(f)), None)


def prompt_from(body: dict[str, Any]) -> tuple[str, str | None]:
    """(last user text, joined system text) from structured messages, else the texts."""
    system, prompt = [], ""
    for m in body.get("structured_messages") or []:
        if not isinstance(m, dict):
            continue
        c = m.get("content")
        text = (
            c
            if isinstance(c, str)
            else " ".join(str(p.get("text", "")) for p in c or [] if isinstance(p, dict))
        )
        if m.get("role") in ("system", "developer"):
            system.append(text)
        elif m.get("role") == "user":
            prompt = text
    if not prompt:
        texts = body.get("texts") or []
        prompt = str(texts[-1]) if texts else ""
    return prompt, "\n".join(system) or None


class VerdictCache:
    """Bounded call_id -> verdict map bridging the request and response phases."""

    def __init__(self, size: int = 100_000):
        self._d: OrderedDict[str, Verdict] = OrderedDict()
        self._size = size

    def put(self, key: str, v: Verdict) -> None:
        self._d[key] = v
        if len(self._d) > self._size:
            self._d.popitem(last=False)

    def pop(self, key: str) -> Verdict | None:
        return self._d.pop(key, None)


def create_guardrail_app(
    cfg: GatewayConfig,
    *,
    token: str | None = None,
    enforcer: Enforcer | None = None,
    keys: KeysFile | None = None,
) -> FastAPI:
    app = FastAPI(title="antidistill guardrail", docs_url=None, redoc_url=None)
    enf = enforcer or build_enforcer(cfg)
    kf = keys or (KeysFile.load(cfg.keys) if cfg.keys else KeysFile({}, {}))
    cache = VerdictCache()
    app.state.enf = enf

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "policy": enf.policy.source, "risk_accounts": len(enf.guard.risk)}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(enf.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post(PATH)
    async def guardrail(request: Request) -> Response:
        if token:
            got = (
                request.headers.get("x-api-key")
                or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            )
            if not hmac.compare_digest(got.encode(), token.encode()):
                return JSONResponse({"detail": "invalid guardrail token"}, status_code=401)
        try:
            body = await request.json()
            input_type = body["input_type"]
            if input_type not in ("request", "response"):
                raise ValueError("input_type must be request or response")
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"detail": f"invalid guardrail request: {exc}"}, status_code=400)
        params = body.get("additional_provider_specific_params") or {}
        meta = body.get("request_data") or {}
        call_id = body.get("litellm_call_id") or ""
        account_id = account_from(meta, params.get("account_field"))
        if account_id is None:
            # no identity: nothing to enforce per account; say so rather than guessing
            return JSONResponse({"action": "NONE", "blocked_reason": None, "texts": None})
        texts = [str(t) for t in body.get("texts") or []]
        verdict = cache.pop(call_id) if (input_type == "response" and call_id) else None
        if verdict is None:
            prompt, system = prompt_from(body) if input_type == "request" else ("", None)
            args = (
                kf.account(account_id),
                call_id or f"llm_{uuid.uuid4().hex}",
                prompt,
                system,
                body.get("model"),
                ClientInfo(),
            )
            verdict = (
                await asyncio.to_thread(enf.assess, *args)
                if enf.guard.store.remote
                else enf.assess(*args)
            )
        if verdict.denied is not None:
            return JSONResponse(
                {"action": "BLOCKED", "blocked_reason": verdict.denied[2], "texts": None}
            )
        if input_type == "request":
            if call_id:  # the response phase reuses it: one request, one decision
                cache.put(call_id, verdict)
            return JSONResponse({"action": "NONE", "blocked_reason": None, "texts": None})
        deg = verdict.degrade
        if deg is None or not texts:
            return JSONResponse({"action": "NONE", "blocked_reason": None, "texts": None})
        out = []
        for t in texts:
            t2 = protect_text(t, deg.reasoning, deg.summary_chars)
            if verdict.canary_key is not None:
                t2, _ = apply_canary(t2, verdict.canary_key)
            out.append(t2)
        action = "GUARDRAIL_INTERVENED" if out != texts else "NONE"
        return JSONResponse(
            {"action": action, "blocked_reason": None, "texts": out if action != "NONE" else None}
        )

    return app
