"""The web-analytics read API: GET /api/{pageviews,pages,referrers,timeseries,...} of one site.

A token, or a site token of that site. Parameters (:class:`WebParams`): ``site`` (required), ``start``/``end``
(Unix seconds) or ``start_date``/``end_date`` (days of ``tz``; default the last 30 days of ``tz``, today
included), ``tz`` (IANA, default UTC), ``limit`` (top lists), ``include_bots``, the page filter ``path`` and the
session filters ``referrer`` (a domain, or ``Direct / None``), ``country``, ``device``, ``browser``, ``os``,
``language``, ``screen``, ``hostname``, ``entry_page``, ``exit_page`` and ``utm_source``/``utm_medium``/
``utm_campaign``/``utm_term``/``utm_content`` (docs/web-metrics.md). Answers are ``{"status": "success",
"data": ..., "meta": ...}``, typed per route (:func:`answer_type`), so the OpenAPI of every read comes from these
classes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from ..ingest.hits import MAX_UTM
from ..store import web_reads as store
from ..store.web import DIRECT, SCREEN_BUCKETS, WebQuery
from ..web.errors import ApiError
from ..web.params import DEFAULT_RANGE_DAYS, account, date_range, zone
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


_SESSION = "Session filter (docs/web-metrics.md): only the sessions whose first page view "
_DAY = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", extra_json_schema={"format": "date"})]
ScreenBucket = Literal["<576", "576-767", "768-991", "992-1199", ">=1200"]
_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class WebParams(msgspec.Struct, kw_only=True):
    """The parameters of every web read; ``to_query`` makes the store's WebQuery of them."""

    site: Annotated[str, msgspec.Meta(
        min_length=1, max_length=253, pattern=r"^[A-Za-z0-9_.:\[\]-]+$",
        description="The site: the hostname the beacon reports (location.hostname or data-site)")]
    start: Annotated[Unix, msgspec.Meta(description=(
        "Range start, Unix seconds; or give start_date/end_date (start/end win when both are given). None of the "
        "four: the last 30 days of tz, today included (the product queries' window); only end: end - 30 days"))] | (
        None) = None
    end: Annotated[Unix, msgspec.Meta(
        description="Range end (exclusive), Unix seconds (only start: now)")] | None = None
    start_date: Annotated[_DAY, msgspec.Meta(description=(
        "First day of the range (YYYY-MM-DD, in tz), with end_date, as the product queries take them; not with "
        "start/end"))] | None = None
    end_date: Annotated[_DAY, msgspec.Meta(
        description="Last day of the range (YYYY-MM-DD, in tz, included)")] | None = None
    tz: Annotated[str, msgspec.Meta(max_length=64, description=(
        "IANA time zone of the days (timeseries, start_date/end_date, the default range) and hours of the day "
        "(peak-hours); default UTC; an unknown zone is a 400"))] = "UTC"
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT, description="Rows of a top list")] = DEFAULT_LIMIT
    include_bots: Annotated[bool, msgspec.Meta(description="Count page views marked as bot traffic")] = False
    path: Annotated[PathText, msgspec.Meta(description=(
        "Page filter: only the sessions with a page view of this path; visitors, sessions, bounces and durations "
        "are those whole sessions', page views (and /api/pages) those of this path"))] | None = None
    entry_page: Annotated[PathText, msgspec.Meta(
        description="Session filter: only the sessions that start on this path")] | None = None
    exit_page: Annotated[PathText, msgspec.Meta(
        description="Session filter: only the sessions that end on this path")] | None = None
    referrer: Annotated[Domain, msgspec.Meta(description=(
        _SESSION + "was referred by this domain (www. ignored; the site's own domain is no referrer); "
        "`Direct / None`: the sessions without one"))] | None = None
    country: Annotated[str, msgspec.Meta(max_length=2, pattern="^[A-Za-z]{2}$", description=(
        _SESSION + "came from this country (ISO 3166 alpha-2)"))] | None = None
    device: Annotated[Literal["mobile", "tablet", "desktop"], msgspec.Meta(
        description=_SESSION + "came from this kind of device")] | None = None
    browser: Annotated[NameText, msgspec.Meta(
        description=_SESSION + "came from this browser (as /api/browsers names it)")] | None = None
    os: Annotated[NameText, msgspec.Meta(
        description=_SESSION + "came from this operating system (as /api/os names it)")] | None = None
    language: Annotated[NameText, msgspec.Meta(
        description=_SESSION + "had this browser language (as /api/languages names it)")] | None = None
    screen: Annotated[ScreenBucket, msgspec.Meta(
        description=_SESSION + "had a screen width in this bucket (as /api/screen-widths names it)")] | None = None
    hostname: Annotated[Domain, msgspec.Meta(
        description=_SESSION + "was on this hostname (as /api/hostnames names it)")] | None = None
    utm_source: Annotated[UtmText, msgspec.Meta(description=_SESSION + "carried this utm_source")] | None = None
    utm_medium: Annotated[UtmText, msgspec.Meta(description=_SESSION + "carried this utm_medium")] | None = None
    utm_campaign: Annotated[UtmText, msgspec.Meta(description=_SESSION + "carried this utm_campaign")] | None = None
    utm_term: Annotated[UtmText, msgspec.Meta(description=_SESSION + "carried this utm_term")] | None = None
    utm_content: Annotated[UtmText, msgspec.Meta(description=_SESSION + "carried this utm_content")] | None = None

    # the 400 message of a parameter that does not convert (web/routing.py decode_params); ":missing" when absent
    MESSAGES: ClassVar[dict[str, str]] = {
        "site:missing": "site is required (the hostname the beacon reports, e.g. example.com)",
        "site": "site must be a hostname such as example.com",
        "start": f"start {_UNIX_MESSAGE}", "end": f"end {_UNIX_MESSAGE}",
        "start_date": "Invalid date format. Use YYYY-MM-DD", "end_date": "Invalid date format. Use YYYY-MM-DD",
        "tz": "tz must be an IANA time zone name such as Europe/Berlin",
        "limit": f"limit must be an integer from 1 to {MAX_LIMIT}",
        "include_bots": "include_bots must be true or false",
        "country": "country must be an ISO 3166 alpha-2 code such as US",
        "device": f"device must be one of {', '.join(DEVICES)}",
        "screen": f"screen must be one of {', '.join(label for label, _, _ in SCREEN_BUCKETS)}",
    }

    def __post_init__(self) -> None:
        self.site = self.site.lower()
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")

    def _instants(self, tz: str, now: float | None) -> tuple[int, int]:
        """[start, end) in Unix seconds: start/end, or the days of start_date/end_date in tz, or the default."""
        zone_info = ZoneInfo(tz)
        if (self.start_date is not None or self.end_date is not None) and self.start is None and self.end is None:
            given = {k: v for k, v in (("start_date", self.start_date), ("end_date", self.end_date)) if v is not None}
            dates = date_range(given, max_days=MAX_TIMESERIES_DAYS)
            first, after = dates.first, dates.last + timedelta(days=1)
        elif self.start is None and self.end is None:  # the product queries' window: 30 days of tz, today included
            today = datetime.fromtimestamp(now if now is not None else time.time(), zone_info).date()
            first, after = today - timedelta(days=DEFAULT_RANGE_DAYS - 1), today + timedelta(days=1)
        else:
            end = self.end if self.end is not None else int(now if now is not None else time.time()) + 1
            return (self.start if self.start is not None else max(0, end - DEFAULT_RANGE_SECONDS)), end
        return (int(datetime.combine(first, datetime.min.time(), zone_info).timestamp()),
                int(datetime.combine(after, datetime.min.time(), zone_info).timestamp()))

    def session_filters(self) -> tuple[tuple[str, str], ...]:
        """The session-level filters given, as (name, value) pairs (store/web.py SESSION_CODES)."""
        found: list[tuple[str, str]] = []
        if self.referrer is not None:
            direct = self.referrer.lower() == DIRECT.lower()
            found.append(("referrer", DIRECT if direct else self.referrer.lower().removeprefix("www.")))
        if self.device is not None:
            found.append(("device", self.device))
        if self.country is not None:
            found.append(("country", self.country.upper()))
        found += [(name, value) for name in ("browser", "os", "language") if (value := getattr(self, name)) is not None]
        if self.hostname is not None:
            found.append(("hostname", self.hostname.lower()))
        if self.screen is not None:
            found.append(("screen", str([label for label, _, _ in SCREEN_BUCKETS].index(self.screen))))
        return (*found, *((key, value) for key in _UTM if (value := getattr(self, key)) is not None))

    def to_query(self, account: str, now: float | None = None) -> WebQuery:
        tz = zone({"tz": self.tz})
        start, end = self._instants(tz, now)
        if start >= end:
            raise ApiError(400, "start must be before end")
        return WebQuery(
            site=self.site, start=datetime.fromtimestamp(start, UTC), end=datetime.fromtimestamp(end, UTC),
            include_bots=self.include_bots, path=self.path, limit=self.limit, account=account,
            session=self.session_filters(), entry_page=self.entry_page, exit_page=self.exit_page, tz=tz)


class StatsMeta(msgspec.Struct, frozen=True):
    site: str
    start: int
    end: int
    tz: Annotated[str, msgspec.Meta(description="The time zone of the read's days and hours")] = "UTC"


def meta_of(query: WebQuery) -> StatsMeta:
    return StatsMeta(query.site, int(query.start.timestamp()), int(query.end.timestamp()), query.tz)


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
