"""LiteLLM integration: the Generic Guardrail API service (documented request/response shapes,
over real HTTP); when LiteLLM is installed (extra ``antidistill[litellm]``), the real
``GenericGuardrailAPI`` client and the ``CustomGuardrail`` subclass driven by ``litellm``; and
when the proxy is installed (``litellm[proxy]``), the real LiteLLM proxy started as users start
it (``litellm --config config.yaml``) with the configs documented in docs/enforcement.md."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from antidistill.gateway.app import GatewayConfig
from antidistill.gateway.canary import detect_canary
from antidistill.gateway.devserver import ServerThread, free_port, make_upstream
from antidistill.gateway.guardrail_api import PATH, account_from, create_guardrail_app
from test_gateway import SECRET, TEMPLATE, write_world

# LiteLLM fetches its model cost map from the internet at import unless told not to (this
# process imports it in the tests below; the proxy subprocesses inherit it).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

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


def test_guardrail_api_streaming_rounds(guardrail: ServerThread) -> None:
    """LiteLLM's ``incremental_diff`` streaming: every round re-sends the growing text; what we
    return must extend what was already emitted (minus the held-back tail), and the end result
    must equal the whole-response answer."""
    u = guardrail.url
    raw = THINK + " It is not hard. We do not stop here, and we will not go back.\n" * 4
    expected = call(u, req("bad1", raw, "w1", "response")).json()["texts"][0]
    assert call(u, req("bad1", "explain", "s1")).json()["action"] == "NONE"
    emitted = ""
    for end in [*range(5, len(raw), 9), len(raw)]:
        r = call(u, req("bad1", raw[:end], "s1", "response")).json()
        text, hold = r["texts"][0], r["stream_holdback_chars"][0]
        assert text.startswith(emitted), (emitted, text)
        emitted = text if end == len(raw) else text[: max(len(emitted), len(text) - hold)]
    assert emitted == expected and "secret plan" not in emitted


def test_master_key_placeholders_are_not_accounts() -> None:
    # what LiteLLM reports for its master key: taken as an account, all traffic would be one
    master = {
        "user_api_key_user_id": "default_user_id",
        "user_api_key_hash": "litellm_proxy_master_key",
    }
    assert account_from(master) is None
    assert account_from({**master, "user_api_key_end_user_id": "bad1"}) == "bad1"
    assert account_from(master, "user_api_key_user_id") == "default_user_id"  # explicit: as is


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
    master = UserAPIKeyAuth(
        user_id="default_user_id", api_key="litellm_proxy_master_key", end_user_id="bad1"
    )
    assert g._account_id(master) == "bad1"
    assert g._account_id(UserAPIKeyAuth(user_id="default_user_id")) is None
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


# -- the real LiteLLM proxy ---------------------------------------------------------------------
MASTER = "sk-antidistill-test-master"
PROXY_MODULES = ("litellm", "backoff", "apscheduler", "fastapi_sso", "litellm_proxy_extras")
PROMPT = "why is ice slippery"
NO_DB = ("DATABASE_URL", "DIRECT_URL")  # the documented setup: LiteLLM without its database


def litellm_cli() -> str | None:
    """The ``litellm`` proxy CLI, if LiteLLM and its proxy extras are installed."""
    if any(importlib.util.find_spec(m) is None for m in PROXY_MODULES):
        return None
    exe = Path(sys.executable).with_name("litellm")
    return str(exe) if exe.exists() else shutil.which("litellm")


class LiteLLMProxy:
    """``litellm --config config.yaml --port P --host 127.0.0.1`` in a subprocess."""

    def __init__(self, cli: str, config: dict[str, Any], workdir: Path, env: dict[str, str]):
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "proxy.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [cli, "--config", "config.yaml", "--port", str(self.port), "--host", "127.0.0.1"],
                cwd=workdir,
                env={**{k: v for k, v in os.environ.items() if k not in NO_DB}, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"LiteLLM proxy exited:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/health/liveliness", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"LiteLLM proxy did not become healthy:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)


@pytest.fixture(scope="module")
def llm_upstream() -> Iterator[ServerThread]:
    with ServerThread(make_upstream()) as s:
        yield s


@pytest.fixture(scope="module")
def proxies(
    world: dict[str, Path],
    guardrail: ServerThread,
    llm_upstream: ServerThread,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, LiteLLMProxy]]:
    """Two real proxies, started together: the in-process ``AntidistillGuardrail`` and the
    Generic Guardrail API route to our service. Configs: docs/enforcement.md, "LiteLLM"."""
    cli = litellm_cli()
    if cli is None:
        pytest.skip("LiteLLM proxy not installed: pip install 'litellm[proxy]'")
    d = tmp_path_factory.mktemp("litellm_proxy")
    model_list = [
        {
            "model_name": "stub-reasoner",
            "litellm_params": {
                "model": "openai/stub-reasoner",
                "api_base": llm_upstream.url + "/v1",
                "api_key": "stub",
            },
        }
    ]
    policy = resources.files("antidistill") / "data" / "policy" / "default.yaml"
    in_process = {
        "guardrail": "antidistill.gateway.litellm_guardrail.AntidistillGuardrail",
        "mode": ["pre_call", "post_call"],
        "default_on": True,
        "policy": str(policy),
        "risk": str(world["risk"]),
        "logs": [str(world["log"])],
        "keys": str(world["keys"]),
        "log_dir": str(d / "audit"),
        "state": "memory",
        "account_field": "end_user_id",
    }
    generic = {
        "guardrail": "generic_guardrail_api",
        "mode": ["pre_call", "post_call"],
        "api_base": guardrail.url,
        "api_key": "os.environ/ANTIDISTILL_GUARDRAIL_TOKEN",
        "default_on": True,
        "streaming_transform_mode": "incremental_diff",
        "additional_provider_specific_params": {"account_field": "user_api_key_end_user_id"},
    }
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "ANTIDISTILL_SECRET": SECRET,
        "ANTIDISTILL_GUARDRAIL_TOKEN": TOKEN,
    }
    started: dict[str, LiteLLMProxy] = {}
    try:
        for name, params in (("in_process", in_process), ("generic", generic)):
            config = {
                "model_list": model_list,
                "general_settings": {"master_key": MASTER},
                "guardrails": [{"guardrail_name": "antidistill", "litellm_params": params}],
            }
            started[name] = LiteLLMProxy(cli, config, d / name, env)
        for p in started.values():
            p.wait()
        yield started
    finally:
        for p in started.values():
            p.stop()


def chat(proxy: LiteLLMProxy, user: str | None, prompt: str = PROMPT, stream: bool = False) -> Any:
    """One chat completion through the proxy (OpenAI ``user`` field = the account)."""
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=proxy.url, api_key=MASTER, max_retries=0, timeout=60)
    extra = {"user": user} if user else {}
    messages = [{"role": "user", "content": prompt}]
    return client.chat.completions.create(
        model="stub-reasoner", messages=messages, stream=stream, **extra
    )


def whole(proxy: LiteLLMProxy, user: str, prompt: str = PROMPT) -> tuple[str, str | None]:
    msg = chat(proxy, user, prompt).choices[0].message
    return msg.content, (msg.model_extra or {}).get("reasoning_content")


def streamed(proxy: LiteLLMProxy, user: str, prompt: str = PROMPT) -> tuple[list[str], str]:
    """(content deltas, joined reasoning deltas) of a streamed completion."""
    parts, reasoning = [], ""
    for chunk in chat(proxy, user, prompt, stream=True):
        for c in chunk.choices:
            if c.delta.content:
                parts.append(c.delta.content)
            reasoning += (c.delta.model_extra or {}).get("reasoning_content") or ""
    return parts, reasoning


def raw_error(proxy: LiteLLMProxy, user: str, stream: bool) -> httpx.Response:
    body = {"model": "stub-reasoner", "messages": [{"role": "user", "content": PROMPT}]}
    return httpx.post(
        proxy.url + "/v1/chat/completions",
        json={**body, "user": user, "stream": stream},
        headers={"Authorization": f"Bearer {MASTER}"},
        timeout=60,
    )


def upstream_call(up: ServerThread, prompt: str) -> tuple[dict[str, str], dict[str, Any]]:
    """(headers, body) of the last call the model server got for ``prompt``."""
    for _path, headers, body in reversed(up.server.config.app.state.requests):
        if body["messages"][-1]["content"] == prompt:
            return headers, body
    raise AssertionError(f"the model server never saw {prompt!r}")


def decisions(guardrail: ServerThread) -> float:
    text = httpx.get(guardrail.url + "/metrics", timeout=10).text
    return sum(
        float(v) for v in re.findall(r"^antidistill_decisions_total\{.*\} (\S+)$", text, re.M)
    )


def test_real_proxy_in_process_guardrail(
    proxies: dict[str, LiteLLMProxy], llm_upstream: ServerThread
) -> None:
    px = proxies["in_process"]
    # legitimate account: everything, reasoning included, whole and streamed
    content, reasoning = whole(px, "legit1", "explain tides please")
    assert "<think>" in content and reasoning
    hdrs, body = upstream_call(llm_upstream, "explain tides please")
    assert "x-antidistill-watermark-key-id" not in hdrs and "max_tokens" not in body
    parts, sreason = streamed(px, "legit1")
    assert "<think>" in "".join(parts) and sreason

    # degraded account: no reasoning either way, a canary that names it, capped and watermarked
    content, reasoning = whole(px, "bad1", "explain comets please")
    assert "<think>" not in content and "Plan:" not in content and not reasoning
    assert content.startswith("Here is the answer")
    hdrs, body = upstream_call(llm_upstream, "explain comets please")
    assert len(hdrs["x-antidistill-watermark-key-id"]) == 16 and body["max_tokens"] > 0
    content, _ = whole(px, "bad1")
    assert detect_canary(content, SECRET, ["bad1", "bad2", "legit1"])[0].account_id == "bad1"
    parts, sreason = streamed(px, "bad1")
    assert "".join(parts) == content and not sreason

    # a brand-new account sending the cluster's template is degraded at its first request (the
    # packaged policy summarises reasoning for it: a one-line summary, never the full trace)
    content, reasoning = whole(px, "fresh-7", TEMPLATE.format(q="What is 7 times 7?"))
    assert "<think>[reasoning summarized]" in content
    assert reasoning is None or reasoning.startswith("[reasoning summarized]")
    assert "skip a step" not in content + (reasoning or "")
    assert detect_canary(content, SECRET, ["fresh-7", "bad1", "legit1"])[0].account_id == "fresh-7"

    # known campaign: the policy's status in the OpenAI error shape, before any stream starts
    for stream in (False, True):
        r = raw_error(px, "camp1", stream)
        assert r.status_code == 403, r.text
        err = r.json()["error"]
        assert "suspended" in err["message"] and err["type"] and err["code"]


def test_real_proxy_generic_guardrail_api(
    proxies: dict[str, LiteLLMProxy], guardrail: ServerThread
) -> None:
    px = proxies["generic"]
    content, reasoning = whole(px, "legit1")
    assert "<think>" in content and reasoning
    assert "<think>" in "".join(streamed(px, "legit1")[0])

    before = decisions(guardrail)
    content, _ = whole(px, "bad1")
    assert "<think>" not in content and content.startswith("Here is the answer")
    assert detect_canary(content, SECRET, ["bad1", "bad2", "legit1"])[0].account_id == "bad1"
    parts, _ = streamed(px, "bad1")
    # LiteLLM re-sends the growing text every few chunks; we answer with a forward extension
    assert "".join(parts) == content and len(parts) > 1
    assert decisions(guardrail) - before == 2  # one decision per request, not per round

    r = raw_error(px, "camp1", stream=False)
    assert r.status_code == 400, r.text  # LiteLLM's status for a guardrail block
    assert "suspended" in r.json()["error"]["message"]
