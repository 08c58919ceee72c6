"""GET /events, /events/{name}/properties and /sites: what the event log holds, for pickers.

Secret token; the request's account; ``start_date``/``end_date`` as every product query (default: the
last 30 days), days of ``tz``; bot events left out; every list bounded by ``limit``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

import msgspec
from aiohttp import web

from ..store import explorer
from ..store.explorer import PropertyKey
from ..web import params
from ..web.pools import reading
from ..web.read_params import DateParams, Day, Name, zoned
from ..web.routing import TOKEN, Route

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "MAX_VALUES", "ROUTES"]


DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_VALUES = 10
MAX_VALUES = 50


class ListParams(DateParams, kw_only=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT, description="Rows at most")] = DEFAULT_LIMIT


class EventsParams(ListParams, kw_only=True):
    search: Annotated[Name, msgspec.Meta(description="Only names containing this text (any case)")] | None = None


class PropertiesParams(ListParams, kw_only=True):
    name: Annotated[str, msgspec.Meta(max_length=params.MAX_NAME_LENGTH, description="The event name")]
    values: Annotated[int, msgspec.Meta(ge=0, le=MAX_VALUES, description="Top values per key")] = DEFAULT_VALUES

    MESSAGES: ClassVar[dict[str, str]] = {
        **DateParams.MESSAGES, "name:length": f"event name is longer than {params.MAX_NAME_LENGTH} characters"}


class EventName(msgspec.Struct, frozen=True):
    event: str
    count: int
    first_seen: datetime
    last_seen: datetime


class Site(msgspec.Struct, frozen=True):
    site: str
    pageviews: int
    first_seen: datetime
    last_seen: datetime


class EventNames(msgspec.Struct, frozen=True):
    status: Literal["success"]
    start_date: Day
    end_date: Day
    limit: int
    data: list[EventName]


class Sites(msgspec.Struct, frozen=True):
    status: Literal["success"]
    start_date: Day
    end_date: Day
    limit: int
    data: list[Site]
    tz: Annotated[str, msgspec.Meta(description="The zone of start_date and end_date")] = "UTC"


class EventProperties(msgspec.Struct, frozen=True):
    status: Literal["success"]
    event: str
    sampled_events: Annotated[int, msgspec.Meta(
        description="events surveyed: the newest ones, at most sample_limit")]
    sample_limit: int
    start_date: Day
    end_date: Day
    limit: int
    data: list[PropertyKey]


async def events(request: web.Request, query: EventsParams) -> EventNames:
    """Bot events are left out. Most frequent first."""
    account, (dates, start, end) = params.account(request), zoned(query)
    async with reading(request) as conn:
        rows = await explorer.event_names(conn, account=account, start=start, end=end,
                                          limit=query.limit, search=query.search)
    return EventNames("success", dates.first.isoformat(), dates.last.isoformat(), query.limit,
                      [EventName(r.name, r.count, r.first_seen, r.last_seen) for r in rows])


async def properties(request: web.Request, query: PropertiesParams) -> EventProperties:
    """Bot events are left out. The newest 10,000 events of the name in the range are surveyed."""
    account, (dates, start, end) = params.account(request), zoned(query)
    name = params.event_name(query.name, "event name")
    async with reading(request) as conn:
        sampled, data = await explorer.event_properties(conn, account=account, event=name, start=start,
                                                        end=end, limit=query.limit, values=query.values)
    return EventProperties("success", name, sampled, explorer.PROPERTY_SAMPLE, dates.first.isoformat(),
                           dates.last.isoformat(), query.limit, data)


async def sites(request: web.Request, query: ListParams) -> Sites:
    """Bot events are left out. Most viewed first."""
    account, (dates, start, end) = params.account(request), zoned(query)
    async with reading(request) as conn:
        rows = await explorer.sites(conn, account=account, start=start, end=end, limit=query.limit)
    return Sites("success", dates.first.isoformat(), dates.last.isoformat(), query.limit,
                 [Site(r.name, r.count, r.first_seen, r.last_seen) for r in rows], query.zone().key)


ROUTES = [
    Route("GET", "/events", events, TOKEN, name="explorer.events", tags=("Explorer",), op_id="events_list",
          summary="Event names with counts and first/last seen", params=EventsParams, answer=EventNames),
    Route("GET", r"/events/{name:[^/]+}/properties", properties, TOKEN, name="explorer.properties",
          tags=("Explorer",), op_id="event_properties",
          summary="Property keys of an event: types and top values with counts", params=PropertiesParams,
          answer=EventProperties),
    Route("GET", "/sites", sites, TOKEN, name="explorer.sites", tags=("Explorer",), op_id="sites_list",
          summary="Sites (beacon hostnames) with their page views", params=ListParams, answer=Sites),
]
