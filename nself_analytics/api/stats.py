"""The web-analytics read API: GET /api/{pageviews,pages,referrers,timeseries,...} of one site.

A token, or a site token of that site. Parameters (:class:`WebParams`): ``site`` (required), ``start``/``end``
(Unix seconds) or ``start_date``/``end_date`` (days of ``tz``; default the last 30 days of ``tz``, today
included), ``tz`` (IANA, default UTC), ``limit`` (top lists), ``include_bots``, the page filter ``path`` and the
session filters ``referrer`` (a domain, or ``Direct / None``), ``country``, ``device``, ``browser``, ``os``,
``language``, ``screen``, ``hostname``, ``entry_page``, ``exit_page`` and ``utm_source``/``utm_medium``/
``utm_campaign``/``utm_term``/``utm_content``, the event filter ``event`` and the goal filter ``goal``
(``path:/x`` or ``event:name``) (docs/web-metrics.md; the parameters are api/stats_params.py). Answers are
``{"status": "success", "data": ..., "meta": ...}``, typed per route (:func:`answer_type`), so the OpenAPI of
every read comes from these classes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web

from ..store import web_reads as store
from ..store.web import WebQuery
from ..web.errors import ApiError
from ..web.params import account
from ..web.pools import reading
from ..web.routing import SITE, Route
from .stats_params import (
    ACTIVE_WINDOW_SECONDS,
    DEFAULT_RANGE_SECONDS,
    DEVICES,
    MAX_LIMIT,
    MAX_TIMESERIES_DAYS,
    Count,
    Rate,
    StatsMeta,
    WebParams,
    answer_type,
    meta_of,
    row_type,
)
from .stats_params import list_of as _list_of

__all__ = ["ACTIVE_WINDOW_SECONDS", "DEFAULT_RANGE_SECONDS", "DEVICES", "MAX_LIMIT", "ROUTES", "StatsMeta",
           "WebParams", "answer_type", "meta_of", "row_type"]


class Pageviews(msgspec.Struct, frozen=True):
    pageviews: Count
    sessions: Count
    visitors: Annotated[int, msgspec.Meta(ge=0, description=(
        "Distinct visitors (persons). Exact when the range holds no whole UTC day or the account has identity "
        "links; otherwise the whole days' visitors come from per-day HyperLogLog sketches (2^14 registers, "
        "standard error 0.81%) merged with the others: within 2% of the exact count (about 99% of the time; small "
        "counts almost exactly). Page views and sessions are always exact."))]


class Active(msgspec.Struct, frozen=True):
    active: Count
    pageviews: Count


class PageSessions(msgspec.Struct, frozen=True):
    path: str
    sessions: Count


class BounceRate(msgspec.Struct, frozen=True):
    path: str
    sessions: Count
    bounces: Count
    bounce_rate: Rate


class ScreenWidth(msgspec.Struct, frozen=True):
    bucket: str
    min: Count
    max: Count | None
    pageviews: Count
    sessions: Count


class SessionDuration(msgspec.Struct, frozen=True):
    sessions: Count
    average_seconds: float
    median_seconds: float
    pageviews_per_session: float
    bounces: Count
    bounce_rate: Rate


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


# the breakdowns: path under /api -> (the row's key, its type)
BREAKDOWN_KEYS: dict[str, tuple[str, Any]] = {
    "pages": ("path", str), "referrers": ("referrer", str), "devices": ("device", str),
    "languages": ("language", str), "browsers": ("browser", str), "os": ("os", str), "countries": ("country", str),
    "hostnames": ("hostname", str),
}
Reader = Callable[[Any, WebQuery], Awaitable[Any]]


def _breakdown(name: str, row: Any) -> Reader:
    async def read(conn: Any, query: WebQuery) -> list[Any]:
        rows = await store.breakdown(conn, query, name)
        return [row(counts.key, counts.pageviews, counts.sessions) for counts in rows]

    return read


def _series(reader: Reader, row: Any) -> Reader:
    async def read(conn: Any, query: WebQuery) -> list[Any]:
        return [row(counts.key, counts.pageviews, counts.sessions) for counts in await reader(conn, query)]

    return read


async def _pageviews(conn: Any, query: WebQuery) -> Pageviews:
    counts = await store.summary(conn, query)
    return Pageviews(counts.pageviews, counts.sessions, counts.visitors)


async def _active(conn: Any, query: WebQuery) -> Active:
    counts = await store.summary(conn, query)
    return Active(counts.sessions, counts.pageviews)


async def _entry_pages(conn: Any, query: WebQuery) -> list[PageSessions]:
    return [PageSessions(row.path, row.sessions) for row in await store.entry_pages(conn, query)]


async def _exit_pages(conn: Any, query: WebQuery) -> list[PageSessions]:
    return [PageSessions(row.path, row.sessions) for row in await store.exit_pages(conn, query)]


async def _bounce_rates(conn: Any, query: WebQuery) -> list[BounceRate]:
    return [BounceRate(row.path, row.sessions, row.bounces, _rate(row.bounces, row.sessions))
            for row in await store.entry_pages(conn, query)]


async def _screen_widths(conn: Any, query: WebQuery) -> list[ScreenWidth]:
    return [ScreenWidth(row.bucket, row.min, row.max, row.pageviews, row.sessions)
            for row in await store.screen_widths(conn, query)]


async def _session_duration(conn: Any, query: WebQuery) -> SessionDuration:
    d = await store.session_duration(conn, query)
    return SessionDuration(d.sessions, round(d.average_seconds, 3), round(d.median_seconds, 3),
                           round(d.pageviews_per_session, 3), d.bounces, _rate(d.bounces, d.sessions))


WEB_METRICS = (
    "Bots are left out unless include_bots=true. Filters select whole sessions (docs/web-metrics.md, Plausible's "
    "model): a session filter (referrer, utm_*, device, browser, os, country, language, screen, hostname: the "
    "values of the session's first page view; entry_page, exit_page) keeps the sessions that match, a page filter "
    "(path) the sessions with a page view of that path; all given must hold. Visitors, sessions, bounces, "
    "durations and page views per session are those of the whole selected sessions; page views count every page "
    "view of them, or under a page filter those of that path. A row of a breakdown counts those page views of "
    "its value and the sessions with one; pages and hours are per page view, every other dimension is the "
    "session's."
)


class Read(msgspec.Struct, frozen=True):
    """One web read: its reader, its answer's data type, its summary, and the range rules."""

    reader: Reader
    data: Any
    summary: str
    max_days: int | None = None
    active: bool = False  # the last few minutes, whatever the range asked


_DATE_ROW = row_type("DayCounts", "date", Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})])
_HOUR_ROW = row_type("HourCounts", "hour", Annotated[int, msgspec.Meta(ge=0, le=23)])


def _top(name: str, summary: str) -> Read:
    """The read of a breakdown: its rows are ``{<key>: value, pageviews, sessions}``."""
    key, kind = BREAKDOWN_KEYS[name]
    row = row_type(f"{key.capitalize()}Counts", key, kind)
    return Read(_breakdown(name, row), _list_of(row), summary)


# Path (under /api) -> its read. One GET route each, named stats.<path>.
READS: dict[str, Read] = {
    "pageviews": Read(_pageviews, Pageviews, "Page views, sessions and visitors (a visitor: user id, anonymous id, "
                                             "else the day's IP hash)"),
    "pages": _top("pages", "Top pages: page views of each path and the sessions with one"),
    "referrers": _top("referrers", "Sessions by referring domain (the first page view's), with their page views; "
                                   "`Direct / None`: the sessions without one"),
    "timeseries": Read(_series(store.timeseries, _DATE_ROW), _list_of(_DATE_ROW),
                       "Page views and sessions per day (of tz), every day of the range", max_days=MAX_TIMESERIES_DAYS),
    "devices": _top("devices", "Sessions by device (mobile, tablet, desktop), with their page views"),
    "languages": _top("languages", "Sessions by browser language, with their page views"),
    "browsers": _top("browsers", "Sessions by browser, with their page views"),
    "os": _top("os", "Sessions by operating system, with their page views"),
    "countries": _top("countries", "Sessions by country, with their page views"),
    "hostnames": _top("hostnames", "Sessions by hostname, with their page views"),
    "active": Read(_active, Active, "Sessions active in the last 5 minutes", active=True),
    "entry-pages": Read(_entry_pages, list[PageSessions], "Pages sessions start on"),
    "exit-pages": Read(_exit_pages, list[PageSessions], "Pages sessions end on"),
    "bounce-rates": Read(_bounce_rates, list[BounceRate], "Per entry page: sessions with a single page view"),
    "peak-hours": Read(_series(store.peak_hours, _HOUR_ROW), _list_of(_HOUR_ROW),
                       "Page views per hour of the day (of tz)"),
    "screen-widths": Read(_screen_widths, list[ScreenWidth], "Sessions by screen width bucket, with their page views"),
    "session-duration": Read(_session_duration, SessionDuration,
                             "Average and median seconds between a session's first and last page view"),
}


def _handler(read: Read, answer: Any) -> Callable[[web.Request, WebParams], Awaitable[Any]]:
    async def handler(request: web.Request, params: WebParams) -> Any:
        query = params.to_query(account(request))
        if read.active:
            now = time.time()
            query = msgspec.structs.replace(query, start=datetime.fromtimestamp(now - ACTIVE_WINDOW_SECONDS, UTC),
                                            end=datetime.fromtimestamp(now + 60, UTC))
        if read.max_days is not None and (query.end - query.start).total_seconds() > read.max_days * 86_400:
            raise ApiError(400, f"The range is limited to {read.max_days} days")
        async with reading(request) as conn:
            data = await read.reader(conn, query)
        return answer("success", data, meta_of(query))

    handler.__doc__ = (WEB_METRICS + (
                           " The range parameters are ignored: the window is the last 5 minutes."
                           if read.active else ""))
    return handler


def _route(name: str, read: Read) -> Route:
    answer = answer_type("Stats" + name.title().replace("-", "") + "Answer", read.data)
    return Route("GET", f"/api/{name}", _handler(read, answer), SITE, name=f"stats.{name}", tags=("Web analytics",),
                 summary=read.summary, params=WebParams, answer=answer)


ROUTES = [_route(name, read) for name, read in READS.items()]
