"""Scheduled report subscriptions under /reports (secret token; per account): a daily, weekly or monthly summary
of a site and the account's product side, sent by the leader (pipeline/report_jobs.py) to email and chat
recipients; ``POST /reports/{id}/send`` queues the last complete period's report now. Bodies: model/report_spec.py."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from ..config import Settings
from ..model.alert_spec import SpecError
from ..model.report_spec import ReportBody, decode_report
from ..pipeline.report_jobs import queue_now, report_of
from ..store import saved_funnels
from ..store import scheduled_reports as reports
from ..web import params
from ..web.appkeys import SETTINGS
from ..web.errors import ApiError
from ..web.pools import writing
from ..web.routing import TOKEN, Route

MAX_REPORTS_PER_ACCOUNT = 100


def _body(data: dict[str, Any], settings: Settings) -> ReportBody:
    try:
        body = decode_report(data)
    except SpecError as exc:
        raise ApiError(400, str(exc)) from None
    channels = body.channels
    if message := settings.unconfigured(channels.telegram_chat, channels.discord_channel, channels.emails):
        raise ApiError(400, message)
    return body


def _spec(body: ReportBody) -> dict[str, Any]:
    spec = msgspec.to_builtins(body)
    spec.pop("name", None)
    spec.pop("enabled", None)
    return dict(spec)


def _view(row: dict[str, Any]) -> dict[str, Any]:
    body = report_of(row)
    fields = {name: msgspec.to_builtins(getattr(body, name)) for name in body.__struct_fields__}
    return {**fields, **{k: v for k, v in row.items() if k != "spec"}}


async def _check_funnel(conn: Any, account: str, body: ReportBody) -> None:
    if body.funnel_id is not None and await saved_funnels.get_funnel(conn, account, body.funnel_id) is None:
        raise ApiError(400, f"Unknown funnel_id: the account has no saved funnel {body.funnel_id}")


def _report_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if len(text) > 18:
        raise ApiError(404, "Report not found")
    return int(text)


async def create(request: web.Request) -> web.Response:
    account = params.account(request)
    body = _body(await params.json_body(request), request.app[SETTINGS])
    async with writing(request) as conn:
        await _check_funnel(conn, account, body)
        if await reports.count_reports(conn, account) >= MAX_REPORTS_PER_ACCOUNT:
            raise ApiError(409, f"An account has at most {MAX_REPORTS_PER_ACCOUNT} reports")
        row = await reports.create_report(conn, account=account, name=body.name.strip(), spec=_spec(body),
                                          enabled=body.enabled)
    return web.json_response({"status": "success", "report": _view(row)}, status=201)


async def list_(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        rows = await reports.list_reports(conn, params.account(request))
    return web.json_response({"status": "success", "reports": [_view(row) for row in rows]})


async def get(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        row = await reports.get_report(conn, params.account(request), _report_id(request))
    if row is None:
        raise ApiError(404, "Report not found")
    return web.json_response({"status": "success", "report": _view(row)})


async def update(request: web.Request) -> web.Response:
    """Change some top-level fields (channels is replaced whole); checked as a whole again."""
    account = params.account(request)
    report_id = _report_id(request)
    changes = await params.json_body(request)
    async with writing(request) as conn:
        current = await reports.get_report(conn, account, report_id)
        if current is None:
            raise ApiError(404, "Report not found")
        body = _body({**msgspec.to_builtins(report_of(current)), **changes}, request.app[SETTINGS])
        await _check_funnel(conn, account, body)
        row = await reports.update_report(conn, report_id, account=account, name=body.name.strip(),
                                          spec=_spec(body), enabled=body.enabled)
    if row is None:
        raise ApiError(404, "Report not found")
    return web.json_response({"status": "success", "report": _view(row)})


async def delete(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        deleted = await reports.delete_report(conn, params.account(request), _report_id(request))
    if not deleted:
        raise ApiError(404, "Report not found")
    return web.json_response({"status": "success", "deleted": True})


async def send(request: web.Request) -> web.Response:
    """Queue the report of the last complete period now (whatever was sent before): the leader sends it within
    ANALYTICS_ALERT_CHECK_INTERVAL. 202 with the number of messages queued."""
    account = params.account(request)
    report_id = _report_id(request)
    async with writing(request) as conn:
        row = await reports.get_report(conn, account, report_id)
        if row is None:
            raise ApiError(404, "Report not found")
        queued = await queue_now(conn, {**row, "account": account}, request.app[SETTINGS])
    return web.json_response({"status": "success", "queued": queued}, status=202)


_TAGS = ("Reports",)
ROUTES = [
    Route("POST", "/reports", create, TOKEN, name="reports_create", tags=_TAGS,
          summary="Subscribe email and chat recipients to a daily, weekly or monthly report"),
    Route("GET", "/reports", list_, TOKEN, name="reports_list", tags=_TAGS, summary="List report subscriptions"),
    Route("GET", r"/reports/{id:\d+}", get, TOKEN, name="reports_get", tags=_TAGS, summary="One report subscription"),
    Route("PATCH", r"/reports/{id:\d+}", update, TOKEN, name="reports_update", tags=_TAGS,
          summary="Change some fields of a report subscription"),
    Route("DELETE", r"/reports/{id:\d+}", delete, TOKEN, name="reports_delete", tags=_TAGS,
          summary="Delete a report subscription"),
    Route("POST", r"/reports/{id:\d+}/send", send, TOKEN, name="reports_send", tags=_TAGS,
          summary="Send the last complete period's report now (queued for the leader's sender)"),
]
