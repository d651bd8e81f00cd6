"""The gateway's fast transport pieces against real sockets: the httptools upstream client
(keep-alive reuse, stale-connection retry, chunked bodies, timeouts) and the response-coalescing
server transport (one write per response, order kept, nothing held past a loop turn)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("httptools", reason="httptools not installed (extra gateway-fast)")
pytest.importorskip("aiohttp", reason="aiohttp not installed (extra gateway-fast)")

from antidistill.gateway.serve import _CoalescingTransport
from antidistill.gateway.upstream import HttptoolsUpstream, UpstreamError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(n)


def _run(
    handler: Handler,
    test: Callable[[HttptoolsUpstream, dict[str, Any]], Awaitable[None]],
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    seen: dict[str, Any] = {"connections": 0, "requests": []}

    async def main() -> None:
        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            seen["connections"] += 1
            try:
                await handler(r, w)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                w.close()

        server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        up = HttptoolsUpstream(
            f"http://127.0.0.1:{port}", {"Authorization": "Bearer up"}, timeout_s, 8
        )
        try:
            await test(up, seen)
        finally:
            await up.aclose()
            server.close()

    asyncio.run(main())
    return seen


def test_keep_alive_reuse_headers_and_body() -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            head, body = await _read_request(r)
            seen_requests.append((head, body))
            out = b'{"ok": true}'
            w.write(
                b"HTTP/1.1 201 Created\r\nContent-Type: application/json; x=1\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(out), out)
            )
            await w.drain()

    seen_requests: list[tuple[bytes, bytes]] = []

    async def test(up: HttptoolsUpstream, seen: dict[str, Any]) -> None:
        for i in range(3):
            status, body, ctype = await up.post(
                "/v1/chat/completions", {"i": i}, {"X-Request-Id": f"r{i}"}
            )
            assert (status, body, ctype) == (201, b'{"ok": true}', "application/json; x=1")

    seen = _run(handler, test)
    assert seen["connections"] == 1  # kept alive
    head, body = seen_requests[2]
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"X-Request-Id: r2\r\n" in head and b"Authorization: Bearer up\r\n" in head
    assert body == b'{"i":2}'


def test_chunked_response_and_connection_close() -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _read_request(r)
        w.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        await w.drain()

    async def test(up: HttptoolsUpstream, seen: dict[str, Any]) -> None:
        assert (await up.post("/x", {}, {}))[:2] == (200, b"hello world")
        assert (await up.post("/x", {}, {}))[:2] == (200, b"hello world")

    assert _run(handler, test)["connections"] == 2  # closed after each, as the server asked


def test_connection_closed_before_any_response_byte_is_retried_once_fresh() -> None:
    """The race of a keep-alive connection the server closes just as a request goes out."""
    conns = 0

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal conns
        conns += 1
        first = conns == 1
        await _read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await w.drain()
        if first:
            await _read_request(r)  # the second request on this connection: dropped unanswered

    async def test(up: HttptoolsUpstream, seen: dict[str, Any]) -> None:
        assert (await up.post("/x", {}, {}))[1] == b"ok"
        assert (await up.post("/x", {}, {}))[1] == b"ok"  # retried on a new connection

    assert _run(handler, test)["connections"] == 2


def test_connection_dropped_mid_response_is_an_error_not_a_retry() -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok")
        await w.drain()

    async def test(up: HttptoolsUpstream, seen: dict[str, Any]) -> None:
        with pytest.raises(UpstreamError):
            await up.post("/x", {}, {})

    assert _run(handler, test)["connections"] == 1


def test_timeout_and_refused_raise_upstream_error() -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _read_request(r)
        await asyncio.sleep(5)

    async def test(up: HttptoolsUpstream, seen: dict[str, Any]) -> None:
        with pytest.raises(UpstreamError, match="ReadTimeout"):
            await up.post("/x", {}, {})

    assert _run(handler, test, timeout_s=0.3)["connections"] == 1  # a timeout is not retried

    async def refused() -> None:
        up = HttptoolsUpstream("http://127.0.0.1:1", {}, 5.0, 4)
        try:
            with pytest.raises(UpstreamError):
                await up.post("/x", {}, {})
        finally:
            await up.aclose()

    asyncio.run(refused())


def test_header_line_breaks_are_refused() -> None:
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _read_request(r)

    async def test(up: HttptoolsUpstream, seen: dict[str, Any]) -> None:
        with pytest.raises(UpstreamError, match="line break"):
            await up.post("/x", {}, {"X-Request-Id": "a\r\nX-Evil: 1"})

    assert _run(handler, test)["connections"] == 0


class _Sink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_coalescing_transport_joins_head_and_body_and_never_holds_past_a_turn() -> None:
    async def main() -> None:
        sink = _Sink()
        t = _CoalescingTransport(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
        head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
        t.write(head)
        assert sink.writes == []
        t.write(b"ok")
        assert sink.writes == [head + b"ok"]  # one write
        t.write(head)  # a head alone (streaming response waiting for its first chunk)
        await asyncio.sleep(0)
        assert sink.writes[-1] == head  # flushed within the loop turn
        t.write(b"chunk")
        assert sink.writes[-1] == b"chunk"
        t.write(head)
        t.close()  # closing flushes first
        assert sink.writes[-1] == head and sink.closed and t.is_closing()

    asyncio.run(main())
