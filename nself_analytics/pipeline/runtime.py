"""The background runtime of one process: the drainers and the webhook sender in every process, the aggregate,
maintenance, alerts and reports schedules in the leader only; started and stopped with the app (host/app.py:
worker_ctx)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from typing import Any

import aiopg
import psycopg2
import psycopg2.errors
import redis.asyncio as aioredis
import structlog
from aiohttp import web
from redis.exceptions import RedisError

from ..config import Settings
from ..ingest import name_admin
from ..ingest.redis_keys import (
    NAME_DROPPED_PREFIX,
    NAME_FIRST_PREFIX,
    NAMES_PREFIX,
)
from ..store.event_names import delete_events
from ..store.message_ids import prune_message_ids
from ..store.partitions import maintain_partitions
from ..store.rollups.aggregates import expire_activity, materialize
from ..store.tx import StatementTimeout, statement_timeouts
from . import deadletters
from .alert_checks import AlertChecker
from .backfill import run_backfills
from .drain import DRAINERS, FINAL_DRAIN_SECONDS, MAINTAIN_INTERVAL_SECONDS, Drainer
from .erasures import ErasureRunner
from .leader import LEADER_RETRY_SECONDS, Leadership
from .report_jobs import ReportScheduler
from .webhook_sender import WebhookSender

__all__ = ["WORKER", "Worker"]

log = structlog.get_logger("nself_analytics.pipeline.runtime")

# The event-name deletion job (DELETE /event-names/{name}): how often it looks, events per statement, statements
# per name and run (the rest waits for the next run, so one huge name cannot hold the leader).
NAME_DELETE_INTERVAL_SECONDS = 5.0
NAME_DELETE_BATCH = 5_000
NAME_DELETE_BATCHES_PER_RUN = 20
# The erasure jobs (DELETE /persons/{distinct_id}) and the Redis copy of the suppression list: how often they look.
ERASURE_INTERVAL_SECONDS = 2.0


async def _every(seconds: float, stop: asyncio.Event, name: str, job: Any, leadership: Leadership) -> None:
    """Run ``job`` every ``seconds`` while this process leads (checked again each LEADER_RETRY_SECONDS)."""
    while not stop.is_set():
        if not leadership.held:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), LEADER_RETRY_SECONDS)
            continue
        try:
            async with statement_timeouts():
                await job()
        except (TimeoutError, psycopg2.Error, OSError, RedisError, StatementTimeout) as exc:
            log.warning(f"{name}_failed", error=str(exc).strip()[:300])
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


class Worker:
    """The background task of one process: drainers and the webhook sender in every process; the aggregate
    and prune schedules only in the leader (one process across all processes and instances: pipeline/leader.py)."""

    def __init__(self, pool: aiopg.Pool, client: aioredis.Redis, settings: Settings) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = client
        name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.drainers = [Drainer(pool, client, settings, name=f"{name}-{i}") for i in range(DRAINERS)]
        self.sender = WebhookSender(pool, settings)
        self.alerts = AlertChecker(pool, settings)
        self.erasure = ErasureRunner(pool, client, settings)
        self.reports = ReportScheduler(pool, settings)
        assert settings.database_url is not None, "database_url must be resolved before the worker starts"
        self.leadership = Leadership(settings.database_url)
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def aggregate(self) -> int:
        """Fold the dirty hours; then, while the upgrade's backfill is pending, its batches, each followed by the
        dirty hours again (pipeline/backfill.py). Return the dirty hours folded."""
        retention = self.settings.retention_days
        total = 0

        async def fold() -> None:
            nonlocal total
            while claimed := await materialize(conn, retention):
                total += claimed

        async with self.pool.acquire() as conn:
            await fold()
            await run_backfills(conn, retention, lambda: self.leadership.held and not self.stop_event.is_set(), fold)
        return total

    async def maintain(self) -> list[str]:
        """Keep what grows inside the retention window: partitions (created ahead, pruned behind), the
        dead-letter stream, and the message ids of the de-duplication window; return the partitions dropped."""
        retention = self.settings.retention_days
        async with self.pool.acquire() as conn:
            dropped = await maintain_partitions(conn, retention)
            activity = await expire_activity(conn, retention)
            await prune_message_ids(conn, self.settings.dedupe_window)
        trimmed = await deadletters.trim_older_than(self.redis, retention * 86_400)
        oldest = time.time() - retention * 86_400
        names = 0
        async for key in self.redis.scan_iter(match=NAMES_PREFIX + "*", count=500):
            expired = await self.redis.zrangebyscore(key, "-inf", oldest)
            if expired:
                account = key[len(NAMES_PREFIX):]
                names += int(await self.redis.zrem(key, *expired))
                await self.redis.hdel(NAME_FIRST_PREFIX + account, *expired)
                await self.redis.hdel(NAME_DROPPED_PREFIX + account, *expired)
        if trimmed or activity or names:
            log.info("retention_expired", dead_letters=trimmed, activity_rows=activity, event_names=names,
                     retention_days=retention)
        return dropped

    async def delete_names(self) -> int:
        """Delete the stored events of the names whose deletion was asked (DELETE /event-names/{name}), at most
        NAME_DELETE_BATCHES_PER_RUN statements of NAME_DELETE_BATCH events per name and run; a name whose events
        are all gone ends its deletion. Return the events deleted."""
        total = 0
        for deletion in await name_admin.pending_deletions(self.redis):
            async with self.pool.acquire() as conn:
                for _ in range(NAME_DELETE_BATCHES_PER_RUN):
                    gone = await delete_events(conn, deletion.account, deletion.name, NAME_DELETE_BATCH)
                    total += gone
                    if gone < NAME_DELETE_BATCH:
                        await name_admin.finish_deletion(self.redis, deletion)
                        log.info("event_name_deleted", account=deletion.account, name=deletion.name)
                        break
        return total

    def start(self) -> None:
        self.tasks = [
            *(asyncio.create_task(d.run(self.stop_event), name=f"drain-{i}") for i, d in enumerate(self.drainers)),
            asyncio.create_task(self.leadership.run(self.stop_event), name="leadership"),
            asyncio.create_task(_every(self.settings.aggregate_interval, self.stop_event, "aggregate",
                                       self.aggregate, self.leadership), name="aggregate"),
            asyncio.create_task(_every(MAINTAIN_INTERVAL_SECONDS, self.stop_event, "maintain", self.maintain,
                                       self.leadership), name="maintain"),
            asyncio.create_task(_every(NAME_DELETE_INTERVAL_SECONDS, self.stop_event, "delete_names",
                                       self.delete_names, self.leadership), name="delete_names"),
            asyncio.create_task(_every(self.settings.alert_check_interval, self.stop_event, "alerts",
                                       self.alerts.run_once, self.leadership), name="alerts"),
            asyncio.create_task(_every(ERASURE_INTERVAL_SECONDS, self.stop_event, "erasures", self.erasure.run_open,
                                       self.leadership), name="erasures"),
            asyncio.create_task(_every(self.settings.alert_check_interval, self.stop_event, "reports",
                                       self.reports.run_once, self.leadership), name="reports"),
            asyncio.create_task(self.sender.run(self.stop_event), name="webhooks"),
        ]

    async def stop(self) -> None:
        """Stop the loops, then drain what is queued (best effort) so a graceful stop leaves little behind."""
        self.stop_event.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        try:
            drained = await asyncio.wait_for(asyncio.gather(*(d.drain_until_empty() for d in self.drainers)),
                                             timeout=FINAL_DRAIN_SECONDS)
            log.info("final_drain", entries=sum(drained))
        except (TimeoutError, RedisError, OSError, psycopg2.Error) as exc:
            log.warning("final_drain_failed", error=str(exc)[:300])


WORKER: web.AppKey[Worker] = web.AppKey("worker")
