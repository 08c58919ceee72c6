"""The background runtime of one process: every loop runs under one Supervisor (pipeline/supervisor.py): the drainers,
the facts task, the webhook sender and leader election in every process; the aggregator (and the upgrade's backfill),
maintenance, event-name deletions, erasures, alert checks and report schedules in the leader only. Started and
stopped with the app (host/app.py: worker_ctx); /health shows the tasks."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid

import aiopg
import redis.asyncio as aioredis
import structlog
from aiohttp import web

from ..config import Settings
from ..ingest import name_admin
from ..ingest.redis_keys import (
    NAME_DROPPED_PREFIX,
    NAME_FIRST_PREFIX,
    NAMES_PREFIX,
)
from ..store.compaction import compact_closed_days, ensure_open_indexes
from ..store.event_names import delete_events
from ..store.message_ids import prune_message_ids
from ..store.partitions import maintain_partitions
from ..store.rollups.aggregates import expire_activity
from . import deadletters
from .aggregator import Aggregator
from .alert_checks import AlertChecker
from .backfill import run_backfills
from .drain import DRAINERS, FINAL_DRAIN_SECONDS, MAINTAIN_INTERVAL_SECONDS, Drainer
from .erasures import ErasureRunner
from .facts import Facts
from .leader import Leadership
from .report_jobs import ReportScheduler
from .supervisor import Supervisor
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


class Worker:
    """The background tasks of one process: drainers, facts and the webhook sender in every process; the aggregate,
    maintenance and name-deletion schedules only in the leader (one process across all processes and instances:
    pipeline/leader.py). A later loop is one more ``supervisor.loop(...)`` or ``supervisor.every(...)`` here."""

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
        self.facts = Facts(pool, client, settings)
        self.aggregator = Aggregator(pool, settings.retention_days)
        assert settings.database_url is not None, "database_url must be resolved before the worker starts"
        self.leadership = Leadership(settings.database_url)
        self.supervisor = sup = Supervisor(lambda: self.leadership.held)
        for i, drainer in enumerate(self.drainers):
            sup.loop(f"drain-{i}", drainer.step)
        sup.loop("leadership", self.leadership.step, on_stop=self.leadership.release)
        sup.loop("facts", self.facts.step)
        sup.loop("webhooks", self.sender.step, on_stop=self.sender.close)
        sup.every("aggregate", settings.aggregate_interval, self.aggregate)
        sup.every("maintain", MAINTAIN_INTERVAL_SECONDS, self.maintain)
        sup.every("delete_names", NAME_DELETE_INTERVAL_SECONDS, self.delete_names)
        sup.every("alerts", settings.alert_check_interval, self.alerts.run_once)
        sup.every("erasures", ERASURE_INTERVAL_SECONDS, self.erasure.run_open)
        sup.every("reports", settings.alert_check_interval, self.reports.run_once)
        sup.states["aggregate"].detail = self.aggregator.detail()

    async def aggregate(self) -> int:
        """Fold the dirty hours (pipeline/aggregator.py: a timed-out hour is quarantined); then, while the upgrade's
        backfill is pending, its batches, each followed by the dirty hours again (pipeline/backfill.py). Return the
        dirty hours folded."""
        total = 0

        async def fold() -> None:
            nonlocal total
            total += await self.aggregator.run()

        try:
            await fold()
            async with self.pool.acquire() as conn:
                await run_backfills(conn, self.settings.retention_days,
                                    lambda: self.leadership.held and not self.supervisor.stop_event.is_set(), fold)
            return total
        finally:
            self.supervisor.states["aggregate"].detail = self.aggregator.detail()

    def drain_progress(self) -> float:
        """When a drainer of this process last completed a round (committed a batch, or found nothing to take)."""
        return max(d.progressed for d in self.drainers)

    async def maintain(self) -> list[str]:
        """Keep what grows inside the retention window: partitions (created ahead, pruned behind, closed days
        compacted: store/compaction.py), the dead-letter stream, and the message ids of the de-duplication window;
        return the partitions dropped."""
        retention = self.settings.retention_days
        async with self.pool.acquire() as conn:
            dropped = await maintain_partitions(conn, retention)
            await ensure_open_indexes(conn)
            await compact_closed_days(conn)
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
        self.supervisor.start()

    async def stop(self) -> None:
        """Stop the loops (errors are logged by the supervisor), then drain what is queued (best effort) so a
        graceful stop leaves little behind."""
        await self.supervisor.stop()
        try:
            drained = await asyncio.wait_for(asyncio.gather(*(d.drain_until_empty() for d in self.drainers)),
                                             timeout=FINAL_DRAIN_SECONDS)
            log.info("final_drain", entries=sum(drained))
            await asyncio.wait_for(self.facts.run_until_empty(), timeout=FINAL_DRAIN_SECONDS)
        except Exception as exc:
            log.error("final_drain_failed", error=str(exc)[:300], exc_info=exc)


WORKER: web.AppKey[Worker] = web.AppKey("worker")
