"""The app factory: ``create_app(settings)`` is the sub-app the host mounts at ``/analytics``."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiopg
import redis.asyncio as aioredis
import structlog
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .. import api
from ..api.mcp import INSTALL
from ..config import Settings
from ..ingest.queue import Producer
from ..pipeline.runtime import WORKER, Worker
from ..web.access import bind_access
from ..web.appkeys import ANALYTICS_APP, MCP_APP, PG_POOL, PRODUCER, READ_POOL, REDIS, SETTINGS, WORKER_POOL
from ..web.asgi import SCOPE_FETCH, Message
from ..web.body import MAX_BODY_BYTES
from ..web.edge import bind_policies, edge_middleware
from ..web.pools import create_api_pool
from ..web.routing import PUBLIC, WRITE, Route, access_table, add_routes

__all__ = ["MOUNT", "ROOT_ROUTES", "create_app", "create_root_app"]

log = structlog.get_logger("nself_analytics.host.app")
MOUNT = "/analytics"
# Segment's tracking API paths, also served at the root (see _segment_at_root)
SEGMENT_AT_ROOT = "/v1/{tail:.+}"


def redis_client(url: str) -> aioredis.Redis:
    """A Redis client that reconnects with backoff when the server restarts."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=8),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        health_check_interval=15,
        socket_connect_timeout=5,
        max_connections=64,
    )


# The worker's pool (drain, aggregator, maintenance, webhook sender, /health): connections no request can take.
WORKER_POOL_SIZE = 8


async def _postgres_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.database_url, "database_url must be resolved before the app starts"
    # every background statement runs under ANALYTICS_BACKGROUND_TIMEOUT (the drain's writes under their own,
    # sized per batch): nothing the data controls can hold a statement forever
    background_ms = max(1, int(settings.background_timeout * 1000))
    worker_pool = await aiopg.create_pool(settings.database_url, minsize=1, maxsize=WORKER_POOL_SIZE, timeout=30,
                                          pool_recycle=300, options=f"-c statement_timeout={background_ms}")
    pools = [worker_pool]
    try:
        app[WORKER_POOL] = worker_pool
        app[PG_POOL] = app[READ_POOL] = await create_api_pool(settings.database_url, settings)
        pools.append(app[PG_POOL])
        if settings.read_database_url:  # every analytical read goes to the replica (pools.reading)
            app[READ_POOL] = await create_api_pool(settings.read_database_url, settings)
            pools.append(app[READ_POOL])
    except BaseException:
        for each in pools:
            each.close()
        raise
    yield
    for each in pools:
        each.close()
        await each.wait_closed()


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.redis_url, "redis_url must be resolved before the app starts"
    client = redis_client(settings.redis_url)
    app[REDIS] = client
    app[PRODUCER] = Producer(client, settings)
    yield
    await app[PRODUCER].close()
    await client.aclose()


class _LazyMcp:
    """The MCP server, imported and started by the first POST /analytics/mcp: the SDK with pydantic costs a worker
    28.5 MB of memory (measured), which a service nobody asks over MCP need not hold."""

    def __init__(self) -> None:
        self._server: Any = None
        self._lock = asyncio.Lock()

    async def asgi(self, scope: Message, receive: Callable[[], Awaitable[Message]],
                   send: Callable[[Message], Awaitable[None]]) -> None:
        if self._server is None:
            async with self._lock:
                if self._server is None:
                    try:
                        from ..integrations.mcp_http import McpHttp
                    except ImportError as exc:  # installed but broken: the same 501 as without the extra
                        log.warning("mcp_http_unavailable", reason=str(exc)[:200], install=INSTALL)
                        await _answer_json(send, 501, f"The MCP server is not installed on this service: "
                                                      f"{INSTALL}, then restart it")
                        return
                    server = McpHttp(MAX_BODY_BYTES, SCOPE_FETCH)
                    await server.start()
                    self._server = server
        await self._server.asgi(scope, receive, send)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()


async def _answer_json(send: Callable[[Message], Awaitable[None]], status: int, message: str) -> None:
    body = json.dumps({"status": "error", "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _mcp_ctx(app: web.Application) -> AsyncIterator[None]:
    """The MCP server over Streamable HTTP (POST /analytics/mcp), when the mcp extra is installed (started on first
    use); without it the route answers 501 naming the install command and nothing else changes."""
    if importlib.util.find_spec("mcp") is None:
        log.info("mcp_http_unavailable", reason="No module named 'mcp'", install=INSTALL)
        yield
        return
    server = _LazyMcp()
    app[MCP_APP] = server.asgi
    try:
        yield
    finally:
        await server.stop()


def create_app(settings: Settings, *, worker: bool = False) -> web.Application:
    """Build the analytics sub-app; with ``worker`` the background drain/aggregate task runs inside it."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app.cleanup_ctx.extend([_postgres_ctx, _redis_ctx, _mcp_ctx])
    if worker:
        app.cleanup_ctx.append(worker_ctx)
    add_routes(app, api.ROUTES)  # the router, from the one route table (api/__init__.py)
    bind_access(app, access_table(api.ROUTES))  # a route of the router without a declaration: no app
    # one middleware for request id, forwarded headers, errors, CORS, the NUL guard and access (web/edge.py)
    app.middlewares.append(edge_middleware(settings, bind_policies(app)))
    return app


async def _to_dashboard(request: web.Request) -> web.Response:
    """``/analytics`` and ``/analytics/`` (the address the README gives) lead to the dashboard."""
    raise web.HTTPFound(f"{MOUNT}/dashboard")


async def _segment_at_root(request: web.Request) -> web.StreamResponse:
    """Segment's tracking API at the root as well: Segment's and RudderStack's libraries configured with only a
    host post to ``<host>/v1/...`` (@segment/analytics-node drops any path of the host), so ``/v1/...`` is served
    exactly as ``/analytics/v1/...``, through the sub-app's middlewares (credentials, CORS, error shapes)."""
    return await request.app._handle(request.clone(rel_url=MOUNT + request.rel_url.raw_path_qs))


# Other trackers' paths also served at the root (their SDKs given only a host post there): root path -> the
# sub-app's path. PostHog's root /batch and /track are PostHog's (the sub-app's /batch/ and /track/), since
# /analytics/batch and /analytics/track are this service's own ingest routes (api/posthog.py says which is which).
TRACKERS_AT_ROOT: dict[str, str] = {**api.posthog.AT_ROOT, **api.webtrackers.AT_ROOT}


async def _tracker_at_root(request: web.Request) -> web.StreamResponse:
    """PostHog's, Plausible's and Umami's paths at the root, served by the sub-app's routes (through its
    middlewares: credentials, CORS, error shapes) exactly as under ``/analytics``."""
    path = request.rel_url.raw_path
    target = MOUNT + TRACKERS_AT_ROOT.get(path, path)
    query = request.rel_url.raw_query_string
    return await request.app._handle(request.clone(rel_url=target + (f"?{query}" if query else "")))


def _trackers_at_root() -> list[Route]:
    """The root's routes of the other trackers: each sub-app route of a path of TRACKERS_AT_ROOT, at the root."""
    out = []
    for root_path, sub_path in TRACKERS_AT_ROOT.items():
        slug = re.sub(r"\W+", "_", root_path.strip("/")).strip("_") + ("_slash" if root_path.endswith("/") else "")
        for route in (r for r in api.ROUTES if r.path == sub_path):
            out.append(Route(route.method, root_path, _tracker_at_root, route.access,
                             name=f"root.{route.method.lower()}_{slug}", tags=route.tags,
                             summary=f"{route.summary} (at the root)", op_id=f"root_{route.operation_id}",
                             note=route.note or f"served as {MOUNT}{sub_path}"))
    return out


# The root app's own routes (outside the mount; no access middleware: /v1/... is handled by the sub-app's)
ROOT_ROUTES = (
    Route("GET", MOUNT, _to_dashboard, PUBLIC, name="root.index", tags=("Service",), summary="The dashboard",
          note="redirects to /analytics/dashboard"),
    # before the sub-app claims it
    Route("GET", MOUNT + "/", _to_dashboard, PUBLIC, name="root.index_slash", tags=("Service",),
          summary="The dashboard", note="redirects to /analytics/dashboard"),
    Route("*", SEGMENT_AT_ROOT, _segment_at_root, WRITE, name="root.segment", tags=("Segment API",),
          summary="Segment's tracking API at the root", note="Segment's tracking API at the root, served as "
                                                            "/analytics/v1/..."),
    *_trackers_at_root(),
)


def create_root_app(settings: Settings, *, worker: bool = True) -> web.Application:
    """The host application: the analytics sub-app mounted at ``/analytics``, Segment's ``/v1/...`` routes and
    PostHog's, Plausible's and Umami's tracker paths at the root too, and ``/analytics`` redirecting to the
    dashboard."""
    root = web.Application(client_max_size=MAX_BODY_BYTES)
    add_routes(root, ROOT_ROUTES)
    sub = create_app(settings, worker=worker)
    root[ANALYTICS_APP] = sub
    root.add_subapp(MOUNT, sub)
    return root


async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
    worker = Worker(app[WORKER_POOL], app[REDIS], app[SETTINGS])
    app[WORKER] = worker
    worker.start()
    log.info("worker_started", consumers=[d.name for d in worker.drainers])
    yield
    await worker.stop()
