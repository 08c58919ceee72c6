"""GET /trends: a measure of events per time bucket, one series per event (and breakdown value).

``events=a,b`` (1-10 names), ``interval=hour|day|week|month`` (default day; hour: at most 31 days),
``measure=count|users|sum:<property>|avg:<property>`` (default count), ``breakdown=<property>`` (top 10
values and ``other``), ``compare=previous`` (the same number of days right before), dates as every
product query (default: the last 30 days). Semantics: :mod:`nself_analytics.store.trends`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from ..store.trends import INTERVALS, TOP_VALUES, TrendRow, run_trends
from ..web import params
from ..web.errors import ApiError
from ..web.pools import reading
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
    """The start of every bucket of ``interval`` meeting ``[first, end)`` (naive UTC times)."""
    current = _floor(first, interval)
    out = []
    while current < end:
        out.append(current)
        current = _next(current, interval)
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


def _label(ts: datetime, interval: str) -> str:
    return ts.strftime("%Y-%m-%dT%H:00:00Z") if interval == "hour" else ts.date().isoformat()


def _series(rows: dict[Any, TrendRow], keys: list[Any], buckets: list[datetime], measure: str) -> list[dict[str, Any]]:
    empty = {"count": 0, "users": 0, "sum": 0.0, "avg": None}
    out = []
    for key in keys:
        row = rows.get(key) or TrendRow(*key)
        out.append({"event": key[0], "breakdown_value": key[1], "other": key[2],
                    "data": [row.buckets.get(b, empty)[measure] for b in buckets],
                    "total": (row.total or empty)[measure]})
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


async def trends(request: web.Request) -> web.Response:
    account = params.account(request)
    query = request.query
    events = parse_events(query.get("events", ""))
    interval = params.choice(query, "interval", INTERVALS, "day")
    measure, prop = parse_measure(query.get("measure", ""))
    breakdown = params.optional_text(query, "breakdown")
    compare = params.choice(query, "compare", ("previous", "none"), "none") == "previous"
    dates = params.date_range(query)
    days = (dates.last - dates.first).days + 1
    if interval == "hour" and days > MAX_HOUR_DAYS:
        raise ApiError(400, f"interval=hour is limited to {MAX_HOUR_DAYS} days")
    previous_first = dates.first - timedelta(days=days)
    previous_start = params.midnight(previous_first) if compare else dates.start
    async with reading(request) as conn:
        result = await run_trends(conn, account=account, events=events, start=dates.start, end=dates.end,
                                  previous_start=previous_start, interval=interval, prop=prop, breakdown=breakdown,
                                  measure=measure)
    naive = {"start": dates.start.replace(tzinfo=None), "end": dates.end.replace(tzinfo=None)}
    buckets = bucket_starts(naive["start"], naive["end"], interval)
    keys = _order(result.current, result.previous, events)
    body: dict[str, Any] = {
        "status": "success", "events": events, "interval": interval, "measure": measure, "property": prop,
        "breakdown": breakdown, "breakdown_limit": TOP_VALUES, "start_date": dates.first.isoformat(),
        "end_date": dates.last.isoformat(), "buckets": [_label(b, interval) for b in buckets],
        "series": _series(result.current, keys, buckets, measure),
    }
    if compare:
        previous_buckets = bucket_starts(previous_start.replace(tzinfo=None), naive["start"], interval)
        body["previous"] = {
            "start_date": previous_first.isoformat(), "end_date": (dates.first - timedelta(days=1)).isoformat(),
            "buckets": [_label(b, interval) for b in previous_buckets],
            "series": _series(result.previous, keys, previous_buckets, measure),
        }
    return web.json_response(body)


ROUTES = [
    Route("GET", "/trends", trends, TOKEN, name="trends", tags=("Trends",),
          summary="A measure of events per time bucket: one series per event and breakdown value"),
]
