"""Webhook subscriptions under /webhooks and their delivery log (secret token; per account)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import web
from yarl import URL

from ..pipeline.webhook_facts import WEBHOOK_EVENTS
from ..store import webhooks
from ..web import params
from ..web.errors import ApiError
from ..web.pools import writing
from ..web.routing import TOKEN, Route

MAX_URL_LENGTH = 2048
MAX_EVENT_NAMES = 100
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 256
MAX_WEBHOOKS_PER_ACCOUNT = 100
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def _url(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "url is required: the http(s) address deliveries are POSTed to")
    value = value.strip()
    if len(value) > MAX_URL_LENGTH:
        raise ApiError(400, f"url is longer than {MAX_URL_LENGTH} characters")
    try:
        url = URL(value)
    except (ValueError, TypeError):
        raise ApiError(400, "url is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ApiError(400, "url must be an absolute http:// or https:// URL")
    if url.user or url.password:
        raise ApiError(400, "url must not carry credentials: the signature authenticates deliveries")
    return value


def _events(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ApiError(400, f"events is required: a list of {', '.join(WEBHOOK_EVENTS)}")
    unknown = [e for e in value if e not in WEBHOOK_EVENTS]
    if unknown:
        raise ApiError(400, f"Unknown event {str(unknown[0])[:64]!r}: use {', '.join(WEBHOOK_EVENTS)}")
    return [e for e in WEBHOOK_EVENTS if e in value]


def _event_names(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, "event_names must be a list of event names")
    if len(value) > MAX_EVENT_NAMES:
        raise ApiError(400, f"event_names lists more than {MAX_EVENT_NAMES} names")
    return sorted({params.event_name(v, "each event name") for v in value})


def _secret(value: object) -> str:
    if not isinstance(value, str) or not MIN_SECRET_LENGTH <= len(value) <= MAX_SECRET_LENGTH:
        raise ApiError(400, f"secret must be a string of {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters")
    return value


def _active(value: object) -> bool:
    if not isinstance(value, bool):
        raise ApiError(400, "active must be true or false")
    return value


def _check_tracked(events: list[str], event_names: list[str]) -> None:
    if "event.tracked" in events and not event_names:
        raise ApiError(400, "event_names is required with event.tracked: the event names to deliver")


VALIDATORS: dict[str, Callable[[object], Any]] = {"url": _url, "events": _events, "event_names": _event_names,
                                                 "secret": _secret, "active": _active}


async def _body(request: web.Request) -> dict[str, Any]:
    body = await params.json_body(request)
    unknown = set(body) - set(VALIDATORS)
    if unknown:
        raise ApiError(400, f"Unknown field {sorted(unknown)[0][:64]!r}")
    return body


def _webhook_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if len(text) > 18:
        raise ApiError(404, "Webhook not found")
    return int(text)


async def create(request: web.Request) -> web.Response:
    """Subscribe a URL to events; the signing secret is returned here (and after a PATCH that sets it) only."""
    account = params.account(request)
    body = await _body(request)
    fields: dict[str, Any] = {"url": _url(body.get("url")), "events": _events(body.get("events")),
                              "event_names": _event_names(body.get("event_names")),
                              "active": _active(body.get("active", True))}
    _check_tracked(fields["events"], fields["event_names"])
    secret = _secret(body["secret"]) if body.get("secret") is not None else "whsec_" + secrets.token_urlsafe(32)
    async with writing(request) as conn:
        if await webhooks.count_webhooks(conn, account) >= MAX_WEBHOOKS_PER_ACCOUNT:
            raise ApiError(409, f"An account has at most {MAX_WEBHOOKS_PER_ACCOUNT} webhooks")
        hook = await webhooks.create_webhook(conn, account=account, secret=secret, **fields)
    return web.json_response({"status": "success", "webhook": {**hook, "secret": secret}}, status=201)


async def list_(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        hooks = await webhooks.list_webhooks(conn, params.account(request))
    return web.json_response({"status": "success", "webhooks": hooks})


async def get(request: web.Request) -> web.Response:
    async with writing(request) as conn:
        hook = await webhooks.get_webhook(conn, params.account(request), _webhook_id(request))
    if hook is None:
        raise ApiError(404, "Webhook not found")
    return web.json_response({"status": "success", "webhook": hook})


async def update(request: web.Request) -> web.Response:
    """Change some of url, events, event_names, secret, active; the rest stays."""
    account = params.account(request)
    webhook_id = _webhook_id(request)
    body = await _body(request)
    changes = {name: VALIDATORS[name](value) for name, value in body.items()}
    async with writing(request) as conn:
        current = await webhooks.get_webhook(conn, account, webhook_id)
        if current is None:
            raise ApiError(404, "Webhook not found")
        _check_tracked(changes.get("events", current["events"]), changes.get("event_names", current["event_names"]))
        hook = await webhooks.update_webhook(conn, webhook_id, account=account, **changes)
    if hook is None:
        raise ApiError(404, "Webhook not found")
    return web.json_response({"status": "success", "webhook": hook})


async def delete(request: web.Request) -> web.Response:
    """Delete a webhook with its delivery log; deliveries not yet sent are dropped."""
    async with writing(request) as conn:
        deleted = await webhooks.delete_webhook(conn, params.account(request), _webhook_id(request))
    if not deleted:
        raise ApiError(404, "Webhook not found")
    return web.json_response({"status": "success", "deleted": True})


async def deliveries(request: web.Request) -> web.Response:
    """The delivery log, newest first: status, attempts, last HTTP status and error, payload."""
    account = params.account(request)
    webhook_id = _webhook_id(request)
    status = request.query.get("status") or None
    if status is not None and status not in DELIVERY_STATUSES:
        raise ApiError(400, f"Invalid status: use one of {', '.join(DELIVERY_STATUSES)}")
    limit = params.integer(request.query, "limit", 100, 1, 1000)
    async with writing(request) as conn:
        if await webhooks.get_webhook(conn, account, webhook_id) is None:
            raise ApiError(404, "Webhook not found")
        rows = await webhooks.list_deliveries(conn, account=account, webhook_id=webhook_id, status=status,
                                             limit=limit)
    return web.json_response({"status": "success", "deliveries": rows})


ROUTES = [
    Route("POST", "/webhooks", create, TOKEN, name="webhooks_create", tags=("Webhooks",),
          summary="Subscribe a URL to quota.exceeded, funnel.completed or event.tracked"),
    Route("GET", "/webhooks", list_, TOKEN, name="webhooks_list", summary="List webhooks", tags=("Webhooks",)),
    Route("GET", r"/webhooks/{id:\d+}", get, TOKEN, name="webhooks_get", summary="One webhook", tags=("Webhooks",)),
    Route("PATCH", r"/webhooks/{id:\d+}", update, TOKEN, name="webhooks_update", tags=("Webhooks",),
          summary="Change some fields of a webhook"),
    Route("DELETE", r"/webhooks/{id:\d+}", delete, TOKEN, name="webhooks_delete", tags=("Webhooks",),
          summary="Delete a webhook and its delivery log"),
    Route("GET", r"/webhooks/{id:\d+}/deliveries", deliveries, TOKEN, name="webhooks_deliveries", tags=("Webhooks",),
          summary="Delivery log, newest first: status, attempts, last error"),
]
