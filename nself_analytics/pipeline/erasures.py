"""The leader's ``erasures`` loop: runs the erasure jobs (store/erasure.py) phase by phase, in bounded batches.

A job is run by one process at a time (a session advisory lock on the job id, held on the connection that runs it),
so the leader's loop and ``nself-analytics persons erase`` never run one job twice. Each phase is idempotent and
the phase is written after it ends, so a restart (or a lost leadership) resumes the job at its phase.

Redis, in the ``redis`` phase: the per-user counter keys of the erased ids (``counter_keys``: ``u:`` keys, kept
only with quotas on) are deleted; the per-event counters (``e:`` keys) are anonymous totals per time bucket and are
NOT decremented (they are bucketed by arrival time, which is not stored, and expire with their bucket: minute,
hour, day, retention); the de-duplication keys of the deleted events' message ids are deleted with each batch;
dead letters whose payload carries an erased id are deleted. Entries still queued are dropped by the drain (the
suppression). The loop also keeps the Redis copy of the suppression list equal to the table (after a lift, or when
Redis lost its data).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import cast

import aiopg
import redis.asyncio as aioredis
import structlog

from ..config import Settings
from ..ingest.redis_keys import COUNTER_PREFIX, DEAD_LETTER_KEY, SUPPRESSED_KEY, dedupe_prefix
from ..ingest.suppressed import publish, published_count
from ..store import erasure, erasure_steps, suppressions
from ..store.rollups.aggregates import materialize

__all__ = ["EVENT_BATCH", "ErasureRunner", "counter_key_user"]

log = structlog.get_logger("nself_analytics.pipeline.erasure")

EVENT_BATCH = 5_000   # events per delete statement
ROW_BATCH = 5_000     # fragments, outbox rows per statement
REDIS_BATCH = 500     # keys per UNLINK
_JOB_LOCK = "hashtextextended('np_analytics_erasure:' || %(id)s, 0)"


def counter_key_user(key: str, account: str) -> str | None:
    """The user id of a per-user counter key of ``account`` (``counter_keys.increments``), else None."""
    scope = COUNTER_PREFIX + ("" if account == "primary" else f"a:{len(account)}:{account}:")
    if not key.startswith(scope + "u:"):
        return None
    rest = key[len(scope) + 2:]
    parts = rest.split(":", 2)  # period, bucket, "<len>:<event>:<user>"
    if len(parts) < 3:
        return None
    length, _, tail = parts[2].partition(":")
    if not length.isdigit() or len(tail) < int(length) + 1 or tail[int(length)] != ":":
        return None
    return tail[int(length) + 1:]


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _payload_ids(payload: str) -> set[str]:
    """The distinct ids a queued payload names (user, anonymous, an alias's previous id); unreadable: none."""
    try:
        item = json.loads(payload)
    except ValueError:
        return set()
    if not isinstance(item, dict):
        return set()
    ids = {item.get("user_id"), item.get("anonymous_id")}
    properties = item.get("properties")
    if isinstance(properties, dict):
        ids.add(properties.get("previous_id"))
    return {str(i) for i in ids if isinstance(i, str | int) and not isinstance(i, bool)}


class ErasureRunner:
    """Runs the open erasure jobs; one instance per process (the leader's loop) or per CLI call."""

    def __init__(self, pool: aiopg.Pool, client: aioredis.Redis, settings: Settings) -> None:
        self.pool = pool
        self.redis = client
        self.settings = settings

    async def sync_suppressions(self, force: bool = False) -> None:
        """Publish the table's suppressions to Redis when the copy differs (or was lost)."""
        async with self.pool.acquire() as conn:
            hashes = await suppressions.all_hashes(conn)
            if not force and await published_count(self.redis) == len(hashes) and (
                    not hashes or set(await self.redis.smembers(SUPPRESSED_KEY)) == set(hashes)):
                return
            await publish(self.redis, await suppressions.salt(conn), hashes)

    async def run_open(self) -> int:
        """Sync the suppression list, then run every open job this process can lock; return the jobs finished."""
        await self.sync_suppressions()
        done = 0
        async with self.pool.acquire() as conn:
            jobs = await erasure.open_jobs(conn)
        for job_id in jobs:
            done += await self.run_job(job_id)
        return done

    async def run_job(self, job_id: str) -> int:
        """Run one job to its end unless another process holds it; 1 when it finished here."""
        async with self.pool.acquire() as lock_conn:
            async with lock_conn.cursor() as cur:
                await cur.execute(f"SELECT pg_try_advisory_lock({_JOB_LOCK})", {"id": job_id})
                (locked,) = await cur.fetchone()
            if not locked:
                return 0
            try:
                return await self._run_locked(job_id)
            finally:
                async with lock_conn.cursor() as cur:
                    await cur.execute(f"SELECT pg_advisory_unlock({_JOB_LOCK})", {"id": job_id})

    async def _run_locked(self, job_id: str) -> int:
        async with self.pool.acquire() as conn:
            job = await erasure.get_job(conn, job_id)
            if job is None or job.state not in ("pending", "running"):
                return 0
            if job.phase == "queued":
                await self.sync_suppressions(force=True)  # ingest drops the ids from now on
                await erasure.set_phase(conn, job_id, "wait", barrier=True)
                job = await erasure.get_job(conn, job_id)
            while job is not None and job.phase != "done":
                if not await self._step(conn, job):
                    return 0  # waiting (older statements still running): try again on the next run
                following = erasure.PHASES[erasure.PHASES.index(job.phase) + 1]
                await erasure.set_phase(conn, job_id, following)
                job = await erasure.get_job(conn, job_id)
            if job is None:
                return 0
            await erasure.finish_job(conn, job)
        log.info("erasure_done", job=job_id, account=job.source_account_id, counts=job.counts)
        return 1

    async def _step(self, conn: aiopg.Connection, job: erasure.Job) -> bool:
        """Run ``job``'s phase to its end; False when it must wait."""
        ids, account = job.ids or [], job.source_account_id
        if job.phase == "wait":
            return job.barrier is not None and await erasure_steps.wait_for_older_statements(conn, job.barrier)
        if not ids:
            return True
        if job.phase == "events":
            await self._events(conn, job, ids)
        elif job.phase == "scrub":
            for part in await erasure_steps.partitions(conn):
                count, hours = await erasure_steps.scrub_partition(conn, part, account, ids)
                if count:
                    async with conn.cursor() as cur:
                        await erasure.add_counts(cur, job.id, {"events_scrubbed": count}, hours)
        elif job.phase == "people":
            await self._count(conn, job, await erasure_steps.delete_people(conn, account, ids))
        elif job.phase == "rollup_rows":
            counts = await erasure_steps.delete_rollup_rows(conn, account, ids, job.hours or [], job.names or [])
            days = []
            while batch := await erasure_steps.delete_web_fragments(conn, account, ids, ROW_BATCH):
                days += batch
                counts["web_fragments"] = counts.get("web_fragments", 0) + len(batch)
            await erasure_steps.rebuild_web_days(conn, account, days)
            await self._count(conn, job, counts)
        elif job.phase == "outbox":
            total = 0
            while gone := await erasure_steps.delete_outbox_batch(conn, account, ids, ROW_BATCH):
                total += gone
            await self._count(conn, job, {"webhook_deliveries": total})
        elif job.phase == "redis":
            await self._count(conn, job, await self._redis(account, set(ids)))
        elif job.phase == "rollups":
            return await self._recompute(conn, job)
        return True

    async def _count(self, conn: aiopg.Connection, job: erasure.Job, counts: dict[str, int]) -> None:
        async with conn.cursor() as cur:
            await erasure.add_counts(cur, job.id, counts)

    async def _events(self, conn: aiopg.Connection, job: erasure.Job, ids: list[str]) -> None:
        account = job.source_account_id
        for part in await erasure_steps.partitions(conn):
            while True:
                count, hours, names, message_ids = await erasure_steps.delete_event_batch(
                    conn, part, account, ids, EVENT_BATCH)
                if count:
                    await self._unlink(dedupe_prefix(account) + m for m in message_ids)
                    async with conn.cursor() as cur:
                        await erasure.add_counts(cur, job.id, {"events": count}, hours, names)
                if count < EVENT_BATCH:
                    break

    async def _unlink(self, keys: Iterable[str]) -> int:
        batch: list[str] = []
        gone = 0
        for key in keys:
            batch.append(key)
            if len(batch) >= REDIS_BATCH:
                gone += int(await self.redis.unlink(*batch))
                batch = []
        if batch:
            gone += int(await self.redis.unlink(*batch))
        return gone

    async def _redis(self, account: str, ids: set[str]) -> dict[str, int]:
        scope = COUNTER_PREFIX + ("" if account == "primary" else f"a:{len(account)}:{account}:")
        found = [key async for key in self.redis.scan_iter(match=f"{_escape_glob(scope)}u:*", count=1000)
                 if counter_key_user(key, account) in ids]
        counters = await self._unlink(found)
        dead: list[str] = []
        start = "-"
        while page := cast(list[tuple[str, dict[str, str]]],  # decode_responses: str
                           await self.redis.xrange(DEAD_LETTER_KEY, min=start, max="+", count=1000)):
            for entry_id, fields in page:
                payload = fields.get("e", "")
                if fields.get("account", "primary") == account and _payload_ids(payload) & ids:
                    dead.append(entry_id)
            start = "(" + page[-1][0]
        dead_letters = int(await self.redis.xdel(DEAD_LETTER_KEY, *dead)) if dead else 0
        return {"counter_keys": counters, "dead_letters": dead_letters}

    async def _recompute(self, conn: aiopg.Connection, job: erasure.Job) -> bool:
        """Fold dirty hours until none of the job's hours is dirty (the aggregator's own rebuild)."""
        hours = job.hours or []
        for _ in range(100):
            if not hours or await erasure_steps.hours_dirty(conn, job.source_account_id, hours) == 0:
                return True
            if not await materialize(conn, self.settings.retention_days):
                return await erasure_steps.hours_dirty(conn, job.source_account_id, hours) == 0
        return False
