"""Alerts under /alerts (secret token; per account): a rule on a series the API computes, checked by the leader
(pipeline/alert_checks.py), with its check history and notifications. Bodies: model/alert_spec.py."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from ..config import Settings
from ..model.alert_spec import AlertBody, SpecError, decode_body
from ..pipeline.alert_checks import spec_of
from ..store import alerts, notifications, saved_funnels
from ..web import params
from ..web.appkeys import SETTINGS
from ..web.errors import ApiError
from ..web.pools import writing
from ..web.routing import TOKEN, Route

MAX_ALERTS_PER_ACCOUNT = 100
MAX_CHECKS = 1000


def _body(data: dict[str, Any], settings: Settings) -> AlertBody:
    try:
        body = decode_body(data)
    except SpecError as exc:
        raise ApiError(400, str(exc)) from None
    channels = body.channels
    if message := settings.unconfigured(channels.telegram_chat, channels.discord_channel, channels.emails):
        raise ApiError(400, message)
    return body


def _spec(body: AlertBody) -> dict[str, Any]:
    spec = msgspec.to_builtins(body)
    spec.pop("name", None)
    spec.pop("enabled", None)
    return dict(spec)


def _view(row: dict[str, Any]) -> dict[str, Any]:
    body = msgspec.to_builtins(spec_of(row))
    fields = {k: v for k, v in row.items() if k != "spec"}
    return {**body, **fields}


async def _check_series(conn: Any, account: str, body: AlertBody) -> None:
    """400 for a series that names something the account does not have."""
    if body.series.kind == "funnel" and await saved_funnels.get_funnel(conn, account, body.series.funnel_id or 0) \
            is None:
        raise ApiError(400, f"Unknown series: the account has no saved funnel {body.series.funnel_id}")


def _alert_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if len(text) > 18:
        raise ApiError(404, "Alert not found")
    return int(text)


async def create(request: web.Request) -> web.Response:
    account = params.account(request)
    body = _body(await params.json_body(request), request.app[SETTINGS])
    async with writing(request) as conn:
        await _check_series(conn, account, body)
        if await alerts.count_alerts(conn, account) >= MAX_ALERTS_PER_ACCOUNT:
            raise ApiError(409, f"An account has at most {MAX_ALERTS_PER_ACCOUNT} alerts")
        row = await alerts.create_alert(conn, account=account, name=body.name.strip(), spec=_spec(body),
                                        enabled=body.enabled)
    return web.json_response({"status": "success", "alert": _view(row)}, status=201)


async def list_(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        rows = await alerts.list_alerts(conn, params.account(request))
    return web.json_response({"status": "success", "alerts": [_view(row) for row in rows]})


async def get(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        row = await alerts.get_alert(conn, params.account(request), _alert_id(request))
    if row is None:
        raise ApiError(404, "Alert not found")
    return web.json_response({"status": "success", "alert": _view(row)})


async def update(request: web.Request) -> web.Response:
    """Change some top-level fields (a nested object, as condition, is replaced whole); checked as a whole again."""
    account = params.account(request)
    alert_id = _alert_id(request)
    changes = await params.json_body(request)
    async with writing(request) as conn:
        current = await alerts.get_alert(conn, account, alert_id)
        if current is None:
            raise ApiError(404, "Alert not found")
        merged = {**msgspec.to_builtins(spec_of(current)), **changes}
        body = _body(merged, request.app[SETTINGS])
        await _check_series(conn, account, body)
        row = await alerts.update_alert(conn, alert_id, account=account, name=body.name.strip(), spec=_spec(body),
                                        enabled=body.enabled)
    if row is None:
        raise ApiError(404, "Alert not found")
    return web.json_response({"status": "success", "alert": _view(row)})


async def delete(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        deleted = await alerts.delete_alert(conn, params.account(request), _alert_id(request))
    if not deleted:
        raise ApiError(404, "Alert not found")
    return web.json_response({"status": "success", "deleted": True})


async def checks(request: web.Request) -> web.Response:
    """The check history, newest first (kept ANALYTICS_RETENTION_DAYS), and the chat/email notifications sent."""
    account = params.account(request)
    alert_id = _alert_id(request)
    limit = params.integer(request.query, "limit", 100, 1, MAX_CHECKS)
    async with writing(request) as conn:
        if await alerts.get_alert(conn, account, alert_id) is None:
            raise ApiError(404, "Alert not found")
        rows = await alerts.list_checks(conn, account, alert_id, limit)
        sent = await notifications.list_for(conn, account=account, prefix=f"alert:{alert_id}:", limit=limit)
    return web.json_response({"status": "success", "checks": rows, "notifications": sent})


_TAGS = ("Alerts",)
ROUTES = [
    Route("POST", "/alerts", create, TOKEN, name="alerts_create", tags=_TAGS,
          summary="Create an alert on a trends series, a metric, a web stat, a funnel's conversion, or a traffic "
                  "spike/drop rule"),
    Route("GET", "/alerts", list_, TOKEN, name="alerts_list", tags=_TAGS, summary="List alerts with their state"),
    Route("GET", r"/alerts/{id:\d+}", get, TOKEN, name="alerts_get", tags=_TAGS, summary="One alert"),
    Route("PATCH", r"/alerts/{id:\d+}", update, TOKEN, name="alerts_update", tags=_TAGS,
          summary="Change some fields of an alert (nested objects are replaced whole)"),
    Route("DELETE", r"/alerts/{id:\d+}", delete, TOKEN, name="alerts_delete", tags=_TAGS,
          summary="Delete an alert and its history"),
    Route("GET", r"/alerts/{id:\d+}/checks", checks, TOKEN, name="alerts_checks", tags=_TAGS,
          summary="The check history (newest first) and the chat/email notifications"),
]
