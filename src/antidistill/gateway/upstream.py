"""The pooled HTTP client the gateway forwards with: httpx (default) or aiohttp (faster).

Both keep one connection pool to the model server for the life of the gateway. httpx's async
pool costs ~2 ms of CPU per request on a small machine; aiohttp's ~0.4 ms (measured by
``benchmarks/bench_gateway.py``), so ``--http-client aiohttp`` is the choice for high request
rates. Same behaviour either way: status, body and content type are passed through untouched.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any, Protocol


class UpstreamError(Exception):
    """The model server could not be reached (connection refused, reset, timeout)."""


class StreamHandle(Protocol):
    status: int
    content_type: str

    def lines(self) -> AsyncIterator[str]: ...

    async def read(self) -> bytes: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    async def get(self, path: str) -> tuple[int, bytes, str]: ...

    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, bytes, str]: ...

    async def stream(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> StreamHandle: ...

    async def aclose(self) -> None: ...


class HttpxUpstream:
    def __init__(self, base: str, headers: dict[str, str], timeout_s: float, max_conns: int):
        import httpx

        self._httpx = httpx
        limits = httpx.Limits(max_connections=max_conns, max_keepalive_connections=max_conns)
        transport = httpx.AsyncHTTPTransport(
            limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
        self.client = httpx.AsyncClient(
            base_url=base,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=10.0),
        )

    async def get(self, path: str) -> tuple[int, bytes, str]:
        try:
            r = await self.client.get(path)
        except self._httpx.HTTPError as exc:
            raise UpstreamError(type(exc).__name__) from exc
        return r.status_code, r.content, r.headers.get("content-type", "application/json")

    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, bytes, str]:
        try:
            r = await self.client.post(path, json=body, headers=headers)
        except self._httpx.HTTPError as exc:
            raise UpstreamError(type(exc).__name__) from exc
        return r.status_code, r.content, r.headers.get("content-type", "application/json")

    async def stream(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> StreamHandle:
        req = self.client.build_request("POST", path, json=body, headers=headers)
        try:
            r = await self.client.send(req, stream=True)
        except self._httpx.HTTPError as exc:
            raise UpstreamError(type(exc).__name__) from exc
        return _HttpxStream(r)

    async def aclose(self) -> None:
        await self.client.aclose()


class _HttpxStream:
    def __init__(self, r: Any):
        self._r = r
        self.status = int(r.status_code)
        self.content_type = r.headers.get("content-type", "application/json")

    def lines(self) -> AsyncIterator[str]:
        it: AsyncIterator[str] = self._r.aiter_lines()
        return it

    async def read(self) -> bytes:
        data: bytes = await self._r.aread()
        return data

    async def aclose(self) -> None:
        await self._r.aclose()


class AiohttpUpstream:
    def __init__(self, base: str, headers: dict[str, str], timeout_s: float, max_conns: int):
        import aiohttp

        self._aiohttp = aiohttp
        self._errors = (aiohttp.ClientError, TimeoutError, OSError)
        self.session = aiohttp.ClientSession(
            base_url=base.rstrip("/") + "/",
            headers=headers,
            connector=aiohttp.TCPConnector(limit=max_conns, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=timeout_s, connect=10.0),
        )

    @staticmethod
    def _rel(path: str) -> str:
        return path.lstrip("/")

    async def get(self, path: str) -> tuple[int, bytes, str]:
        try:
            async with self.session.get(self._rel(path)) as r:
                return r.status, await r.read(), r.headers.get("content-type", "application/json")
        except self._errors as exc:
            raise UpstreamError(type(exc).__name__) from exc

    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, bytes, str]:
        try:
            async with self.session.post(self._rel(path), json=body, headers=headers) as r:
                return r.status, await r.read(), r.headers.get("content-type", "application/json")
        except self._errors as exc:
            raise UpstreamError(type(exc).__name__) from exc

    async def stream(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> StreamHandle:
        try:
            r = await self.session.post(self._rel(path), json=body, headers=headers)
        except self._errors as exc:
            raise UpstreamError(type(exc).__name__) from exc
        return _AiohttpStream(r)

    async def aclose(self) -> None:
        await self.session.close()


class _AiohttpStream:
    def __init__(self, r: Any):
        self._r = r
        self.status = int(r.status)
        self.content_type = r.headers.get("content-type", "application/json")

    async def lines(self) -> AsyncIterator[str]:
        async for raw in self._r.content:
            yield raw.decode("utf-8").rstrip("\r\n")

    async def read(self) -> bytes:
        data: bytes = await self._r.read()
        return data

    async def aclose(self) -> None:
        self._r.release()


def make_upstream_client(
    kind: str, base: str, headers: dict[str, str], timeout_s: float, max_conns: int
) -> Upstream:
    if kind == "aiohttp":
        try:
            return AiohttpUpstream(base, headers, timeout_s, max_conns)
        except ImportError as exc:
            from antidistill.errors import DependencyError

            raise DependencyError(
                "--http-client aiohttp needs aiohttp: pip install 'antidistill[gateway-fast]'"
            ) from exc
    if kind != "httpx":
        from antidistill.errors import ConfigError

        raise ConfigError(
            f"unknown HTTP client {kind!r}; expected httpx or aiohttp", field="http_client"
        )
    return HttpxUpstream(base, headers, timeout_s, max_conns)
