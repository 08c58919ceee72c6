"""What is in the event log: event names, the properties of one event, the sites with page views.

These feed the pickers of the dashboard and of MCP clients. Every read is of one source account over
a half-open time range, leaves bot events out, and is bounded: at most ``limit`` rows, and the
property survey reads only the newest ``PROPERTY_SAMPLE`` events of the name (so a hot event costs
the same as a rare one). Property names and values arrive as parameters only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiopg
import msgspec

from .rollups.web_rollup import PAGE_VIEW
from .tx import read_snapshot
from .web_reads import plan_range

__all__ = ["MAX_VALUE_CHARS", "PROPERTY_SAMPLE", "PropertyKey", "Seen", "ValueCount", "event_names", "event_properties",
           "sites"]

PROPERTY_SAMPLE = 10_000  # newest events of a name read by the property survey
MAX_VALUE_CHARS = 200  # longer property values are cut to this many characters in the survey

# Index-only over (source_account_id, event, ts) INCLUDE (..., is_bot).
EVENT_NAMES = """
SELECT event, count(*) AS count, min(ts) AS first_seen, max(ts) AS last_seen
FROM np_analytics_events
WHERE source_account_id = %(account)s AND ts >= %(start)s AND ts < %(end)s AND NOT is_bot
  AND (%(search)s::text IS NULL OR strpos(lower(event), lower(%(search)s)) > 0)
GROUP BY event
ORDER BY count DESC, event COLLATE "C"
LIMIT %(limit)s
"""

# Per key of the sampled events: how many carry it, its JSON types, and its most frequent scalar values.
EVENT_PROPERTIES = """
WITH sample AS (
    SELECT properties
    FROM np_analytics_events
    WHERE source_account_id = %(account)s AND event = %(event)s AND ts >= %(start)s AND ts < %(end)s
      AND NOT is_bot
    ORDER BY ts DESC
    LIMIT %(sample)s
),
kv AS (
    SELECT p.key, jsonb_typeof(p.value) AS type,
           CASE WHEN jsonb_typeof(p.value) IN ('string', 'number', 'boolean')
                THEN left(p.value #>> '{}', %(value_chars)s) END AS value
    FROM sample CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(sample.properties) = 'object'
                                                   THEN sample.properties ELSE '{}'::jsonb END) AS p
),
keys AS (
    SELECT key, count(*) AS count, array_agg(DISTINCT type ORDER BY type) AS types
    FROM kv GROUP BY key
    ORDER BY count DESC, key COLLATE "C"
    LIMIT %(limit)s
),
vals AS (
    SELECT key, value, count(*) AS count,
           row_number() OVER (PARTITION BY key ORDER BY count(*) DESC, value COLLATE "C") AS rank
    FROM kv WHERE value IS NOT NULL AND key IN (SELECT key FROM keys)
    GROUP BY key, value
)
SELECT k.key, k.count, k.types,
       coalesce((SELECT jsonb_agg(jsonb_build_object('value', v.value, 'count', v.count) ORDER BY v.rank)
                 FROM vals v WHERE v.key = k.key AND v.rank <= %(values)s), '[]'::jsonb) AS top,
       (SELECT count(*) FROM sample) AS sampled
FROM keys k
ORDER BY k.count DESC, k.key COLLATE "C"
"""
SAMPLED = """
SELECT count(*) FROM (
    SELECT 1 FROM np_analytics_events
    WHERE source_account_id = %(account)s AND event = %(event)s AND ts >= %(start)s AND ts < %(end)s AND NOT is_bot
    LIMIT %(sample)s
) AS s
"""

# Sites by page views over [start, end) (any instants: the days of any zone), planned as the web reads are
# (store/web_reads.py plan_range): per whole UTC day [d1, d2) without a dirty hour, the day's '*' row (the page
# views of its closed sessions: rollups/web_daily.py) plus its spanning fragments; the fragments of every other
# clean hour of [h1, h2) (rollups/web_rollup.py); raw page views for the dirty hours and the partial hours at the
# edges (a zone with a 30/45-minute offset; bounds known when planning). First and last seen: the first and last
# clean fragment hour of each listed site (index probes), and the raw page views.
_FRAGMENT = "np_analytics_web_sessions f WHERE f.source_account_id = %(account)s AND NOT f.is_bot"
_EDGE_HOUR = """(
    SELECT g.hour FROM np_analytics_web_sessions g
    WHERE g.source_account_id = %(account)s AND g.site = t.site AND NOT g.is_bot AND g.hour >= %(h1)s
      AND g.hour < %(h2)s AND g.hour <> ALL(%(dirty)s::timestamptz[])
    ORDER BY g.hour {order} LIMIT 1)"""
_RAW_SCAN = f"""
    SELECT site, ts FROM np_analytics_events
    WHERE source_account_id = %(account)s AND ts >= %({{n}}_lo)s AND ts < %({{n}}_hi)s AND {PAGE_VIEW}
      AND site IS NOT NULL AND NOT is_bot"""
SITES = f"""
WITH ddays AS MATERIALIZED (
    SELECT g::date AS day
    FROM generate_series(%(d1)s::timestamptz AT TIME ZONE 'UTC', %(d2)s::timestamptz AT TIME ZONE 'UTC'
                         - interval '1 day', interval '1 day') AS g
    WHERE g::date <> ALL(%(dirty_days)s::date[])
),
raw AS MATERIALIZED (
    SELECT site, count(*) AS views, min(ts) AS first_ts, max(ts) AS last_ts FROM ({_RAW_SCAN.format(n="head")}
    UNION ALL{_RAW_SCAN.format(n="dirty")}
      AND date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' = ANY(%(dirty)s::timestamptz[])
    UNION ALL{_RAW_SCAN.format(n="tail")}
    ) AS e
    GROUP BY site
),
counts AS (
    SELECT w.site, w.views FROM np_analytics_web_daily w
    WHERE w.source_account_id = %(account)s AND w.code = '*' AND NOT w.is_bot AND w.day >= %(d1_day)s
      AND w.day < %(d2_day)s AND w.day IN (SELECT day FROM ddays)
    UNION ALL
    SELECT f.site, f.views FROM {_FRAGMENT} AND f.spans AND f.hour >= %(d1)s AND f.hour < %(d2)s
      AND (f.hour AT TIME ZONE 'UTC')::date IN (SELECT day FROM ddays)
    UNION ALL
    SELECT f.site, f.views FROM {_FRAGMENT} AND f.hour >= %(h1)s AND f.hour < %(h2)s
      AND (f.hour AT TIME ZONE 'UTC')::date NOT IN (SELECT day FROM ddays) AND f.hour <> ALL(%(dirty)s::timestamptz[])
    UNION ALL
    SELECT site, views FROM raw
),
totals AS (
    SELECT site, sum(views) AS pageviews FROM counts GROUP BY site
    ORDER BY pageviews DESC, site COLLATE "C" LIMIT %(limit)s
)
SELECT t.site, t.pageviews,
       least((SELECT min(f.first_ts) FROM {_FRAGMENT} AND f.site = t.site AND f.hour = {_EDGE_HOUR.format(order="")}),
             r.first_ts),
       greatest((SELECT max(f.last_ts) FROM {_FRAGMENT} AND f.site = t.site
                     AND f.hour = {_EDGE_HOUR.format(order="DESC")}), r.last_ts)
FROM totals t LEFT JOIN raw r USING (site)
ORDER BY t.pageviews DESC, t.site COLLATE "C"
"""


async def _rows(conn: aiopg.Connection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    async with read_snapshot(conn) as cur:
        await cur.execute(sql, params)
        return list(await cur.fetchall())


class Seen(msgspec.Struct, frozen=True):
    """A name (an event, a site) with its count in the range and its first and last time."""

    name: str
    count: int
    first_seen: datetime
    last_seen: datetime


class ValueCount(msgspec.Struct, frozen=True):
    value: str
    count: int


class PropertyKey(msgspec.Struct, frozen=True):
    """A property key of the surveyed events: how many carry it, its JSON types, its most frequent values."""

    key: str
    count: int
    types: list[str]
    values: list[ValueCount]


async def event_names(conn: aiopg.Connection, *, account: str, start: datetime, end: datetime, limit: int,
                      search: str | None = None) -> list[Seen]:
    """Event names seen in ``[start, end)``, most frequent first, with counts and first/last times."""
    rows = await _rows(conn, EVENT_NAMES, {"account": account, "start": start, "end": end, "limit": limit,
                                           "search": search})
    return [Seen(event, int(count), first, last) for event, count, first, last in rows]


async def event_properties(conn: aiopg.Connection, *, account: str, event: str, start: datetime, end: datetime,
                           limit: int, values: int) -> tuple[int, list[PropertyKey]]:
    """(events surveyed, keys): per property key of the newest events named ``event``, how many carry it,
    its JSON types, and its ``values`` most frequent scalar values with their counts."""
    params = {"account": account, "event": event, "start": start, "end": end, "limit": limit, "values": values,
              "sample": PROPERTY_SAMPLE, "value_chars": MAX_VALUE_CHARS}
    rows = await _rows(conn, EVENT_PROPERTIES, params)
    if rows:
        sampled = int(rows[0][4])
    else:
        [(sampled,)] = await _rows(conn, SAMPLED, params)
    return int(sampled), [PropertyKey(key, int(count), list(types), msgspec.convert(top or [], list[ValueCount]))
                          for key, count, types, top, _ in rows]


async def sites(conn: aiopg.Connection, *, account: str, start: datetime, end: datetime,
                limit: int) -> list[Seen]:
    """Sites with page views in ``[start, end)``, most viewed first."""
    params: dict[str, Any] = {"account": account, "start": start, "end": end, "limit": limit}
    async with read_snapshot(conn) as cur:  # one snapshot for the dirty hours and the fragments
        await cur.execute(SITES, {**params, **await plan_range(cur, account, start, end, days=True)})
        rows = list(await cur.fetchall())
    return [Seen(site, int(views), first, last) for site, views, first, last in rows]
