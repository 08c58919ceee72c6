"""Quota rules under /quotas, their violations, and POST /quota/check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..ingest.quota_check import check_quota
from ..store import quotas
from ..web import params
from ..web.appkeys import REDIS, SETTINGS
from ..web.errors import ApiError
from ..web.pools import writing
from ..web.routing import TOKEN, Route

RULE_PERIODS = ("minute", "hour", "day", "month")
MAX_LIMIT = 2**62
MAX_SEGMENT_BYTES = 4096


def _rule_fields(body: dict[str, Any]) -> dict[str, Any]:
    """event, segment ({} when absent), limit and period of a rule body, validated."""
    event = params.event_name(body.get("event"))
    segment = body.get("segment") or {}
    if not isinstance(segment, dict):
        raise ApiError(400, 'segment must be an object of user traits, e.g. {"plan": "free"}')
    if len(json.dumps(segment)) > MAX_SEGMENT_BYTES:
        raise ApiError(400, f"segment is larger than {MAX_SEGMENT_BYTES} bytes")
    limit = body.get("limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_LIMIT:
        raise ApiError(400, "limit must be a non-negative integer")
    period = body.get("period")
    if period not in RULE_PERIODS:
        raise ApiError(400, f"period must be one of {', '.join(RULE_PERIODS)}")
    return {"event": event, "segment": segment, "limit": limit, "period": period}


def _rule_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if len(text) > 18:
        raise ApiError(404, "Quota not found")
    return int(text)


async def list_(request: web.Request) -> web.Response:
    event = params.optional_text(request.query, "event")
    async with writing(request) as conn:
        rules = await quotas.list_rules(conn, params.account(request), event)
    return web.json_response({"status": "success", "quotas": rules})


async def create(request: web.Request) -> web.Response:
    fields = _rule_fields(await params.json_body(request))
    async with writing(request) as conn:
        rule = await quotas.create_rule(conn, account=params.account(request), **fields)
    return web.json_response({"status": "success", "quota": rule}, status=201)


async def violations(request: web.Request) -> web.Response:
    """The first crossing of each rule per user and period, newest first (``user_id``, ``quota_id``, ``limit``)."""
    query = request.query
    user_id = query.get("user_id", "").strip() or None
    quota_id = params.integer(query, "quota_id", 0, 1, MAX_LIMIT) or None
    limit = params.integer(query, "limit", 100, 1, 1000)
    async with writing(request) as conn:
        rows = await quotas.list_violations(conn, account=params.account(request), user_id=user_id,
                                           quota_id=quota_id, limit=limit)
    return web.json_response({"status": "success", "violations": rows})


async def get(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        rule = await quotas.get_rule(conn, params.account(request), _rule_id(request))
    if rule is None:
        raise ApiError(404, "Quota not found")
    return web.json_response({"status": "success", "quota": rule})


async def update(request: web.Request) -> web.Response:
    """Replace a rule's event, segment, limit and period; checks use the new rule at once."""
    fields = _rule_fields(await params.json_body(request))
    async with writing(request) as conn:
        rule = await quotas.update_rule(conn, _rule_id(request), account=params.account(request), **fields)
    if rule is None:
        raise ApiError(404, "Quota not found")
    return web.json_response({"status": "success", "quota": rule})


async def delete(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        deleted = await quotas.delete_rule(conn, params.account(request), _rule_id(request))
    if not deleted:
        raise ApiError(404, "Quota not found")
    return web.json_response({"status": "success", "deleted": True})


async def check(request: web.Request) -> web.Response:
    """Whether ``user_id`` may perform ``event`` now under the rules that apply to them."""
    if not request.config_dict[SETTINGS].quota_enabled:
        raise ApiError(409, "Quota counting is disabled: set ANALYTICS_QUOTA_ENABLED=true")
    body = await params.json_body(request)
    user_id = params.event_name(body.get("user_id"), "user_id")
    event = params.event_name(body.get("event"))
    async with writing(request) as conn:
        result = await check_quota(conn, request.config_dict[REDIS], account=params.account(request),
                                   user_id=user_id, event=event, now=datetime.now(UTC))
    return web.json_response({"status": "success", **result})


ROUTES = [
    Route("GET", "/quotas", list_, TOKEN, name="quotas_list", summary="List quota rules", tags=("Quotas",)),
    Route("POST", "/quotas", create, TOKEN, name="quotas_create", summary="Create a quota rule", tags=("Quotas",)),
    Route("GET", "/quotas/violations", violations, TOKEN, name="quotas_violations", tags=("Quotas",),
          summary="First crossing of each rule per user and period, newest first"),
    Route("GET", r"/quotas/{id:\d+}", get, TOKEN, name="quotas_get", summary="One quota rule", tags=("Quotas",)),
    Route("PUT", r"/quotas/{id:\d+}", update, TOKEN, name="quotas_update", tags=("Quotas",),
          summary="Replace a quota rule (takes effect at once)"),
    Route("DELETE", r"/quotas/{id:\d+}", delete, TOKEN, name="quotas_delete", tags=("Quotas",),
          summary="Delete a quota rule"),
    Route("POST", "/quota/check", check, TOKEN, name="quota_check", tags=("Quotas",),
          summary="Whether a user may perform an event now"),
]
