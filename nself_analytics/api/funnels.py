"""GET /funnel (conversion through ordered steps) and the saved definitions under /funnels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..store import saved_funnels
from ..store.funnels import MAX_BREAKDOWN_VALUES, MAX_STEPS, FunnelGroup, run_funnel
from ..web import params
from ..web.errors import ApiError
from ..web.pools import reading, writing
from ..web.routing import TOKEN, Route

MIN_STEPS = 2
DEFAULT_WINDOW = "7d"
MAX_WINDOW_SECONDS = 90 * 86400


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def step_rows(steps: list[str], group: FunnelGroup) -> list[dict[str, Any]]:
    """The per-step response objects of one group."""
    first = group.steps[0].users
    rows = []
    for index, (event, stats) in enumerate(zip(steps, group.steps, strict=True)):
        previous = group.steps[index - 1].users if index else stats.users
        rows.append({
            "step": index + 1,
            "event": event,
            "users": stats.users,
            "conversion_from_start": _ratio(stats.users, first),
            "conversion_from_previous": _ratio(stats.users, previous),
            "drop_off": previous - stats.users,
            "drop_off_rate": _ratio(previous - stats.users, previous),
            "median_seconds_from_previous": None if stats.median_seconds is None else round(stats.median_seconds, 3),
        })
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


async def _definition(request: web.Request, query: Mapping[str, str], account: str) -> dict[str, Any]:
    """steps/window/breakdown from the query, or from the saved funnel ``funnel_id`` (query values win)."""
    if "funnel_id" not in query:
        return {"funnel_id": None, "steps": parse_steps(query.get("steps", "")),
                "window": parse_window(query.get("window")), "breakdown": params.optional_text(query, "breakdown")}
    if query.get("steps"):
        raise ApiError(400, "Give either steps or funnel_id, not both")
    funnel_id = params.integer(query, "funnel_id", 0, 1, 2**62)
    async with writing(request) as conn:
        saved = await saved_funnels.get_funnel(conn, account, funnel_id)
    if saved is None:
        raise ApiError(404, "Funnel not found")
    window = parse_window(query["window"]) if query.get("window") else float(saved["window_seconds"])
    return {"funnel_id": funnel_id, "steps": saved["steps"], "window": window,
            "breakdown": params.optional_text(query, "breakdown") or saved["breakdown"]}


async def funnel(request: web.Request) -> web.Response:
    account = params.account(request)
    query = request.query
    dates = params.date_range(query)
    spec = await _definition(request, query, account)
    async with reading(request) as conn:
        result = await run_funnel(conn, account=account, steps=spec["steps"], start=dates.start, end=dates.end,
                                  window_seconds=spec["window"], breakdown=spec["breakdown"])
    body: dict[str, Any] = {
        "status": "success",
        "funnel_id": spec["funnel_id"],
        "start_date": dates.first.isoformat(),
        "end_date": dates.last.isoformat(),
        "window_seconds": spec["window"],
        "steps": step_rows(spec["steps"], result.total),
    }
    if spec["breakdown"] is not None:
        body["breakdown"] = spec["breakdown"]
        body["breakdown_values"] = [{"value": g.value, "steps": step_rows(spec["steps"], g)} for g in result.groups]
        body["breakdown_values_total"] = result.groups_total
        body["breakdown_values_limit"] = MAX_BREAKDOWN_VALUES
    return web.json_response(body)


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
          summary="Conversion through an ordered sequence of events"),
    Route("POST", "/funnels", create, TOKEN, name="funnels_create", tags=("Funnels",),
          summary="Save a funnel definition"),
    Route("GET", "/funnels", list_, TOKEN, name="funnels_list", summary="List saved funnels", tags=("Funnels",)),
    Route("GET", r"/funnels/{id:\d+}", get, TOKEN, name="funnels_get", summary="One saved funnel", tags=("Funnels",)),
    Route("DELETE", r"/funnels/{id:\d+}", delete, TOKEN, name="funnels_delete", tags=("Funnels",),
          summary="Delete a saved funnel"),
]
