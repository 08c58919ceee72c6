"""Nothing lost, nothing doubled: store restarts, drainer crashes, a killed service, concurrent drainers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import redis

from nself_analytics.host.embedded import EmbeddedPostgres
from nself_analytics.host.embedded_redis import EmbeddedRedis
from nself_analytics.ingest.redis_keys import DEAD_LETTER_KEY, DRAIN_GROUP, STREAM_KEY
from nself_analytics.pipeline.drain import Drainer
from nself_analytics.store.partitions import ensure_partitions
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .chaos_ingest import run_chaos
from .clock_support import days_ago, iso
from .conftest import SECRET, WRITE_KEY, free_port, pg_execute, start_service, stop_service, wait_for, wait_healthy
from .store_writes import write_events

WHEN = days_ago(16, hour=8)  # the events' time: inside the retention window on any day


def batch(n: int, tag: str) -> dict[str, Any]:
    return {"batch": [{"type": "track", "event": tag, "userId": f"u{i}", "messageId": str(uuid.uuid4()),
                       "timestamp": iso(WHEN)} for i in range(n)]}


def counts(database_url: str, tag: str) -> tuple[int, int]:
    [(total, distinct)] = pg_execute(database_url, "SELECT count(*), count(DISTINCT message_id) "
                                                   "FROM np_analytics_events WHERE event = %s", (tag,))
    return total, distinct


async def test_redis_killed_between_accept_and_drain(make_client: Any, settings: Any, auth: Any,
                                                     own_redis: EmbeddedRedis) -> None:
    """SIGKILL, not a clean shutdown: the append-only file is fsynced before Redis answers."""
    own = settings.with_(redis_url=own_redis.url())
    client = await make_client(own)
    for _ in range(5):
        assert (await client.post("/analytics/batch", headers=auth["write"], json=batch(100, "rk"))).status == 202
    own_redis.stop(hard=True)
    assert not own_redis.is_running()
    own_redis.start()
    sub = client.app[ANALYTICS_APP]
    await Drainer(sub[PG_POOL], sub[REDIS], own).drain_until_empty()
    assert counts(own.database_url, "rk") == (500, 500)


async def test_postgres_down_during_drain(make_client: Any, settings: Any, auth: Any,
                                          own_postgres: EmbeddedPostgres) -> None:
    """The background task keeps failing while Postgres is down, then stores everything once."""
    own = settings.with_(database_url=own_postgres.url())
    client = await make_client(own, worker=True)
    assert (await client.post("/analytics/batch", headers=auth["write"], json=batch(50, "pg1"))).status == 202
    await asyncio.to_thread(wait_for, lambda: counts(own.database_url, "pg1")[0] == 50)
    await asyncio.to_thread(own_postgres.stop)
    for _ in range(3):  # ingest goes on without Postgres
        assert (await client.post("/analytics/batch", headers=auth["write"], json=batch(100, "pg2"))).status == 202
    queue = redis.Redis.from_url(own.redis_url)
    # the drainer tries, fails, keeps the entries pending
    await asyncio.to_thread(wait_for, lambda: queue.xpending(STREAM_KEY, DRAIN_GROUP)["pending"] > 0, 10, 0.05)
    await asyncio.to_thread(own_postgres.start)
    await asyncio.to_thread(wait_for, lambda: counts(own.database_url, "pg2")[0] >= 300, 30)
    # nothing more can arrive once the stream is empty (an entry leaves it in the transaction that acks it)
    await asyncio.to_thread(wait_for, lambda: queue.xlen(STREAM_KEY) == 0, 30, 0.05)
    # off the event loop: the worker runs in this loop (a blocking query could wait on a lock its job holds)
    assert await asyncio.to_thread(counts, own.database_url, "pg2") == (300, 300)
    assert await asyncio.to_thread(counts, own.database_url, "pg1") == (50, 50)


async def test_crash_after_commit_before_ack_is_not_doubled(client: Any, settings: Any, auth: Any) -> None:
    """A drainer that committed but died before XACK: the reclaimed entries are written again, harmlessly."""
    assert (await client.post("/analytics/batch", headers=auth["write"], json=batch(40, "ca"))).status == 202
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    await Drainer(sub[PG_POOL], r, settings, name="crashed").ensure_group()
    delivered = await r.xreadgroup(DRAIN_GROUP, "crashed", {STREAM_KEY: ">"}, count=100)
    records = [json.loads(fields["e"]) for _id, fields in delivered[0][1]]
    async with sub[PG_POOL].acquire() as conn:
        await ensure_partitions(conn, {WHEN.date()})
        assert await write_events(conn, records, []) == 40  # committed, never acknowledged
    await asyncio.sleep(settings.reclaim_idle_seconds + 0.1)  # the idle time that makes entries reclaimable
    survivor = Drainer(sub[PG_POOL], r, settings, name="survivor")
    assert await survivor.drain_until_empty() == 40  # reclaimed from the crashed consumer
    assert survivor.stored == 0  # ...and absorbed by ON CONFLICT
    assert counts(settings.database_url, "ca") == (40, 40)
    assert await r.xlen(STREAM_KEY) == 0
    assert (await r.xpending(STREAM_KEY, DRAIN_GROUP))["pending"] == 0


async def test_concurrent_drainers_share_the_stream(client: Any, settings: Any, auth: Any) -> None:
    for _ in range(10):
        assert (await client.post("/analytics/batch", headers=auth["write"], json=batch(100, "cd"))).status == 202
    sub = client.app[ANALYTICS_APP]
    small = settings.with_(batch_size=37)
    drainers = [Drainer(sub[PG_POOL], sub[REDIS], small, name=f"d{i}") for i in range(3)]
    handled = await asyncio.gather(*(d.drain_until_empty() for d in drainers))
    assert sum(handled) == 1000 and all(h > 0 for h in handled)
    assert counts(settings.database_url, "cd") == (1000, 1000)


def test_service_sigkilled_with_pending_entries(stores: Any, tmp_path: Path, own_postgres: EmbeddedPostgres) -> None:
    """Entries delivered to a service that is then SIGKILLed are drained once by the next start."""
    port = free_port()
    database_url = own_postgres.url()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": stores.redis_url, "ANALYTICS_PORT": str(port),
           "ANALYTICS_HOST": "127.0.0.1", "ANALYTICS_DATA_DIR": str(tmp_path / "svc"),
           "ANALYTICS_SECRET_TOKEN": SECRET, "ANALYTICS_WRITE_KEYS": WRITE_KEY, "ANALYTICS_RECLAIM_IDLE": "1s"}
    redis.Redis.from_url(stores.redis_url).flushdb()
    base = f"http://127.0.0.1:{port}"
    process = start_service(env, tmp_path / "svc.log")
    try:
        wait_healthy(base)
        own_postgres.stop()  # the drainer takes entries but cannot commit them
        for i in range(4):
            request = urllib.request.Request(f"{base}/analytics/batch", data=json.dumps(batch(100, "sk")).encode(),
                                             headers={"Authorization": f"Bearer {WRITE_KEY}",
                                                      "Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 202, i
        r = redis.Redis.from_url(stores.redis_url, decode_responses=True)
        wait_for(lambda: r.xpending(STREAM_KEY, DRAIN_GROUP)["pending"] > 0)
    finally:
        assert stop_service(process, signal.SIGKILL) == -signal.SIGKILL
    own_postgres.start()
    assert counts(database_url, "sk") == (0, 0)
    process = start_service(env, tmp_path / "svc.log")
    try:
        wait_for(lambda: counts(database_url, "sk")[0] >= 400, 60)
        wait_for(lambda: r.xlen(STREAM_KEY) == 0, 30)
        assert counts(database_url, "sk") == (400, 400)
    finally:
        assert stop_service(process) == 0


def test_chaos_small(tmp_path: Path) -> None:
    """The 100,000-event chaos script (tests/chaos_ingest.py), smaller: Redis and Postgres restarted."""
    result = run_chaos(3000, tmp_path, concurrency=4, log=lambda _msg: None)
    assert result["restarts"] == 2
    assert (result["stored"], result["distinct"]) == (3000, 3000)
    assert result["exactly_once"] is True


async def test_entries_postgres_refuses_are_dead_lettered(client: Any, settings: Any, auth: Any) -> None:
    """An entry Postgres cannot store must not block the stream: its batch-mates are stored, it is set aside."""
    assert (await client.post("/analytics/batch", headers=auth["write"], json=batch(30, "pp"))).status == 202
    sub = client.app[ANALYTICS_APP]
    r = sub[REDIS]
    good = {"type": "track", "event": "pp", "user_id": "x", "ts": WHEN.isoformat(),
            "message_id": str(uuid.uuid4())}
    await r.xadd(STREAM_KEY, {"e": json.dumps({**good, "message_id": str(uuid.uuid4()), "screen_width": 99999})})
    await r.xadd(STREAM_KEY, {"e": json.dumps({**good, "message_id": str(uuid.uuid4()), "event": None})})
    await r.xadd(STREAM_KEY, {"e": "not json"})
    await r.xadd(STREAM_KEY, {"e": json.dumps(good)})
    drainer = Drainer(sub[PG_POOL], r, settings)
    assert await drainer.drain_until_empty() == 34
    assert counts(settings.database_url, "pp") == (31, 31)
    dead = await r.xrange(DEAD_LETTER_KEY)
    assert len(dead) == 3
    assert sorted(json.loads(f["e"]).get("screen_width", 0) if f["e"].startswith("{") else -1
                  for _id, f in dead) == [-1, 0, 99999]
    assert await r.xlen(STREAM_KEY) == 0
