"""GET /trends: a measure of events per time bucket, one series per event (and breakdown value).

``events=a,b`` (1-10 names), ``interval=hour|day|week|month`` (default day; hour: at most 31 days),
``measure=count|users|sum:<property>|avg:<property>`` (default count), ``breakdown=<property>`` (top 10
values and ``other``), ``compare=previous`` (the same number of days right before), dates as every
product query (default: the last 30 days), ``tz`` (IANA, default UTC: the zone of the days and
buckets). Semantics: :mod:`nself_analytics.store.trends`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from ..store.rollups.zones import period_key
from ..store.trends import TOP_VALUES, TrendRow, run_trends
from ..web import params
from ..web.errors import ApiError
from ..web.pools import reading
from ..web.read_params import DateParams, Day, Name, zoned
from ..web.routing import TOKEN, Route

__all__ = ["MAX_EVENTS", "MAX_HOUR_DAYS", "ROUTES", "bucket_starts"]


MAX_EVENTS = 10
MAX_HOUR_DAYS = 31  # hourly series: at most 744 points per series


def parse_events(text: str) -> list[str]:
    """1 to MAX_EVENTS distinct event names, comma-separated, in the order given."""
    if not text.strip():
        raise ApiError(400, "events is required: a comma-separated list of event names")
    names = [params.event_name(item, "each event") for item in text.split(",")]
    if len(names) > MAX_EVENTS:
        raise ApiError(400, f"events must name at most {MAX_EVENTS} events")
    return list(dict.fromkeys(names))


def parse_measure(text: str) -> tuple[str, str | None]:
    """(kind, property): count, users, sum:<property> or avg:<property>."""
    text = text.strip() or "count"
    kind, colon, prop = text.partition(":")
    if kind in ("count", "users") and not colon:
        return kind, None
    if kind in ("sum", "avg") and colon:
        return kind, params.event_name(prop, "measure property")
    raise ApiError(400, "Invalid measure: use count, users, sum:<property> or avg:<property>")


def bucket_starts(first: datetime, end: datetime, interval: str) -> list[datetime]:
    """The start of every bucket of ``interval`` meeting ``[first, end)`` (naive local times; hours: naive UTC
    times of a zone whose hours are UTC hours)."""
    current = _floor(first, interval)
    out = []
    while current < end:
        out.append(current)
        current = _next(current, interval)
    return out


def zone_buckets(start: datetime, end: datetime, interval: str, zone_info: ZoneInfo) -> list[datetime]:
    """The buckets (store/rollups/zones.py period_key) meeting the instants ``[start, end)``: the local days, weeks
    or months of the range's days, or the local hours (as naive UTC times of their starts)."""
    if interval != "hour":
        return bucket_starts(start.astimezone(zone_info).replace(tzinfo=None),
                             end.astimezone(zone_info).replace(tzinfo=None), interval)
    out, current = [], period_key(start, "hour", zone_info)
    while current.replace(tzinfo=UTC) < end:
        out.append(current)
        current = period_key(current.replace(tzinfo=UTC) + timedelta(hours=1), "hour", zone_info)
    return out


def _floor(ts: datetime, interval: str) -> datetime:
    ts = ts.replace(minute=0, second=0, microsecond=0)
    if interval == "hour":
        return ts
    ts = ts.replace(hour=0)
    if interval == "week":
        return ts - timedelta(days=ts.weekday())
    return ts.replace(day=1) if interval == "month" else ts


def _next(ts: datetime, interval: str) -> datetime:
    if interval == "month":
        return ts.replace(year=ts.year + ts.month // 12, month=ts.month % 12 + 1)
    return ts + {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[interval]


def _label(ts: datetime, interval: str, zone_info: ZoneInfo) -> str:
    """A bucket's label: its local date, or its hour: UTC as ...Z, another zone's local time with its offset."""
    if interval != "hour":
        return ts.date().isoformat()
    if zone_info.key == "UTC":
        return ts.strftime("%Y-%m-%dT%H:00:00Z")
    return ts.replace(tzinfo=UTC).astimezone(zone_info).isoformat(timespec="seconds")


class TrendsParams(DateParams, kw_only=True):
    events: Annotated[str, msgspec.Meta(description="Comma-separated event names, 1 to 10")]
    interval: Annotated[Literal["hour", "day", "week", "month"], msgspec.Meta(
        description="Bucket size (hour: ranges of at most 31 days)")] = "day"
    # checked by parse_measure (its messages); the pattern documents it
    measure: Annotated[str, msgspec.Meta(
        description="count (events), users (distinct user or anonymous ids), sum:<property> or avg:<property> (over "
                    "events where it is a number; exact, saturating at +-1.7976931348623157e308)",
        extra_json_schema={"pattern": "^(count|users|(sum|avg):.{1,200})$"})] = "count"
    breakdown: Annotated[Name, msgspec.Meta(
        description="Split each event by this property (top 10 values and other)")] | None = None
    compare: Annotated[Literal["previous", "none"], msgspec.Meta(
        description="previous: add the same number of days right before the range")] = "none"

    MESSAGES: ClassVar[dict[str, str]] = {
        **DateParams.MESSAGES, "events:missing": "events is required: a comma-separated list of event names"}


Figure = float | int | None


class TrendSeries(msgspec.Struct, frozen=True):
    event: str
    breakdown_value: str | None
    other: Annotated[bool, msgspec.Meta(description="the events of every value outside the top 10")]
    data: Annotated[list[Figure], msgspec.Meta(
        description="one figure per bucket (avg: null where no event has the property)")]
    total: Figure


class TrendsPrevious(msgspec.Struct, frozen=True):
    start_date: Day
    end_date: Day
    buckets: list[str]
    series: list[TrendSeries]


class TrendsAnswer(msgspec.Struct, frozen=True):
    status: Literal["success"]
    events: list[str]
    interval: str
    measure: str
    property: str | None
    breakdown: str | None
    breakdown_limit: int
    start_date: Day
    end_date: Day
    buckets: Annotated[list[str], msgspec.Meta(description=(
        "bucket starts: dates of tz, or hours (tz=UTC: YYYY-MM-DDTHH:00:00Z; another zone: its local time with "
        "the offset, so the repeated hour of a DST change is two buckets)"))]
    series: list[TrendSeries]
    previous: TrendsPrevious | msgspec.UnsetType = msgspec.UNSET  # with compare=previous only
    tz: Annotated[str, msgspec.Meta(description="The zone of the buckets")] = "UTC"


def _series(rows: dict[Any, TrendRow], keys: list[Any], buckets: list[datetime], measure: str) -> list[TrendSeries]:
    empty = {"count": 0, "users": 0, "sum": 0.0, "avg": None}
    out = []
    for key in keys:
        row = rows.get(key) or TrendRow(*key)
        out.append(TrendSeries(key[0], key[1], key[2], [row.buckets.get(b, empty)[measure] for b in buckets],
                               (row.total or empty)[measure]))
    return out


def _order(current: dict[Any, TrendRow], previous: dict[Any, TrendRow], events: list[str]) -> list[Any]:
    """Series keys of both periods: by event as asked, then values by events in the current period, other
    last; an event without any has one empty series."""
    def rank(key: Any) -> tuple[Any, ...]:
        row = current.get(key)
        count = row.total.get("count", 0) if row else 0
        return (events.index(key[0]), key[2], -count, key[1] is None, key[1] or "")
    keys = sorted(current.keys() | previous.keys(), key=rank)
    present = {k[0] for k in keys}
    return sorted(keys + [(e, None, False) for e in events if e not in present], key=rank)


async def trends(request: web.Request, query: TrendsParams) -> TrendsAnswer:
    """Bot events are left out. Buckets are periods of tz (days from local midnight, ISO weeks from Monday). With a
    breakdown, each event's 10
    values with the most events get a series, the rest one `other` series; the previous period is grouped by the
    same values."""
    account = params.account(request)
    events = parse_events(query.events)
    interval = query.interval
    measure, prop = parse_measure(query.measure)
    breakdown = params.event_name(query.breakdown, "breakdown") if query.breakdown is not None else None
    compare = query.compare == "previous"
    dates, start, end = zoned(query)
    zone_info = query.zone()
    days = (dates.last - dates.first).days + 1
    if interval == "hour" and days > MAX_HOUR_DAYS:
        raise ApiError(400, f"interval=hour is limited to {MAX_HOUR_DAYS} days")
    previous_first = dates.first - timedelta(days=days)
    previous_start = datetime.combine(previous_first, time.min, zone_info) if compare else start
    async with reading(request) as conn:
        result = await run_trends(conn, account=account, events=events, start=start, end=end,
                                  previous_start=previous_start, interval=interval, prop=prop, breakdown=breakdown,
                                  measure=measure, tz=zone_info.key)
    buckets = zone_buckets(start, end, interval, zone_info)
    keys = _order(result.current, result.previous, events)
    previous: TrendsPrevious | msgspec.UnsetType = msgspec.UNSET
    if compare:
        previous_buckets = zone_buckets(previous_start, start, interval, zone_info)
        previous = TrendsPrevious(previous_first.isoformat(), (dates.first - timedelta(days=1)).isoformat(),
                                  [_label(b, interval, zone_info) for b in previous_buckets],
                                  _series(result.previous, keys, previous_buckets, measure))
    return TrendsAnswer("success", events, interval, measure, prop, breakdown, TOP_VALUES, dates.first.isoformat(),
                        dates.last.isoformat(), [_label(b, interval, zone_info) for b in buckets],
                        _series(result.current, keys, buckets, measure), previous, zone_info.key)


ROUTES = [
    Route("GET", "/trends", trends, TOKEN, name="trends", tags=("Trends",),
          summary="A measure of events per time bucket: one series per event and breakdown value",
          params=TrendsParams, answer=TrendsAnswer),
]
