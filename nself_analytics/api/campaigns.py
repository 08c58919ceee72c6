"""GET /api/utm-{sources,mediums,campaigns,terms,contents}, /api/goals and /api/realtime of one site.

The same parameters, credential (a token, or a site token of that site) and answer shape as the other web
reads (api/stats.py). Goals: ``goal=path:/pricing`` or ``goal=event:signup``, repeated (at most
``MAX_GOALS``); each answers its conversions, converted visitors and their share of the site's visitors.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from aiohttp import web

from ..store import campaigns, realtime
from ..store import web_reads as web_store
from ..store.web import WebQuery
from ..web.errors import ApiError
from ..web.params import account, event_name
from ..web.pools import reading
from ..web.routing import SITE, Route
from .stats_params import Count, StatsMeta, WebFilters, WebParams, answer_type, meta_of, row_type
from .stats_params import list_of as _list_of

__all__ = ["MAX_GOALS", "REALTIME_SECONDS", "ROUTES", "UTM_ROUTES"]


MAX_GOALS = 20
REALTIME_SECONDS = 300  # the realtime window: the last 5 minutes, as /api/active
MAX_LATEST = 100
MAX_GOAL_CHARS = 1024
# path under /api -> key of a row (the UTM property), each a web rollup breakdown (store/web.py)
UTM_ROUTES = {f"utm-{name}s": f"utm_{name}" for name in ("source", "medium", "campaign", "term", "content")}


def parse_goals(values: list[str]) -> list[tuple[str, str]]:
    """(kind, value) of each ``goal`` parameter: ``path:/x`` or ``event:name``."""
    if len(values) > MAX_GOALS:  # none: GoalParams refuses the request before
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


class GoalParams(WebFilters, kw_only=True):
    goal: Annotated[list[str], msgspec.Meta(description=(
        "path:/pricing or event:signup; repeat for more (at most 20). The goals reported: to filter by a goal "
        "here, give path= or event="))]

    MESSAGES: ClassVar[dict[str, str]] = {
        **WebFilters.MESSAGES, "goal:missing": "goal is required: goal=path:/pricing or goal=event:signup (repeatable)"}


class Goal(msgspec.Struct, frozen=True):
    goal: str
    kind: Literal["path", "event"]
    value: str
    conversions: Count
    visitors: Count
    conversion_rate: Annotated[float, msgspec.Meta(ge=0)]


class GoalsMeta(msgspec.Struct, frozen=True):
    site: str
    start: int
    end: int
    visitors: Count


class LatestView(msgspec.Struct, frozen=True):
    ts: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]
    path: str | None
    referrer: str | None
    country: str | None
    device: str | None
    browser: str | None


class Realtime(msgspec.Struct, frozen=True):
    visitors: Count
    pageviews: Count
    latest: Annotated[list[LatestView], msgspec.Meta(max_length=MAX_LATEST)]


GoalsAnswer = answer_type("GoalsAnswer", list[Goal], GoalsMeta)
RealtimeAnswer = answer_type("RealtimeAnswer", Realtime)


def _utm_handler(path: str, row: Any, answer: Any) -> Any:
    async def handler(request: web.Request, params: WebParams) -> Any:
        """Bots are left out unless include_bots=true; the filters select whole sessions (docs/web-metrics.md), each
        counted under its first page view's utm value with its page views."""
        query = params.to_query(account(request))
        async with reading(request) as conn:
            data = await web_store.breakdown(conn, query, path)
        return answer("success", [row(r.key, r.pageviews, r.sessions) for r in data], meta_of(query))

    return handler


async def goals(request: web.Request, params: GoalParams) -> Any:
    """conversion_rate: converted visitors / the site's visitors of the range. A path goal counts the site's page
    views of that path (filters applied); an event goal counts events of that name that carry the site (sent from
    its pages, or naming it); an event without a site (a back end's) is not counted."""
    query = params.to_query(account(request))
    wanted = parse_goals(params.goal)
    async with reading(request) as conn:
        visitors = (await web_store.summary(conn, query)).visitors
        data = []
        for kind, value in wanted:
            conversions, converted = await campaigns.goal(conn, query, kind, value)
            data.append(Goal(f"{kind}:{value}", kind, value, conversions, converted,  # type: ignore[arg-type]
                             round(converted / visitors, 4) if visitors else 0.0))
    meta = meta_of(query)
    return GoalsAnswer("success", data, GoalsMeta(meta.site, meta.start, meta.end, visitors))


async def realtime_view(request: web.Request, params: WebParams) -> Any:
    """The range parameters and filters are ignored: the window is the last 5 minutes; `limit` (at most 100)
    bounds the latest page views, newest first."""
    query: WebQuery = params.to_query(account(request))
    now = time.time()
    since, until = datetime.fromtimestamp(now - REALTIME_SECONDS, UTC), datetime.fromtimestamp(now + 60, UTC)
    async with reading(request) as conn:
        data = await realtime.latest(conn, account=query.account, site=query.site, since=since, until=until,
                                     include_bots=query.include_bots, limit=min(query.limit, MAX_LATEST))
    latest = [LatestView(_iso(row.ts), row.path, row.referrer, row.country, row.device, row.browser)
              for row in data.latest]
    return RealtimeAnswer("success", Realtime(data.visitors, data.pageviews, latest),
                          StatsMeta(query.site, int(since.timestamp()), int(until.timestamp())))


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _utm_route(path: str, label: str) -> Route:
    row = row_type(f"{label.title().replace('_', '')}Counts", label, str)
    answer = answer_type(f"Stats{label.title().replace('_', '')}sAnswer", _list_of(row))
    return Route("GET", f"/api/{path}", _utm_handler(path, row, answer), SITE, name=f"campaigns.{path}",
                 tags=("Web analytics",), op_id=f"stats_{label}s",
                 summary=f"Page views by {label} (the page's URL parameter)", params=WebParams, answer=answer)


ROUTES = [
    *(_utm_route(path, label) for path, label in UTM_ROUTES.items()),
    Route("GET", "/api/goals", goals, SITE, name="campaigns.goals", tags=("Web analytics",), op_id="stats_goals",
          summary="Goal conversions: page views of a path or events of a name, and the visitors converted",
          params=GoalParams, answer=GoalsAnswer),
    Route("GET", "/api/realtime", realtime_view, SITE, name="campaigns.realtime", tags=("Web analytics",),
          op_id="stats_realtime", summary="Visitors and page views of the last 5 minutes, and the latest page views",
          params=WebParams, answer=RealtimeAnswer),
]
