"""Web-analytics reads: page views of one site over a time range, from session fragments.

Every read groups the session fragments of its range (store/web_rollup.py: one row per site, session,
UTC hour and bot flag) by session: the fragments the aggregator stored for the whole hours of the range
that are not dirty, and fragments built on the fly from raw page views for the rest (the hours still
dirty, typically the current one, and the partial hours at the range's edges). A read with a filter
(``path``, ``referrer`` as a domain, ``country``, ``device``) builds all its fragments from the raw page
views the filter selects, since a session is the set of its selected page views. Parameters: ``account``,
``site``, ``start``, ``end`` (half-open), ``include_bots``, the filters (NULL when unset) and ``limit``.
The SQL is built once, at import, from the constants below; user input only ever arrives as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiopg

from .persons import person_expr, person_join
from .tx import transaction
from .web_rollup import DIMENSIONS, FRAGMENTS, PAGE_VIEW, REFERRER_DOMAIN

__all__ = [
    "BREAKDOWNS",
    "SCREEN_BUCKETS",
    "WebQuery",
    "bounce_rates",
    "breakdown",
    "entry_pages",
    "exit_pages",
    "peak_hours",
    "screen_widths",
    "session_duration",
    "summary",
    "timeseries",
]

SITE_DOMAIN = r"regexp_replace(%(site)s, '^www\.', '')"

# Raw page views of the read (site and time come from the ranges in %(raw)s).
_RAW_FILTERS = f"""
    source_account_id = %(account)s AND {PAGE_VIEW} AND (%(include_bots)s OR NOT is_bot)
    AND (%(path)s::text IS NULL OR path = %(path)s)
    AND (%(country)s::text IS NULL OR country = %(country)s)
    AND (%(device)s::text IS NULL OR device = %(device)s)
    AND (%(referrer)s::text IS NULL OR {REFERRER_DOMAIN} = %(referrer)s)
"""
# Three index range scans on (site, ts), bounds known when planning (so each reads only its days): the
# partial hour at the range's start, the span of the dirty hours (only the dirty hours kept), and the
# partial hour at its end. An empty scan has lo = hi.
_RAW_SCAN = "SELECT * FROM np_analytics_events WHERE site = %(site)s AND ts >= %({n}_lo)s AND ts < %({n}_hi)s"
_RAW_SOURCE = f"""(
    {_RAW_SCAN.format(n="head")}
    UNION ALL
    {_RAW_SCAN.format(n="dirty")}
        AND date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' = ANY(%(dirty)s::timestamptz[])
    UNION ALL
    {_RAW_SCAN.format(n="tail")}
) AS e"""
_FRAGMENT_COLUMNS = "hour, session_id, visitor, first_ts, last_ts, views, entry, exit, vals, cnts"
FRAGS = f"""
WITH frags AS (
    SELECT {_FRAGMENT_COLUMNS} FROM np_analytics_web_sessions
    WHERE source_account_id = %(account)s AND site = %(site)s AND hour >= %(h1)s AND hour < %(h2)s
      AND hour <> ALL(%(dirty)s::timestamptz[]) AND (%(include_bots)s OR NOT is_bot)
    UNION ALL
    SELECT {_FRAGMENT_COLUMNS} FROM ({FRAGMENTS.format(source=_RAW_SOURCE, where=_RAW_FILTERS)}) AS raw
)"""

# Distinct counts are taken in two steps (group by session first, then count the groups): hash
# aggregation, then a small count, is several times faster than count(DISTINCT).
SUMMARY = FRAGS + f"""
SELECT coalesce(sum(views), 0) AS pageviews, count(session_id) AS sessions,
       count(DISTINCT {person_expr("s.visitor")}) AS visitors
FROM (
    -- one row per session (its visitor: the first identity seen, so a session whose IP changes mid-way is
    -- still one session); page views without a session are grouped by visitor instead
    SELECT session_id, min(visitor) AS visitor, sum(views) AS views
    FROM frags
    GROUP BY session_id, CASE WHEN session_id IS NULL THEN visitor END
) AS s
-- a visitor is a person (store/persons.py): the anonymous id the beacon or SDK sent joins the user it
-- identified as, also for fragments stored before the link
{person_join("s.visitor")}
"""

# Dimension name -> (code of its values in the fragments, condition on its value). Rows without a value
# are left out.
_DIMENSIONS: dict[str, tuple[str, str]] = {
    "pages": ("p", "true"),
    "referrers": ("r", f"value <> {SITE_DOMAIN}"),
    "devices": ("d", "true"),
    "languages": ("l", "true"),
    "browsers": ("b", "true"),
    "os": ("o", "true"),
    "countries": ("c", "true"),
    "hostnames": ("h", "true"),
}
assert {code for code, _ in _DIMENSIONS.values()} <= DIMENSIONS.keys()
_UNNEST = """
        SELECT substr(d.v, 2) AS value, f.session_id, sum(d.n) AS views
        FROM frags f CROSS JOIN LATERAL unnest(f.vals, f.cnts) AS d(v, n)
        WHERE left(d.v, 1) = '{code}'
        GROUP BY 1, 2"""
_BREAKDOWN = """
SELECT value, sum(views) AS pageviews, count(session_id) AS sessions
FROM ({unnest}) AS per_session
WHERE {condition}
GROUP BY value
ORDER BY pageviews DESC, sessions DESC, value COLLATE "C"
LIMIT %(limit)s
"""
BREAKDOWNS: dict[str, str] = {
    name: FRAGS + _BREAKDOWN.format(unnest=_UNNEST.format(code=code), condition=condition)
    for name, (code, condition) in _DIMENSIONS.items()
}

# Page views and sessions per value of a key, zero-filled over every key of a series: {per_session} gives
# (key, session_id, views), {series} is a set-returning expression of all keys.
_SERIES = """
, counts AS (
    SELECT key, sum(views) AS pageviews, count(session_id) AS sessions
    FROM ({per_session}) AS per_session
    GROUP BY key
)
SELECT {label}, coalesce(counts.pageviews, 0) AS pageviews, coalesce(counts.sessions, 0) AS sessions
FROM {series} AS series(key)
LEFT JOIN counts ON counts.key = series.key
ORDER BY series.key
"""
_PER_HOUR_KEY = "SELECT {key} AS key, session_id, sum(views) AS views FROM frags GROUP BY 1, 2"

# Days of [start, end) in UTC.
TIMESERIES = FRAGS + _SERIES.format(
    per_session=_PER_HOUR_KEY.format(key="date_trunc('day', hour AT TIME ZONE 'UTC')"),
    label="to_char(series.key, 'YYYY-MM-DD')",
    series="generate_series(date_trunc('day', %(start)s AT TIME ZONE 'UTC'), "
           "date_trunc('day', (%(end)s - interval '1 microsecond') AT TIME ZONE 'UTC'), interval '1 day')",
)
# Hours of the day, UTC.
PEAK_HOURS = FRAGS + _SERIES.format(
    per_session=_PER_HOUR_KEY.format(key="extract(hour FROM hour AT TIME ZONE 'UTC')::int"),
    label="series.key", series="generate_series(0, 23)",
)
# Screen width buckets (the common CSS breakpoints): label, lowest width, highest width (None: no limit).
SCREEN_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("<576", 0, 575), ("576-767", 576, 767), ("768-991", 768, 991), ("992-1199", 992, 1199), (">=1200", 1200, None),
)
SCREEN_WIDTHS = FRAGS + _SERIES.format(
    per_session=f"SELECT value::int AS key, session_id, views FROM ({_UNNEST.format(code='w')}) AS w",
    label="series.key", series="generate_series(0, 4)",
)

# One row per session: its first and last page (the fragments of a session never overlap in time, except
# a bot's and a human's within one hour: ties broken by path as within a fragment), views, and duration.
_SESSIONS = FRAGS + """
, sessions AS (
    SELECT session_id,
           (array_agg(entry ORDER BY first_ts, entry COLLATE "C"))[1] AS entry,
           (array_agg(exit ORDER BY last_ts DESC, exit COLLATE "C" DESC))[1] AS exit,
           sum(views) AS views,
           extract(epoch FROM max(last_ts) - min(first_ts))::float8 AS seconds
    FROM frags
    WHERE session_id IS NOT NULL
    GROUP BY session_id
)
"""
ENTRY_PAGES = _SESSIONS + """
SELECT entry AS path, count(*) AS sessions, count(*) FILTER (WHERE views = 1) AS bounces
FROM sessions
GROUP BY entry
ORDER BY sessions DESC, entry COLLATE "C"
LIMIT %(limit)s
"""
EXIT_PAGES = _SESSIONS + """
SELECT exit AS path, count(*) AS sessions
FROM sessions
GROUP BY exit
ORDER BY sessions DESC, exit COLLATE "C"
LIMIT %(limit)s
"""
SESSION_DURATION = _SESSIONS + """
SELECT count(*) AS sessions,
       coalesce(avg(seconds), 0) AS average_seconds,
       coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), 0) AS median_seconds,
       coalesce(avg(views), 0)::float8 AS pageviews_per_session,
       count(*) FILTER (WHERE views = 1) AS bounces
FROM sessions
"""

# The hours in [h1, h2) of the account whose events are not in the fragments yet.
DIRTY_HOURS = """
SELECT hour FROM np_analytics_aggregate_dirty
WHERE source_account_id = %(account)s AND hour >= %(h1)s AND hour < %(h2)s ORDER BY hour
"""
# One snapshot for the dirty hours and the fragments (the aggregator swaps both in one transaction).
ISOLATION = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class WebQuery:
    """The parameters shared by every web-analytics read."""

    site: str
    start: datetime
    end: datetime
    include_bots: bool = False
    path: str | None = None
    referrer: str | None = None
    country: str | None = None
    device: str | None = None
    limit: int = 10
    account: str = "primary"

    @property
    def filtered(self) -> bool:
        return any(value is not None for value in (self.path, self.referrer, self.country, self.device))

    def params(self) -> dict[str, Any]:
        return {"account": self.account, "site": self.site, "start": self.start, "end": self.end,
                "include_bots": self.include_bots,
                "path": self.path, "referrer": self.referrer, "country": self.country, "device": self.device,
                "limit": self.limit}


# For one read: room to hash a month of page views in memory instead of spilling to disk, and no JIT
# compilation (it costs more than it saves on these short scans).
READ_SETTINGS = "SET LOCAL work_mem = '64MB'; SET LOCAL jit = off"


def _hour_floor(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def _plan(cur: aiopg.Cursor, query: WebQuery) -> dict[str, Any]:
    """Which whole hours come from stored fragments ([h1, h2) less ``dirty``) and which ranges from raw."""
    h1 = _hour_floor(query.start - timedelta(microseconds=1)) + HOUR
    h2 = _hour_floor(query.end)
    if query.filtered or h1 >= h2:  # everything raw, in one scan
        return {"h1": query.start, "h2": query.start, "dirty": [], "head_lo": query.start, "head_hi": query.end,
                "dirty_lo": query.start, "dirty_hi": query.start, "tail_lo": query.end, "tail_hi": query.end}
    await cur.execute(DIRTY_HOURS, {"account": query.account, "h1": h1, "h2": h2})
    dirty = [hour.astimezone(UTC) for (hour,) in await cur.fetchall()]
    return {"h1": h1, "h2": h2, "dirty": dirty, "head_lo": query.start, "head_hi": h1,
            "dirty_lo": dirty[0] if dirty else h1, "dirty_hi": dirty[-1] + HOUR if dirty else h1,
            "tail_lo": h2, "tail_hi": query.end}


async def _rows(conn: aiopg.Connection, sql: str, query: WebQuery) -> list[tuple[Any, ...]]:
    async with transaction(conn) as cur:
        await cur.execute(ISOLATION)
        await cur.execute(READ_SETTINGS)
        params = {**query.params(), **await _plan(cur, query)}
        await cur.execute(sql, params)
        return list(await cur.fetchall())


async def summary(conn: aiopg.Connection, query: WebQuery) -> dict[str, int]:
    """Page views, sessions and visitors."""
    [(pageviews, sessions, visitors)] = await _rows(conn, SUMMARY, query)
    return {"pageviews": int(pageviews), "sessions": int(sessions), "visitors": int(visitors)}


async def breakdown(conn: aiopg.Connection, query: WebQuery, name: str, key: str) -> list[dict[str, Any]]:
    """Top values of one dimension (see BREAKDOWNS) by page views, as ``{key: value, pageviews, sessions}``."""
    return [{key: value, "pageviews": int(views), "sessions": int(sessions)}
            for value, views, sessions in await _rows(conn, BREAKDOWNS[name], query)]


async def timeseries(conn: aiopg.Connection, query: WebQuery) -> list[dict[str, Any]]:
    """Page views and sessions per UTC day, every day of the range present."""
    return [{"date": day, "pageviews": int(views), "sessions": int(sessions)}
            for day, views, sessions in await _rows(conn, TIMESERIES, query)]


async def peak_hours(conn: aiopg.Connection, query: WebQuery) -> list[dict[str, int]]:
    """Page views and sessions per hour of the day (UTC), all 24 hours present."""
    return [{"hour": int(hour), "pageviews": int(views), "sessions": int(sessions)}
            for hour, views, sessions in await _rows(conn, PEAK_HOURS, query)]


async def screen_widths(conn: aiopg.Connection, query: WebQuery) -> list[dict[str, Any]]:
    """Page views and sessions per screen width bucket, all buckets present."""
    result = []
    for bucket, views, sessions in await _rows(conn, SCREEN_WIDTHS, query):
        label, low, high = SCREEN_BUCKETS[bucket]
        result.append({"bucket": label, "min": low, "max": high, "pageviews": int(views), "sessions": int(sessions)})
    return result


async def entry_pages(conn: aiopg.Connection, query: WebQuery) -> list[dict[str, Any]]:
    """Pages sessions start on."""
    return [{"path": path, "sessions": int(sessions)} for path, sessions, _ in await _rows(conn, ENTRY_PAGES, query)]


async def bounce_rates(conn: aiopg.Connection, query: WebQuery) -> list[dict[str, Any]]:
    """Per entry page: sessions, bounces (sessions of a single page view) and their share."""
    return [{"path": path, "sessions": int(sessions), "bounces": int(bounces),
             "bounce_rate": round(int(bounces) / int(sessions), 4)}
            for path, sessions, bounces in await _rows(conn, ENTRY_PAGES, query)]


async def exit_pages(conn: aiopg.Connection, query: WebQuery) -> list[dict[str, Any]]:
    """Pages sessions end on."""
    return [{"path": path, "sessions": int(sessions)} for path, sessions in await _rows(conn, EXIT_PAGES, query)]


async def session_duration(conn: aiopg.Connection, query: WebQuery) -> dict[str, Any]:
    """Sessions, the average and median seconds between their first and last page view, and bounces."""
    [(sessions, average, median, per_session, bounces)] = await _rows(conn, SESSION_DURATION, query)
    sessions = int(sessions)
    return {"sessions": sessions, "average_seconds": round(float(average), 3),
            "median_seconds": round(float(median), 3), "pageviews_per_session": round(float(per_session), 3),
            "bounces": int(bounces), "bounce_rate": round(int(bounces) / sessions, 4) if sessions else 0.0}
