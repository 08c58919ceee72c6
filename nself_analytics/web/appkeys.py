"""Typed application state keys (aiohttp AppKeys): the settings, the pools, Redis and the ingest producer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import aiopg
    import redis.asyncio as aioredis

    from ..config import Settings
    from ..ingest.queue import Producer
    from .asgi import AsgiApp

__all__ = ["ANALYTICS_APP", "MCP_APP", "PG_POOL", "PRODUCER", "READ_POOL", "REDIS", "SETTINGS", "WORKER_POOL"]

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
# On the root app: the analytics sub-app mounted at /analytics (its state holds the pools).
ANALYTICS_APP: web.AppKey[web.Application] = web.AppKey("analytics_app")
PG_POOL: web.AppKey[aiopg.Pool] = web.AppKey("pg_pool")
# The API's pools carry a server-side statement timeout (ANALYTICS_QUERY_TIMEOUT); handlers use pools.reading
# (analytical reads: a streaming replica's pool when ANALYTICS_READ_DATABASE_URL is set, else PG_POOL) and
# pools.writing (PG_POOL: writes, saved objects). The worker (drain, aggregator, webhooks) and /health use
# WORKER_POOL, which no request can take.
READ_POOL: web.AppKey[aiopg.Pool] = web.AppKey("read_pool")
WORKER_POOL: web.AppKey[aiopg.Pool] = web.AppKey("worker_pool")
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis")
PRODUCER: web.AppKey[Producer] = web.AppKey("producer")
# The MCP server over Streamable HTTP (an ASGI app: integrations/mcp_http.py), absent without the mcp extra.
MCP_APP: web.AppKey[AsgiApp] = web.AppKey("mcp_app")
