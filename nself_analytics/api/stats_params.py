"""The parameters and answer shapes every web read shares (api/stats.py, api/campaigns.py, api/peaks.py):
:class:`WebParams` (range, time zone, limit, bots, the page, event, goal and session filters; ``to_query`` makes
the store's WebQuery of them), :class:`StatsMeta` and the answer and row Struct factories. May import web, store
and ingest (a UTM value's bound)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import msgspec

from ..ingest.hits import MAX_UTM
from ..store.web import DIRECT, SCREEN_BUCKETS, WebQuery
from ..web.errors import ApiError
from ..web.params import DEFAULT_RANGE_DAYS, MAX_NAME_LENGTH, date_range, event_name, zone

__all__ = ["ACTIVE_WINDOW_SECONDS", "DEFAULT_RANGE_SECONDS", "DEVICES", "MAX_LIMIT", "MAX_TIMESERIES_DAYS", "Count",
           "Rate", "StatsMeta", "WebFilters", "WebParams", "answer_type", "list_of", "meta_of", "row_type"]

DEFAULT_RANGE_SECONDS = 30 * 86_400
MAX_TIMESERIES_DAYS = 3_660
MAX_LIMIT = 1000
DEFAULT_LIMIT = 10
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z
ACTIVE_WINDOW_SECONDS = 300
DEVICES = ("mobile", "tablet", "desktop")
MAX_NAME = 100  # a browser or OS name filter
MAX_GOAL_FILTER = 1030  # path: and a path of 1024 characters

_UNIX_MESSAGE = f"must be Unix seconds (an integer from 0 to {MAX_TIMESTAMP})"
Unix = Annotated[int, msgspec.Meta(ge=0, le=MAX_TIMESTAMP)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]


PathText = Annotated[str, msgspec.Meta(max_length=1024)]
Domain = Annotated[str, msgspec.Meta(max_length=253)]
NameText = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]
UtmText = Annotated[str, msgspec.Meta(max_length=MAX_UTM)]


def list_of(item: Any) -> Any:
    """``list[item]`` of a Struct made at run time (msgspec.defstruct)."""
    return list.__class_getitem__(item)


_SESSION = "Session filter (docs/web-metrics.md): only the sessions whose first page view "
_DAY = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", extra_json_schema={"format": "date"})]
ScreenBucket = Literal["<576", "576-767", "768-991", "992-1199", ">=1200"]
_UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class WebFilters(msgspec.Struct, kw_only=True):
    """The parameters of every web read but the goal filter (:class:`WebParams` adds it; /api/goals has its own
    ``goal``, the goals it reports); ``to_query`` makes the store's WebQuery of them."""

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
    event: Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH, description=(
        "Custom-event filter: only the sessions with an event of this name in the range (as a page filter: "
        "visitors, sessions, bounces and durations are those whole sessions', page views all of theirs)"))] | (
        None) = None

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

    def goal_filters(self) -> tuple[str | None, tuple[str, ...]]:
        """The page filter and the event filters of ``path``, ``event`` and ``goal`` (path:/x or event:name)."""
        path, events = self.path, [event_name(self.event)] if self.event is not None else []
        goal = getattr(self, "goal", None)
        if isinstance(goal, str):  # /api/goals' own `goal` is the list of goals it reports
            kind, colon, value = goal.partition(":")
            if kind == "event" and colon:
                events.append(event_name(value, "goal event"))
            elif kind == "path" and value.startswith("/") and "\x00" not in value:
                if path is not None and path != value:
                    raise ApiError(400, "path and goal=path:... name two different pages: give one page filter")
                path = value
            else:
                raise ApiError(400, "goal must be path:/some/page or event:name")
        return path, tuple(sorted(set(events)))

    def to_query(self, account: str, now: float | None = None) -> WebQuery:
        tz = zone({"tz": self.tz})
        path, events = self.goal_filters()
        start, end = self._instants(tz, now)
        if start >= end:
            raise ApiError(400, "start must be before end")
        return WebQuery(
            site=self.site, start=datetime.fromtimestamp(start, UTC), end=datetime.fromtimestamp(end, UTC),
            include_bots=self.include_bots, path=path, events=events, limit=self.limit, account=account,
            session=self.session_filters(), entry_page=self.entry_page, exit_page=self.exit_page, tz=tz)


class WebParams(WebFilters, kw_only=True):
    """The parameters of every web read: :class:`WebFilters` and the goal filter."""

    goal: Annotated[str, msgspec.Meta(max_length=MAX_GOAL_FILTER, description=(
        "Goal filter, as /api/goals names a goal: path:/pricing (the page filter path=/pricing) or event:signup "
        "(the event filter event=signup); on /api/goals itself `goal` names the goals reported"))] | None = None


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
