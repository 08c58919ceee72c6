"""Materialized aggregates: counts and distinct users per event per hour and per day, the
per-(user, UTC day) activity rollup that retention reads (np_analytics_activity: the distinct event
names of each user's day), the event times per distinct id and hour that funnels and sessions read
(store/rollups/event_times.py), and the web session fragments the web reads use (store/rollups/web_rollup.py).

Incremental: the drain marks the hours it wrote to (np_analytics_aggregate_dirty, in the same
transaction as the events); each run claims dirty hours, recomputes those hours and their days
from raw events, and replaces their rows; the activity and the event times read the claimed hours'
events only (merged into their days' rows, and per hour). Days already pruned from the raw log are
never recomputed, so their aggregates stay.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import aiopg
import structlog

from ..suppressions import suppressed_sql
from ..tx import transaction
from . import event_times, web_daily, web_hour_stats, web_hours
from .web_rollup import FRAGMENT_COLUMNS, FRAGMENTS, PAGE_VIEW, SESSION_EVENT_COLUMNS, SESSION_EVENTS

__all__ = ["aggregate_lag_seconds", "expire_activity", "materialize", "next_dirty", "rebuild"]

log = structlog.get_logger("nself_analytics.store.rollups.aggregates")

# SKIP LOCKED: an hour a drain is writing to right now is left for the next run. ``skip``: hours left out (the
# aggregator's quarantine: an hour whose recomputation outlasts the statement timeout alone stays dirty, so reads
# of it stay exact from raw events); ``only``: claim these hours only (a quarantined hour retried alone).
_HOURS = "SELECT 1 FROM jsonb_to_recordset({}::jsonb) AS k(a text, h timestamptz) WHERE k.a = x.source_account_id " \
         "AND k.h = x.hour"
CLAIM_DIRTY = f"""
DELETE FROM np_analytics_aggregate_dirty d
WHERE (d.source_account_id, d.hour) IN (
    SELECT source_account_id, hour FROM np_analytics_aggregate_dirty x
    WHERE NOT EXISTS ({_HOURS.format("%(skip)s")})
      AND (%(only)s::jsonb IS NULL OR EXISTS ({_HOURS.format("%(only)s")}))
    ORDER BY marked_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING d.source_account_id, d.hour
"""
# The hour a claim of one would take first (to name the hour a claim of one timed out on).
NEXT_DIRTY = f"""
SELECT source_account_id, hour FROM np_analytics_aggregate_dirty x
WHERE NOT EXISTS ({_HOURS.format("%(skip)s")})
ORDER BY marked_at LIMIT 1
"""

_CLAIMED = """
claimed AS (
    SELECT DISTINCT c.source_account_id, date_trunc(%(unit)s, c.hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket
    FROM jsonb_to_recordset(%(claimed)s::jsonb) AS c(source_account_id text, hour timestamptz)
    WHERE c.hour >= %(cutoff)s::timestamptz
)"""

DELETE_BUCKETS = f"""
WITH {_CLAIMED}
DELETE FROM np_analytics_aggregates a USING claimed c
WHERE a.granularity = %(unit)s AND a.source_account_id = c.source_account_id AND a.bucket = c.bucket
"""

# One scan of [lo, hi) (bounds known when planning, so only those partitions are read) feeding a
# hash semi-join on the claimed buckets: a per-bucket join read the events once per bucket, which
# took minutes (past the statement timeout, so a backlog never cleared) for a few thousand hours.
INSERT_BUCKETS = f"""
WITH {_CLAIMED}
INSERT INTO np_analytics_aggregates (source_account_id, granularity, bucket, event, count, users)
SELECT e.source_account_id, %(unit)s, b.bucket, e.event, count(*),
       count(DISTINCT coalesce(e.user_id, e.anonymous_id))
FROM np_analytics_events e
CROSS JOIN LATERAL (SELECT date_trunc(%(unit)s, e.ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket) AS b
WHERE e.ts >= %(lo)s AND e.ts < %(hi)s AND NOT e.is_bot
  AND (e.source_account_id, b.bucket) IN (SELECT source_account_id, bucket FROM claimed)
GROUP BY e.source_account_id, b.bucket, e.event
"""

# The day rows of the claimed hours' days, without reading a day of raw events (issue 27 item 3: one dirty hour
# recomputes that hour): the count is the sum of the day's hour rows (just rebuilt for the claimed hours), the
# distinct users of a name are the day's activity rows (np_analytics_activity: the distinct names of each distinct id's
# UTC day, merged from the same raw events with the same filter, before this) holding that name. A day with another
# hour still dirty is read from raw events (store/metrics.py) until that hour is claimed, which rebuilds the day again.
INSERT_DAYS = f"""
WITH {_CLAIMED},
counts AS (
    SELECT c.source_account_id, c.bucket, a.event, sum(a.count)::bigint AS count
    FROM claimed c CROSS JOIN LATERAL (
        SELECT a.event, a.count FROM np_analytics_aggregates a
        WHERE a.source_account_id = c.source_account_id AND a.granularity = 'hour' AND a.bucket >= c.bucket
          AND a.bucket < c.bucket + interval '24 hours'
        OFFSET 0) AS a
    GROUP BY 1, 2, 3
),
users AS (
    SELECT c.source_account_id, c.bucket, n.event, count(*) AS users
    FROM claimed c CROSS JOIN LATERAL (
        SELECT x.events FROM np_analytics_activity x
        WHERE x.source_account_id = c.source_account_id AND x.day = (c.bucket AT TIME ZONE 'UTC')::date
        OFFSET 0) AS x
    CROSS JOIN LATERAL unnest(x.events) AS n(event)
    GROUP BY 1, 2, 3
)
INSERT INTO np_analytics_aggregates (source_account_id, granularity, bucket, event, count, users)
SELECT t.source_account_id, 'day', t.bucket, t.event, t.count, coalesce(u.users, 0)
FROM counts t LEFT JOIN users u USING (source_account_id, bucket, event)
"""

# The claimed hours' rows of a per-hour web table, replaced from the cutoff on (older hours keep theirs, as the
# aggregates do; unit 'hour': a bucket is an hour): its DELETE, and its INSERT of ``select`` (FRAGMENTS or
# SESSION_EVENTS) over the claimed hours' raw events of the site, ``kind`` more (one scan of [lo, hi) as above).
_CLAIMED_HOURS = """ts >= %(lo)s AND ts < %(hi)s AND site IS NOT NULL{kind}
      AND (source_account_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
          IN (SELECT source_account_id, bucket FROM claimed)"""


def _replace_hours(table: str, columns: str, select: str, kind: str = "") -> tuple[str, str]:
    delete = f"""
WITH {_CLAIMED}
DELETE FROM {table} w USING claimed c
WHERE w.source_account_id = c.source_account_id AND w.hour = c.bucket
"""
    insert = f"WITH {_CLAIMED}\nINSERT INTO {table} ({columns})\n" + select.format(
        source="np_analytics_events", where=_CLAIMED_HOURS.format(kind=kind))
    return delete, insert


# The web session fragments, and the sessions' events other than page views (the event filters' rows, 0110).
DELETE_WEB, INSERT_WEB = _replace_hours("np_analytics_web_sessions", FRAGMENT_COLUMNS, FRAGMENTS, f" AND {PAGE_VIEW}")
DELETE_WEB_EVENTS, INSERT_WEB_EVENTS = _replace_hours("np_analytics_web_session_events", SESSION_EVENT_COLUMNS,
                                                      SESSION_EVENTS)

# The activity of the claimed hours, merged into their days' rows: the distinct names of a distinct id's
# day are those it had plus those of the hour (raw events only ever grow), so only the claimed hours' raw
# events are read. Days before the cutoff merge too (never wiped: their raw events may be pruned already),
# so events older than the retention that are still stored count, as they do in raw reads.
INSERT_ACTIVITY = """
WITH claimed AS (
    SELECT DISTINCT c.source_account_id, c.hour
    FROM jsonb_to_recordset(%(claimed)s::jsonb) AS c(source_account_id text, hour timestamptz)
)
INSERT INTO np_analytics_activity AS a (source_account_id, day, u, events)
SELECT e.source_account_id, (e.ts AT TIME ZONE 'UTC')::date, coalesce(e.user_id, e.anonymous_id) COLLATE "C",
       array_agg(DISTINCT e.event ORDER BY e.event)
FROM np_analytics_events e
WHERE e.ts >= %(lo)s AND e.ts < %(hi)s AND NOT e.is_bot AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
  AND (e.source_account_id, date_trunc('hour', e.ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
      IN (SELECT source_account_id, hour FROM claimed)
GROUP BY 1, 2, 3
ON CONFLICT (source_account_id, day, u) DO UPDATE
SET events = ARRAY(SELECT DISTINCT x FROM unnest(a.events || EXCLUDED.events) AS x ORDER BY x)
"""

# The first and last activity of each distinct id of the claimed hours (migration 0108), widened: the people
# list reads it (store/people.py). Raw events only ever grow, so the claimed hours' raw events are enough.
UPSERT_SEEN = f"""
WITH claimed AS (
    SELECT DISTINCT c.source_account_id, c.hour
    FROM jsonb_to_recordset(%(claimed)s::jsonb) AS c(source_account_id text, hour timestamptz)
)
INSERT INTO np_analytics_seen AS s (source_account_id, u, first_ts, last_ts)
SELECT g.source_account_id, g.u, g.first_ts, g.last_ts FROM (
    SELECT e.source_account_id, coalesce(e.user_id, e.anonymous_id) COLLATE "C" AS u, min(e.ts) AS first_ts,
           max(e.ts) AS last_ts
    FROM np_analytics_events e
    WHERE e.ts >= %(lo)s AND e.ts < %(hi)s AND NOT e.is_bot AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
      AND (e.source_account_id, date_trunc('hour', e.ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
          IN (SELECT source_account_id, hour FROM claimed)
    GROUP BY 1, 2
) AS g
-- an erased id (store/suppressions.py) is never written back, whatever raw rows an erasure has not reached yet
WHERE NOT {suppressed_sql("g.source_account_id", ("g.u",))}
ON CONFLICT (source_account_id, u) DO UPDATE
SET first_ts = least(s.first_ts, EXCLUDED.first_ts), last_ts = greatest(s.last_ts, EXCLUDED.last_ts)
"""

# Midnight UTC of the first day still kept raw (the day prune_partitions keeps): older hours are never
# recomputed, as their raw events are (or are about to be) dropped and their aggregates must stay.
# In UTC explicitly: date_trunc on a timestamptz would cut at midnight of the session's time zone.
CUTOFF = """
SELECT date_trunc('day', (coalesce(%(now)s, now()) AT TIME ZONE 'UTC') - make_interval(days => %(retention_days)s))
       AT TIME ZONE 'UTC'
"""

LAG = "SELECT coalesce(extract(epoch FROM now() - min(marked_at)), 0) FROM np_analytics_aggregate_dirty"


def _bounds(hours: list[datetime], unit: str) -> tuple[datetime | None, datetime | None]:
    """The instants [lo, hi) covering the buckets of ``unit`` holding ``hours`` (None, None: no hours)."""
    if not hours:
        return None, None
    lo, hi = min(hours).astimezone(UTC), max(hours).astimezone(UTC)
    if unit == "day":
        return lo.replace(hour=0), hi.replace(hour=0) + timedelta(days=1)
    return lo, hi + timedelta(hours=1)


def hours_json(hours: Sequence[tuple[str, datetime]]) -> str:
    return json.dumps([{"a": a, "h": h.isoformat()} for a, h in hours])


async def next_dirty(conn: aiopg.Connection, skip: Sequence[tuple[str, datetime]]) -> tuple[str, datetime] | None:
    """The dirty hour a claim of one (leaving out ``skip``) would take first."""
    async with conn.cursor() as cur:
        await cur.execute(NEXT_DIRTY, {"skip": hours_json(skip)})
        row = await cur.fetchone()
    return (row[0], row[1]) if row else None


async def materialize(conn: aiopg.Connection, retention_days: int, limit: int = 5000,
                      now: datetime | None = None, *, skip: Sequence[tuple[str, datetime]] = (),
                      only: list[tuple[str, datetime]] | None = None) -> int:
    """Recompute aggregates of the dirty hours (and their days), their web session fragments and the
    activity of their days; return how many hours were claimed.

    Hours before the retention cutoff (counted back from ``now``, default the server's clock) are
    claimed but their aggregates not recomputed; their activity is merged with what is still raw."""
    async with transaction(conn) as cur:
        await cur.execute(CLAIM_DIRTY, {"limit": limit, "skip": hours_json(skip),
                                        "only": None if only is None else hours_json(only)})
        rows = await cur.fetchall()
        if not rows:
            return 0
        await rebuild(cur, rows, retention_days, now)
    log.info("aggregates_materialized", hours=len(rows))
    return len(rows)


async def rebuild(cur: aiopg.Cursor, rows: list[tuple[str, datetime]], retention_days: int,
                  now: datetime | None = None) -> None:
    """Recompute every rollup of the (account, hour) pairs ``rows`` from raw events, inside the caller's transaction
    (the aggregator's claimed dirty hours; the upgrade's backfill: pipeline/backfill.py)."""
    claimed = json.dumps([{"source_account_id": a, "hour": h.isoformat()} for a, h in rows])
    await cur.execute(CUTOFF, {"retention_days": retention_days, "now": now})
    (cutoff,) = await cur.fetchone()
    hours = [h for _a, h in rows if h >= cutoff]
    lo, hi = _bounds([h for _a, h in rows], "hour")
    await cur.execute(INSERT_ACTIVITY, {"claimed": claimed, "lo": lo, "hi": hi})
    lo, hi = _bounds(hours, "hour")
    params = {"unit": "hour", "claimed": claimed, "cutoff": cutoff, "lo": lo, "hi": hi}
    await cur.execute(DELETE_BUCKETS, params)
    await cur.execute(INSERT_BUCKETS, params)
    await cur.execute(DELETE_BUCKETS, {**params, "unit": "day"})
    await cur.execute(INSERT_DAYS, {**params, "unit": "day"})
    # a few hours: their sessions' per-day rows change (web_hours); many (a backfill): whole days (web_daily)
    by_session = 0 < len(hours) <= web_hours.MAX_HOURS
    if by_session:
        await web_hours.before(cur, params)
    await cur.execute(DELETE_WEB, params)
    await cur.execute(INSERT_WEB, params)
    await cur.execute(DELETE_WEB_EVENTS, params)
    await cur.execute(INSERT_WEB_EVENTS, params)
    await web_hour_stats.rebuild_hours(cur, claimed, cutoff)
    if by_session:
        await cur.execute(web_daily.SPANS, {"claimed": claimed})
        await web_hours.after(cur, params)
    else:
        await web_daily.rebuild_days(cur, claimed, [(a, h) for a, h in rows if h >= cutoff])
    lo, hi = _bounds([h for _a, h in rows], "hour")
    await cur.execute(UPSERT_SEEN, {"claimed": claimed, "lo": lo, "hi": hi})
    await event_times.refresh(cur, claimed, lo, hi)


async def aggregate_lag_seconds(conn: aiopg.Connection) -> float:
    """Seconds since the oldest event not yet reflected in the aggregates was written (0 when current)."""
    async with conn.cursor() as cur:
        await cur.execute(LAG)
        (lag,) = await cur.fetchone()
    return float(lag)


EXPIRE_ACTIVITY = """
DELETE FROM np_analytics_activity WHERE day < (now() AT TIME ZONE 'UTC')::date - %(days)s::int
"""


async def expire_activity(conn: aiopg.Connection, retention_days: int) -> int:
    """Delete the per-user activity rows and event times of days past the retention window; return how many
    activity rows went."""
    async with conn.cursor() as cur:
        await cur.execute(event_times.EXPIRE, {"days": retention_days})
        await cur.execute(EXPIRE_ACTIVITY, {"days": retention_days})
        return int(cur.rowcount)
