"""The pooled HTTP client the gateway forwards with: httpx (default), aiohttp, or httptools.

All keep one connection pool to the model server for the life of the gateway. httpx's async
pool costs ~2 ms of CPU per request on a small machine, aiohttp's ~0.4 ms; ``httptools`` sends
the non-streaming POSTs (the hot path) over its own keep-alive HTTP/1.1 connections parsed by
httptools (the parser uvicorn uses) at a fraction of aiohttp's cost, and leaves GET and
streaming to aiohttp (measured by ``benchmarks/bench_gateway.py``). Same behaviour every way:
status, body and content type are passed through untouched.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import orjson

_JSON = {"Content-Type": "application/json"}


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
            async with self.session.post(
                self._rel(path), data=orjson.dumps(body), headers={**headers, **_JSON}
            ) as r:
                return r.status, await r.read(), r.headers.get("content-type", "application/json")
        except self._errors as exc:
            raise UpstreamError(type(exc).__name__) from exc

    async def stream(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> StreamHandle:
        try:
            r = await self.session.post(
                self._rel(path), data=orjson.dumps(body), headers={**headers, **_JSON}
            )
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


class _Disconnected(UpstreamError):
    """The server closed the connection before the response was complete."""


class _Exchange(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; at most one request in flight on it."""

    def __init__(self) -> None:
        import httptools

        self._parser = httptools.HttpResponseParser(self)
        self._parse_error = httptools.HttpParserError
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.received = False  # any byte of the current response
        self._fut: asyncio.Future[tuple[int, bytes, str]] | None = None
        self._body: list[bytes] = []
        self._ctype = "application/json"
        self._complete = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except self._parse_error as exc:
            self.fail(UpstreamError(f"bad HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._fut is not None and not self._fut.done():
            self._fut.set_exception(_Disconnected("ServerDisconnected"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._body = []
        self._ctype = "application/json"
        self._complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self._ctype = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete = True
        if not self._parser.should_keep_alive():
            self.close()
        if self._fut is not None and not self._fut.done():
            self._fut.set_result(
                (self._parser.get_status_code(), b"".join(self._body), self._ctype)
            )

    # client side
    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes, str]]:
        assert self.transport is not None
        self.received = False
        self._fut = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._fut

    def fail(self, exc: Exception) -> None:
        if self._fut is not None and not self._fut.done():
            self._fut.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttptoolsUpstream:
    """Non-streaming POSTs on a pool of raw keep-alive connections; GET and streams via aiohttp.

    A POST sent on a reused connection that the server had already closed (no byte of the
    response received) is retried once on a fresh connection, as httpx and browsers do.
    """

    def __init__(self, base: str, headers: dict[str, str], timeout_s: float, max_conns: int):
        import httptools  # noqa: F401  (fail at start-up, not on the first request)

        self._other = AiohttpUpstream(base, headers, timeout_s, max_conns)
        u = urlsplit(base)
        if u.scheme not in ("http", "https") or not u.hostname:
            from antidistill.errors import ConfigError

            raise ConfigError(f"upstream must be an http(s) URL, got {base!r}", field="upstream")
        self._host = u.hostname
        self._port = u.port or (443 if u.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if u.scheme == "https" else None
        self._prefix = u.path.rstrip("/")
        host = u.netloc.rsplit("@", 1)[-1]
        fixed = {"Host": host, **_JSON, **headers}
        self._head = "".join(f"{k}: {_clean(v)}\r\n" for k, v in fixed.items()).encode()
        self._timeout = timeout_s
        self._idle: list[_Exchange] = []
        self._slots = asyncio.Semaphore(max_conns)

    async def _connect(self) -> _Exchange:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(_Exchange, self._host, self._port, ssl=self._ssl), 10.0
            )
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(type(exc).__name__) from exc
        return proto

    async def post(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, bytes, str]:
        payload = orjson.dumps(body)
        extra = "".join(f"{k}: {_clean(v)}\r\n" for k, v in headers.items())
        data = (
            (
                f"POST {self._prefix}{path} HTTP/1.1\r\nContent-Length: {len(payload)}\r\n{extra}"
            ).encode()
            + self._head
            + b"\r\n"
            + payload
        )
        async with self._slots:
            for attempt in (0, 1):
                conn = None
                while self._idle:
                    c = self._idle.pop()
                    if not c.closed:
                        conn = c
                        break
                reused = conn is not None
                if conn is None:
                    conn = await self._connect()
                fut = conn.request(data)
                timer = asyncio.get_running_loop().call_later(
                    self._timeout, conn.fail, UpstreamError("ReadTimeout")
                )
                try:
                    result = await fut
                except _Disconnected:
                    conn.close()
                    if reused and attempt == 0 and not conn.received:
                        continue  # the server closed the idle connection: once more, fresh
                    raise
                except BaseException:  # cancelled mid-request: the connection state is unknown
                    conn.close()
                    raise
                finally:
                    timer.cancel()
                if not conn.closed:
                    self._idle.append(conn)
                return result
        raise AssertionError("unreachable")

    async def get(self, path: str) -> tuple[int, bytes, str]:
        return await self._other.get(path)

    async def stream(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> StreamHandle:
        return await self._other.stream(path, body, headers)

    async def aclose(self) -> None:
        for c in self._idle:
            c.close()
        self._idle.clear()
        await self._other.aclose()


def _clean(v: str) -> str:
    """A header value that cannot smuggle a second header or request."""
    if "\r" in v or "\n" in v:
        raise UpstreamError("header value with a line break")
    return v


def make_upstream_client(
    kind: str, base: str, headers: dict[str, str], timeout_s: float, max_conns: int
) -> Upstream:
    if kind == "auto":  # the fastest one installed
        try:
            import aiohttp  # noqa: F401
            import httptools  # noqa: F401

            kind = "httptools"
        except ImportError:
            kind = "httpx"
    if kind in ("aiohttp", "httptools"):
        try:
            if kind == "httptools":
                return HttptoolsUpstream(base, headers, timeout_s, max_conns)
            return AiohttpUpstream(base, headers, timeout_s, max_conns)
        except ImportError as exc:
            from antidistill.errors import DependencyError

            raise DependencyError(
                f"--http-client {kind} needs aiohttp and httptools: "
                "pip install 'antidistill[gateway-fast]'"
            ) from exc
    if kind != "httpx":
        from antidistill.errors import ConfigError

        raise ConfigError(
            f"unknown HTTP client {kind!r}; expected auto, httpx, aiohttp or httptools",
            field="http_client",
        )
    return HttpxUpstream(base, headers, timeout_s, max_conns)
