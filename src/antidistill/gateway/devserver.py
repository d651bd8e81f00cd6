"""A deterministic OpenAI-compatible model server, and a helper to run ASGI apps in a thread.

Stands in for the hosted LLM only — in tests, benchmarks and the docs' walk-through — so the
gateway can be exercised end to end over real HTTP without a GPU. Its answers carry the two
reasoning shapes real servers emit (a ``reasoning_content`` field and ``<think>`` spans in the
content), stream in small chunks (splitting tags across chunks), and report usage.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

REASONING = (
    "Let me work through this carefully. The user asks about {topic}. I do not want to "
    "skip a step, so for example I check the units first. Therefore the result follows."
)
ANSWER = (
    "<think>Plan: restate {topic}, then answer.</think>Here is the answer about {topic}. "
    "It is not complicated: you do not need extra tools, and for example the first step "
    "does not change. We will not repeat it. Therefore the result is 42."
)


def _topic(text: str) -> str:
    words = text.split()
    return " ".join(words[:6]) if words else "nothing"


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def make_upstream(chunk_chars: int = 7, delay_s: float = 0.0) -> FastAPI:
    """The stub model server; ``app.state.requests`` records (path, headers, body) of the last
    1000 calls (bounded: benchmarks send it millions)."""
    app = FastAPI()
    app.state.requests = deque(maxlen=1000)

    def last_user(body: dict[str, Any]) -> str:
        for m in reversed(body.get("messages") or []):
            if m.get("role") == "user":
                c = m.get("content")
                return (
                    c
                    if isinstance(c, str)
                    else " ".join(p.get("text", "") for p in c if isinstance(p, dict))
                )
        return str(body.get("prompt", ""))

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": "stub-reasoner", "object": "model", "created": 0, "owned_by": "antidistill"}
            ],
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        app.state.requests.append(("/v1/chat/completions", dict(request.headers), body))
        if delay_s:
            await asyncio.sleep(delay_s)
        topic = _topic(last_user(body))
        reasoning, answer = REASONING.format(topic=topic), ANSWER.format(topic=topic)
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        if cap:
            answer = answer[: int(cap) * 4]
        usage = {
            "prompt_tokens": _tokens(json.dumps(body.get("messages"))),
            "completion_tokens": _tokens(reasoning + answer),
            "total_tokens": 0,
            "completion_tokens_details": {"reasoning_tokens": _tokens(reasoning)},
        }
        usage["total_tokens"] = _tokens(json.dumps(body.get("messages"))) + _tokens(
            reasoning + answer
        )
        rid, created, model = "chatcmpl-stub", int(time.time()), body.get("model", "stub")
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {
                                "role": "assistant",
                                "content": answer,
                                "reasoning_content": reasoning,
                            },
                        }
                    ],
                    "usage": usage,
                }
            )
        want_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def gen() -> AsyncIterator[bytes]:
            def ev(delta: dict[str, Any], finish: str | None = None) -> bytes:
                c = {
                    "id": rid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                return f"data: {json.dumps(c)}\n\n".encode()

            yield ev({"role": "assistant", "content": ""})
            for i in range(0, len(reasoning), chunk_chars):
                yield ev({"reasoning_content": reasoning[i : i + chunk_chars]})
            for i in range(0, len(answer), chunk_chars):
                yield ev({"content": answer[i : i + chunk_chars]})
            yield ev({}, "stop")
            if want_usage:
                u = {
                    "id": rid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(u)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        body = await request.json()
        app.state.requests.append(("/v1/completions", dict(request.headers), body))
        text = ANSWER.format(topic=_topic(last_user(body)))
        usage = {
            "prompt_tokens": _tokens(str(body.get("prompt"))),
            "completion_tokens": _tokens(text),
            "total_tokens": 0,
        }
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "cmpl-stub",
                    "object": "text_completion",
                    "created": 0,
                    "model": body.get("model", "stub"),
                    "usage": usage,
                    "choices": [
                        {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
                    ],
                }
            )

        async def gen() -> AsyncIterator[bytes]:
            for i in range(0, len(text), chunk_chars):
                c = {
                    "id": "cmpl-stub",
                    "object": "text_completion",
                    "created": 0,
                    "model": body.get("model", "stub"),
                    "choices": [
                        {"index": 0, "text": text[i : i + chunk_chars], "finish_reason": None}
                    ],
                }
                yield f"data: {json.dumps(c)}\n\n".encode()
            end = {
                "id": "cmpl-stub",
                "object": "text_completion",
                "created": 0,
                "model": body.get("model", "stub"),
                "choices": [{"index": 0, "text": "", "finish_reason": "stop"}],
                "usage": usage,
            }
            yield f"data: {json.dumps(end)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """Run an ASGI app with uvicorn on 127.0.0.1 in a background thread (tests, benchmarks)."""

    def __init__(
        self, app: Any, port: int | None = None, log_level: str = "warning", **options: Any
    ):
        """``options``: extra ``uvicorn.Config`` settings (e.g. ``http=`` a protocol class)."""
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level=log_level,
            lifespan="on",
            access_log=False,
            **options,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def main() -> None:
    """``python -m antidistill.gateway.devserver --port 8000``: serve the stub model."""
    import argparse

    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--chunk-chars", type=int, default=7)
    args = ap.parse_args()
    from antidistill.gateway.app import uvicorn_http  # served like the gateway

    uvicorn.run(
        make_upstream(args.chunk_chars),
        host=args.host,
        port=args.port,
        http=uvicorn_http(),
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
