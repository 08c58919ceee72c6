"""The web-analytics read API: GET /api/{pageviews,pages,referrers,timeseries,...} of one site.

A token, or a site token of that site. Parameters (:class:`WebParams`): ``site`` (required), ``start``/``end``
(Unix seconds; default the last 30 days), ``limit`` (top lists), ``include_bots``, and the filters ``path``,
``referrer`` (a domain), ``country``, ``device``, ``browser``, ``os`` and ``utm_source``/``utm_medium``/
``utm_campaign``/``utm_term``/``utm_content``. Answers are ``{"status": "success", "data": ..., "meta": ...}``,
typed per route (:func:`answer_type`), so the OpenAPI of every read comes from these classes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from aiohttp import web

from ..ingest.hits import MAX_UTM
from ..store import web_reads as store
from ..store.web import WebQuery
from ..web.errors import ApiError
from ..web.params import account
from ..web.pools import reading
from ..web.routing import SITE, Route

__all__ = ["ACTIVE_WINDOW_SECONDS", "DEFAULT_RANGE_SECONDS", "DEVICES", "MAX_LIMIT", "ROUTES", "StatsMeta",
           "WebParams", "answer_type", "meta_of", "row_type"]

DEFAULT_RANGE_SECONDS = 30 * 86_400
MAX_TIMESERIES_DAYS = 3_660
MAX_LIMIT = 1000
DEFAULT_LIMIT = 10
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z
ACTIVE_WINDOW_SECONDS = 300
DEVICES = ("mobile", "tablet", "desktop")
MAX_NAME = 100  # a browser or OS name filter

_UNIX_MESSAGE = f"must be Unix seconds (an integer from 0 to {MAX_TIMESTAMP})"
Unix = Annotated[int, msgspec.Meta(ge=0, le=MAX_TIMESTAMP)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]


PathText = Annotated[str, msgspec.Meta(max_length=1024)]
Domain = Annotated[str, msgspec.Meta(max_length=253)]
NameText = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]
UtmText = Annotated[str, msgspec.Meta(max_length=MAX_UTM)]


def _list_of(item: Any) -> Any:
    """``list[item]`` of a Struct made at run time (msgspec.defstruct)."""
    return list.__class_getitem__(item)


class WebParams(msgspec.Struct, kw_only=True):
    """The parameters of every web read; ``to_query`` makes the store's WebQuery of them."""

    site: Annotated[str, msgspec.Meta(
        min_length=1, max_length=253, pattern=r"^[A-Za-z0-9_.:\[\]-]+$",
        description="The site: the hostname the beacon reports (location.hostname or data-site)")]
    start: Annotated[Unix, msgspec.Meta(description="Range start, Unix seconds (default: end - 30 days)")] | None = None
    end: Annotated[Unix, msgspec.Meta(description="Range end (exclusive), Unix seconds (default: now)")] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT, description="Rows of a top list")] = DEFAULT_LIMIT
    include_bots: Annotated[bool, msgspec.Meta(description="Count page views marked as bot traffic")] = False
    path: Annotated[PathText, msgspec.Meta(description="Only page views of this path")] | None = None
    referrer: Annotated[Domain, msgspec.Meta(
        description="Only page views referred by this domain (www. ignored)")] | None = None
    country: Annotated[str, msgspec.Meta(max_length=2, pattern="^[A-Za-z]{2}$", description=(
        "Only page views from this country (ISO 3166 alpha-2)"))] | None = None
    device: Annotated[Literal["mobile", "tablet", "desktop"], msgspec.Meta(
        description="Only page views from this kind of device")] | None = None
    browser: Annotated[NameText, msgspec.Meta(
        description="Only page views from this browser (as /api/browsers names it)")] | None = None
    os: Annotated[NameText, msgspec.Meta(
        description="Only page views from this operating system (as /api/os names it)")] | None = None
    utm_source: Annotated[UtmText, msgspec.Meta(description="Only page views carrying this utm_source")] | None = None
    utm_medium: Annotated[UtmText, msgspec.Meta(description="Only page views carrying this utm_medium")] | None = None
    utm_campaign: Annotated[UtmText, msgspec.Meta(
        description="Only page views carrying this utm_campaign")] | None = None
    utm_term: Annotated[UtmText, msgspec.Meta(description="Only page views carrying this utm_term")] | None = None
    utm_content: Annotated[UtmText, msgspec.Meta(description="Only page views carrying this utm_content")] | None = None

    # the 400 message of a parameter that does not convert (web/routing.py decode_params); ":missing" when absent
    MESSAGES: ClassVar[dict[str, str]] = {
        "site:missing": "site is required (the hostname the beacon reports, e.g. example.com)",
        "site": "site must be a hostname such as example.com",
        "start": f"start {_UNIX_MESSAGE}", "end": f"end {_UNIX_MESSAGE}",
        "limit": f"limit must be an integer from 1 to {MAX_LIMIT}",
        "include_bots": "include_bots must be true or false",
        "country": "country must be an ISO 3166 alpha-2 code such as US",
        "device": f"device must be one of {', '.join(DEVICES)}",
    }

    def __post_init__(self) -> None:
        self.site = self.site.lower()
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")

    def to_query(self, account: str, now: float | None = None) -> WebQuery:
        end = self.end if self.end is not None else int(now if now is not None else time.time()) + 1
        start = self.start if self.start is not None else max(0, end - DEFAULT_RANGE_SECONDS)
        if start >= end:
            raise ApiError(400, "start must be before end")
        utm = tuple((key, value) for key in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
                    if (value := getattr(self, key)) is not None)
        return WebQuery(
            site=self.site, start=datetime.fromtimestamp(start, UTC), end=datetime.fromtimestamp(end, UTC),
            include_bots=self.include_bots, path=self.path,
            referrer=self.referrer.lower().removeprefix("www.") if self.referrer else None,
            country=self.country.upper() if self.country else None, device=self.device, limit=self.limit,
            browser=self.browser, os=self.os, utm=utm, account=account)


class StatsMeta(msgspec.Struct, frozen=True):
    site: str
    start: int
    end: int


def meta_of(query: WebQuery) -> StatsMeta:
    return StatsMeta(query.site, int(query.start.timestamp()), int(query.end.timestamp()))


def answer_type(name: str, data: Any, meta: Any = StatsMeta) -> Any:
    """The Struct of a web read's answer: ``{"status": "success", "data": <data>, "meta": <meta>}``."""
    return msgspec.defstruct(name, [("status", Literal["success"]), ("data", data), ("meta", meta)],
                             frozen=True, module=__name__)


def row_type(name: str, key: str, key_type: Any) -> Any:
    """A breakdown row: ``{<key>: value, "pageviews": n, "sessions": n}``."""
    return msgspec.defstruct(name, [(key, key_type), ("pageviews", Count), ("sessions", Count)], frozen=True,
                             module=__name__)


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
    "pages": _top("pages", "Top pages"),
    "referrers": _top("referrers", "Top referring domains"),
    "timeseries": Read(_series(store.timeseries, _DATE_ROW), _list_of(_DATE_ROW),
                       "Page views and sessions per day (UTC), every day of the range", max_days=MAX_TIMESERIES_DAYS),
    "devices": _top("devices", "Page views by device (mobile, tablet, desktop)"),
    "languages": _top("languages", "Page views by browser language"),
    "browsers": _top("browsers", "Page views by browser"),
    "os": _top("os", "Page views by operating system"),
    "countries": _top("countries", "Page views by country"),
    "hostnames": _top("hostnames", "Page views by hostname"),
    "active": Read(_active, Active, "Sessions active in the last 5 minutes", active=True),
    "entry-pages": Read(_entry_pages, list[PageSessions], "Pages sessions start on"),
    "exit-pages": Read(_exit_pages, list[PageSessions], "Pages sessions end on"),
    "bounce-rates": Read(_bounce_rates, list[BounceRate], "Per entry page: sessions with a single page view"),
    "peak-hours": Read(_series(store.peak_hours, _HOUR_ROW), _list_of(_HOUR_ROW), "Page views per hour (UTC)"),
    "screen-widths": Read(_screen_widths, list[ScreenWidth], "Page views by screen width bucket"),
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

    handler.__doc__ = ("Bots are left out unless include_bots=true. Filters select page views; every figure is "
                       "computed from the selected page views." + (
                           " The range parameters are ignored: the window is the last 5 minutes."
                           if read.active else ""))
    return handler


def _route(name: str, read: Read) -> Route:
    answer = answer_type("Stats" + name.title().replace("-", "") + "Answer", read.data)
    return Route("GET", f"/api/{name}", _handler(read, answer), SITE, name=f"stats.{name}", tags=("Web analytics",),
                 summary=read.summary, params=WebParams, answer=answer)


ROUTES = [_route(name, read) for name, read in READS.items()]
