"""Cohort retention in one SQL statement.

A user's cohort is the period (day, ISO week, month of the read's zone ``tz``) of their FIRST start event ever
stored,
kept when that event falls in ``[start, end)``. ``retained[k]`` counts cohort users with a return
event in the k-th period after their cohort period; ``retained[0]`` is the cohort size. With no
start event, a user's first event of any name starts them; with no return event, any event
returns them. Users are persons: the person of ``coalesce(user_id, anonymous_id)`` (store/identity.py),
resolved when reading, for the rollup's rows too; bot events are left out.

Read from the per-(user, UTC day) activity rollup (np_analytics_activity, kept by the aggregator)
when the zone is UTC and the range is whole UTC days (a cohort period and a return only need the day of an event),
except for the days with an hour still dirty (typically today), whose activity comes from raw
events; when the dirty days span ``MAX_DIRTY_DAYS`` or more (a backlog), everything comes from raw
events. The rollup keeps the days pruned from the raw log (as the aggregates do), so there "first
start event ever" also counts pruned days. In another zone than UTC the rollup's UTC days do not make the zone's
days (not even from hours: it keeps days), so retention reads raw events: exact, over the raw log's days only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import aiopg

from .identity import EVENT_PERSON, EVENT_PERSON_JOIN, person_expr, person_join
from .tx import read_snapshot

__all__ = ["run_retention"]

# When the days awaiting the aggregator span this many days or more (a backlog), read raw events only.
MAX_DIRTY_DAYS = 7

# The UTC days before the horizon with a dirty hour: their activity is read from raw events.
DIRTY_DAYS = """
SELECT DISTINCT (hour AT TIME ZONE 'UTC')::date FROM np_analytics_aggregate_dirty
WHERE source_account_id = %(account)s AND hour < %(horizon)s
"""

# From ``up`` (per user and period: first_start, returned) and ``cohorts`` (per user: cohort
# period): k = whole periods between the cohort period and the return event's period.
_COUNTS = """
indexed AS (
    SELECT c.cohort, CASE %(period)s
        WHEN 'month' THEN (extract(year FROM up.p) * 12 + extract(month FROM up.p)
                           - extract(year FROM c.cohort) * 12 - extract(month FROM c.cohort))::int
        WHEN 'week' THEN (up.p - c.cohort) / 7
        ELSE up.p - c.cohort END AS k
    FROM up JOIN cohorts c ON c.u = up.u
    WHERE up.returned AND up.p > c.cohort
)
SELECT cohort, 0 AS k, count(*) FROM cohorts GROUP BY cohort
UNION ALL
SELECT cohort, k, count(*) FROM indexed WHERE k < %(periods)s GROUP BY cohort, k
"""

# From the range start on, per user and period: the first start event and whether a return event
# happened. A user's cohort is the period of their first start event, unless they had one before
# the range (``earlier``: an index range scan when the start event is named).
RETENTION = f"""
WITH up AS (
    SELECT {EVENT_PERSON} AS u,
           date_trunc(%(period)s, e.ts AT TIME ZONE %(tz)s)::date AS p,
           min(e.ts) FILTER (WHERE %(start_event)s::text IS NULL OR e.event = %(start_event)s::text) AS first_start,
           bool_or(%(return_event)s::text IS NULL OR e.event = %(return_event)s::text) AS returned
    FROM np_analytics_events e {EVENT_PERSON_JOIN}
    WHERE e.source_account_id = %(account)s AND NOT e.is_bot AND e.ts >= %(start)s AND e.ts < %(horizon)s
      AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
    GROUP BY 1, 2
),
earlier AS (
    SELECT DISTINCT {EVENT_PERSON} AS u
    FROM np_analytics_events e {EVENT_PERSON_JOIN}
    WHERE e.source_account_id = %(account)s AND NOT e.is_bot AND e.ts < %(start)s
      AND (%(start_event)s::text IS NULL OR e.event = %(start_event)s::text)
      AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
),
cohorts AS (
    SELECT up.u, date_trunc(%(period)s, min(up.first_start) AT TIME ZONE %(tz)s)::date AS cohort
    FROM up
    WHERE NOT EXISTS (SELECT 1 FROM earlier x WHERE x.u = up.u)
    GROUP BY up.u
    HAVING min(up.first_start) < %(end)s
),
{_COUNTS}"""


# The same query on the rollup: one row per (user, day) with the day's distinct event names; days
# stand for times (the bounds are midnights, so "first start < end" is "first start day < end day").
# Days with a dirty hour come from raw events instead (bounds known when planning: only the
# partitions from the first to the last dirty day are read).
RETENTION_ROLLUP = f"""
WITH act AS NOT MATERIALIZED (
    SELECT {person_expr("a.u")} AS u, a.day, a.events FROM np_analytics_activity a {person_join("a.u")}
    WHERE a.source_account_id = %(account)s AND a.day < %(horizon_day)s AND a.day <> ALL(%(dirty_days)s::date[])
    UNION ALL
    SELECT {EVENT_PERSON}, (e.ts AT TIME ZONE 'UTC')::date, array_agg(DISTINCT e.event)
    FROM np_analytics_events e {EVENT_PERSON_JOIN}
    WHERE e.source_account_id = %(account)s AND NOT e.is_bot AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
      AND e.ts >= %(dirty_lo)s AND e.ts < %(dirty_hi)s AND (e.ts AT TIME ZONE 'UTC')::date = ANY(%(dirty_days)s::date[])
    GROUP BY 1, 2
),
up AS (
    SELECT a.u, date_trunc(%(period)s, a.day::timestamp)::date AS p,
           min(a.day) FILTER (WHERE %(start_event)s::text IS NULL OR %(start_event)s::text = ANY(a.events))
               AS first_start,
           bool_or(%(return_event)s::text IS NULL OR %(return_event)s::text = ANY(a.events)) AS returned
    FROM act a
    WHERE a.day >= %(start_day)s
    GROUP BY 1, 2
),
earlier AS (
    SELECT DISTINCT a.u FROM act a
    WHERE a.day < %(start_day)s AND (%(start_event)s::text IS NULL OR %(start_event)s::text = ANY(a.events))
),
cohorts AS (
    SELECT up.u, date_trunc(%(period)s, min(up.first_start)::timestamp)::date AS cohort
    FROM up
    WHERE NOT EXISTS (SELECT 1 FROM earlier x WHERE x.u = up.u)
    GROUP BY up.u
    HAVING min(up.first_start) < %(end_day)s
),
{_COUNTS}"""


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def _utc_day(instant: datetime) -> date | None:
    """The UTC date of ``instant`` if it is a UTC midnight, else None."""
    utc = instant.astimezone(UTC)
    return utc.date() if utc.time() == time(0) else None


async def run_retention(conn: aiopg.Connection, *, account: str, start: datetime, end: datetime, period: str,
                        periods: int, horizon: datetime, start_event: str | None,
                        return_event: str | None, tz: str = "UTC") -> dict[tuple[date, int], int]:
    """Counts per (cohort period start, k); k = 0 is the cohort size; periods of ``tz``. Events are read up to
    ``horizon`` (the end of the last cohort's last column)."""
    params = {"account": account, "start": start, "end": end, "period": period, "periods": periods,
              "horizon": horizon, "start_event": start_event, "return_event": return_event, "tz": tz}
    days = {"start_day": _utc_day(start), "end_day": _utc_day(end), "horizon_day": _utc_day(horizon)}
    async with read_snapshot(conn) as cur:
        query = RETENTION
        if tz == "UTC" and None not in days.values():  # the rollup's days are UTC days
            await cur.execute(DIRTY_DAYS, params)
            dirty = sorted(day for (day,) in await cur.fetchall())
            if not dirty or (dirty[-1] - dirty[0]).days < MAX_DIRTY_DAYS:
                bounds = (_midnight(dirty[0]), _midnight(dirty[-1] + timedelta(days=1))) if dirty else (start, start)
                query = RETENTION_ROLLUP
                params = {**params, **days, "dirty_days": dirty, "dirty_lo": bounds[0], "dirty_hi": bounds[1]}
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return {(cohort, int(k)): int(count) for cohort, k, count in rows}
