"""The MCP server: ``nself-analytics mcp`` serves the service's analytics to AI clients over stdio.

Built on the official MCP Python SDK (``mcp.server.mcpserver.MCPServer``): each tool is a typed function
whose JSON schema the SDK derives from its annotations; each calls the service's HTTP API with
ANALYTICS_URL and ANALYTICS_API_TOKEN (or ``--url`` / ``--token``) and returns its JSON answer. A
failure (unreachable, refused token, a refused parameter) is a tool error with the service's message,
never a crash of the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from .. import __version__
from .client import AnalyticsClient, ClientConfig, ServiceError
from .mcp_stdio import serve_stdio

__all__ = ["TOOLS", "Getter", "build_server", "build_tools", "run_stdio"]

# (path under /analytics, query) -> the JSON answer; ServiceError with the service's message
Getter = Callable[[str, Mapping[str, Any] | None], Awaitable[dict[str, Any]]]

DateText = Annotated[str | None, Field(description="Day YYYY-MM-DD of tz (default: 30 days ago / today)",
                                        pattern=r"^\d{4}-\d{2}-\d{2}$")]
Zone = Annotated[str, Field(description="IANA time zone of the days, e.g. Europe/Berlin (default UTC)", min_length=1,
                            max_length=64)]
Limit = Annotated[int, Field(description="Rows at most", ge=1, le=1000)]
Name = Annotated[str, Field(description="An event name", min_length=1, max_length=200)]
OptionalName = Annotated[str | None, Field(description="An event name", min_length=1, max_length=200)]
Period = Literal["day", "week", "month"]
WebReport = Literal["summary", "pages", "referrers", "countries", "devices", "browsers", "os", "languages",
                    "timeseries", "entry-pages", "exit-pages"]

INSTRUCTIONS = ("Product and web analytics of one nself-analytics service. Dates are days (YYYY-MM-DD) of the "
                "tool's tz (an IANA time zone, default UTC), inclusive; without dates a query covers the last 30 "
                "days. Start with list_sites or list_events to learn the names the other tools take.")


def _dates(start_date: str | None, end_date: str | None, tz: str) -> dict[str, str | None]:
    return {"start_date": start_date, "end_date": end_date, "tz": tz}


def _web_dates(start_date: str | None, end_date: str | None, tz: str) -> dict[str, str | None]:
    """The web reads take the product queries' days and zone; one date alone: from it to today (of ``tz``), or the
    30 days up to it."""
    if (start_date is None) != (end_date is None):
        try:
            today = datetime.now(ZoneInfo(tz)).date()
        except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
            raise ToolError(f"Unknown time zone {tz!r}: use an IANA name such as Europe/Berlin") from None
        try:
            if start_date is None:
                start_date = (date.fromisoformat(str(end_date)) - timedelta(days=29)).isoformat()
            else:
                end_date = max(today, date.fromisoformat(start_date)).isoformat()
        except ValueError as exc:
            raise ToolError(f"Invalid date: {exc}") from None
    return _dates(start_date, end_date, tz)


def build_server(config: ClientConfig) -> MCPServer:
    """The MCP server with its tools, calling the service described by ``config`` over HTTP (stdio)."""
    return build_tools(AnalyticsClient(config).get)


def build_tools(get: Getter) -> MCPServer:
    """The MCP server with its tools, each reading the HTTP API through ``get`` (over HTTP for stdio,
    in-process for ``POST /analytics/mcp``: mcp_http.py)."""
    server = MCPServer("nself-analytics", instructions=INSTRUCTIONS, version=__version__)

    async def call(path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = await get(path, query)
        except ServiceError as exc:
            raise ToolError(str(exc)) from None
        return answer

    @server.tool(description="List the sites (beacon hostnames) with their page views in a date range.")
    async def list_sites(start_date: DateText = None, end_date: DateText = None, limit: Limit = 100,
                         tz: Zone = "UTC") -> dict[str, Any]:
        return await call("/sites", {**_dates(start_date, end_date, tz), "limit": limit})

    @server.tool(description="Web analytics of one site: summary (page views, visitors, sessions), top pages, "
                             "referrers, countries, devices, browsers, os, languages or a daily time series.")
    async def web_stats(site: Annotated[str, Field(description="The site's hostname, e.g. example.com",
                                                   min_length=1, max_length=253)],
                        report: WebReport = "summary", start_date: DateText = None, end_date: DateText = None,
                        limit: Limit = 10, tz: Zone = "UTC") -> dict[str, Any]:
        path = "/api/pageviews" if report == "summary" else f"/api/{report}"
        query = {"site": site, **_web_dates(start_date, end_date, tz), "limit": None if report == "summary" else limit}
        return await call(path, query)

    @server.tool(description="Funnel conversion through ordered steps (event names) or a saved funnel's id.")
    async def funnel(steps: Annotated[list[str] | None, Field(description="2-20 event names in order",
                                                              min_length=2, max_length=20)] = None,
                     funnel_id: Annotated[int | None, Field(description="A saved funnel instead of steps",
                                                            ge=1)] = None,
                     start_date: DateText = None, end_date: DateText = None,
                     window: Annotated[str | None, Field(description="Conversion window, e.g. 1h, 7d")] = None,
                     breakdown: Annotated[str | None, Field(description="A step-1 event property")] = None,
                     tz: Zone = "UTC") -> dict[str, Any]:
        if (steps is None) == (funnel_id is None):
            raise ToolError("Give either steps or funnel_id")
        return await call("/funnel", {"steps": ",".join(steps) if steps else None, "funnel_id": funnel_id,
                                      **_dates(start_date, end_date, tz), "window": window, "breakdown": breakdown})

    @server.tool(description="Retention cohorts: of the users who first did start_event in a period, how many "
                             "returned (did return_event) in each later period.")
    async def retention(start_date: DateText = None, end_date: DateText = None, period: Period = "week",
                        periods: Annotated[int, Field(description="Columns, period 0 included", ge=1, le=60)] = 8,
                        start_event: OptionalName = None, return_event: OptionalName = None,
                        tz: Zone = "UTC") -> dict[str, Any]:
        return await call("/retention", {**_dates(start_date, end_date, tz), "period": period, "periods": periods,
                                         "start_event": start_event, "return_event": return_event})

    @server.tool(description="Event counts per day, week or month, optionally of one user.")
    async def metrics(start_date: DateText = None, end_date: DateText = None, group_by: Period = "day",
                      user_id: Annotated[str | None, Field(max_length=200)] = None, tz: Zone = "UTC") -> dict[str, Any]:
        return await call("/metrics", {**_dates(start_date, end_date, tz), "group_by": group_by, "user_id": user_id})

    @server.tool(description="Session durations from start/stop event pairs, per day, week or month.")
    async def sessions(start_date: DateText = None, end_date: DateText = None, group_by: Period = "day",
                       start_event: Name = "play", stop_event: Name = "stop",
                       user_id: Annotated[str | None, Field(max_length=200)] = None,
                       tz: Zone = "UTC") -> dict[str, Any]:
        return await call("/sessions", {**_dates(start_date, end_date, tz), "group_by": group_by,
                                        "start_event": start_event, "stop_event": stop_event, "user_id": user_id})

    @server.tool(description="Real-time counts of an event in the current minute, hour, day and in total.")
    async def counters(event: Name, period: Literal["minute", "hour", "day", "total"] | None = None,
                       user_id: Annotated[str | None, Field(max_length=200)] = None) -> dict[str, Any]:
        return await call(f"/counters/{quote(event, safe='')}", {"period": period, "user_id": user_id})

    @server.tool(description="Event counts over time (count, users, sum or avg of a property), per interval.")
    async def trends(events: Annotated[list[str], Field(description="Event names", min_length=1, max_length=10)],
                     start_date: DateText = None, end_date: DateText = None,
                     interval: Literal["hour", "day", "week", "month"] = "day",
                     measure: Annotated[str, Field(description="count, users, sum:<property> or avg:<property>")]
                     = "count",
                     breakdown: Annotated[str | None, Field(description="An event property")] = None,
                     tz: Zone = "UTC") -> dict[str, Any]:
        return await call("/trends", {"events": ",".join(events), **_dates(start_date, end_date, tz),
                                      "interval": interval, "measure": measure, "breakdown": breakdown})

    @server.tool(description="The event names with their counts and first/last seen, most frequent first.")
    async def list_events(start_date: DateText = None, end_date: DateText = None,
                          search: Annotated[str | None, Field(description="Only names containing this text")] = None,
                          limit: Limit = 100, tz: Zone = "UTC") -> dict[str, Any]:
        return await call("/events", {**_dates(start_date, end_date, tz), "search": search, "limit": limit})

    @server.tool(description="The property keys of an event: their JSON types and top values with counts.")
    async def event_properties(name: Name, start_date: DateText = None, end_date: DateText = None,
                               values: Annotated[int, Field(description="Top values per key", ge=0, le=50)] = 10,
                               limit: Limit = 100, tz: Zone = "UTC") -> dict[str, Any]:
        return await call(f"/events/{quote(name, safe='')}/properties",
                          {**_dates(start_date, end_date, tz), "values": values, "limit": limit})

    @server.tool(description="Identified users (id, traits, first/last seen), searched by id or trait, paged.")
    async def list_users(search: Annotated[str | None, Field(description="Text in the id or traits")] = None,
                         traits: Annotated[dict[str, str] | None, Field(description="Exact trait values, e.g. "
                                                                        "{\"plan\": \"pro\"}")] = None,
                         limit: Annotated[int, Field(ge=1, le=200)] = 50,
                         offset: Annotated[int, Field(ge=0)] = 0) -> dict[str, Any]:
        filters = {f"trait.{key}": value for key, value in (traits or {}).items()}
        return await call("/users", {"search": search, **filters, "limit": limit, "offset": offset})

    @server.tool(description="One user's profile (traits, linked ids, first/last seen, event counts) and their "
                             "recent events, newest first.")
    async def user_profile(user_id: Annotated[str, Field(description="A user id or anonymous id", min_length=1,
                                                         max_length=200)],
                           limit: Annotated[int, Field(description="Events at most", ge=1, le=200)] = 50,
                           offset: Annotated[int, Field(ge=0)] = 0) -> dict[str, Any]:
        return await call(f"/users/{quote(user_id, safe='')}", {"limit": limit, "offset": offset})

    return server


# The tools the server offers (the tests check the list against the server's own).
TOOLS = ("list_sites", "web_stats", "funnel", "retention", "metrics", "sessions", "counters", "trends",
         "list_events", "event_properties", "list_users", "user_profile")


def run_stdio(env: Mapping[str, str], *, url: str | None = None, token: str | None = None) -> int:
    """Serve over stdio until the client closes the pipe; ConfigError names a missing variable."""
    server = build_server(ClientConfig.from_env(env, url=url, token=token))
    anyio.run(serve_stdio, server)  # the SDK's stdio transport, with lines it would drop answered (mcp_stdio.py)
    return 0
