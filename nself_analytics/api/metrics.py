"""GET /metrics (event counts per period) and GET /sessions (durations from start/stop pairs)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from aiohttp import web

from ..store.metrics import event_counts, session_totals
from ..web import params
from ..web.errors import ApiError
from ..web.pools import reading
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


def _common(query: Mapping[str, str]) -> tuple[params.DateRange, str, str | None]:
    dates = params.date_range(query)
    group_by = params.choice(query, "group_by", params.PERIODS, "day")
    user_id = query.get("user_id", "").strip() or None
    if user_id is not None and len(user_id) > params.MAX_NAME_LENGTH:
        raise ApiError(400, f"user_id is longer than {params.MAX_NAME_LENGTH} characters")
    return dates, group_by, user_id


async def metrics(request: web.Request) -> web.Response:
    """``data``: one row per period of the range: ``date`` (the period's first day) and ``counts``, the count of
    every event name seen in the range (0 where none). The names are keys of ``counts`` only, so no name (an
    event called ``date``) can collide with a key of the row."""
    account = params.account(request)
    dates, group_by, user_id = _common(request.query)
    async with reading(request) as conn:
        counts = await event_counts(conn, account=account, start=dates.start, end=dates.end, group_by=group_by,
                                    user_id=user_id)
    limit = params.integer(request.query, "limit", DEFAULT_EVENT_LIMIT, 1, MAX_EVENT_LIMIT)
    totals: dict[str, int] = {}
    for per_period in counts.values():
        for name, count in per_period.items():
            totals[name] = totals.get(name, 0) + count
    # at most `limit` event names (the most frequent in the range): the answer's size is bounded
    names = sorted(sorted(totals, key=lambda name: (-totals[name], name))[:limit])
    data = [{"date": p.isoformat(), "counts": {name: counts.get(p, {}).get(name, 0) for name in names}}
            for p in _periods(dates, group_by)]
    return web.json_response({"status": "success", "group_by": group_by, "events": names,
                              "events_truncated": len(totals) > limit, "data": data})


async def sessions(request: web.Request) -> web.Response:
    """``data``: per period of the range, sessions starting in it: count, total and average seconds."""
    account = params.account(request)
    query = request.query
    dates, group_by, user_id = _common(query)
    start_event = params.optional_text(query, "start_event") or DEFAULT_START_EVENT
    stop_event = params.optional_text(query, "stop_event") or DEFAULT_STOP_EVENT
    if start_event == stop_event:
        raise ApiError(400, "start_event and stop_event must differ")
    async with reading(request) as conn:
        totals = await session_totals(conn, account=account, start=dates.start, end=dates.end, group_by=group_by,
                                      start_event=start_event, stop_event=stop_event, user_id=user_id)
    data = []
    for p in _periods(dates, group_by):
        count, total = totals.get(p, (0, 0.0))
        data.append({"date": p.isoformat(), "totalDuration": round(total, 3), "sessionCount": count,
                     "averageDuration": round(total / count, 3) if count else 0})
    return web.json_response({"status": "success", "group_by": group_by, "start_event": start_event,
                              "stop_event": stop_event, "data": data})


ROUTES = [
    Route("GET", "/metrics", metrics, TOKEN, name="metrics", tags=("Metrics",),
          summary="Event counts per day, week or month"),
    Route("GET", "/sessions", sessions, TOKEN, name="sessions", tags=("Metrics",),
          summary="Session durations from start/stop event pairs"),
]
