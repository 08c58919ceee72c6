"""The in-process background task: drain the Redis ingest stream into Postgres, materialize
aggregates every ANALYTICS_AGGREGATE_INTERVAL, prune raw partitions past retention.

Exactly once: entries are read through a consumer group, written in one transaction per batch
with ON CONFLICT on the message id, and acknowledged (then deleted) only after the commit. Entries
a crashed drainer left pending are reclaimed with XAUTOCLAIM; writing them again is harmless.
Several processes can drain one stream together, each as its own consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiopg
import psycopg2
import psycopg2.errors
import redis.asyncio as aioredis
import structlog
from aiohttp import web
from redis.exceptions import RedisError, ResponseError

from .config import Settings
from .keys import DRAIN_GROUP, PG_POOL, PREFIX, REDIS, SETTINGS, STREAM_KEY
from .store.aggregates import materialize
from .store.events import write_batch
from .store.partitions import ensure_partitions, forget_partitions, prune_partitions

__all__ = ["WORKER", "Drainer", "worker_ctx"]

log = structlog.get_logger("nself_analytics.worker")

# Entries that cannot be parsed are moved here instead of blocking the stream. No TTL: kept for inspection.
DEAD_LETTER_KEY = PREFIX + "dead"
PRUNE_INTERVAL_SECONDS = 3600.0


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


class Drainer:
    """One consumer of the ingest stream's consumer group."""

    def __init__(self, pool: aiopg.Pool, client: aioredis.Redis, settings: Settings, name: str | None = None) -> None:
        self.pool = pool
        self.redis = client
        self.settings = settings
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._group_ready = False
        self.stored = 0

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(STREAM_KEY, DRAIN_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _read(self, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        """Own pending entries first (a failed write is retried), then reclaimed ones, then new ones."""
        if not self._group_ready:
            await self.ensure_group()
        count = self.settings.batch_size
        try:
            own = await self.redis.xreadgroup(DRAIN_GROUP, self.name, {STREAM_KEY: "0"}, count=count)
            entries = own[0][1] if own else []
            if entries:
                return entries
            claimed = await self.redis.xautoclaim(STREAM_KEY, DRAIN_GROUP, self.name,
                                                  int(self.settings.reclaim_idle_seconds * 1000), "0-0", count=count)
            if claimed[1]:
                log.info("entries_reclaimed", count=len(claimed[1]))
                return list(claimed[1])
            new = await self.redis.xreadgroup(DRAIN_GROUP, self.name, {STREAM_KEY: ">"}, count=count, block=block_ms)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # the stream was deleted (e.g. Redis wiped): create the group again
                self._group_ready = False
                return []
            raise
        return new[0][1] if new else []

    async def drain_once(self, block_ms: int | None = None) -> int:
        """Read one batch, commit it to Postgres, then acknowledge it; return the entries handled."""
        entries = await self._read(block_ms)
        entries = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
        if not entries:
            return 0
        events: list[dict[str, Any]] = []
        identifies: list[dict[str, Any]] = []
        dead: list[tuple[str, str]] = []
        for entry_id, fields in entries:
            raw = fields.get("e", "")
            try:
                item = json.loads(raw)
                (identifies if item.get("type") == "identify" else events).append(item)
            except (ValueError, AttributeError):
                dead.append((entry_id, raw))
        days = {_parse_ts(e["ts"]).astimezone(UTC).date() for e in events}
        async with self.pool.acquire() as conn:
            await ensure_partitions(conn, days)
            try:
                stored = await write_batch(conn, events, identifies)
            except psycopg2.errors.CheckViolation:
                forget_partitions()  # a partition was dropped behind our back (pruned elsewhere): recreate it
                raise
        ids = [entry_id for entry_id, _ in entries]
        async with self.redis.pipeline(transaction=True) as pipe:
            for entry_id, raw in dead:
                pipe.xadd(DEAD_LETTER_KEY, {"id": entry_id, "e": raw})
            pipe.xack(STREAM_KEY, DRAIN_GROUP, *ids)
            pipe.xdel(STREAM_KEY, *ids)
            await pipe.execute()
        self.stored += stored
        log.info("batch_flushed", entries=len(ids), stored=stored, identifies=len(identifies), dead=len(dead))
        return len(ids)

    async def drain_until_empty(self) -> int:
        """Drain until the stream holds nothing this consumer can take (tests and graceful stop)."""
        total = 0
        while True:
            handled = await self.drain_once(block_ms=None)
            if handled == 0:
                return total
            total += handled

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set; on errors (a store restarting) wait and try again."""
        delay = 0.1
        while not stop.is_set():
            try:
                await self.drain_once(block_ms=500)
                delay = 0.1
            except (TimeoutError, RedisError, OSError, psycopg2.Error) as exc:
                log.warning("drain_failed", error=str(exc).strip()[:300], retry_in=delay)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 5.0)


async def _every(seconds: float, stop: asyncio.Event, name: str, job: Any) -> None:
    while not stop.is_set():
        try:
            await job()
        except (TimeoutError, psycopg2.Error, OSError) as exc:
            log.warning(f"{name}_failed", error=str(exc).strip()[:300])
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


class Worker:
    """The background task of one process: a drainer plus the aggregate and prune schedules."""

    def __init__(self, pool: aiopg.Pool, client: aioredis.Redis, settings: Settings) -> None:
        self.settings = settings
        self.pool = pool
        self.drainer = Drainer(pool, client, settings)
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def aggregate(self) -> int:
        async with self.pool.acquire() as conn:
            total = 0
            while claimed := await materialize(conn, self.settings.retention_days):
                total += claimed
            return total

    async def prune(self) -> list[str]:
        async with self.pool.acquire() as conn:
            return await prune_partitions(conn, self.settings.retention_days)

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self.drainer.run(self.stop_event), name="drain"),
            asyncio.create_task(_every(self.settings.aggregate_interval, self.stop_event, "aggregate",
                                       self.aggregate), name="aggregate"),
            asyncio.create_task(_every(PRUNE_INTERVAL_SECONDS, self.stop_event, "prune", self.prune), name="prune"),
        ]

    async def stop(self) -> None:
        """Stop the loops, then drain what is queued (best effort) so a graceful stop leaves little behind."""
        self.stop_event.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        try:
            drained = await asyncio.wait_for(self.drainer.drain_until_empty(), timeout=20)
            log.info("final_drain", entries=drained)
        except (TimeoutError, RedisError, OSError, psycopg2.Error) as exc:
            log.warning("final_drain_failed", error=str(exc)[:300])


WORKER: web.AppKey[Worker] = web.AppKey("worker")


async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
    worker = Worker(app[PG_POOL], app[REDIS], app[SETTINGS])
    app[WORKER] = worker
    worker.start()
    log.info("worker_started", consumer=worker.drainer.name)
    yield
    await worker.stop()
