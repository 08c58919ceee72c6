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

# k: whole periods between the cohort period and the return event's period
RETENTION = """
WITH firsts AS (
    SELECT coalesce(e.user_id, e.anonymous_id) COLLATE "C" AS u, min(e.ts) AS first_ts
    FROM np_analytics_events e
    WHERE e.source_account_id = %(account)s AND NOT e.is_bot AND e.ts < %(end)s
      AND (%(start_event)s::text IS NULL OR e.event = %(start_event)s::text)
      AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
    GROUP BY 1
    HAVING min(e.ts) >= %(start)s
),
cohorts AS (
    SELECT u, date_trunc(%(period)s, first_ts AT TIME ZONE 'UTC')::date AS cohort FROM firsts
),
returns AS (
    SELECT DISTINCT c.u, c.cohort, date_trunc(%(period)s, e.ts AT TIME ZONE 'UTC')::date AS p
    FROM np_analytics_events e
    JOIN cohorts c ON c.u = coalesce(e.user_id, e.anonymous_id) COLLATE "C"
    WHERE e.source_account_id = %(account)s AND NOT e.is_bot
      AND e.ts >= %(return_start)s AND e.ts < %(horizon)s
      AND (%(return_event)s::text IS NULL OR e.event = %(return_event)s::text)
),
indexed AS (
    SELECT cohort, CASE %(period)s
        WHEN 'month' THEN (extract(year FROM p) * 12 + extract(month FROM p)
                           - extract(year FROM cohort) * 12 - extract(month FROM cohort))::int
        WHEN 'week' THEN (p - cohort) / 7
        ELSE p - cohort END AS k
    FROM returns
)
SELECT cohort, 0 AS k, count(*) FROM cohorts GROUP BY cohort
UNION ALL
SELECT cohort, k, count(*) FROM indexed WHERE k >= 1 AND k < %(periods)s GROUP BY cohort, k
"""


async def run_retention(conn: aiopg.Connection, *, account: str, start: datetime, end: datetime, period: str,
                        periods: int, return_start: datetime, horizon: datetime, start_event: str | None,
                        return_event: str | None) -> dict[tuple[date, int], int]:
    """Counts per (cohort period start, k); k = 0 is the cohort size. Return events are read in
    ``[return_start, horizon)`` (the first period after the first cohort, to the end of the last
    cohort's last column)."""
    params = {"account": account, "start": start, "end": end, "period": period, "periods": periods,
              "return_start": return_start, "horizon": horizon, "start_event": start_event,
              "return_event": return_event}
    async with transaction(conn) as cur:
        await cur.execute(QUERY_SETTINGS)
        await cur.execute(RETENTION, params)
        rows = await cur.fetchall()
    return {(cohort, int(k)): int(count) for cohort, k, count in rows}
