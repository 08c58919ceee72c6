"""A small bridge from an aiohttp request to an ASGI app that answers in one piece (the MCP server's JSON mode).

The request's body is read by aiohttp first (its size limit a 413 before the app runs) and handed over as one
``http.request`` message; the app's answer is collected (at most ``max_answer`` bytes) and returned as one
``web.Response``. Nothing is streamed either way, so the app never waits on the client's socket and a client that
stalls, reads nothing or goes away holds only its own connection (aiohttp's), never the app or the loop. Why not
an ASGI adapter package (aiohttp-asgi): the one such app here needs no streaming, and an adapter's streaming path
is where a stalled client could hold a task of the app; twenty lines that cannot stream are easier to trust.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web

from .errors import ApiError

__all__ = ["SCOPE_FETCH", "AsgiApp", "call_asgi"]

# The ASGI scope's key of a request's in-process reads of the HTTP API (api/mcp.py puts it, the MCP server's tools
# read through it: integrations/mcp_http.py)
SCOPE_FETCH = "nself_analytics.fetch"

Message = MutableMapping[str, Any]
AsgiApp = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]
MAX_ANSWER_BYTES = 8 * 1024 * 1024


def _scope(request: web.Request, extra: dict[str, Any]) -> dict[str, Any]:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) and len(peer) >= 2 else None
    headers = [(name.lower(), value) for name, value in request.raw_headers]
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}", "method": request.method,
        "scheme": request.scheme, "path": request.path, "raw_path": request.raw_path.split("?")[0].encode(),
        "query_string": request.query_string.encode(), "root_path": "", "headers": headers, "client": client,
        "server": None, "state": {}, **extra,
    }


async def call_asgi(app: AsgiApp, request: web.Request, body: bytes, extra_scope: dict[str, Any],
                    max_answer: int = MAX_ANSWER_BYTES) -> web.Response:
    """``app``'s answer to ``request`` (whose body, already read, is ``body``); ``extra_scope`` is added to the
    ASGI scope. An answer over ``max_answer`` bytes, or none, is an ApiError (502)."""
    sent_body = False
    done = asyncio.Event()
    status = 0
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []
    size = 0

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()  # asked again: only to learn of a disconnect, which is news after the answer only
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = int(message["status"])
            headers.extend((k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ()))
        elif message["type"] == "http.response.body":
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > max_answer:
                raise ApiError(502, "The answer is too large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                done.set()

    try:
        await app(_scope(request, extra_scope), receive, send)
    finally:
        done.set()
    if not status:
        raise ApiError(502, "No answer")
    response = web.Response(status=status, body=b"".join(chunks))
    for name, value in headers:
        if name.lower() not in ("content-length", "transfer-encoding", "connection"):
            response.headers.add(name, value)
    return response
