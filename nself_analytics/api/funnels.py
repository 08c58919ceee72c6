"""GET /funnel (conversion through ordered steps) and the saved definitions under /funnels."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from ..store import saved_funnels
from ..store.funnels import MAX_BREAKDOWN_VALUES, MAX_STEPS, FunnelGroup, run_funnel
from ..web import params
from ..web.errors import ApiError
from ..web.pools import reading, writing
from ..web.read_params import DateParams, Day, Name, zoned
from ..web.routing import TOKEN, Route

MIN_STEPS = 2
DEFAULT_WINDOW = "7d"
MAX_WINDOW_SECONDS = 90 * 86400


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]


class FunnelParams(DateParams, kw_only=True):
    # checked by parse_steps and parse_window (their messages); the pattern documents them
    steps: Annotated[str, msgspec.Meta(description="Comma-separated event names, 2 to 20 (or funnel_id)")] | None = (
        None)
    funnel_id: Annotated[int, msgspec.Meta(ge=1, le=2**62, description="A saved funnel instead of steps")] | None = (
        None)
    window: Annotated[str, msgspec.Meta(
        description="Time to complete the funnel from its first step (30s, 15m, 2h, 7d; max 90d); default 7d")] | (
        None) = None
    breakdown: Annotated[Name, msgspec.Meta(description="Split by this event property")] | None = None


class FunnelStep(msgspec.Struct, frozen=True):
    step: Annotated[int, msgspec.Meta(ge=1)]
    event: str
    users: int
    conversion_from_start: Rate | None
    conversion_from_previous: Rate | None
    drop_off: int
    drop_off_rate: Rate | None
    median_seconds_from_previous: float | None


class BreakdownValue(msgspec.Struct, frozen=True):
    value: str | None
    steps: list[FunnelStep]


class FunnelAnswer(msgspec.Struct, frozen=True):
    status: Literal["success"]
    funnel_id: int | None
    start_date: Day
    end_date: Day
    window_seconds: float
    steps: list[FunnelStep]
    # with a breakdown only
    breakdown: str | msgspec.UnsetType = msgspec.UNSET
    breakdown_values: list[BreakdownValue] | msgspec.UnsetType = msgspec.UNSET
    breakdown_values_total: int | msgspec.UnsetType = msgspec.UNSET
    breakdown_values_limit: int | msgspec.UnsetType = msgspec.UNSET


def step_rows(steps: list[str], group: FunnelGroup) -> list[FunnelStep]:
    """The per-step rows of one group."""
    first = group.steps[0].users
    rows = []
    for index, (event, stats) in enumerate(zip(steps, group.steps, strict=True)):
        previous = group.steps[index - 1].users if index else stats.users
        rows.append(FunnelStep(
            index + 1, event, stats.users, _ratio(stats.users, first), _ratio(stats.users, previous),
            previous - stats.users, _ratio(previous - stats.users, previous),
            None if stats.median_seconds is None else round(stats.median_seconds, 3)))
    return rows


def parse_steps(value: object) -> list[str]:
    """Steps as a comma-separated string or a JSON list: 2 to 20 event names (repeats allowed)."""
    if isinstance(value, str):
        items: list[object] = [s for s in value.split(",")]
    elif isinstance(value, list):
        items = value
    else:
        raise ApiError(400, "steps is required: a comma-separated list of event names")
    steps = [params.event_name(item, "each step") for item in items]
    if not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise ApiError(400, f"steps must name between {MIN_STEPS} and {MAX_STEPS} events")
    return steps


def parse_window(text: str | None) -> float:
    return params.duration(text or DEFAULT_WINDOW, "window", 1, MAX_WINDOW_SECONDS)


async def _definition(request: web.Request, query: FunnelParams, account: str) -> dict[str, Any]:
    """steps/window/breakdown from the query, or from the saved funnel ``funnel_id`` (query values win)."""
    breakdown = params.event_name(query.breakdown, "breakdown") if query.breakdown is not None else None
    if query.funnel_id is None:
        return {"funnel_id": None, "steps": parse_steps(query.steps or ""), "window": parse_window(query.window),
                "breakdown": breakdown}
    if query.steps:
        raise ApiError(400, "Give either steps or funnel_id, not both")
    async with writing(request) as conn:
        saved = await saved_funnels.get_funnel(conn, account, query.funnel_id)
    if saved is None:
        raise ApiError(404, "Funnel not found")
    window = parse_window(query.window) if query.window else float(saved["window_seconds"])
    return {"funnel_id": query.funnel_id, "steps": saved["steps"], "window": window,
            "breakdown": breakdown or saved["breakdown"]}


async def funnel(request: web.Request, query: FunnelParams) -> FunnelAnswer:
    """Conversion through an ordered sequence of events, for attempts starting in the range."""
    account = params.account(request)
    dates, start, end = zoned(query)
    spec = await _definition(request, query, account)
    async with reading(request) as conn:
        result = await run_funnel(conn, account=account, steps=spec["steps"], start=start, end=end,
                                  window_seconds=spec["window"], breakdown=spec["breakdown"])
    answer = FunnelAnswer("success", spec["funnel_id"], dates.first.isoformat(), dates.last.isoformat(),
                          spec["window"], step_rows(spec["steps"], result.total))
    if spec["breakdown"] is None:
        return answer
    return msgspec.structs.replace(
        answer, breakdown=spec["breakdown"],
        breakdown_values=[BreakdownValue(g.value, step_rows(spec["steps"], g)) for g in result.groups],
        breakdown_values_total=result.groups_total, breakdown_values_limit=MAX_BREAKDOWN_VALUES)


def _funnel_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if len(text) > 18:
        raise ApiError(404, "Funnel not found")
    return int(text)


async def create(request: web.Request) -> web.Response:
    account = params.account(request)
    body = await params.json_body(request)
    name = params.event_name(body.get("name"), "name")
    steps = parse_steps(body.get("steps"))
    window = body.get("window", DEFAULT_WINDOW)
    if isinstance(window, int | float) and not isinstance(window, bool):
        window = f"{window}s"
    if not isinstance(window, str):
        raise ApiError(400, "window must be a duration such as 7d (or a number of seconds)")
    window_seconds = parse_window(window)
    breakdown = body.get("breakdown")
    breakdown = None if breakdown in (None, "") else params.event_name(breakdown, "breakdown")
    async with writing(request) as conn:
        saved = await saved_funnels.create_funnel(conn, account=account, name=name, steps=steps,
                                                  window_seconds=round(window_seconds), breakdown=breakdown)
    return web.json_response({"status": "success", "funnel": saved}, status=201)


async def list_(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        funnels = await saved_funnels.list_funnels(conn, params.account(request))
    return web.json_response({"status": "success", "funnels": funnels})


async def get(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        saved = await saved_funnels.get_funnel(conn, params.account(request), _funnel_id(request))
    if saved is None:
        raise ApiError(404, "Funnel not found")
    return web.json_response({"status": "success", "funnel": saved})


async def delete(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        deleted = await saved_funnels.delete_funnel(conn, params.account(request), _funnel_id(request))
    if not deleted:
        raise ApiError(404, "Funnel not found")
    return web.json_response({"status": "success", "deleted": True})


ROUTES = [
    Route("GET", "/funnel", funnel, TOKEN, name="funnel", tags=("Funnels",),
          summary="Conversion through an ordered sequence of events", params=FunnelParams, answer=FunnelAnswer),
    Route("POST", "/funnels", create, TOKEN, name="funnels_create", tags=("Funnels",),
          summary="Save a funnel definition"),
    Route("GET", "/funnels", list_, TOKEN, name="funnels_list", summary="List saved funnels", tags=("Funnels",)),
    Route("GET", r"/funnels/{id:\d+}", get, TOKEN, name="funnels_get", summary="One saved funnel", tags=("Funnels",)),
    Route("DELETE", r"/funnels/{id:\d+}", delete, TOKEN, name="funnels_delete", tags=("Funnels",),
          summary="Delete a saved funnel"),
]
