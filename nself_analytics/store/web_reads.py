"""Web-analytics reads: plan a read's parts (whole hours and days, dirty hours, raw edges) and run the SQL of
store/web.py in one snapshot."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import aiopg
import msgspec

from .rollups import hll
from .rollups.dirty import dirty_hours
from .tx import read_snapshot
from .web import DAY, DIRECT, HOUR, SCREEN_BUCKETS, WebQuery
from .web_sql import (
    BREAKDOWNS,
    ENTRY_PAGES,
    EXIT_PAGES,
    GOAL_EVENT,
    GOAL_PATH,
    PEAK_HOURS,
    PEAK_WEEK,
    PEAK_WEEK_HOURS,
    SCREEN_WIDTHS,
    SESSION_DURATION,
    SUMMARY,
    TIMESERIES,
)

__all__ = [
    "Counts",
    "Durations",
    "EntryPage",
    "HourCell",
    "Summary",
    "WebQuery",
    "WidthCounts",
    "breakdown",
    "entry_pages",
    "exit_pages",
    "goal_event",
    "goal_path",
    "peak_hours",
    "peak_week",
    "plan_range",
    "screen_widths",
    "session_duration",
    "summary",
    "timeseries",
]


def _hour_floor(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _day_floor(instant: datetime) -> datetime:
    return _hour_floor(instant).replace(hour=0)


async def plan_range(cur: aiopg.Cursor, account: str, start: datetime, end: datetime, days: bool,
                     site: str | None = None) -> dict[str, Any]:
    """The bounds of the parts of a read of ``[start, end)``: whole hours [h1, h2) and whole days [d1, d2) of the
    range (none when ``days`` is false: the per-day rows are UTC days), the dirty hours and their days, and the raw
    scans (the edges before h1 and from h2, the dirty hours). Also what /sites reads (store/explorer.py). With a
    ``site``, a partial edge day whose page views of that site all lie in the range is a whole day."""
    h1 = _hour_floor(start - timedelta(microseconds=1)) + HOUR
    h2 = _hour_floor(end)
    if h1 >= h2:  # everything raw, in one scan: no dirty hour to plan around
        h1 = h2 = start
        edges = {"head_lo": start, "head_hi": end, "tail_lo": end, "tail_hi": end}
        marks: dict[str, Any] = {"dirty": [], "dirty_days": [], "dirty_lo": h1, "dirty_hi": h1}
    else:
        edges = {"head_lo": start, "head_hi": h1, "tail_lo": h2, "tail_hi": end}
        marks = await dirty_hours(cur, account, h1, h2)
    d1 = _day_floor(h1 - timedelta(microseconds=1)) + DAY
    d2 = max(d1, _day_floor(h2)) if days else d1
    if days and d1 < d2 and site is not None:
        # a partial day at an edge whose page views all lie within the range is a whole day (issue 27 item 3:
        # "30 days ending now" reads today from its per-day rows, not its fragments one by one)
        if h2 > d2 and await _inside(cur, account, site, h2, d2 + DAY, "max(last_ts) < %(end)s", end):
            h2 = d2 = d2 + DAY
            edges = {**edges, "tail_lo": end, "tail_hi": end}
        if h1 < d1 and await _inside(cur, account, site, d1 - DAY, h1, "min(first_ts) >= %(end)s", start):
            h1 = d1 = d1 - DAY
            edges = {**edges, "head_lo": start, "head_hi": start}
    return {"h1": h1, "h2": h2, "d1": d1, "d2": d2, "d1_day": d1.date(), "d2_day": d2.date(), **edges, **marks}


async def _plan(cur: aiopg.Cursor, query: WebQuery, days: bool, events: bool = False) -> dict[str, Any]:
    # an edge day is read whole only by reads without events (the sessions' events rows are per hour, without times)
    return await plan_range(cur, query.account, query.start, query.end, days, None if events else query.site)


# Whether the stored fragments of the site's hours [lo, hi) satisfy {test} (their page views lie on the range's side
# of an edge: ``end``; none: true) and none of those hours is dirty (or not yet backfilled): then every page view
# of those hours is in the fragments (an hour written to is marked dirty in the same transaction) and in the range.
_INSIDE = """
SELECT coalesce((SELECT {test} FROM np_analytics_web_sessions
                 WHERE source_account_id = %(account)s AND site = %(site)s AND hour >= %(lo)s AND hour < %(hi)s), true)
"""


async def _inside(cur: aiopg.Cursor, account: str, site: str, lo: datetime, hi: datetime, test: str,
                  edge: datetime) -> bool:
    if (await dirty_hours(cur, account, lo, hi))["dirty"]:
        return False
    await cur.execute(_INSIDE.format(test=test), {"account": account, "site": site, "lo": lo, "hi": hi, "end": edge})
    (inside,) = await cur.fetchone()
    return bool(inside)


async def _rows(conn: aiopg.Connection, sql: str, query: WebQuery, days: bool = True,
                extra: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    async with read_snapshot(conn) as cur:
        params = {**query.params(), **(extra or {})}
        params = {**params, **await _plan(cur, query, days, bool(params.get("event_names")))}
        await cur.execute(sql, params)
        return list(await cur.fetchall())


class Summary(msgspec.Struct, frozen=True):
    """Page views, sessions and visitors of a read."""

    pageviews: int
    sessions: int
    visitors: int


class Counts(msgspec.Struct, frozen=True):
    """Page views and sessions of one value of a dimension (a path, a day, an hour, a UTM value...)."""

    key: Any
    pageviews: int
    sessions: int


class WidthCounts(msgspec.Struct, frozen=True):
    """Page views and sessions of one screen width bucket ``[min, max]`` (max None: no upper bound)."""

    bucket: str
    min: int
    max: int | None
    pageviews: int
    sessions: int


class EntryPage(msgspec.Struct, frozen=True):
    """Sessions starting (or ending) on a path, and those of a single page view (bounces)."""

    path: str
    sessions: int
    bounces: int = 0


class Durations(msgspec.Struct, frozen=True):
    """Sessions, the average and median seconds between their first and last page view, page views per session
    and bounces (unrounded: the edge rounds)."""

    sessions: int
    average_seconds: float
    median_seconds: float
    pageviews_per_session: float
    bounces: int


async def summary(conn: aiopg.Connection, query: WebQuery) -> Summary:
    """Page views, sessions and visitors."""
    [(pageviews, sessions, exact, sketches, hashes)] = await _rows(conn, SUMMARY, query)
    if exact is not None:
        visitors = int(exact)
    else:  # no identity link in the account: the whole days' sketches and the other visitors' hashes
        registers = hll.merge(base64.b64decode(sketch) for sketch in (sketches or "").split(",") if sketch)
        hll.add(registers, [h for h in hashes or [] if h is not None])
        visitors = hll.estimate(registers)
    return Summary(int(pageviews), int(sessions), visitors)


async def breakdown(conn: aiopg.Connection, query: WebQuery, name: str) -> list[Counts]:
    """Top values of one dimension (see BREAKDOWNS) by page views; the sessions without a referrer are the
    referrer "Direct / None"."""
    return [Counts(DIRECT if value == "" else value, int(views), int(sessions))
            for value, views, sessions in await _rows(conn, BREAKDOWNS[name], query)]


async def timeseries(conn: aiopg.Connection, query: WebQuery) -> list[Counts]:
    """Page views and sessions per day of the read's zone (the key: YYYY-MM-DD), every day of the range present."""
    return [Counts(day, int(views), int(sessions))
            for day, views, sessions in await _rows(conn, TIMESERIES, query, days=query.tz == "UTC")]


async def peak_hours(conn: aiopg.Connection, query: WebQuery) -> list[Counts]:
    """Page views and sessions per hour of the day (the read's zone), all 24 hours present."""
    return [Counts(int(hour), int(views), int(sessions))
            for hour, views, sessions in await _rows(conn, PEAK_HOURS, query, days=query.tz == "UTC")]


class HourCell(msgspec.Struct, frozen=True):
    """One hour of one weekday (ISO: 1 is Monday) of the read's zone: visitors, page views and sessions."""

    weekday: int
    hour: int
    visitors: int
    pageviews: int
    sessions: int


async def peak_week(conn: aiopg.Connection, query: WebQuery) -> list[HourCell]:
    """Per weekday and hour of the day (the read's zone), all 168 present, Monday 00:00 first. Unfiltered: summed
    over the cell's UTC hours from the per-hour rows (sessions and visitors of each hour: "hourly"); filtered: the
    selected sessions and their persons with a counted page view in the cell."""
    if not query.filtered:
        rows = await _rows(conn, PEAK_WEEK_HOURS, query, days=False)
        return [HourCell(*(int(x) for x in row)) for row in rows]
    rows = await _rows(conn, PEAK_WEEK, query, days=query.tz == "UTC", extra={"filtered": True})
    return [HourCell(*(int(x) for x in row)) for row in rows]


async def screen_widths(conn: aiopg.Connection, query: WebQuery) -> list[WidthCounts]:
    """Page views and sessions per screen width bucket, all buckets present."""
    result = []
    for bucket, views, sessions in await _rows(conn, SCREEN_WIDTHS, query):
        label, low, high = SCREEN_BUCKETS[bucket]
        result.append(WidthCounts(label, low, high, int(views), int(sessions)))
    return result


async def entry_pages(conn: aiopg.Connection, query: WebQuery) -> list[EntryPage]:
    """Pages sessions start on, with the sessions of a single page view among them."""
    return [EntryPage(path, int(sessions), int(bounces))
            for path, sessions, bounces in await _rows(conn, ENTRY_PAGES, query)]


async def exit_pages(conn: aiopg.Connection, query: WebQuery) -> list[EntryPage]:
    """Pages sessions end on."""
    return [EntryPage(path, int(sessions)) for path, sessions in await _rows(conn, EXIT_PAGES, query)]


async def session_duration(conn: aiopg.Connection, query: WebQuery) -> Durations:
    """Sessions, the average and median seconds between their first and last page view, and bounces."""
    [(sessions, average, median, per_session, bounces)] = await _rows(conn, SESSION_DURATION, query)
    return Durations(int(sessions), float(average), float(median), float(per_session), int(bounces))


async def goal_path(conn: aiopg.Connection, query: WebQuery, path: str) -> tuple[int, int]:
    """A page goal: (its page views in the selected sessions, the persons of the selected sessions with one)."""
    # read as a filtered read (whatever the filters): the whole days' sessions one by one, from their rows
    [(conversions, visitors)] = await _rows(conn, GOAL_PATH, query, extra={"value": path, "filtered": True})
    return int(conversions), int(visitors)


async def goal_event(conn: aiopg.Connection, query: WebQuery, name: str) -> tuple[int, int]:
    """An event goal under filters: (its events in the selected sessions, the persons of those sessions with one)."""
    extra = {"value": name, "filtered": True, "event_names": sorted({*query.events, name})}
    [(conversions, visitors)] = await _rows(conn, GOAL_EVENT, query, extra=extra)
    return int(conversions), int(visitors)
