"""Materialized aggregates: incremental from dirty hours, late events, pruning, time zones, /health lag."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiopg

from nself_analytics.store.partitions import list_partitions, partition_name, prune_partitions
from nself_analytics.store.rollups.aggregates import materialize

from .conftest import SECRET
from .queries_support import BASE, Ev, insert

AGGREGATES = """
SELECT granularity, bucket, event, count, users FROM np_analytics_aggregates ORDER BY granularity, bucket, event
"""


async def rows(conn: Any, sql: str = AGGREGATES) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(sql)
        return list(await cur.fetchall())


async def execute(conn: Any, sql: str, params: Any = None) -> None:
    async with conn.cursor() as cur:
        await cur.execute(sql, params)


async def materialize_all(conn: Any, retention_days: int = 36500, now: datetime | None = None) -> int:
    total = 0
    while claimed := await materialize(conn, retention_days, now=now):
        total += claimed
    return total


async def test_materialize_counts_per_hour_and_day(pool_conn: Any) -> None:
    h = BASE + timedelta(hours=5)
    await insert(pool_conn, [Ev("u1", h, "play"), Ev("u1", h + timedelta(minutes=5), "play"),
                             Ev("u2", h + timedelta(minutes=59), "play"), Ev("u2", h + timedelta(hours=1), "stop"),
                             Ev(None, h, "play", anon="a1"), Ev("bot", h, "play", bot=True)])
    assert await materialize_all(pool_conn) == 2  # two dirty hours
    assert await rows(pool_conn) == [
        ("day", BASE, "play", 4, 3), ("day", BASE, "stop", 1, 1),
        ("hour", h, "play", 4, 3), ("hour", h + timedelta(hours=1), "stop", 1, 1),
    ]
    assert await rows(pool_conn, "SELECT * FROM np_analytics_aggregate_dirty") == []
    assert await materialize_all(pool_conn) == 0


async def test_only_dirty_hours_are_recomputed_and_late_events_redirty(pool_conn: Any) -> None:
    h1, h2 = BASE + timedelta(hours=1), BASE + timedelta(hours=2)
    await insert(pool_conn, [Ev("u1", h1, "play"), Ev("u1", h2, "play")])
    await materialize_all(pool_conn)
    # a change behind the aggregator's back (no dirty mark) is not seen by the next run for that hour...
    await execute(pool_conn, "DELETE FROM np_analytics_events WHERE ts = %s", (h1,))
    # ...while a late event re-dirties its own hour (and so its day)
    await insert(pool_conn, [Ev("u2", h2 + timedelta(minutes=30), "play")])
    assert await rows(pool_conn, "SELECT hour FROM np_analytics_aggregate_dirty") == [(h2,)]
    assert await materialize_all(pool_conn) == 1
    assert await rows(pool_conn) == [
        # the day is the sum of its hours (h1's deletion was never marked, so h1 keeps its row) and its users the
        # day's activity: a day is never recomputed from a whole day of raw events (issue 27: one hour's work)
        ("day", BASE, "play", 3, 2),
        ("hour", h1, "play", 1, 1),  # h1 was not dirty: untouched
        ("hour", h2, "play", 2, 2),
    ]


RAW_DAYS = """
SELECT 'day', date_trunc('day', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', event, count(*),
       count(DISTINCT coalesce(user_id, anonymous_id))
FROM np_analytics_events WHERE NOT is_bot GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


async def test_a_late_hour_rebuilds_its_day_from_the_hours_and_activity_as_raw_events_would(pool_conn: Any) -> None:
    h1, h2, h3 = (BASE + timedelta(hours=n) for n in (1, 2, 3))
    await insert(pool_conn, [Ev("u1", h1, "play"), Ev("u1", h2, "play"), Ev("u2", h2, "pause"),
                             Ev(None, h2, "play", anon="a1"), Ev("b", h2, "play", bot=True)])
    assert await materialize_all(pool_conn) == 2
    days = "SELECT * FROM (" + AGGREGATES.replace(" ORDER BY granularity, bucket, event", "") + \
        ") AS a WHERE granularity = 'day' ORDER BY 1, 2, 3"
    assert await rows(pool_conn, days) == await rows(pool_conn, RAW_DAYS)
    # one late hour: u1 again (counted once in the day's users), u2 new to play, a bot left out
    await insert(pool_conn, [Ev("u1", h3, "play"), Ev("u2", h3, "play"), Ev("b", h3, "pause", bot=True)])
    assert await materialize_all(pool_conn) == 1
    assert await rows(pool_conn, days) == await rows(pool_conn, RAW_DAYS) == [
        ("day", BASE, "pause", 1, 1), ("day", BASE, "play", 5, 3)]


async def test_pruning_drops_partitions_and_keeps_aggregates(client: Any, auth: Any, pool_conn: Any,
                                                            settings: Any) -> None:
    now = datetime(BASE.year, 6, 15, 12, tzinfo=UTC)
    old_day = (now - timedelta(days=11)).date()  # the last day past a 10-day retention: June 4
    kept_day = (now - timedelta(days=2)).date()
    old = datetime(old_day.year, old_day.month, old_day.day, 20, tzinfo=UTC)
    kept = datetime(kept_day.year, kept_day.month, kept_day.day, 8, tzinfo=UTC)
    await insert(pool_conn, [Ev("u1", old, "play"), Ev("u2", old, "play"), Ev("u1", kept, "play")])
    await materialize_all(pool_conn)
    old_aggregate = ("day", datetime.combine(old_day, datetime.min.time(), UTC), "play", 2, 2)

    dropped = await prune_partitions(pool_conn, retention_days=10, now=now)
    assert partition_name(old_day) in dropped and partition_name(old_day + timedelta(days=1)) not in dropped
    remaining = [name for name, _bound in await list_partitions(pool_conn)]
    assert partition_name(old_day) not in remaining and partition_name(kept_day) in remaining
    assert await rows(pool_conn, "SELECT count(*) FROM np_analytics_events") == [(1,)]
    assert old_aggregate in await rows(pool_conn)

    params = {"start_date": old_day.isoformat(), "end_date": kept_day.isoformat(), "group_by": "month"}
    response = await client.get("/analytics/metrics", headers=auth["secret"], params=params)
    assert (await response.json())["data"] == [{"date": f"{BASE:%Y}-06-01", "counts": {"play": 3}}]

    # an hour of the pruned day marked dirty again (a drain racing the prune) must not wipe its
    # aggregates, whatever the session time zone: in Tokyo, local midnight of the cutoff day is
    # 15:00 UTC of the pruned day, before this 20:00 hour
    await execute(pool_conn, "INSERT INTO np_analytics_aggregate_dirty (hour) VALUES (%s)", (old,))
    async with aiopg.connect(settings.database_url) as tokyo:
        await execute(tokyo, "SET TIME ZONE 'Asia/Tokyo'")
        assert await materialize_all(tokyo, retention_days=10, now=now) == 1
    assert old_aggregate in await rows(pool_conn)


async def test_day_buckets_are_24_hours_in_any_session_time_zone(pool_conn: Any, settings: Any) -> None:
    """March 9 is a 23-hour day in New York (in every year of BASE's calendar): the UTC day bucket must still
    hold 24 hours."""
    day = datetime(BASE.year, 3, 9, tzinfo=UTC)
    await insert(pool_conn, [Ev("u1", day + timedelta(hours=1), "play"),
                             Ev("u1", day + timedelta(hours=23, minutes=30), "play")])
    async with aiopg.connect(settings.database_url) as new_york:
        await execute(new_york, "SET TIME ZONE 'America/New_York'")
        await materialize_all(new_york)
    assert ("day", day, "play", 2, 1) in await rows(pool_conn)


async def test_health_reports_aggregate_lag(client: Any, pool_conn: Any) -> None:
    await insert(pool_conn, [Ev("u1", BASE, "play")])
    token = {"Authorization": f"Bearer {SECRET}"}
    for _ in range(100):  # polled, 10 s at most: the lag grows with the clock until the aggregates catch up
        lagging = await (await client.get("/analytics/health", headers=token)).json()
        if lagging["aggregate_lag_seconds"] >= 1:
            break
        await asyncio.sleep(0.1)
    assert lagging["aggregate_lag_seconds"] >= 1
    await materialize_all(pool_conn)
    current = await (await client.get("/analytics/health", headers=token)).json()
    assert current["aggregate_lag_seconds"] == 0
