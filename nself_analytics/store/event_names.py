"""The stored events of event names, for the secret token's name administration (ingest/name_admin.py): how many
events each name has, and the deletion of one name's events in bounded batches (the leader's job).

A deletion batch removes at most about ``limit`` events (the events up to the time of the limit-th oldest; ties
at that time go too) and marks their hours dirty in the same statement, so the aggregator rebuilds those hours'
rollups from what is left.
"""

from __future__ import annotations

import aiopg

from .tx import transaction

__all__ = ["delete_events", "has_events", "volumes"]

VOLUMES = """
SELECT event, count(*) FROM np_analytics_events
WHERE source_account_id = %(account)s AND event = ANY(%(names)s::text[])
GROUP BY event
"""

HAS_EVENTS = """
SELECT EXISTS (SELECT 1 FROM np_analytics_events WHERE source_account_id = %(account)s AND event = %(name)s)
"""

DELETE_BATCH = """
WITH edge AS (
    SELECT coalesce((SELECT ts FROM np_analytics_events
                     WHERE source_account_id = %(account)s AND event = %(name)s
                     ORDER BY ts OFFSET %(limit)s - 1 LIMIT 1), 'infinity'::timestamptz) AS ts
), gone AS (
    DELETE FROM np_analytics_events e USING edge
    WHERE e.source_account_id = %(account)s AND e.event = %(name)s AND e.ts <= edge.ts
    RETURNING e.ts
), dirty AS (
    INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour)
    SELECT DISTINCT %(account)s, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM gone
    ORDER BY 1, 2  -- rows locked in one order: a concurrent drainer cannot deadlock with us
    ON CONFLICT (source_account_id, hour) DO UPDATE SET marked_at = np_analytics_aggregate_dirty.marked_at
)
SELECT count(*) FROM gone
"""


async def volumes(conn: aiopg.Connection, account: str, names: list[str]) -> dict[str, int]:
    """Stored events per name (names without events are absent)."""
    async with conn.cursor() as cur:
        await cur.execute(VOLUMES, {"account": account, "names": names})
        return {name: int(count) for name, count in await cur.fetchall()}


async def has_events(conn: aiopg.Connection, account: str, name: str) -> bool:
    async with conn.cursor() as cur:
        await cur.execute(HAS_EVENTS, {"account": account, "name": name})
        (found,) = await cur.fetchone()
        return bool(found)


async def delete_events(conn: aiopg.Connection, account: str, name: str, limit: int) -> int:
    """Delete about ``limit`` of the oldest events of ``name`` (one transaction); return how many went."""
    async with transaction(conn) as cur:
        await cur.execute(DELETE_BATCH, {"account": account, "name": name, "limit": limit})
        (count,) = await cur.fetchone()
        return int(count)
