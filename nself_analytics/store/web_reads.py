"""Web-analytics reads: plan a read's parts (whole hours and days, dirty hours, raw edges) and run the SQL of
store/web.py in one snapshot."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import aiopg

from .rollups import hll
from .tx import transaction
from .web import (
    BREAKDOWNS,
    DAY,
    DIRTY_HOURS,
    ENTRY_PAGES,
    EXIT_PAGES,
    HOUR,
    ISOLATION,
    PEAK_HOURS,
    SCREEN_BUCKETS,
    SCREEN_WIDTHS,
    SESSION_DURATION,
    SUMMARY,
    TIMESERIES,
    WebQuery,
)

__all__ = [
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


# For one read: room to hash a month of page views in memory instead of spilling to disk, and no JIT
# compilation (it costs more than it saves on these short scans).
READ_SETTINGS = "SET LOCAL work_mem = '64MB'; SET LOCAL jit = off"


def _hour_floor(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _day_floor(instant: datetime) -> datetime:
    return _hour_floor(instant).replace(hour=0)


async def _plan(cur: aiopg.Cursor, query: WebQuery) -> dict[str, Any]:
    """The bounds of the read's parts: whole hours [h1, h2) and whole days [d1, d2) of the range, the dirty
    hours and their days, and the raw scans (the edges before h1 and from h2, the dirty hours)."""
    h1 = _hour_floor(query.start - timedelta(microseconds=1)) + HOUR
    h2 = _hour_floor(query.end)
    if query.filtered or h1 >= h2:  # everything raw, in one scan
        h1 = h2 = query.start
        edges = {"head_lo": query.start, "head_hi": query.end, "tail_lo": query.end, "tail_hi": query.end}
        dirty: list[datetime] = []
    else:
        edges = {"head_lo": query.start, "head_hi": h1, "tail_lo": h2, "tail_hi": query.end}
        await cur.execute(DIRTY_HOURS, {"account": query.account, "h1": h1, "h2": h2})
        dirty = [hour.astimezone(UTC) for (hour,) in await cur.fetchall()]
    d1 = _day_floor(h1 - timedelta(microseconds=1)) + DAY
    d2 = max(d1, _day_floor(h2))
    return {"h1": h1, "h2": h2, "d1": d1, "d2": d2, "d1_day": d1.date(), "d2_day": d2.date(), "dirty": dirty,
            "dirty_days": sorted({hour.date() for hour in dirty}), **edges,
            "dirty_lo": dirty[0] if dirty else h1, "dirty_hi": dirty[-1] + HOUR if dirty else h1}


async def _rows(conn: aiopg.Connection, sql: str, query: WebQuery) -> list[tuple[Any, ...]]:
    async with transaction(conn) as cur:
        await cur.execute(ISOLATION)
        await cur.execute(READ_SETTINGS)
        params = {**query.params(), **await _plan(cur, query)}
        await cur.execute(sql, params)
        return list(await cur.fetchall())


async def summary(conn: aiopg.Connection, query: WebQuery) -> dict[str, int]:
    """Page views, sessions and visitors."""
    [(pageviews, sessions, exact, sketches, hashes)] = await _rows(conn, SUMMARY, query)
    if exact is not None:
        visitors = int(exact)
    else:  # no identity link in the account: the whole days' sketches and the other visitors' hashes
        registers = hll.merge(base64.b64decode(sketch) for sketch in (sketches or "").split(",") if sketch)
        hll.add(registers, [h for h in hashes or [] if h is not None])
        visitors = hll.estimate(registers)
    return {"pageviews": int(pageviews), "sessions": int(sessions), "visitors": visitors}


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
