"""GET /retention: the cohort retention table."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from ..store.retention import run_retention
from ..web import params
from ..web.pools import reading
from ..web.routing import TOKEN, Route

DEFAULT_PERIODS = 8
MAX_PERIODS = 60


async def retention(request: web.Request) -> web.Response:
    """Rows ``{"cohort", "size", "retained"}``, one per period intersecting the range, oldest first.

    ``periods`` is the number of columns, period 0 (the cohort period, = size) included; columns
    of periods that have not started yet (UTC) are left out.
    """
    account = params.account(request)
    query = request.query
    dates = params.date_range(query)
    period = params.choice(query, "period", params.PERIODS, "week")
    periods = params.integer(query, "periods", DEFAULT_PERIODS, 1, MAX_PERIODS)
    start_event = params.optional_text(query, "start_event")
    return_event = params.optional_text(query, "return_event")
    first = params.period_floor(dates.first, period)
    last = params.period_floor(dates.last, period)
    horizon = params.add_periods(last, period, periods)
    async with reading(request) as conn:
        counts = await run_retention(
            conn, account=account, start=dates.start, end=dates.end, period=period, periods=periods,
            horizon=params.midnight(horizon),
            start_event=start_event, return_event=return_event)
    current = params.period_floor(datetime.now(UTC).date(), period)
    rows = []
    cohort = first
    while cohort <= last:
        columns = [k for k in range(periods) if params.add_periods(cohort, period, k) <= current]
        rows.append({"cohort": cohort.isoformat(), "size": counts.get((cohort, 0), 0),
                     "retained": [counts.get((cohort, k), 0) for k in columns]})
        cohort = params.add_periods(cohort, period, 1)
    return web.json_response({
        "status": "success", "period": period, "periods": periods, "start_date": dates.first.isoformat(),
        "end_date": dates.last.isoformat(), "start_event": start_event, "return_event": return_event, "data": rows,
    })


ROUTES = [
    Route("GET", "/retention", retention, TOKEN, name="retention", tags=("Retention",),
          summary="Cohort retention table"),
]
