"""The MCP server over Streamable HTTP, inside the service: ``POST /analytics/mcp`` (api/mcp.py) calls :class:`McpHttp`.

The same tools as ``nself-analytics mcp`` (mcp_server.py ``build_tools``), served by the official SDK's session
manager in its stateless JSON-response mode: every POST is one JSON-RPC message answered by one JSON body (no
SSE stream, no session), so nothing outlives the request and a client that stalls holds nothing but its own
connection. The manager's task group runs in a task of its own (:meth:`McpHttp.start`): anyio's task group is
entered and left in one task, whatever tasks aiohttp's start-up and clean-up run in.

The tools do not go over the network: the web layer puts a ``fetch`` into the ASGI scope (under ``scope_key``), the
request's own credential's in-process GET of the HTTP API (its answer's status and JSON), and the tools of
that request call it: what a token (a site token, an account-bound one) can read is what its tools can read,
with the API's own messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from mcp.server.transport_security import TransportSecuritySettings

from .client import ServiceError
from .mcp_server import build_tools

__all__ = ["Fetch", "McpHttp"]

log = structlog.get_logger("nself_analytics.integrations.mcp_http")
# (path under /analytics, query) -> (HTTP status, JSON answer or None)
Fetch = Callable[[str, Mapping[str, Any] | None], Awaitable[tuple[int, Any]]]
_FETCH: ContextVar[Fetch] = ContextVar("mcp_fetch")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _get(path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A tool's read, through the current request's Fetch; ServiceError worded as the HTTP client's."""
    status, body = await _FETCH.get()(path, {k: v for k, v in (query or {}).items() if v is not None})
    message = body.get("message") if isinstance(body, dict) else None
    if status >= 400 or not isinstance(body, dict):
        raise ServiceError(f"The analytics service answered {status}: {message or 'no JSON answer'}")
    return body


class McpHttp:
    """The tools' server and the SDK's session manager; :meth:`asgi` serves one HTTP request."""

    def __init__(self, max_body_bytes: int, scope_key: str) -> None:
        self._scope_key = scope_key  # the ASGI scope's key of the request's Fetch (web/asgi.py SCOPE_FETCH)
        server = build_tools(_get)
        # the Origin and Host checks are the web layer's (api/mcp.py): the SDK's would answer in plain text
        server.streamable_http_app(json_response=True, stateless_http=True, max_request_body_size=max_body_bytes,
                                   transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        self._manager = server.session_manager
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self, started: asyncio.Future[None]) -> None:
        try:
            async with self._manager.run():
                started.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    async def start(self) -> None:
        """Run the session manager until :meth:`stop`."""
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(started), name="mcp-http")
        await started

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An ASGI app: the request's tools read through the scope's Fetch (a context variable, copied into the
        tasks the manager starts for this request)."""
        token = _FETCH.set(scope[self._scope_key])
        try:
            await self._manager.handle_request(scope, receive, send)
        finally:
            _FETCH.reset(token)
