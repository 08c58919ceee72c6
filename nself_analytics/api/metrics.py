"""GET /metrics (event counts per period) and GET /sessions (durations from start/stop pairs); periods are days,
ISO weeks or months of ``tz`` (IANA, default UTC)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from ..store.metrics import event_counts, session_totals
from ..web import params
from ..web.errors import ApiError
from ..web.pools import reading
from ..web.read_params import Name, Period, UserParams, zoned
from ..web.routing import TOKEN, Route

DEFAULT_START_EVENT, DEFAULT_STOP_EVENT = "play", "stop"
# /metrics answers at most `limit` event names (the most frequent): 366 days x 10,000 names was 712 MB
DEFAULT_EVENT_LIMIT, MAX_EVENT_LIMIT = 100, 1000


def _periods(dates: params.DateRange, group_by: str) -> list[date]:
    """Every period start (day, ISO-week Monday, first of month) intersecting the range."""
    out, current = [], params.period_floor(dates.first, group_by)
    while current <= dates.last:
        out.append(current)
        current = params.add_periods(current, group_by, 1)
    return out


class MetricsParams(UserParams, kw_only=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_EVENT_LIMIT, description=(
        "Event names at most (the most frequent in the range; events_truncated says if more)"))] = DEFAULT_EVENT_LIMIT


class SessionsParams(UserParams, kw_only=True):
    start_event: Annotated[Name, msgspec.Meta(description="Event that starts a session")] = DEFAULT_START_EVENT
    stop_event: Annotated[Name, msgspec.Meta(description="Event that stops a session")] = DEFAULT_STOP_EVENT


Day = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date"})]


class MetricsRow(msgspec.Struct, frozen=True):
    date: Day
    counts: dict[str, int]


class MetricsAnswer(msgspec.Struct, frozen=True):
    status: Literal["success"]
    group_by: Period
    events: list[str]
    events_truncated: bool
    data: list[MetricsRow]
    tz: Annotated[str, msgspec.Meta(description="The zone of the periods' dates")] = "UTC"


class SessionsRow(msgspec.Struct, frozen=True):
    date: Day
    totalDuration: float
    sessionCount: int
    averageDuration: float


class SessionsAnswer(msgspec.Struct, frozen=True):
    status: Literal["success"]
    group_by: Period
    start_event: str
    stop_event: str
    data: list[SessionsRow]
    tz: Annotated[str, msgspec.Meta(description="The zone of the periods' dates")] = "UTC"


async def metrics(request: web.Request, query: MetricsParams) -> MetricsAnswer:
    """``data``: one row per period of the range: ``date`` (the period's first day) and ``counts``, the count of
    every event name seen in the range (0 where none). The names are keys of ``counts`` only, so no name (an
    event called ``date``) can collide with a key of the row."""
    account = params.account(request)
    dates, start, end = zoned(query)
    async with reading(request) as conn:
        counts = await event_counts(conn, account=account, start=start, end=end, group_by=query.group_by,
                                    user_id=query.user_id, tz=query.zone().key)
    totals: dict[str, int] = {}
    for per_period in counts.values():
        for name, count in per_period.items():
            totals[name] = totals.get(name, 0) + count
    # at most `limit` event names (the most frequent in the range): the answer's size is bounded
    names = sorted(sorted(totals, key=lambda name: (-totals[name], name))[:query.limit])
    data = [MetricsRow(p.isoformat(), {name: counts.get(p, {}).get(name, 0) for name in names})
            for p in _periods(dates, query.group_by)]
    return MetricsAnswer("success", query.group_by, names, len(totals) > query.limit, data, query.zone().key)


async def sessions(request: web.Request, query: SessionsParams) -> SessionsAnswer:
    """``data``: per period of the range, sessions starting in it: count, total and average seconds."""
    account = params.account(request)
    dates, start, end = zoned(query)
    if query.start_event == query.stop_event:
        raise ApiError(400, "start_event and stop_event must differ")
    async with reading(request) as conn:
        totals = await session_totals(conn, account=account, start=start, end=end, group_by=query.group_by,
                                      start_event=query.start_event, stop_event=query.stop_event,
                                      user_id=query.user_id, tz=query.zone().key)
    data = []
    for p in _periods(dates, query.group_by):
        count, total = totals.get(p, (0, 0.0))
        data.append(SessionsRow(p.isoformat(), round(total, 3), count, round(total / count, 3) if count else 0))
    return SessionsAnswer("success", query.group_by, query.start_event, query.stop_event, data, query.zone().key)


ROUTES = [
    Route("GET", "/metrics", metrics, TOKEN, name="metrics", tags=("Metrics",),
          summary="Event counts per day, week or month", params=MetricsParams, answer=MetricsAnswer),
    Route("GET", "/sessions", sessions, TOKEN, name="sessions", tags=("Metrics",),
          summary="Session durations from start/stop event pairs", params=SessionsParams, answer=SessionsAnswer),
]
