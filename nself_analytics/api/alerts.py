"""Alerts under /alerts (secret token; per account): a rule on a series the API computes, checked by the leader
(pipeline/alert_checks.py), with its check history and notifications. Bodies: model/alert_spec.py; the CRUD routes
are api/saved.py's, declared by ``KIND``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from ..model.alert_spec import AlertBody, decode_body
from ..pipeline.alert_checks import spec_of
from ..store import alerts, notifications, saved_funnels
from ..web import params
from ..web.errors import ApiError
from ..web.pools import writing
from ..web.routing import TOKEN, Route
from .saved import ObjectId, SavedKind, object_id

__all__ = ["KIND", "MAX_ALERTS_PER_ACCOUNT", "ROUTES"]

MAX_ALERTS_PER_ACCOUNT = 100
MAX_CHECKS = 1000
State = Literal["firing", "not_firing", "errored", "snoozed"]


class AlertView(AlertBody, kw_only=True):
    """An alert: its body (fields at their default are left out) and its state."""

    enabled: bool  # always shown
    id: int
    state: State
    firing: bool
    last_period_start: str | None
    last_checked_at: str | None
    last_value: float | None
    last_error: str | None
    last_notified_at: str | None
    created_at: str | None
    updated_at: str | None


class AlertAnswer(msgspec.Struct, kw_only=True):
    status: Literal["success"] = "success"
    alert: AlertView


class AlertList(msgspec.Struct, kw_only=True):
    status: Literal["success"] = "success"
    alerts: list[AlertView]


class AlertCheck(msgspec.Struct, kw_only=True):
    period_start: str | None
    period_end: str | None
    checked_at: str | None
    state: State
    value: float | None
    current: float | None
    previous: float | None
    error: str | None
    notified: Literal["alert.fired", "alert.resolved"] | None


class SentNotification(msgspec.Struct, kw_only=True):
    id: int
    channel: Literal["telegram", "discord", "email"]
    target: str
    status: Annotated[str, msgspec.Meta(description="pending (to be retried), sent or failed (given up)")]
    attempts: int
    last_error: str | None
    created_at: str | None
    sent_at: str | None


class ChecksParams(ObjectId, kw_only=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_CHECKS, description="At most this many")] = 100


class ChecksAnswer(msgspec.Struct, kw_only=True):
    status: Literal["success"] = "success"
    checks: list[AlertCheck]
    notifications: list[SentNotification]


async def _check_series(conn: Any, account: str, body: AlertBody) -> None:
    """400 for a series that names something the account does not have."""
    if body.series.kind == "funnel" and await saved_funnels.get_funnel(conn, account, body.series.funnel_id or 0) \
            is None:
        raise ApiError(400, f"Unknown series: the account has no saved funnel {body.series.funnel_id}")


KIND: SavedKind[AlertBody] = SavedKind(
    noun="alert", plural="alerts", table=alerts.ALERTS, body=AlertBody, decode=decode_body, stored=spec_of,
    view=AlertView, one=AlertAnswer, many=AlertList, check=_check_series, cap=MAX_ALERTS_PER_ACCOUNT,
    summaries={"create": "Create an alert on a trends series, a metric, a web stat, a funnel's conversion, or a "
                         "traffic spike/drop rule",
               "list": "List alerts with their state", "get": "One alert",
               "update": "Change some fields of an alert (nested objects are replaced whole)",
               "delete": "Delete an alert and its history"})


async def checks(request: web.Request, query: ChecksParams) -> ChecksAnswer:
    """The check history, newest first (kept ANALYTICS_RETENTION_DAYS), and the chat/email notifications sent."""
    account = params.account(request)
    alert_id = object_id(query, "alert")
    async with writing(request) as conn:
        await KIND.get_row(conn, account, alert_id)
        rows = await alerts.list_checks(conn, account, alert_id, query.limit)
        sent = await notifications.list_for(conn, account=account, prefix=f"alert:{alert_id}:", limit=query.limit)
    return msgspec.convert({"checks": rows, "notifications": sent}, ChecksAnswer)


ROUTES = [
    *KIND.routes(),
    Route("GET", r"/alerts/{id:\d+}/checks", checks, TOKEN, name="alerts_checks", tags=("Alerts",),
          params=ChecksParams, answer=ChecksAnswer, errors=((404, "No such alert in the account"),),
          summary="The check history (newest first) and the chat/email notifications"),
]
