"""LiteLLM integration: the Generic Guardrail API service (documented request/response shapes,
over real HTTP) and, when LiteLLM is installed (extra ``antidistill[litellm]``), the real
``GenericGuardrailAPI`` client and the ``CustomGuardrail`` subclass driven by ``litellm``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from antidistill.gateway.app import GatewayConfig
from antidistill.gateway.canary import detect_canary
from antidistill.gateway.devserver import ServerThread, make_upstream
from antidistill.gateway.guardrail_api import PATH, create_guardrail_app
from test_gateway import SECRET, TEMPLATE, write_world

TOKEN = "guardrail-token"
THINK = "<think>secret plan: first do X</think>Answer: you do not need it, for example here."


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_world(tmp_path_factory.mktemp("llworld"))


@pytest.fixture(scope="module")
def guardrail(
    world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    cfg = GatewayConfig(
        upstream="",
        risk=world["risk"],
        index_logs=[world["log"]],
        keys=world["keys"],
        log_dir=tmp_path_factory.mktemp("gl"),
        secret=SECRET,
    )
    with ServerThread(create_guardrail_app(cfg, token=TOKEN)) as s:
        yield s


def call(url: str, body: dict[str, Any], token: str = TOKEN) -> httpx.Response:
    return httpx.post(url + PATH, json=body, headers={"x-api-key": token}, timeout=30)


def req(user: str, text: str, call_id: str, input_type: str = "request") -> dict[str, Any]:
    return {
        "input_type": input_type,
        "litellm_call_id": call_id,
        "texts": [text],
        "structured_messages": [{"role": "user", "content": text}]
        if input_type == "request"
        else None,
        "request_data": {"user_api_key_user_id": user},
        "model": "gpt-x",
    }


def test_guardrail_api_shapes(guardrail: ServerThread) -> None:
    u = guardrail.url
    assert call(u, req("legit1", "hi", "c0"), token="wrong").status_code == 401
    r = call(u, req("camp1", "hello", "c1")).json()
    assert r["action"] == "BLOCKED" and "suspended" in r["blocked_reason"]
    # degraded account: request passes, the response text is rewritten
    assert call(u, req("bad1", "explain", "c2")).json()["action"] == "NONE"
    r = call(u, req("bad1", THINK, "c2", "response")).json()
    assert r["action"] == "GUARDRAIL_INTERVENED"
    assert "secret plan" not in r["texts"][0] and r["texts"][0].startswith("Answer:")
    assert detect_canary(r["texts"][0], SECRET, ["bad1", "legit1"])[0].account_id == "bad1"
    # a brand-new account sending the cluster's template is caught at its first request
    assert (
        call(u, req("fresh-9", TEMPLATE.format(q="What is 9 times 9?"), "c3")).json()["action"]
        == "NONE"
    )
    assert (
        call(u, req("fresh-9", THINK, "c3", "response")).json()["action"] == "GUARDRAIL_INTERVENED"
    )
    # legitimate account: untouched both ways
    assert call(u, req("legit1", "explain", "c4")).json()["action"] == "NONE"
    assert call(u, req("legit1", THINK, "c4", "response")).json() == {
        "action": "NONE",
        "blocked_reason": None,
        "texts": None,
    }
    assert (
        call(u, {"input_type": "request", "texts": ["x"], "request_data": {}}).json()["action"]
        == "NONE"
    )
    assert call(u, {"texts": []}).status_code == 400


def test_real_litellm_generic_guardrail_client(guardrail: ServerThread) -> None:
    pytest.importorskip("litellm", reason="LiteLLM not installed (extra antidistill[litellm])")
    from litellm.proxy.guardrails.guardrail_hooks.generic_guardrail_api import (
        GenericGuardrailAPI,
    )

    g = GenericGuardrailAPI(
        api_base=guardrail.url,
        api_key=TOKEN,
        guardrail_name="antidistill",
        event_hook="pre_call",
        default_on=True,
    )

    async def run() -> None:
        ok = await g.apply_guardrail(
            {"texts": ["hi there"]}, {"metadata": {"user_api_key_user_id": "legit1"}}, "request"
        )
        assert ok["texts"] == ["hi there"]
        with pytest.raises(Exception, match="suspended"):
            await g.apply_guardrail(
                {"texts": ["hi"]}, {"metadata": {"user_api_key_user_id": "camp1"}}, "request"
            )
        out = await g.apply_guardrail(
            {"texts": [THINK]}, {"litellm_metadata": {"user_api_key_user_id": "bad1"}}, "response"
        )
        assert "secret plan" not in out["texts"][0]

    asyncio.run(run())


def test_real_litellm_custom_guardrail(world: dict[str, Path], tmp_path: Path) -> None:
    litellm = pytest.importorskip("litellm", reason="LiteLLM not installed (antidistill[litellm])")
    from litellm.proxy._types import UserAPIKeyAuth

    from antidistill.gateway.litellm_guardrail import AntidistillGuardrail

    g = AntidistillGuardrail(
        risk=str(world["risk"]),
        keys=str(world["keys"]),
        log_dir=str(tmp_path),
        secret=SECRET,
        guardrail_name="antidistill",
        event_hook=["pre_call", "post_call"],
        default_on=True,
    )
    with ServerThread(make_upstream()) as up:

        async def one(user: str, stream: bool) -> tuple[str, str | None]:
            data: dict[str, Any] = {
                "model": "openai/stub-reasoner",
                "litellm_call_id": f"{user}{stream}",
                "messages": [{"role": "user", "content": "why is ice slippery"}],
            }
            key = UserAPIKeyAuth(user_id=user)
            data = await g.async_pre_call_hook(key, None, data, "completion")
            kwargs = {k: v for k, v in data.items() if k not in ("litellm_call_id", "metadata")}
            resp = await litellm.acompletion(
                api_base=up.url + "/v1", api_key="x", stream=stream, **kwargs
            )
            if not stream:
                resp = await g.async_post_call_success_hook(data, key, resp)
                msg = resp.choices[0].message
                return msg.content, getattr(msg, "reasoning_content", None)

            async def agen() -> Any:
                async for c in resp:
                    yield c

            text, reasoning = "", ""
            async for c in g.async_post_call_streaming_iterator_hook(key, agen(), data):
                d = c.choices[0].delta if c.choices else None
                text += (d.content or "") if d else ""
                reasoning += (getattr(d, "reasoning_content", None) or "") if d else ""
            return text, reasoning or None

        async def run() -> None:
            content, reasoning = await one("legit1", False)
            assert "<think>" in content and reasoning
            content, reasoning = await one("bad1", False)
            assert "<think>" not in content and not reasoning
            hdrs = up.server.config.app.state.requests[-1][1]
            assert len(hdrs["x-antidistill-watermark-key-id"]) == 16
            assert detect_canary(content, SECRET, ["bad1", "legit1"])[0].account_id == "bad1"
            streamed, sreason = await one("bad1", True)
            assert streamed == content and not sreason
            with pytest.raises(Exception, match="suspended"):
                await one("camp1", False)

        asyncio.run(run())
