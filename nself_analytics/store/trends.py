"""Trends: one series per event (and per breakdown value) of a measure per time bucket, in one statement.

Semantics (the plain-Python reference in tests/test_trends.py is the definition):

- events named in ``events`` with ``start <= ts < end``, bots left out, of one source account;
- a bucket is a period of ``tz`` (store/rollups/zones.py: local days, ISO weeks from Monday, months, hours);
- measures: ``count`` (events), ``users`` (distinct persons of ``coalesce(user_id, anonymous_id)``,
  store/identity.py; events without either are not users), ``sum``/``avg`` of a property over the events
  where it is a JSON number (``sum`` is 0 and ``avg`` null when none is), computed exactly (numeric: no stored
  value can make them overflow) and answered as doubles, saturating at +-1.7976931348623157e308;
- with a breakdown property, the events of each name are grouped by the property's text value (a missing
  property is the value null); the ``top`` values with the most events (ties: by value, null last) get a
  series each, the rest one ``other`` series; every measure is computed over the grouped events (so the
  ``users`` of ``other`` counts a user once however many of the other values they sent);
- with a previous period (``previous_start``: the same length right before ``start``), its events are
  grouped by the values chosen in the current period, so both periods show the same series;
- each series has a total over the whole period (``users``: distinct over the period, not a sum).

Property names arrive as parameters (``properties ->> %(breakdown)s``): never in the SQL text.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiopg

from .identity import EVENT_PERSON, EVENT_PERSON_JOIN
from .rollups.dirty import dirty_hours
from .rollups.zones import HOUR, period_sql, split_hours
from .tx import read_snapshot

__all__ = ["INTERVALS", "TOP_VALUES", "TrendRow", "run_trends"]

INTERVALS = ("hour", "day", "week", "month")
TOP_VALUES = 10

TRENDS = f"""
WITH ev AS (
    SELECT e.event, (e.ts < %(start)s) AS previous,
           {period_sql("e.ts")} AS bucket,
           {EVENT_PERSON} AS u,
           CASE WHEN jsonb_typeof(e.properties -> %(prop)s::text) = 'number'
                THEN (e.properties -> %(prop)s::text)::numeric END AS x,  -- exact: a sum cannot overflow
           CASE WHEN %(breakdown)s::text IS NOT NULL THEN e.properties ->> %(breakdown)s::text END AS bv
    FROM np_analytics_events e {EVENT_PERSON_JOIN}
    WHERE e.source_account_id = %(account)s AND e.event = ANY(%(events)s::text[])
      AND e.ts >= %(previous_start)s AND e.ts < %(end)s AND NOT e.is_bot
),
-- per event, its breakdown values of the current period, most events first
ranked AS (
    SELECT event, bv, row_number() OVER (PARTITION BY event ORDER BY count(*) DESC, bv COLLATE "C" NULLS LAST) AS rank
    FROM ev
    WHERE NOT previous AND %(breakdown)s::text IS NOT NULL
    GROUP BY event, bv
),
labeled AS (
    SELECT ev.event, ev.previous, ev.bucket, ev.u, ev.x,
           CASE WHEN r.rank <= %(top)s THEN ev.bv END AS bv,
           (%(breakdown)s::text IS NOT NULL AND coalesce(r.rank > %(top)s, true)) AS other
    FROM ev LEFT JOIN ranked r ON r.event = ev.event AND r.bv IS NOT DISTINCT FROM ev.bv
)
SELECT event, bv, other, previous, bucket, count(*) AS events, count(DISTINCT u) AS users,
       coalesce(sum(x), 0) AS total, avg(x) AS average
FROM labeled
GROUP BY GROUPING SETS ((event, bv, other, previous, bucket), (event, bv, other, previous))
"""

# measure=count without a breakdown: the hour aggregates (store/rollups/aggregates.py: non-bot events per account,
# UTC hour and name) of the hours the aggregator is done with, and raw events for the hours in %(raw_hours)s: those
# still dirty and those split between two periods of the zone (%(split)s: store/rollups/zones.py), read hour by
# hour. The same numbers as TRENDS gives from raw events. Hours pruned from the raw log keep their counts: a split
# hour's (hour, event) with no raw event left but an aggregate (its raw events were pruned: whole days go at once)
# counts wholly in the period holding the hour's start, as the web reads place an hour.
TREND_COUNTS = f"""
WITH raw AS MATERIALIZED (
    -- the raw events of the hours in raw_hours, whole hours (a split hour's pruning is seen on the whole hour),
    -- counted per hour, name, period and whether they are inside the range
    SELECT r.hour, e.event, e.ts < %(start)s AS previous, {period_sql("e.ts")} AS bucket,
           e.ts >= %(previous_start)s AND e.ts < %(end)s AS inside, count(*) AS count
    FROM unnest(%(raw_hours)s::timestamptz[]) AS r(hour)
    JOIN np_analytics_events e ON e.ts >= r.hour AND e.ts < r.hour + interval '1 hour'
    WHERE e.source_account_id = %(account)s AND (%(events)s::text[] IS NULL OR e.event = ANY(%(events)s::text[]))
      AND NOT e.is_bot AND e.ts >= %(raw_lo)s AND e.ts < %(raw_hi)s
    GROUP BY 1, 2, 3, 4, 5
),
ev AS (
    SELECT a.event, a.bucket < %(start)s AS previous, {period_sql("a.bucket")} AS bucket, a.count
    FROM np_analytics_aggregates a
    WHERE a.source_account_id = %(account)s AND a.granularity = 'hour'
      AND (%(events)s::text[] IS NULL OR a.event = ANY(%(events)s::text[]))
      AND a.bucket >= %(previous_start)s AND a.bucket < %(end)s
      AND (a.bucket <> ALL(%(raw_hours)s::timestamptz[])
           OR (a.bucket = ANY(%(split)s::timestamptz[]) AND a.bucket <> ALL(%(dirty)s::timestamptz[])
               AND NOT EXISTS (SELECT 1 FROM raw WHERE raw.hour = a.bucket AND raw.event = a.event)))
    UNION ALL
    SELECT event, previous, bucket, count FROM raw WHERE inside
)
SELECT event, NULL::text, false, previous, bucket, sum(count)::bigint
FROM ev
GROUP BY GROUPING SETS ((event, previous, bucket), (event, previous))
"""


def _double(value: Decimal) -> float:
    """A sum or average (exact numeric) as a JSON-safe double: beyond the double range (only reachable with
    values near 1e308) it saturates at the largest finite double of its sign, never inf (not JSON)."""
    number = float(value)
    return number if math.isfinite(number) else math.copysign(sys.float_info.max, number)


@dataclass
class TrendRow:
    """The measures of one series (event, breakdown value, other) in one period, per bucket and in total."""

    event: str
    value: str | None
    other: bool
    buckets: dict[datetime, dict[str, Any]] = field(default_factory=dict)
    total: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrendResult:
    current: dict[tuple[str, str | None, bool], TrendRow]
    previous: dict[tuple[str, str | None, bool], TrendRow]


async def run_trends(conn: aiopg.Connection, *, account: str, events: list[str] | None, start: datetime,
                     end: datetime, previous_start: datetime, interval: str, prop: str | None,
                     breakdown: str | None, measure: str | None = None, tz: str = "UTC") -> TrendResult:
    """The raw measures of each series; ``previous_start == start`` when no previous period is wanted.
    Buckets are naive datetimes (store/rollups/zones.py period_sql: local starts of days, weeks and months of
    ``tz``; the UTC time of a local hour's start). With ``measure="count"`` and no breakdown, only the counts are
    computed (from the hour aggregates), and ``events`` None counts every name."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}")
    params = {"account": account, "events": events, "start": start, "end": end, "previous_start": previous_start,
              "interval": interval, "prop": prop, "breakdown": breakdown, "top": TOP_VALUES, "tz": tz}
    if measure == "count" and breakdown is None:
        return await _counts(conn, params)
    if events is None:
        raise ValueError("only counts are read for every event name")
    async with read_snapshot(conn) as cur:
        await cur.execute(TRENDS, params)
        rows = await cur.fetchall()
    result = TrendResult({}, {})
    for event, value, other, previous, bucket, count, users, total, average in rows:
        series = result.previous if previous else result.current
        row = series.setdefault((event, value, other), TrendRow(event, value, other))
        measures = {"count": int(count), "users": int(users), "sum": _double(total),
                    "avg": None if average is None else _double(average)}
        if bucket is None:
            row.total = measures
        else:
            row.buckets[bucket] = measures
    return result


async def _counts(conn: aiopg.Connection, params: dict[str, Any]) -> TrendResult:
    """measure=count without a breakdown, from the hour aggregates and the raw events of the dirty and the split
    hours."""
    split = split_hours(params["previous_start"], params["end"], params["tz"], params["interval"])
    async with read_snapshot(conn) as cur:
        marks = await dirty_hours(cur, params["account"], params["previous_start"], params["end"], backfilled=False)
        raw = sorted(set(marks["dirty"]) | set(split))
        bounds = {"raw_hours": raw, "split": split, "raw_lo": raw[0] if raw else params["start"],
                  "raw_hi": raw[-1] + HOUR if raw else params["start"]}
        await cur.execute(TREND_COUNTS, {**params, **marks, **bounds})
        rows = await cur.fetchall()
    result = TrendResult({}, {})
    for event, value, other, previous, bucket, count in rows:
        series = result.previous if previous else result.current
        row = series.setdefault((event, value, other), TrendRow(event, value, other))
        if bucket is None:
            row.total = {"count": int(count)}
        else:
            row.buckets[bucket] = {"count": int(count)}
    return result
