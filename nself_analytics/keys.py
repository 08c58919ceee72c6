"""Typed application state keys and the Redis key names (all under one prefix)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import aiopg
    import redis.asyncio as aioredis

    from .config import Settings
    from .queue import Producer

__all__ = [
    "ANALYTICS_APP",
    "COUNTER_PREFIX",
    "DEDUPE_PREFIX",
    "DRAIN_GROUP",
    "PG_POOL",
    "PREFIX",
    "PRODUCER",
    "REDIS",
    "SETTINGS",
    "STREAM_KEY",
]

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
# On the root app: the analytics sub-app mounted at /analytics (its state holds the pools).
ANALYTICS_APP: web.AppKey[web.Application] = web.AppKey("analytics_app")
PG_POOL: web.AppKey[aiopg.Pool] = web.AppKey("pg_pool")
# Read queries' pool: a streaming replica's (ANALYTICS_READ_DATABASE_URL), else PG_POOL itself. Use pools.read_pool.
READ_POOL: web.AppKey[aiopg.Pool] = web.AppKey("read_pool")
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis")
PRODUCER: web.AppKey[Producer] = web.AppKey("producer")

PREFIX = "np_analytics:"
# The ingest queue: a Redis Stream; entries are deleted once committed to Postgres, so its length
# is the number of events in flight. No TTL: entries live until drained.
STREAM_KEY = PREFIX + "events"
DRAIN_GROUP = "drain"
# Seen message ids, so a retried message is enqueued once. TTL: DEDUPE_TTL_SECONDS (24 h, as Segment).
DEDUPE_PREFIX = PREFIX + "m:"
DEDUPE_TTL_SECONDS = 86_400
# Real-time counters, one key per period bucket; TTLs in queue.COUNTER_PERIODS.
COUNTER_PREFIX = PREFIX + "c:"
