"""The upgrade's backfills (np_analytics_backfills, migration 0100): their state and one bounded batch.

'rollups_1_2' rebuilds the rollups 1.2 added for the events stored before the upgrade, a range of hours per batch (a
UTC day unless told fewer) from the newest down to ``lo`` (the oldest partition when the migration ran). A batch
reads the range's (account, hour) pairs from raw events, rebuilds them as the aggregator rebuilds a claimed hour
(store/rollups/aggregates.py: rebuild), and moves ``position`` down to the range's start, all in one transaction: a
batch is done or not, and an interrupted backfill resumes at its position. Reads treat the hours of ``[lo,
position)`` as dirty meanwhile (store/rollups/dirty.py). Its first batch fixes the upper end: the end of the newest
partition (the hours after it are written by this version's drain, which marks them dirty for the aggregator).
"""

from __future__ import annotations

from datetime import datetime

import aiopg
import msgspec

from .rollups.aggregates import rebuild
from .tx import transaction

__all__ = ["Backfill", "backfills", "run_batch"]

STATE = """
SELECT name, lo, position, started_at, updated_at, finished_at, batches, hours
FROM np_analytics_backfills ORDER BY name
"""
# The batch's row, locked: one batch of a backfill at a time (across leaders that overlap for a moment).
LOCK = """
SELECT lo, position, finished_at FROM np_analytics_backfills WHERE name = %(name)s FOR UPDATE
"""
# The upper end of the events stored before (or while) the upgrade ran: the end of the newest partition.
NEWEST_PARTITION_END = """
SELECT max(substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')::timestamptz)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'np_analytics_events'::regclass
"""
# The (account, UTC hour) pairs with events in [start, position): at most a day, so one or two partitions.
HOURS = """
SELECT DISTINCT source_account_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
FROM np_analytics_events WHERE ts >= %(start)s AND ts < %(position)s ORDER BY 1, 2
"""
# The start of the batch: ``hours`` before position, not past the UTC day's start before it nor before lo.
BATCH_START = """
SELECT greatest(%(lo)s::timestamptz, %(position)s::timestamptz - make_interval(hours => %(hours)s),
                date_trunc('day', (%(position)s::timestamptz - interval '1 microsecond') AT TIME ZONE 'UTC')
                    AT TIME ZONE 'UTC')
"""
ADVANCE = """
UPDATE np_analytics_backfills
SET position = %(start)s, started_at = coalesce(started_at, now()), updated_at = now(), batches = batches + 1,
    hours = hours + %(hours)s, finished_at = CASE WHEN %(start)s <= lo THEN now() END
WHERE name = %(name)s
"""
FINISH = "UPDATE np_analytics_backfills SET finished_at = now(), updated_at = now() WHERE name = %(name)s"
ROLLUPS = "rollups_1_2"


class Backfill(msgspec.Struct, frozen=True):
    """One backfill's progress: hours from ``position`` on are done (None: not begun), down to ``lo``."""

    name: str
    lo: datetime | None
    position: datetime | None
    started_at: datetime | None
    updated_at: datetime
    finished_at: datetime | None
    batches: int
    hours: int

    @property
    def pending(self) -> bool:
        return self.finished_at is None


async def backfills(conn: aiopg.Connection) -> list[Backfill]:
    """Every backfill's state."""
    async with conn.cursor() as cur:
        await cur.execute(STATE)
        return [Backfill(*row) for row in await cur.fetchall()]


async def run_batch(conn: aiopg.Connection, retention_days: int, name: str = ROLLUPS,
                    hours: int = 24) -> Backfill | None:
    """Run one batch of backfill ``name``: the ``hours`` (1-24) before its position, within one UTC day; return its
    state after it, or None when it has nothing left to do."""
    async with transaction(conn) as cur:
        await cur.execute(LOCK, {"name": name})
        row = await cur.fetchone()
        if row is None or row[2] is not None:
            return None
        lo, position, _finished = row
        if position is None:
            await cur.execute(NEWEST_PARTITION_END)
            (position,) = await cur.fetchone()
        if lo is None or position is None or position <= lo:
            await cur.execute(FINISH, {"name": name})
        else:
            await cur.execute(BATCH_START, {"lo": lo, "position": position, "hours": max(1, min(24, hours))})
            (start,) = await cur.fetchone()
            await cur.execute(HOURS, {"start": start, "position": position})
            claimed = await cur.fetchall()
            if claimed:
                await rebuild(cur, claimed, retention_days)
            await cur.execute(ADVANCE, {"name": name, "start": start, "hours": len(claimed)})
    return next((b for b in await backfills(conn) if b.name == name), None)
