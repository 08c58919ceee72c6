"""Partitions exist only for the retention window, are created ahead by the worker's maintenance, never wait in
the lock queue behind reads, and pruning drops every partition past the window whatever its name."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2

from nself_analytics.store.partitions import (
    AHEAD_DAYS,
    ensure_partitions,
    forget_partitions,
    list_partitions,
    maintain_partitions,
    partition_name,
    prune_partitions,
)
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL

from .conftest import pg_execute, wait_for
from .store_writes import write_events

# a deadline against a hang only (a test failing here would otherwise wait forever), not a measured time
HANG_GUARD = 30


def _waiting_for_events(database_url: str) -> bool:
    """A backend waits for a lock on the events table (not granted yet)."""
    return bool(pg_execute(database_url, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                                         "WHERE c.relname = 'np_analytics_events' AND NOT l.granted")[0][0])


async def test_maintenance_keeps_exactly_the_window(pool_conn: Any) -> None:
    now = datetime.now(UTC)
    pg_execute_sql = "CREATE TABLE IF NOT EXISTS {} PARTITION OF np_analytics_events FOR VALUES FROM ('{}') TO ('{}')"
    day = (now - timedelta(days=40)).date()
    async with pool_conn.cursor() as cur:
        await cur.execute(pg_execute_sql.format(partition_name(day), day, day + timedelta(days=1)))
    await maintain_partitions(pool_conn, retention_days=10, now=now)
    names = {name for name, _bound in await list_partitions(pool_conn)}
    window = {partition_name((now + timedelta(days=d)).date()) for d in range(-10, AHEAD_DAYS + 1)}
    assert names == window
    assert partition_name(day) not in names


async def test_pruning_handles_every_partition_name(pool_conn: Any) -> None:
    """Year 26 (the issue's skewed events) and a name that is no date at all: the bounds decide, not the name."""
    async with pool_conn.cursor() as cur:
        await cur.execute("CREATE TABLE np_analytics_events_p260101 PARTITION OF np_analytics_events "
                          "FOR VALUES FROM ('0026-01-01 00:00+00') TO ('0026-01-02 00:00+00')")
        await cur.execute('CREATE TABLE "Legacy part" PARTITION OF np_analytics_events '
                          "FOR VALUES FROM ('1999-03-01 00:00+00') TO ('1999-03-02 00:00+00')")
        await cur.execute("CREATE TABLE np_analytics_events_bc PARTITION OF np_analytics_events "
                          "FOR VALUES FROM ('0100-01-01 00:00+00 BC') TO ('0100-01-02 00:00+00 BC')")
    dropped = await prune_partitions(pool_conn, retention_days=90)
    assert {"np_analytics_events_p260101", "Legacy part", "np_analytics_events_bc"} <= set(dropped)
    names = {name for name, _bound in await list_partitions(pool_conn)}
    assert not names & {"np_analytics_events_p260101", "Legacy part", "np_analytics_events_bc"}


def test_partition_names_are_zero_padded() -> None:
    assert partition_name(datetime(26, 1, 1).date()) == "np_analytics_events_p00260101"


async def test_partition_ddl_gives_way_to_reads_and_retries(client: Any, pool_conn: Any, settings: Any) -> None:
    """A long read holds the events table: the DDL waits at most its lock_timeout each time, so inserts behind it
    are never queued; it succeeds once the read ends."""
    today = datetime.now(UTC)
    new_day = (today + timedelta(days=AHEAD_DAYS)).date()
    pg_execute(settings.database_url, f"DROP TABLE IF EXISTS {partition_name(new_day)}")
    await ensure_partitions(pool_conn, [today.date()])
    forget_partitions()
    reader = psycopg2.connect(settings.database_url)
    cur = reader.cursor()
    cur.execute("SELECT count(*) FROM np_analytics_events")  # holds ACCESS SHARE until the transaction ends
    ddl = asyncio.create_task(ensure_partitions(pool_conn, [new_day]))
    # the DDL is in the lock queue behind the read (a write arriving now queues behind it until it gives way)
    await asyncio.to_thread(wait_for, lambda: _waiting_for_events(settings.database_url), 20, 0.02)
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as writer:
        event = {"type": "track", "event": "during_ddl", "user_id": "u", "ts": today.isoformat(),
                 "message_id": str(uuid.uuid4())}
        # the write commits while the read still holds the table and the DDL has not got its lock: the DDL gave
        # way (a DDL waiting without a lock_timeout would hold the write behind the read for good: the hang guard)
        assert await asyncio.wait_for(write_events(writer, [event], []), HANG_GUARD) == 1
    assert not ddl.done()
    assert reader.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
    reader.rollback()
    reader.close()
    await asyncio.wait_for(ddl, 5)
    assert partition_name(new_day) in {name for name, _bound in await list_partitions(pool_conn)}
