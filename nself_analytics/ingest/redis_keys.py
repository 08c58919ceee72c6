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
    "DEAD_LETTER_KEY",
    "DEDUPE_PREFIX",
    "DRAIN_GROUP",
    "DROPPED_KEY",
    "NAMES_PREFIX",
    "PG_POOL",
    "PREFIX",
    "PRODUCER",
    "QUEUE_BYTES_KEY",
    "READ_POOL",
    "REDIS",
    "SETTINGS",
    "STREAM_KEY",
    "WORKER_POOL",
]

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
# Queue entries the drain could not store (see deadletters.py). Bounded by ANALYTICS_DEAD_LETTER_MAX entries
# and trimmed to the retention window by the prune job (no key TTL: a TTL would drop them all at once).
DEAD_LETTER_KEY = PREFIX + "dead"
# Bytes of the payloads in the ingest stream: added by the enqueue script, taken off by the drain in the same
# transaction as its XDEL; reset to 0 whenever the stream is empty. No TTL: it describes the stream.
QUEUE_BYTES_KEY = PREFIX + "events:bytes"
# Sorted set per account (key NAMES_PREFIX + account): event name -> Unix time last seen; at most
# ANALYTICS_MAX_EVENT_NAMES members. TTL: the retention window, renewed by every use; members older than the
# window are removed by the hourly maintenance.
NAMES_PREFIX = PREFIX + "names:"
# Hash: source account -> events not stored because they were older than the retention window (read by /health).
# No TTL: a running total since the Redis data began.
DROPPED_KEY = PREFIX + "dropped:too_old"
