"""GET /api/utm-{sources,mediums,campaigns,terms,contents}, /api/goals and /api/realtime of one site.

The same parameters, credential (a token, or a site token of that site) and answer shape as the other web
reads (api/stats.py). Goals: ``goal=path:/pricing`` or ``goal=event:signup``, repeated (at most
``MAX_GOALS``); each answers its conversions, converted visitors and their share of the site's visitors.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..store import campaigns, realtime
from ..store import web_reads as web_store
from ..web.errors import ApiError
from ..web.params import account, event_name
from ..web.pools import reading
from ..web.routing import SITE, Route
from .stats import parse_query

__all__ = ["MAX_GOALS", "REALTIME_SECONDS", "ROUTES", "UTM_ROUTES"]


MAX_GOALS = 20
REALTIME_SECONDS = 300  # the realtime window: the last 5 minutes, as /api/active
MAX_LATEST = 100
MAX_GOAL_CHARS = 1024
# path under /api -> key of a row (the UTM property), each a web rollup breakdown (store/web.py)
UTM_ROUTES = {f"utm-{name}s": f"utm_{name}" for name in ("source", "medium", "campaign", "term", "content")}


def parse_goals(values: list[str]) -> list[tuple[str, str]]:
    """(kind, value) of each ``goal`` parameter: ``path:/x`` or ``event:name``."""
    if not values:
        raise ApiError(400, "goal is required: goal=path:/pricing or goal=event:signup (repeatable)")
    if len(values) > MAX_GOALS:
        raise ApiError(400, f"At most {MAX_GOALS} goals")
    goals = []
    for text in values:
        kind, colon, value = text.partition(":")
        if not colon or kind not in ("path", "event"):
            raise ApiError(400, f"Invalid goal {text[:50]!r}: use path:/some/page or event:name")
        if kind == "path":
            if not value.startswith("/") or len(value) > MAX_GOAL_CHARS or "\x00" in value:
                raise ApiError(400, f"A path goal is a path starting with / of at most {MAX_GOAL_CHARS} characters")
        else:
            value = event_name(value, "goal event")
        goals.append((kind, value))
    return goals


def _meta(query: web_store.WebQuery) -> dict[str, Any]:
    return {"site": query.site, "start": int(query.start.timestamp()), "end": int(query.end.timestamp())}


def _utm_handler(path: str, label: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        query = replace(parse_query(request.query), account=account(request))
        async with reading(request) as conn:
            data = await web_store.breakdown(conn, query, path, label)
        return web.json_response({"status": "success", "data": data, "meta": _meta(query)})

    return handler


async def goals(request: web.Request) -> web.Response:
    query = replace(parse_query(request.query), account=account(request))
    wanted = parse_goals(request.query.getall("goal", []))
    async with reading(request) as conn:
        visitors = (await web_store.summary(conn, query))["visitors"]
        data = []
        for kind, value in wanted:
            conversions, converted = await campaigns.goal(conn, query, kind, value)
            data.append({"goal": f"{kind}:{value}", "kind": kind, "value": value, "conversions": conversions,
                         "visitors": converted,
                         "conversion_rate": round(converted / visitors, 4) if visitors else 0.0})
    return web.json_response({"status": "success", "data": data, "meta": {**_meta(query), "visitors": visitors}})


async def realtime_view(request: web.Request) -> web.Response:
    """Visitors and page views of the last 5 minutes and the latest page views (``limit``, at most 100)."""
    query = replace(parse_query(request.query), account=account(request))
    now = time.time()
    since, until = datetime.fromtimestamp(now - REALTIME_SECONDS, UTC), datetime.fromtimestamp(now + 60, UTC)
    async with reading(request) as conn:
        data = await realtime.latest(conn, account=query.account, site=query.site, since=since, until=until,
                                     include_bots=query.include_bots, limit=min(query.limit, MAX_LATEST))
    meta = {"site": query.site, "start": int(since.timestamp()), "end": int(until.timestamp())}
    return web.json_response({"status": "success", "data": data, "meta": meta})


ROUTES = [
    *(Route("GET", f"/api/{path}", _utm_handler(path, label), SITE, name=f"campaigns.{path}", tags=("Web analytics",),
            op_id=f"stats_{label}s", summary=f"Page views by {label} (the page's URL parameter)")
      for path, label in UTM_ROUTES.items()),
    Route("GET", "/api/goals", goals, SITE, name="campaigns.goals", tags=("Web analytics",), op_id="stats_goals",
          summary="Goal conversions: page views of a path or events of a name, and the visitors converted"),
    Route("GET", "/api/realtime", realtime_view, SITE, name="campaigns.realtime",
          tags=("Web analytics",), op_id="stats_realtime",
          summary="Visitors and page views of the last 5 minutes, and the latest page views"),
]
