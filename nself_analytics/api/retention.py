"""GET /retention: the cohort retention table."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from ..store.retention import run_retention
from ..web import params
from ..web.pools import reading
from ..web.read_params import DateParams, Day, Name, Period, zoned
from ..web.routing import TOKEN, Route

DEFAULT_PERIODS = 8
MAX_PERIODS = 60


class RetentionParams(DateParams, kw_only=True):
    period: Annotated[Period, msgspec.Meta(description="Cohort period")] = "week"
    periods: Annotated[int, msgspec.Meta(ge=1, le=MAX_PERIODS, description="Columns, period 0 included")] = (
        DEFAULT_PERIODS)
    start_event: Annotated[Name, msgspec.Meta(
        description="Event that puts a user in a cohort (default: any first event)")] | None = None
    return_event: Annotated[Name, msgspec.Meta(description="Event that counts as a return (default: any)")] | None = (
        None)


class Cohort(msgspec.Struct, frozen=True):
    cohort: Day
    size: int
    retained: list[int]


class RetentionAnswer(msgspec.Struct, frozen=True):
    status: Literal["success"]
    period: Period
    periods: int
    start_date: Day
    end_date: Day
    start_event: str | None
    return_event: str | None
    data: list[Cohort]
    tz: Annotated[str, msgspec.Meta(description="The zone of the cohorts' periods")] = "UTC"


async def retention(request: web.Request, query: RetentionParams) -> RetentionAnswer:
    """Rows ``{"cohort", "size", "retained"}``, one per period intersecting the range, oldest first.

    ``periods`` is the number of columns, period 0 (the cohort period, = size) included; columns
    of periods that have not started yet (in tz) are left out. The rows start at the first cohort with users
    (none: no rows); later empty cohorts stay, so the periods are contiguous.
    """
    account = params.account(request)
    dates, start, end = zoned(query)
    zone_info = query.zone()
    period, periods = query.period, query.periods
    first = params.period_floor(dates.first, period)
    last = params.period_floor(dates.last, period)
    horizon = params.add_periods(last, period, periods)
    async with reading(request) as conn:
        counts = await run_retention(
            conn, account=account, start=start, end=end, period=period, periods=periods,
            horizon=datetime.combine(horizon, time.min, zone_info),
            start_event=query.start_event, return_event=query.return_event, tz=zone_info.key)
    current = params.period_floor(datetime.now(zone_info).date(), period)
    rows = []
    cohort = first
    while cohort <= last:
        columns = [k for k in range(periods) if params.add_periods(cohort, period, k) <= current]
        rows.append(Cohort(cohort.isoformat(), counts.get((cohort, 0), 0),
                           [counts.get((cohort, k), 0) for k in columns]))
        cohort = params.add_periods(cohort, period, 1)
    while rows and rows[0].size == 0:  # no leading empty cohorts
        rows.pop(0)
    return RetentionAnswer("success", period, periods, dates.first.isoformat(), dates.last.isoformat(),
                           query.start_event, query.return_event, rows, zone_info.key)


ROUTES = [
    Route("GET", "/retention", retention, TOKEN, name="retention", tags=("Retention",),
          summary="Cohort retention table", params=RetentionParams, answer=RetentionAnswer),
]
