"""GET /health: up/down of Postgres and Redis for anyone; with a token serving every account, also the version,
queue depth, dead letters, events dropped as older than the retention window or for their event name (by reason),
event-name deletions in progress, aggregate lag, the upgrade's backfills (how far down each has rebuilt), the
stores' error text (which can name hosts, users and paths) and the background tasks (``tasks``: pipeline/supervisor.py).

Unhealthy (503, ``"healthy": false``): a store unreachable; the drain made no progress for DRAIN_STALL_SECONDS while
the queue holds entries; a background task failing for more than FAILING_LIMIT_SECONDS."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .. import __version__
from ..ingest.redis_keys import (
    DEAD_LETTER_KEY,
    DRAIN_GROUP,
    DROPPED_KEY,
    DROPPED_SUPPRESSED_KEY,
    LINKS_REFUSED_KEY,
    NAME_DELETIONS_KEY,
    NAMES_DROPPED_KEY,
    STREAM_KEY,
)
from ..pipeline.runtime import WORKER
from ..pipeline.supervisor import FAILING_LIMIT_SECONDS, external_tasks
from ..store.backfills import backfills
from ..store.rollups.aggregates import aggregate_lag_seconds
from ..web.appkeys import READ_POOL, REDIS, SETTINGS, WORKER_POOL
from ..web.auth import grant_of
from ..web.routing import PUBLIC, Route


async def _postgres(request: web.Request) -> dict[str, Any]:
    try:
        async with asyncio.timeout(3):
            # the worker's pool: a health check must not wait behind slow reads
            async with request.config_dict[WORKER_POOL].acquire() as conn:
                lag = await aggregate_lag_seconds(conn)
                states = await backfills(conn)
        # the upgrade's backfills (store/backfills.py): reads stay exact while one runs, only slower
        progress = [{"name": b.name, "finished": not b.pending, "done_down_to": _iso(b.position),
                     "down_to": _iso(b.lo), "batches": b.batches, "hours": b.hours,
                     "updated_at": _iso(b.updated_at)} for b in states]
        return {"postgres": {"reachable": True}, "aggregate_lag_seconds": round(lag, 3), "backfills": progress}
    except Exception as exc:
        return {"postgres": {"reachable": False, "error": str(exc).strip()[:200] or type(exc).__name__},
                "aggregate_lag_seconds": None, "backfills": None}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


async def _redis(request: web.Request) -> dict[str, Any]:
    client = request.config_dict[REDIS]
    try:
        async with asyncio.timeout(3):
            async with client.pipeline(transaction=False) as pipe:
                pipe.ping()
                pipe.xlen(STREAM_KEY)
                pipe.xlen(DEAD_LETTER_KEY)
                pipe.hgetall(DROPPED_KEY)
                pipe.hgetall(NAMES_DROPPED_KEY)
                pipe.hlen(NAME_DELETIONS_KEY)
                pipe.hgetall(DROPPED_SUPPRESSED_KEY)
                pipe.hgetall(LINKS_REFUSED_KEY)
                _ping, depth, dead, dropped, by_name, deleting, suppressed, links = await pipe.execute()
            pending = 0
            try:
                summary = await client.xpending(STREAM_KEY, DRAIN_GROUP)
                pending = int(summary.get("pending", 0))
            except Exception:  # no group yet: nothing pending
                pending = 0
        return {"redis": {"reachable": True}, "queue_depth": int(depth), "queue_pending": pending,
                "dead_letters": int(dead), "dropped_too_old": sum(int(v) for v in dropped.values()),
                "dropped_event_names": _by_reason(by_name), "event_name_deletions": int(deleting),
                "dropped_suppressed": sum(int(v) for v in suppressed.values()),
                "refused_links": _refused(links)}
    except Exception as exc:
        return {"redis": {"reachable": False, "error": str(exc).strip()[:200] or type(exc).__name__},
                "queue_depth": None, "queue_pending": None, "dead_letters": None, "dropped_too_old": None,
                "dropped_event_names": None, "event_name_deletions": None, "dropped_suppressed": None,
                "refused_links": None}


def _refused(counts: dict[Any, Any]) -> dict[str, int]:
    """Identity links the drain refused, summed over accounts by reason (identified, linked, cap)."""
    totals = {"identified": 0, "linked": 0, "cap": 0}
    for field, count in counts.items():
        reason = (field.decode() if isinstance(field, bytes) else str(field)).rpartition("|")[2]
        totals[reason] = totals.get(reason, 0) + int(count)
    return totals


def _by_reason(counts: dict[Any, Any]) -> dict[str, int]:
    """Messages dropped for their event name, summed over accounts by reason (cap, public_daily, blocked)."""
    totals = {"cap": 0, "public_daily": 0, "blocked": 0}
    for field, count in counts.items():
        reason = (field.decode() if isinstance(field, bytes) else str(field)).rpartition("|")[2]
        totals[reason] = totals.get(reason, 0) + int(count)
    return totals


# Seconds the replica's replay is behind: 0 when it has replayed all it received, else the age of its last replay.
_REPLICA_LAG = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END
"""


async def _replica(request: web.Request) -> dict[str, Any]:
    """The read replica (ANALYTICS_READ_DATABASE_URL): reachable, a replica indeed, and its replay lag."""
    if not request.config_dict[SETTINGS].read_database_url:
        return {}
    try:
        async with asyncio.timeout(3):
            async with request.config_dict[READ_POOL].acquire() as conn, conn.cursor() as cur:
                await cur.execute(_REPLICA_LAG)
                in_recovery, lag = await cur.fetchone()
        return {"replica": {"reachable": True, "in_recovery": bool(in_recovery),
                            "lag_seconds": None if lag is None else round(float(lag), 3)}}
    except Exception as exc:
        return {"replica": {"reachable": False, "error": str(exc).strip()[:200] or type(exc).__name__}}


def _process(request: web.Request) -> dict[str, Any]:
    """This process (one of ANALYTICS_WORKERS) and whether it holds the leader lock (runs the aggregator)."""
    worker = request.config_dict.get(WORKER)  # none in an app built without the background task
    return {"process": {"pid": os.getpid(), "leader": bool(worker and worker.leadership.held)}}


# The drain made no progress for this long while the queue holds entries: unhealthy.
DRAIN_STALL_SECONDS = 30.0


def _tasks(request: web.Request, queue_depth: int | None) -> tuple[dict[str, Any], list[str]]:
    """The background tasks of this process (and the embedded stores' keeper's), and what makes them unhealthy."""
    worker = request.config_dict.get(WORKER)
    tasks = external_tasks(request.config_dict[SETTINGS].data_dir)
    problems = [f"{name} failing" for name, state in tasks.items() if state.get("state") == "failing"
                and time.time() - (state.get("failing_since") or time.time()) > FAILING_LIMIT_SECONDS]
    if worker is None:
        return tasks, problems
    tasks.update(worker.supervisor.snapshot())
    problems += [f"{name} failing for more than {FAILING_LIMIT_SECONDS:.0f} s"
                 for name in worker.supervisor.unhealthy()]
    stalled = time.time() - worker.drain_progress()
    if queue_depth and stalled > DRAIN_STALL_SECONDS:
        problems.append(f"the drain made no progress for {stalled:.0f} s with {queue_depth} entries queued")
    return tasks, problems


async def health(request: web.Request) -> web.Response:
    pg, rd, replica = await asyncio.gather(_postgres(request), _redis(request), _replica(request))
    reachable = pg["postgres"]["reachable"] and rd["redis"]["reachable"]
    tasks, problems = _tasks(request, rd["queue_depth"])
    ok = reachable and not problems
    body: dict[str, Any] = {"status": "success" if ok else "error", "healthy": ok}
    grant = grant_of(request)
    if grant is not None and grant.role == "token" and grant.account is None:
        body.update(version=__version__, **pg, **rd, **replica, **_process(request), tasks=tasks)
        if problems:
            body["problems"] = problems
    else:
        body.update(postgres={"reachable": pg["postgres"]["reachable"]}, redis={"reachable": rd["redis"]["reachable"]})
    if not reachable:
        body["message"] = "a store is unreachable"
    elif problems:
        body["message"] = "background work is failing"
    return web.json_response(body, status=200 if ok else 503)


ROUTES = [
    Route("GET", "/health", health, PUBLIC, name="health", tags=("Service",),
          summary="Up/down of Postgres and Redis; with the secret token also version, queue depth, aggregate lag, "
                  "store errors and the background tasks"),
]
