"""Cohort retention in one SQL statement.

A user's cohort is the period (day, ISO week, month; UTC) of their FIRST start event ever stored,
kept when that event falls in ``[start, end)``. ``retained[k]`` counts cohort users with a return
event in the k-th period after their cohort period; ``retained[0]`` is the cohort size. With no
start event, a user's first event of any name starts them; with no return event, any event
returns them. Users are ``coalesce(user_id, anonymous_id)``; bot events are left out.
"""

from __future__ import annotations

from datetime import date, datetime

import aiopg

from .tx import transaction

__all__ = ["run_retention"]

QUERY_SETTINGS = "SET LOCAL work_mem = '64MB'"

# From the range start on, per user and period: the first start event and whether a return event
# happened. A user's cohort is the period of their first start event, unless they had one before
# the range (``earlier``: an index range scan when the start event is named).
RETENTION = """
WITH up AS (
    SELECT coalesce(e.user_id, e.anonymous_id) COLLATE "C" AS u,
           date_trunc(%(period)s, e.ts AT TIME ZONE 'UTC')::date AS p,
           min(e.ts) FILTER (WHERE %(start_event)s::text IS NULL OR e.event = %(start_event)s::text) AS first_start,
           bool_or(%(return_event)s::text IS NULL OR e.event = %(return_event)s::text) AS returned
    FROM np_analytics_events e
    WHERE e.source_account_id = %(account)s AND NOT e.is_bot AND e.ts >= %(start)s AND e.ts < %(horizon)s
      AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
    GROUP BY 1, 2
),
earlier AS (
    SELECT DISTINCT coalesce(e.user_id, e.anonymous_id) COLLATE "C" AS u
    FROM np_analytics_events e
    WHERE e.source_account_id = %(account)s AND NOT e.is_bot AND e.ts < %(start)s
      AND (%(start_event)s::text IS NULL OR e.event = %(start_event)s::text)
      AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
),
cohorts AS (
    SELECT up.u, date_trunc(%(period)s, min(up.first_start) AT TIME ZONE 'UTC')::date AS cohort
    FROM up
    WHERE NOT EXISTS (SELECT 1 FROM earlier x WHERE x.u = up.u)
    GROUP BY up.u
    HAVING min(up.first_start) < %(end)s
),
-- k: whole periods between the cohort period and the return event's period
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


async def run_retention(conn: aiopg.Connection, *, account: str, start: datetime, end: datetime, period: str,
                        periods: int, horizon: datetime, start_event: str | None,
                        return_event: str | None) -> dict[tuple[date, int], int]:
    """Counts per (cohort period start, k); k = 0 is the cohort size. Events are read up to
    ``horizon`` (the end of the last cohort's last column)."""
    params = {"account": account, "start": start, "end": end, "period": period, "periods": periods,
              "horizon": horizon, "start_event": start_event, "return_event": return_event}
    async with transaction(conn) as cur:
        await cur.execute(QUERY_SETTINGS)
        await cur.execute(RETENTION, params)
        rows = await cur.fetchall()
    return {(cohort, int(k)): int(count) for cohort, k, count in rows}
