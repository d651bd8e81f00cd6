"""uvicorn's httptools protocol, sending each response's head and body in one socket write.

uvicorn writes the status line and headers as soon as the app sends ``http.response.start``,
then the body as a second write: two syscalls and, on loopback or a VM, often two wake-ups of
the client, per request. The gateway answers most requests with one complete body right after
the head, so holding the head back until the body arrives (or the end of the current event-loop
iteration, whichever comes first) saves a write on the hot path without changing what is sent
or its order. Everything else is uvicorn's own protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD_END = b"\r\n\r\n"


class _CoalescingTransport:
    """Delegates to a transport; a response head is held until the next write or loop turn."""

    __slots__ = ("_held", "_loop", "_t")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._t = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            head, self._held = self._held, None
            self._t.write(head + bytes(data))
            return
        if isinstance(data, bytes) and data.startswith(b"HTTP/") and data.endswith(_HEAD_END):
            self._held = data
            self._loop.call_soon(self.flush)  # never later than this loop iteration
            return
        self._t.write(data)

    def flush(self) -> None:
        if self._held is not None:
            head, self._held = self._held, None
            self._t.write(head)

    def close(self) -> None:
        self.flush()
        self._t.close()

    def write_eof(self) -> None:
        self.flush()
        self._t.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """Pass as ``uvicorn.run(..., http=CoalescingHttpToolsProtocol)``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped: Any = _CoalescingTransport(transport, self.loop)
        super().connection_made(wrapped)
