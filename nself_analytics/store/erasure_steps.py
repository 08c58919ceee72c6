"""The bounded statements of an erasure job (store/erasure.py runs the phases; pipeline/erasures.py drives them).

Every function deletes at most ``limit`` rows (or one events partition) per statement and is idempotent: run
again after a crash, it finds what is left. Deleted events mark their hours dirty in the same statement (the
aggregator rebuilds those hours' aggregates, web fragments and days from what is left: store/rollups/aggregates.py),
and their message ids leave the de-duplication window's table.

Rollups within the raw retention window are recomputed from the remaining raw events; what is kept past it (hour
and day aggregates, web fragments and days) is handled so: fragments whose visitor is an erased id are deleted and
their days' web rows and visitor sketches rebuilt from the remaining fragments; aggregate counts past the window
hold no id and stay (they cannot be recomputed: their raw events are gone).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import aiopg

from .partitions import list_partitions
from .rollups import web_daily, web_hour_stats
from .tx import transaction

__all__ = ["delete_event_batch", "delete_outbox_batch", "delete_people", "delete_rollup_rows",
           "delete_web_fragments", "rebuild_web_days", "scrub_partition", "wait_for_older_statements"]

_DISTINCT = "coalesce(e.user_id, e.anonymous_id)"
_DIRTY = """
dirty AS (
    INSERT INTO np_analytics_aggregate_dirty (source_account_id, hour)
    SELECT DISTINCT %(account)s, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM gone
    ORDER BY 1, 2  -- rows locked in one order: a concurrent drainer cannot deadlock with us
    ON CONFLICT (source_account_id, hour) DO UPDATE SET marked_at = np_analytics_aggregate_dirty.marked_at
)"""

# one partition, at most %(limit)s events of the person's ids (the hash index on the distinct id finds them)
DELETE_EVENTS = """
WITH gone AS (
    DELETE FROM {part} e WHERE e.ctid = ANY(ARRAY(
        SELECT x.ctid FROM {part} x
        WHERE coalesce(x.user_id, x.anonymous_id) = ANY(%(ids)s::text[]) AND x.source_account_id = %(account)s
        LIMIT %(limit)s))
    RETURNING e.ts, e.message_id, e.event
), {dirty}, forgotten AS (
    DELETE FROM np_analytics_message_ids m USING gone g
    WHERE m.source_account_id = %(account)s AND m.message_id = g.message_id
)
SELECT count(*), coalesce(array_agg(DISTINCT date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), '{{}}'),
       coalesce(array_agg(DISTINCT event), '{{}}'), coalesce(array_agg(message_id::text), '{{}}')
FROM gone
"""

# Other persons' events that still name an erased id: an alias whose previous id is erased (a link attempt with the
# erased person, refused because both were identified: it is deleted, as the person's links are), and events of
# another user that carry an erased anonymous id (its identify was refused): the id is taken out, the event stays.
SCRUB = """
WITH aliases AS (
    DELETE FROM {part} e
    WHERE e.source_account_id = %(account)s AND e.type = 'alias'
      AND e.properties->>'previous_id' = ANY(%(ids)s::text[])
    RETURNING e.ts, e.message_id
), anonymous AS (
    UPDATE {part} e SET anonymous_id = NULL
    WHERE e.source_account_id = %(account)s AND e.anonymous_id = ANY(%(ids)s::text[])
      AND NOT (e.type = 'alias' AND e.properties->>'previous_id' = ANY(%(ids)s::text[]))
    RETURNING e.ts
), gone AS (
    SELECT ts FROM aliases UNION ALL SELECT ts FROM anonymous
), {dirty}, forgotten AS (
    DELETE FROM np_analytics_message_ids m USING aliases g
    WHERE m.source_account_id = %(account)s AND m.message_id = g.message_id
)
SELECT count(*), coalesce(array_agg(DISTINCT date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), '{{}}')
FROM gone
"""

# Statements still running that started before the job's barrier (other than ours), in this database.
OLDER_STATEMENTS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query_start < %(barrier)s
  AND backend_type = 'client backend'
"""


async def partitions(conn: aiopg.Connection) -> list[str]:
    """The events partitions, in name (so day) order."""
    return [name for name, _bound in await list_partitions(conn)]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def wait_for_older_statements(conn: aiopg.Connection, barrier: datetime) -> bool:
    """Whether every statement that started before ``barrier`` has ended: a drain batch that began before the
    suppression committed (so did not drop the person's events) has then committed, and the deletes see its rows;
    every later statement sees the suppression (READ COMMITTED: one snapshot per statement)."""
    async with conn.cursor() as cur:
        await cur.execute(OLDER_STATEMENTS, {"barrier": barrier})
        (older,) = await cur.fetchone()
    return int(older) == 0


async def delete_event_batch(conn: aiopg.Connection, part: str, account: str, ids: list[str],
                             limit: int) -> tuple[int, list[datetime], list[str], list[str]]:
    """Delete up to ``limit`` events of ``ids`` from partition ``part``; return (count, hours, event names,
    message ids)."""
    async with transaction(conn) as cur:
        await cur.execute(DELETE_EVENTS.format(part=_quote(part), dirty=_DIRTY),
                          {"account": account, "ids": ids, "limit": limit})
        count, hours, names, message_ids = await cur.fetchone()
    return int(count), list(hours), list(names), list(message_ids)


async def scrub_partition(conn: aiopg.Connection, part: str, account: str,
                          ids: list[str]) -> tuple[int, list[datetime]]:
    async with transaction(conn) as cur:
        await cur.execute(SCRUB.format(part=_quote(part), dirty=_DIRTY), {"account": account, "ids": ids})
        count, hours = await cur.fetchone()
    return int(count), list(hours)


PEOPLE = """
WITH users AS (
    DELETE FROM np_analytics_users WHERE source_account_id = %(account)s AND user_id = ANY(%(ids)s::text[])
    RETURNING 1
), others AS (
    UPDATE np_analytics_users SET anonymous_ids = ARRAY(
        SELECT x FROM unnest(anonymous_ids) AS x WHERE x <> ALL(%(ids)s::text[]))
    WHERE source_account_id = %(account)s AND anonymous_ids && %(ids)s::text[] AND user_id <> ALL(%(ids)s::text[])
    RETURNING 1
), links AS (
    DELETE FROM np_analytics_person_map WHERE source_account_id = %(account)s
        AND (distinct_id = ANY(%(ids)s::text[]) OR person_id = ANY(%(ids)s::text[]))
    RETURNING 1
), violations AS (
    DELETE FROM np_analytics_quota_violations WHERE source_account_id = %(account)s
        AND user_id = ANY(%(ids)s::text[])
    RETURNING 1
)
SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM others), (SELECT count(*) FROM links),
       (SELECT count(*) FROM violations)
"""


async def delete_people(conn: aiopg.Connection, account: str, ids: list[str]) -> dict[str, int]:
    """Traits, identity links (under the account's identity lock) and quota violations of ``ids`` (a person holds
    at most ANALYTICS_MAX_IDS_PER_PERSON ids: bounded)."""
    async with transaction(conn) as cur:
        await cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('np_analytics_person_map:' || %(a)s, 0))",
                          {"a": account})
        await cur.execute(PEOPLE, {"account": account, "ids": ids})
        users, others, links, violations = await cur.fetchone()
    return {"users": int(users), "anonymous_ids": int(others), "links": int(links), "quota_violations": int(violations)}


ROLLUP_ROWS = """
WITH activity AS (
    DELETE FROM np_analytics_activity WHERE source_account_id = %(account)s AND u = ANY(%(ids)s::text[])
        AND day = ANY(%(days)s::date[])
    RETURNING 1
), seen AS (  -- first/last activity of the ids (migration 0108): whole rows, all days
    DELETE FROM np_analytics_seen WHERE source_account_id = %(account)s AND u = ANY(%(ids)s::text[])
    RETURNING 1
), times AS (
    DELETE FROM np_analytics_event_times WHERE source_account_id = %(account)s AND event = ANY(%(names)s::text[])
        AND hour = ANY(%(hours)s::timestamptz[]) AND u = ANY(%(ids)s::text[])
    RETURNING 1
)
SELECT (SELECT count(*) FROM activity), (SELECT count(*) FROM times), (SELECT count(*) FROM seen)
"""


async def delete_rollup_rows(conn: aiopg.Connection, account: str, ids: list[str], hours: list[datetime],
                             names: list[str]) -> dict[str, int]:
    """The per-id rollup rows of the deleted events' days and hours: activity and event times (both expire with
    the raw retention, so every such row had raw events, whose hours and names the job collected). The aggregator
    only merges or replaces rows of ids it finds in raw events, so these are deleted here."""
    days = sorted({h.astimezone(UTC).date() for h in hours})
    async with transaction(conn) as cur:
        await cur.execute(ROLLUP_ROWS, {"account": account, "ids": ids, "days": days, "hours": hours,
                                        "names": names})
        activity, times, _seen = await cur.fetchone()
    return {"activity": int(activity), "event_times": int(times)}


WEB_FRAGMENTS = """
DELETE FROM np_analytics_web_sessions w WHERE w.ctid = ANY(ARRAY(
    SELECT x.ctid FROM np_analytics_web_sessions x
    WHERE x.source_account_id = %(account)s AND x.visitor = ANY(%(ids)s::text[]) LIMIT %(limit)s))
RETURNING (w.hour AT TIME ZONE 'UTC')::date
"""


# The sessions' events rows (migration 0110) of an erased visitor: their session ids may hold the id.
WEB_SESSION_EVENTS = WEB_FRAGMENTS.replace("np_analytics_web_sessions", "np_analytics_web_session_events")


async def delete_web_fragments(conn: aiopg.Connection, account: str, ids: list[str], limit: int) -> list[date]:
    """Up to ``limit`` web session fragments and up to ``limit`` sessions' events rows whose visitor is an erased
    id (also past the raw retention); return their UTC days (rebuilt by :func:`rebuild_web_days`)."""
    days: list[date] = []
    async with transaction(conn) as cur:
        for sql in (WEB_FRAGMENTS, WEB_SESSION_EVENTS):
            await cur.execute(sql, {"account": account, "ids": ids, "limit": limit})
            days += [d for (d,) in await cur.fetchall()]
    return days


async def rebuild_web_days(conn: aiopg.Connection, account: str, days: list[date]) -> None:
    """The web daily rows, day stats (visitors, sketches, durations), per-day sessions and per-hour rows (migration
    0124) of ``days``, from their fragments."""
    if not days:
        return
    params = {"days": json.dumps([{"source_account_id": account, "day": d.isoformat()} for d in sorted(set(days))])}
    async with transaction(conn) as cur:
        for sql in (web_daily.DELETE_DAILY, web_daily.INSERT_DAILY, web_daily.DELETE_DAY_STATS,
                    web_daily.INSERT_DAY_STATS, web_daily.DELETE_DAY_SESSIONS, web_daily.INSERT_DAY_SESSIONS):
            await cur.execute(sql, params)
        await web_hour_stats.rebuild_days(cur, params["days"])


OUTBOX = """
DELETE FROM np_analytics_webhook_deliveries d WHERE d.ctid = ANY(ARRAY(
    SELECT x.ctid FROM np_analytics_webhook_deliveries x
    WHERE x.source_account_id = %(account)s
      AND EXISTS (SELECT 1 FROM unnest(%(ids)s::text[]) AS i
                  WHERE jsonb_path_exists(x.payload, 'strict $.** ? (@ == $v)', jsonb_build_object('v', i)))
    LIMIT %(limit)s))
"""


# An event of the erased person goes; another user's event that carried an erased anonymous id keeps its row
# without that id (as the event itself does: erasure_steps' events phase).
EVENT_OUTBOX = """
DELETE FROM np_analytics_event_outbox o WHERE o.seq = ANY(ARRAY(
    SELECT x.seq FROM np_analytics_event_outbox x
    WHERE x.source_account_id = %(account)s AND coalesce(x.user_id, x.anonymous_id) = ANY(%(ids)s::text[])
    LIMIT %(limit)s))
"""
EVENT_OUTBOX_ANONYMOUS = """
UPDATE np_analytics_event_outbox SET anonymous_id = NULL
WHERE source_account_id = %(account)s AND anonymous_id = ANY(%(ids)s::text[])
"""


async def delete_outbox_batch(conn: aiopg.Connection, account: str, ids: list[str], limit: int) -> int:
    """Up to ``limit`` rows of the outboxes that carry an erased id: webhook deliveries (pending, failed or
    delivered) whose payload holds one as a value anywhere, then the event outbox's rows of the facts task
    (pipeline/facts.py) not handled yet: their facts would be about the erased person."""
    async with conn.cursor() as cur:
        await cur.execute(OUTBOX, {"account": account, "ids": ids, "limit": limit})
        gone = int(cur.rowcount)
        if gone < limit:
            await cur.execute(EVENT_OUTBOX, {"account": account, "ids": ids, "limit": limit - gone})
            gone += int(cur.rowcount)
        if not gone:
            await cur.execute(EVENT_OUTBOX_ANONYMOUS, {"account": account, "ids": ids})
        return gone


async def hours_dirty(conn: aiopg.Connection, account: str, hours: list[datetime]) -> int:
    """How many of ``hours`` the aggregator has not recomputed yet."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT count(*) FROM np_analytics_aggregate_dirty WHERE source_account_id = %(a)s "
                          "AND hour = ANY(%(hours)s::timestamptz[])", {"a": account, "hours": hours})
        (count,) = await cur.fetchone()
    return int(count)
