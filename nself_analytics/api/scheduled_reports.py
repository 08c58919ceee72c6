"""Scheduled report subscriptions under /reports (secret token; per account): a daily, weekly or monthly summary
of a site and the account's product side, sent by the leader (pipeline/report_jobs.py) to email and chat
recipients; ``POST /reports/{id}/send`` queues the last complete period's report now. Bodies: model/report_spec.py;
the CRUD routes are api/saved.py's, declared by ``KIND``."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from aiohttp import web

from ..model.report_spec import ReportBody, decode_report
from ..pipeline.report_jobs import queue_now, report_of
from ..store import saved_funnels
from ..store import scheduled_reports as reports
from ..web import params
from ..web.appkeys import SETTINGS
from ..web.errors import ApiError
from ..web.pools import writing
from ..web.routing import TOKEN, Route
from .saved import ObjectId, SavedKind, object_id

__all__ = ["KIND", "MAX_REPORTS_PER_ACCOUNT", "ROUTES"]

MAX_REPORTS_PER_ACCOUNT = 100


class ReportView(ReportBody, kw_only=True, omit_defaults=False):
    """A report subscription: its body (every field) and when it was last sent."""

    id: int
    last_period_start: str | None
    last_sent_at: str | None
    created_at: str | None
    updated_at: str | None


class ReportAnswer(msgspec.Struct, kw_only=True):
    status: Literal["success"] = "success"
    report: ReportView


class ReportList(msgspec.Struct, kw_only=True):
    status: Literal["success"] = "success"
    reports: list[ReportView]


class Queued(msgspec.Struct, kw_only=True):
    status: Literal["success"] = "success"
    queued: int  # messages queued for the leader's sender


async def _check_funnel(conn: Any, account: str, body: ReportBody) -> None:
    if body.funnel_id is not None and await saved_funnels.get_funnel(conn, account, body.funnel_id) is None:
        raise ApiError(400, f"Unknown funnel_id: the account has no saved funnel {body.funnel_id}")


KIND: SavedKind[ReportBody] = SavedKind(
    noun="report", plural="reports", table=reports.REPORTS, body=ReportBody, decode=decode_report,
    stored=report_of, view=ReportView, one=ReportAnswer, many=ReportList, check=_check_funnel,
    cap=MAX_REPORTS_PER_ACCOUNT,
    summaries={"create": "Subscribe email and chat recipients to a daily, weekly or monthly report",
               "list": "List report subscriptions", "get": "One report subscription",
               "update": "Change some fields of a report subscription", "delete": "Delete a report subscription"})


async def send(request: web.Request, ids: ObjectId) -> Queued:
    """Queue the report of the last complete period now (whatever was sent before): the leader sends it within
    ANALYTICS_ALERT_CHECK_INTERVAL. 202 with the number of messages queued."""
    account = params.account(request)
    async with writing(request) as conn:
        row = await KIND.get_row(conn, account, object_id(ids, "report"))
        queued = await queue_now(conn, {**row, "account": account}, request.app[SETTINGS])
    return Queued(queued=queued)


ROUTES = [
    *KIND.routes(),
    Route("POST", r"/reports/{id:\d+}/send", send, TOKEN, name="reports_send", tags=("Reports",), params=ObjectId,
          answer=Queued, status=202, errors=((404, "No such report in the account"),),
          summary="Send the last complete period's report now (queued for the leader's sender)"),
]
