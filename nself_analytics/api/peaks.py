"""GET /api/peak-hours/week and /api/realtime/minutes of one site: the series the dashboard's peak-hours heat map
and realtime chart draw, each in one read (they took one request per day, and one per minute).

The same credential (a token, or a site token of that site) and parameters (api/stats_params.py WebParams) as the
other web reads. /api/peak-hours/week: visitors, page views and sessions per weekday and hour of ``tz`` over the
range, under the filters (docs/web-metrics.md: hours are per page view; without a filter, hourly visitors and
sessions from per-hour rows). /api/realtime/minutes: visitors and page views per minute of the last 30 minutes
(the current minute last), like /api/realtime ignoring the range and the filters. May import web and store.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web

from ..store import realtime
from ..store import web_reads as store
from ..web.errors import ApiError
from ..web.params import account
from ..web.pools import reading
from ..web.routing import SITE, Route
from .stats_params import MAX_TIMESERIES_DAYS, Count, StatsMeta, WebParams, answer_type, meta_of

__all__ = ["MINUTES", "ROUTES"]

MINUTES = 30  # the realtime series: the last 30 minutes, the current one included


class HourCell(msgspec.Struct, frozen=True):
    weekday: Annotated[int, msgspec.Meta(ge=1, le=7, description="ISO weekday of tz: 1 Monday ... 7 Sunday")]
    hour: Annotated[int, msgspec.Meta(ge=0, le=23, description="Hour of the day in tz")]
    visitors: Annotated[int, msgspec.Meta(ge=0, description=(
        "Without a filter: hourly visitors, the sum over the cell's UTC hours of each hour's distinct visitors "
        "(persons; a person seen in two weeks' Monday 10:00 counts twice). Under a filter: the distinct visitors "
        "(persons) of the selected sessions with a counted page view in the cell"))]
    pageviews: Annotated[int, msgspec.Meta(ge=0, description="Counted page views in the cell (exact)")]
    sessions: Annotated[int, msgspec.Meta(ge=0, description=(
        "Without a filter: the sum over the cell's UTC hours of the sessions with a page view in each hour. Under a "
        "filter: the selected sessions with a counted page view in the cell"))]


class MinuteCounts(msgspec.Struct, frozen=True):
    start: Annotated[int, msgspec.Meta(ge=0, description="The minute's start, Unix seconds")]
    visitors: Count
    pageviews: Count


WeekAnswer = answer_type("PeakWeekAnswer", Annotated[list[HourCell], msgspec.Meta(min_length=168, max_length=168)])
MinutesAnswer = answer_type("RealtimeMinutesAnswer",
                            Annotated[list[MinuteCounts], msgspec.Meta(min_length=MINUTES, max_length=MINUTES)])


async def peak_week(request: web.Request, params: WebParams) -> Any:
    """All 168 cells, Monday 00:00 first; a page view is placed by the local time (tz) of the start of its UTC hour.
    Bots are left out unless include_bots=true. Without a filter a cell sums its UTC hours' page views, sessions and
    visitors ("hourly visitors": each hour's distinct persons), read from per-hour rows, so its cost depends on the
    hours of the range, not on the traffic. The filters select whole sessions (docs/web-metrics.md): a cell then
    counts the counted page views of the selected sessions in it, those sessions and their distinct persons. The
    range is limited to 3660 days."""
    query = params.to_query(account(request))
    if (query.end - query.start).total_seconds() > MAX_TIMESERIES_DAYS * 86_400:
        raise ApiError(400, f"The range is limited to {MAX_TIMESERIES_DAYS} days")
    async with reading(request) as conn:
        cells = await store.peak_week(conn, query)
    return WeekAnswer("success", [HourCell(c.weekday, c.hour, c.visitors, c.pageviews, c.sessions) for c in cells],
                      meta_of(query))


async def realtime_minutes(request: web.Request, params: WebParams) -> Any:
    """The range parameters and filters are ignored: the window is the 30 whole minutes up to the end of the current
    one (meta start/end), the current minute last; a visitor is a person, else the IP hash or the session, as
    /api/realtime counts them. Bots are left out unless include_bots=true."""
    query = params.to_query(account(request))
    until = (int(time.time()) // 60 + 1) * 60
    since = until - MINUTES * 60
    async with reading(request) as conn:
        minutes = await realtime.per_minute(
            conn, account=query.account, site=query.site, since=datetime.fromtimestamp(since, UTC),
            until=datetime.fromtimestamp(until, UTC), include_bots=query.include_bots)
    return MinutesAnswer("success", [MinuteCounts(m.start, m.visitors, m.pageviews) for m in minutes],
                         StatsMeta(query.site, since, until))


ROUTES = [
    Route("GET", "/api/peak-hours/week", peak_week, SITE, name="peaks.week", tags=("Web analytics",),
          op_id="stats_peak_week", summary="Visitors and page views per weekday and hour of the day (of tz)",
          params=WebParams, answer=WeekAnswer),
    Route("GET", "/api/realtime/minutes", realtime_minutes, SITE, name="peaks.minutes", tags=("Web analytics",),
          op_id="stats_realtime_minutes", summary="Visitors and page views per minute of the last 30 minutes",
          params=WebParams, answer=MinutesAnswer),
]
