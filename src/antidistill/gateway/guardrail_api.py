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
* streamed responses (LiteLLM ``streaming_transform_mode: incremental_diff``): LiteLLM re-sends
  the accumulated text every few chunks and emits only what extends what it already sent. Each
  text is protected incrementally (:class:`TextStream`), so earlier output never changes; the
  still-provisional tail (an unfinished tag or sentence) is returned as ``stream_holdback_chars``
  for LiteLLM to withhold until the next round (or emit at the end of the stream).

Through this API LiteLLM only shows the guardrail the response *text*, so a separate
``reasoning_content`` field cannot be withheld here; use the in-process ``CustomGuardrail``
(:mod:`antidistill.gateway.litellm_guardrail`) or the gateway for that.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import uuid
from collections import OrderedDict
from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from antidistill.gateway.app import GatewayConfig, build_enforcer
from antidistill.gateway.canary import StreamingCanary
from antidistill.gateway.enforcer import ClientInfo, Enforcer, Verdict
from antidistill.gateway.keys_file import KeysFile
from antidistill.gateway.reasoning import StreamReasoning

PATH = "/beta/litellm_basic_guardrail_api"
V = TypeVar("V")
ACCOUNT_FIELDS = (
    "user_api_key_user_id",
    "user_api_key_team_id",
    "user_api_key_end_user_id",
    "user_api_key_org_id",
    "user_api_key_alias",
    "user_api_key_hash",
)


# What LiteLLM reports for its master key (no virtual key, no database): not an account. Taken
# as one, every master-key request would pile onto a single shared "account".
PROXY_PLACEHOLDERS = frozenset({"default_user_id", "litellm_proxy_master_key"})


def account_from(request_data: dict[str, Any], field: str | None = None) -> str | None:
    """``field`` if given (an explicit choice is taken as is), else the first of
    :data:`ACCOUNT_FIELDS` that is set and is not a master-key placeholder."""
    if field:
        v = request_data.get(field)
        return str(v) if v else None
    return next(
        (
            str(v)
            for f in ACCOUNT_FIELDS
            if (v := request_data.get(f)) and str(v) not in PROXY_PLACEHOLDERS
        ),
        None,
    )


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


class Bounded(Generic[V]):
    """Bounded insertion-ordered map (oldest evicted): call_id -> verdict bridging the request
    and response phases; call_id/choice -> :class:`TextStream` across streaming rounds."""

    def __init__(self, size: int):
        self._d: OrderedDict[str, V] = OrderedDict()
        self._size = size

    def put(self, key: str, v: V) -> None:
        self._d[key] = v
        if len(self._d) > self._size:
            self._d.popitem(last=False)

    def get(self, key: str) -> V | None:
        return self._d.get(key)


class TextStream:
    """One response text that LiteLLM re-sends whole as it grows (a whole response is a single
    round). Only the new suffix goes through the incremental transforms, so what was returned
    before is never rewritten; an evicted state is rebuilt from the full text, which yields the
    same output (the transforms do not depend on how the text was chunked)."""

    def __init__(self, mode: str, summary_chars: int, canary_key: bytes | None):
        self.reasoning = StreamReasoning(mode, summary_chars)
        self.canary = StreamingCanary(canary_key) if canary_key is not None else None
        self.raw = ""
        self.committed = ""

    def advance(self, text: str) -> tuple[str, int]:
        """(protected text so far, how many trailing chars of it are still provisional)."""
        out = self.reasoning.content_delta(text[len(self.raw) :])
        self.raw = text
        self.committed += self.canary.feed(out) if self.canary is not None else out
        reasoning, canary = copy.deepcopy((self.reasoning, self.canary))
        tail = reasoning.flush()
        if canary is not None:
            tail = canary.feed(tail) + canary.flush()
        return self.committed + tail, len(tail)


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
    cache: Bounded[Verdict] = Bounded(100_000)
    streams: Bounded[TextStream] = Bounded(10_000)
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
        # A streamed response reaches us once per sampled round, all with the same call id:
        # one request gets one decision (and counts once against rate limits).
        verdict = cache.get(call_id) if (input_type == "response" and call_id) else None
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
            if call_id:  # the response phase reuses it: one request, one decision
                cache.put(call_id, verdict)
        if verdict.denied is not None:
            return JSONResponse(
                {"action": "BLOCKED", "blocked_reason": verdict.denied[2], "texts": None}
            )
        if input_type == "request":
            return JSONResponse({"action": "NONE", "blocked_reason": None, "texts": None})
        deg = verdict.degrade
        if deg is None or not texts:
            return JSONResponse({"action": "NONE", "blocked_reason": None, "texts": None})
        out, hold = [], []
        for i, t in enumerate(texts):
            key = f"{call_id}#{i}"
            st = streams.get(key) if call_id else None
            if st is None or not t.startswith(st.raw):
                st = TextStream(deg.reasoning, deg.summary_chars, verdict.canary_key)
                if call_id:
                    streams.put(key, st)
            text, held = st.advance(t)
            out.append(text)
            hold.append(held)
        if out == texts and not any(hold):  # else a NONE would let LiteLLM emit the raw tail
            return JSONResponse({"action": "NONE", "blocked_reason": None, "texts": None})
        return JSONResponse(
            {
                "action": "GUARDRAIL_INTERVENED",
                "blocked_reason": None,
                "texts": out,
                "stream_holdback_chars": hold,
            }
        )

    return app
