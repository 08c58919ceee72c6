"""Web-analytics reads: page views of one site over a time range, from the raw event log.

Every query selects through the ``(site, ts)`` index with the same parameters: ``site``, ``start``,
``end`` (half-open), ``include_bots``, and the optional filters ``path``, ``referrer`` (a domain),
``country`` and ``device`` (NULL when unset). The SQL is built once, at import, from the constants
below; user input only ever arrives as parameters. Filters select page views, and every figure is
computed from the selected page views (a session is the set of its selected page views).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiopg

from .tx import transaction

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

# The host of a referring URL (text between "scheme://" and the first / ? or #, less user info and
# port), lower case, without a leading "www.". String functions: a capturing regex costs twice as much.
_AFTER_SCHEME = "split_part(split_part(split_part(split_part(referrer, '://', 2), '/', 1), '?', 1), '#', 1)"
REFERRER_DOMAIN = (
    "CASE WHEN referrer ~ '^[A-Za-z][A-Za-z0-9+.-]*://' THEN "
    f"regexp_replace(lower(split_part(split_part({_AFTER_SCHEME}, '@', -1), ':', 1)), '^www\\.', '') END"
)
SITE_DOMAIN = r"regexp_replace(%(site)s, '^www\.', '')"

FILTERS = f"""
    site = %(site)s AND ts >= %(start)s AND ts < %(end)s AND event = '$pageview'
    AND (%(include_bots)s OR NOT is_bot)
    AND (%(path)s::text IS NULL OR path = %(path)s)
    AND (%(country)s::text IS NULL OR country = %(country)s)
    AND (%(device)s::text IS NULL OR device = %(device)s)
    AND (%(referrer)s::text IS NULL OR {REFERRER_DOMAIN} = %(referrer)s)
"""

# Distinct counts are taken in two steps (group by session first, then count the groups): hash
# aggregation over the page views, then a small count, is several times faster than count(DISTINCT).
SUMMARY = f"""
SELECT coalesce(sum(views), 0) AS pageviews, count(session_id) AS sessions, count(DISTINCT visitor) AS visitors
FROM (
    -- one row per session (its visitor: the first identity seen, so a session whose IP changes mid-way is
    -- still one session); page views without a session are grouped by visitor instead
    SELECT session_id, min(coalesce(user_id, anonymous_id, ip_hash, session_id)) AS visitor, count(*) AS views
    FROM np_analytics_events
    WHERE {FILTERS}
    GROUP BY session_id, CASE WHEN session_id IS NULL THEN coalesce(user_id, anonymous_id, ip_hash) END
) AS per_session
"""

# Dimension name -> (SQL expression, condition on its value). Rows without a value are left out.
_DIMENSIONS: dict[str, tuple[str, str]] = {
    "pages": ("path", "true"),
    "referrers": (REFERRER_DOMAIN, f"value <> {SITE_DOMAIN}"),
    "devices": ("device", "true"),
    "languages": ("language", "true"),
    "browsers": ("browser", "true"),
    "os": ("os", "true"),
    "countries": ("country", "true"),
    "hostnames": ("coalesce(properties->>'hostname', site)", "true"),
}
_BREAKDOWN = """
SELECT value, sum(views) AS pageviews, count(session_id) AS sessions
FROM (
    SELECT {expr} AS value, session_id, count(*) AS views
    FROM np_analytics_events
    WHERE {filters}
    GROUP BY 1, 2
    OFFSET 0  -- a fence: the conditions below must not be pushed into the scan (computing value again)
) AS per_session
WHERE value IS NOT NULL AND value <> '' AND {condition}
GROUP BY value
ORDER BY pageviews DESC, sessions DESC, value COLLATE "C"
LIMIT %(limit)s
"""
BREAKDOWNS: dict[str, str] = {
    name: _BREAKDOWN.format(expr=expr, filters=FILTERS, condition=condition)
    for name, (expr, condition) in _DIMENSIONS.items()
}

# Page views and sessions per value of a key computed from each page view, zero-filled over every
# key of a series: {key} is the key's SQL, {series} a set-returning expression of all keys.
_SERIES = """
WITH counts AS (
    SELECT key, sum(views) AS pageviews, count(session_id) AS sessions
    FROM (
        SELECT {key} AS key, session_id, count(*) AS views
        FROM np_analytics_events
        WHERE {filters} AND {key} IS NOT NULL
        GROUP BY 1, 2
    ) AS per_session
    GROUP BY key
)
SELECT {label}, coalesce(counts.pageviews, 0) AS pageviews, coalesce(counts.sessions, 0) AS sessions
FROM {series} AS series(key)
LEFT JOIN counts ON counts.key = series.key
ORDER BY series.key
"""

# Days of [start, end) in UTC.
TIMESERIES = _SERIES.format(
    key="date_trunc('day', ts AT TIME ZONE 'UTC')", filters=FILTERS, label="to_char(series.key, 'YYYY-MM-DD')",
    series="generate_series(date_trunc('day', %(start)s AT TIME ZONE 'UTC'), "
           "date_trunc('day', (%(end)s - interval '1 microsecond') AT TIME ZONE 'UTC'), interval '1 day')",
)
# Hours of the day, UTC.
PEAK_HOURS = _SERIES.format(key="extract(hour FROM ts AT TIME ZONE 'UTC')::int", filters=FILTERS,
                            label="series.key", series="generate_series(0, 23)")
# Screen width buckets (the common CSS breakpoints): label, lowest width, highest width (None: no limit).
SCREEN_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("<576", 0, 575), ("576-767", 576, 767), ("768-991", 768, 991), ("992-1199", 992, 1199), (">=1200", 1200, None),
)
SCREEN_WIDTHS = _SERIES.format(
    key="CASE WHEN screen_width < 576 THEN 0 WHEN screen_width < 768 THEN 1 WHEN screen_width < 992 THEN 2 "
        "WHEN screen_width < 1200 THEN 3 WHEN screen_width >= 1200 THEN 4 END",
    filters=FILTERS, label="series.key", series="generate_series(0, 4)",
)

# One row per session: its first and last page (ties in time broken by path), views, and duration.
_SESSIONS = f"""
WITH sessions AS (
    SELECT session_id,
           (array_agg(path ORDER BY ts, path COLLATE "C"))[1] AS entry,
           (array_agg(path ORDER BY ts DESC, path COLLATE "C" DESC))[1] AS exit,
           count(*) AS views,
           extract(epoch FROM max(ts) - min(ts))::float8 AS seconds
    FROM np_analytics_events
    WHERE {FILTERS} AND session_id IS NOT NULL
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

    def params(self) -> dict[str, Any]:
        return {"site": self.site, "start": self.start, "end": self.end, "include_bots": self.include_bots,
                "path": self.path, "referrer": self.referrer, "country": self.country, "device": self.device,
                "limit": self.limit}


# For one read: room to hash a month of page views in memory instead of spilling to disk, and no JIT
# compilation (it costs more than it saves on these short scans).
READ_SETTINGS = "SET LOCAL work_mem = '64MB'; SET LOCAL jit = off"


async def _rows(conn: aiopg.Connection, sql: str, query: WebQuery) -> list[tuple[Any, ...]]:
    async with transaction(conn) as cur:
        await cur.execute(READ_SETTINGS)
        await cur.execute(sql, query.params())
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
