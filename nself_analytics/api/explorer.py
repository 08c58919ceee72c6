"""GET /events, /events/{name}/properties and /sites: what the event log holds, for pickers.

Secret token; the request's account; ``start_date``/``end_date`` as every product query (default: the
last 30 days); bot events left out; every list bounded by ``limit``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..store import explorer
from ..web import params
from ..web.pools import reading
from ..web.routing import TOKEN, Route

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "MAX_VALUES", "ROUTES"]


DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_VALUES = 10
MAX_VALUES = 50


def _common(request: web.Request) -> tuple[str, params.DateRange, int]:
    """The account, the date range and ``limit`` every explorer read takes (credential: the routes' TOKEN)."""
    account = params.account(request)
    dates = params.date_range(request.query)
    return account, dates, params.integer(request.query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)


def _answer(dates: params.DateRange, limit: int, data: Any, **extra: Any) -> web.Response:
    return web.json_response({"status": "success", **extra, "start_date": dates.first.isoformat(),
                              "end_date": dates.last.isoformat(), "limit": limit, "data": data})


async def events(request: web.Request) -> web.Response:
    """Event names with their counts and first/last times in the range, most frequent first."""
    account, dates, limit = _common(request)
    search = params.optional_text(request.query, "search")
    async with reading(request) as conn:
        data = await explorer.event_names(conn, account=account, start=dates.start, end=dates.end, limit=limit,
                                          search=search)
    return _answer(dates, limit, data)


async def properties(request: web.Request) -> web.Response:
    """Property keys of one event (newest events surveyed), their JSON types and top values."""
    account, dates, limit = _common(request)
    name = params.event_name(request.match_info["name"], "event name")
    values = params.integer(request.query, "values", DEFAULT_VALUES, 0, MAX_VALUES)
    async with reading(request) as conn:
        sampled, data = await explorer.event_properties(conn, account=account, event=name, start=dates.start,
                                                        end=dates.end, limit=limit, values=values)
    return _answer(dates, limit, data, event=name, sampled_events=sampled, sample_limit=explorer.PROPERTY_SAMPLE)


async def sites(request: web.Request) -> web.Response:
    """Sites (beacon hostnames) with page views in the range, most viewed first."""
    account, dates, limit = _common(request)
    async with reading(request) as conn:
        data = await explorer.sites(conn, account=account, start=dates.start, end=dates.end, limit=limit)
    return _answer(dates, limit, data)


ROUTES = [
    Route("GET", "/events", events, TOKEN, name="explorer.events", tags=("Explorer",), op_id="events_list",
          summary="Event names with counts and first/last seen"),
    Route("GET", r"/events/{name:[^/]+}/properties", properties, TOKEN, name="explorer.properties",
          tags=("Explorer",), op_id="event_properties",
          summary="Property keys of an event: types and top values with counts"),
    Route("GET", "/sites", sites, TOKEN, name="explorer.sites", tags=("Explorer",), op_id="sites_list",
          summary="Sites (beacon hostnames) with their page views"),
]
