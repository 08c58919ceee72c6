"""Event counts per period (/metrics) and session durations from start/stop pairs (/sessions).

Metrics without a user filter read the daily materialized aggregates for every day that has no
dirty hour left, and raw events only for the days still waiting for the aggregator: the answer is
the same as from raw events, and pruned days (whose raw partitions are gone) keep their counts.
With a user filter they read raw events: the events of that user's person (store/identity.py), so
anonymous events linked to the user by identify or alias count too. Periods are days, ISO weeks (Monday) or months
of the read's zone ``tz`` (in another zone than UTC, the hour aggregates: store/rollups/zones.py);
bot events are left out, as in the aggregates.

Sessions read the start and stop events from np_analytics_event_times (store/rollups/event_times.py: exact
times per distinct id and hour, the hours not aggregated yet from raw events), not raw rows.
The start and stop events of one user (a person: store/identity.py), ordered by (time,
starts before stops), are matched like parentheses (events of one kind at one time are interchangeable:
the pairs' times do not depend on their order, so no tie-breaker is read): a stop closes the most recent
unmatched start; a stop with no open start and a start never stopped make no session. A session belongs to the period of
its start. Done with window functions: first every start directly followed by a stop is paired with
it (most sessions), then for the rest the clamped running depth (the stack height) is
``S - least(0, running min of S)`` for the running sum ``S`` of +1/-1; a stop closes the previous
row of its user at the same stack level, which is the matching start.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import aiopg

from .identity import EVENT_PERSON, EVENT_PERSON_JOIN, PERSON_OF_USER_PARAM, person_expr, person_join
from .rollups import event_times
from .trends import run_trends
from .tx import read_snapshot

__all__ = ["event_counts", "session_totals"]

# The sessions' window passes sort every start and stop event of the range.

_PERIOD_OF_TS = "date_trunc(%(group_by)s, {col} AT TIME ZONE %(tz)s)::date"

METRICS_RAW = f"""
SELECT {_PERIOD_OF_TS.format(col="e.ts")} AS period, e.event, count(*)
FROM np_analytics_events e {EVENT_PERSON_JOIN}
WHERE e.source_account_id = %(account)s AND NOT e.is_bot AND e.ts >= %(start)s AND e.ts < %(end)s
  AND (%(user_id)s::text IS NULL OR {EVENT_PERSON} = {PERSON_OF_USER_PARAM})
GROUP BY 1, 2
"""

# Days with a dirty hour come from raw events, all others from the day aggregates (UTC days: tz is UTC).
METRICS_MIXED = f"""
WITH dirty_days AS (
    SELECT DISTINCT date_trunc('day', d.hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day
    FROM np_analytics_aggregate_dirty d
    WHERE d.source_account_id = %(account)s AND d.hour >= %(start)s AND d.hour < %(end)s
),
daily AS (
    SELECT a.bucket AS day, a.event, a.count
    FROM np_analytics_aggregates a
    WHERE a.source_account_id = %(account)s AND a.granularity = 'day' AND a.bucket >= %(start)s
      AND a.bucket < %(end)s AND NOT EXISTS (SELECT 1 FROM dirty_days d WHERE d.day = a.bucket)
    UNION ALL
    SELECT d.day, e.event, count(*)
    FROM dirty_days d
    JOIN np_analytics_events e ON e.ts >= d.day AND e.ts < d.day + interval '24 hours'  -- not '1 day': DST
    WHERE e.source_account_id = %(account)s AND NOT e.is_bot
    GROUP BY d.day, e.event
)
SELECT {_PERIOD_OF_TS.format(col="day")} AS period, event, sum(count)::bigint
FROM daily GROUP BY 1, 2
"""

SESSIONS = """
WITH ev AS (
    SELECT {person} AS u, x.ts, x.event = %(start_event)s::text AS is_start
    FROM ({source}) AS x {join}
    WHERE %(user_id)s::text IS NULL OR {person} = {person_of_user}
),
seq AS (
    SELECT u, ts, is_start, lead(is_start) OVER w AS next_is_start, lead(ts) OVER w AS next_ts,
           lag(is_start) OVER w AS prev_is_start
    FROM ev
    WINDOW w AS (PARTITION BY u ORDER BY ts, is_start DESC)
),
-- a start directly followed by a stop is closed by it; removing such pairs leaves every other
-- match as it was (the stack is the same before and after a pair), so only the rest is walked
rest AS (
    SELECT u, ts, is_start FROM seq
    WHERE NOT (is_start AND next_is_start IS FALSE) AND NOT (NOT is_start AND prev_is_start IS TRUE)
),
walk AS (
    SELECT *, sum(CASE WHEN is_start THEN 1 ELSE -1 END) OVER w AS s FROM rest
    WINDOW w AS (PARTITION BY u ORDER BY ts, is_start DESC ROWS UNBOUNDED PRECEDING)
),
depth AS (
    SELECT *, s - least(0, min(s) OVER w) AS d FROM walk
    WINDOW w AS (PARTITION BY u ORDER BY ts, is_start DESC ROWS UNBOUNDED PRECEDING)
),
levels AS (
    -- a start sits at the height after its push; a stop pops the height before it (0: nothing)
    SELECT u, ts, is_start,
           CASE WHEN is_start THEN d ELSE lag(d, 1, 0::bigint) OVER w END AS level
    FROM depth
    WINDOW w AS (PARTITION BY u ORDER BY ts, is_start DESC)
),
pairs AS (
    SELECT is_start, ts, lag(ts) OVER w AS start_ts, lag(is_start) OVER w AS prev_is_start
    FROM levels WHERE level > 0
    WINDOW w AS (PARTITION BY u, level ORDER BY ts, is_start DESC)
),
matched AS (
    SELECT ts AS start_ts, next_ts AS ts FROM seq WHERE is_start AND next_is_start IS FALSE
    UNION ALL
    SELECT start_ts, ts FROM pairs WHERE NOT is_start AND prev_is_start
)
SELECT date_trunc(%(group_by)s, start_ts AT TIME ZONE %(tz)s)::date AS period, count(*),
       sum(extract(epoch FROM ts - start_ts))
FROM matched
WHERE start_ts >= %(start)s AND start_ts < %(end)s
GROUP BY 1
"""


async def event_counts(conn: aiopg.Connection, *, account: str, start: datetime, end: datetime, group_by: str,
                       user_id: str | None, tz: str = "UTC") -> dict[date, dict[str, int]]:
    """Counts per period start (a date of ``tz``) and event name of the events in ``[start, end)``. Without a user:
    in UTC over whole UTC days, the day aggregates; otherwise the hour aggregates as /trends reads them (whole hours
    of the zone, raw events for the hours split between two periods: store/rollups/zones.py). With a user: raw
    events."""
    params = {"account": account, "start": start, "end": end, "group_by": group_by, "user_id": user_id, "tz": tz}
    whole_days = all(t.astimezone(UTC).time() == time(0) for t in (start, end))
    if user_id is None and not (tz == "UTC" and whole_days):
        result = await run_trends(conn, account=account, events=None, start=start, end=end, previous_start=start,
                                  interval=group_by, prop=None, breakdown=None, measure="count", tz=tz)
        out: dict[date, dict[str, int]] = {}
        for (event, _value, _other), row in result.current.items():
            for bucket, measures in row.buckets.items():
                out.setdefault(bucket.date(), {})[event] = measures["count"]
        return out
    async with read_snapshot(conn) as cur:
        await cur.execute(METRICS_RAW if user_id is not None else METRICS_MIXED, params)
        rows = await cur.fetchall()
    out = {}
    for period, event, count in rows:
        out.setdefault(period, {})[event] = int(count)
    return out


async def session_totals(conn: aiopg.Connection, *, account: str, start: datetime, end: datetime, group_by: str,
                         start_event: str, stop_event: str, user_id: str | None,
                         tz: str = "UTC") -> dict[date, tuple[int, float]]:
    """(session count, total seconds) per period start (a date of ``tz``), for sessions starting in
    ``[start, end)`` (the rollup's exact times: any zone is exact).

    Events before ``start`` cannot change which stop closes a start inside the range (they sit
    below it on the stack), so they are not read; later ones can, so they are.
    """
    params = {"account": account, "start": start, "end": end, "group_by": group_by, "start_event": start_event,
              "stop_event": stop_event, "user_id": user_id, "names": [start_event, stop_event], "tz": tz}
    async with read_snapshot(conn) as cur:
        times = await event_times.plan(cur, account, start, None)
        sql = SESSIONS.format(person=person_expr("x.u"), source=event_times.source(times), join=person_join("x.u"),
                              person_of_user=PERSON_OF_USER_PARAM)
        await cur.execute(sql, {**times.params, **params})
        rows = await cur.fetchall()
    return {period: (int(count), float(total)) for period, count, total in rows}
