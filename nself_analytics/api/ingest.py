"""Ingest: POST /track, /batch, /identify, /page and the Segment tracking API under /v1/.

Authenticated by a write key (Bearer, HTTP Basic user name, or ``writeKey`` in the body, since
navigator.sendBeacon can send no headers). A 202 means the messages are in the Redis stream; the
Segment routes (``/v1/...``, also the one-letter paths analytics.js posts to) answer as Segment's
tracking API does instead: 200 ``{"success": true}`` (web/segment.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from aiohttp import web

from ..ingest.normalize import MessageError, Normalized, has_timestamp, normalize, to_record, validate_batch
from ..ingest.queue import EnqueueResult
from ..ingest.service import NAME_WARNINGS, Ingestor, RequestMeta
from ..web import params, segment
from ..web.appkeys import PRODUCER, REDIS, SETTINGS
from ..web.auth import grant_of
from ..web.body import read_json_body
from ..web.cors import preflight
from ..web.errors import ApiError
from ..web.routing import PUBLIC, WRITE, Route
from ..web.segment import is_segment_route

__all__ = ["ROUTES", "client_ip", "enqueue"]

Handler = Callable[[web.Request], Awaitable[web.Response]]

SINGLE = {
    "/track": "track", "/identify": "identify", "/page": "page",
    "/v1/track": "track", "/v1/identify": "identify", "/v1/page": "page",
    "/v1/screen": "screen", "/v1/group": "group", "/v1/alias": "alias",
    # analytics.js (@segment/analytics-next) posts each call to <apiHost>/<first letter of its type>
    "/v1/t": "track", "/v1/i": "identify", "/v1/p": "page", "/v1/s": "screen", "/v1/g": "group", "/v1/a": "alias",
}


def client_ip(request: web.Request) -> str | None:
    """The client's address (behind a trusted proxy, its X-Forwarded-For: see web/forwarded.py)."""
    return request.remote


def _meta(request: web.Request) -> RequestMeta:
    grant = grant_of(request)
    return RequestMeta(received_at=datetime.now(UTC), ip=client_ip(request),
                       user_agent=request.headers.get("User-Agent"), public=bool(grant and grant.public))


async def enqueue(request: web.Request, items: list[Normalized], meta: RequestMeta,
                  shared_bytes: int = 0) -> EnqueueResult:
    """Hand validated messages to the ingest service (a full or unreachable queue: 503 + Retry-After, mapped by
    web/errors.py)."""
    app = request.config_dict
    return await Ingestor(app[PRODUCER], app[REDIS], app[SETTINGS]).accept(items, meta, shared_bytes)


async def single(request: web.Request, kind: str) -> web.Response:
    body = await read_json_body(request)  # the write key was checked by the access middleware
    meta = _meta(request)
    try:
        item = normalize(body, kind, meta.received_at, source_account_id=params.account(request),
                         retention_days=request.config_dict[SETTINGS].retention_days)
    except MessageError as exc:
        raise ApiError(400, str(exc)) from None
    result = await enqueue(request, [item], meta)
    if is_segment_route(request):
        return web.json_response(segment.SUCCESS)
    warnings = item.warnings + [NAME_WARNINGS[why] for why in result.name_refusals.values()]
    return web.json_response({"status": "success", "message_id": item.message_id,
                              "duplicate": bool(result.duplicates), "warnings": warnings}, status=202)


async def batch(request: web.Request) -> web.Response:
    body = await read_json_body(request)  # the write key was checked by the access middleware
    meta = _meta(request)
    account = params.account(request)
    try:
        messages = validate_batch(body)
    except MessageError as exc:  # an item's error names its index; the envelope's has none
        where: dict[str, Any] = {} if exc.index is None else {"index": exc.index}
        raise ApiError(400, str(exc), **where) from None
    retention_days = request.config_dict[SETTINGS].retention_days
    # messages with no time of their own keep the request's order: strictly increasing times (1 us apart)
    # ending at the request's time, so a funnel sees signup -> activate -> purchase as sent
    untimed = sum(1 for message in messages.batch if not has_timestamp(message))
    items: list[Normalized] = []
    rank = 0
    for index, message in enumerate(messages.batch):
        implicit = None
        if not has_timestamp(message):
            implicit = meta.received_at - timedelta(microseconds=untimed - 1 - rank)
            rank += 1
        try:
            items.append(to_record(message, meta.received_at, sent_at=messages.sentAt, source_account_id=account,
                                   retention_days=retention_days, implicit_ts=implicit))
        except MessageError as exc:
            raise ApiError(400, f"batch[{index}]: {exc}", index=index) from None
    shared = len(msgspec.json.encode(messages.context)) if messages.context else 0
    result = await enqueue(request, items, meta, shared)
    if is_segment_route(request):
        return web.json_response(segment.SUCCESS)
    warnings: list[dict[str, Any]] = [{"index": i, "message": w} for i, item in enumerate(items) for w in item.warnings]
    warnings += [{"index": i, "message": NAME_WARNINGS[why]} for i, why in result.name_refusals.items()]
    warnings.sort(key=lambda w: w["index"])
    return web.json_response({"status": "success", "accepted": len(items), "duplicates": result.duplicates,
                              "message_ids": [item.message_id for item in items], "warnings": warnings},
                             status=202)


def _single_handler(kind: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return await single(request, kind)

    return handler


# OpenAPI summaries of each kind of message
SUMMARIES = {"track": "Record one event", "identify": "Set or update a user's traits",
             "page": "Record a page view (URL, referrer)", "screen": "Record a mobile screen view",
             "group": "Associate a user with a group", "alias": "Link a previous id to a user"}


def _routes(path: str, handler: Handler, summary: str, op_id: str) -> list[Route]:
    """The POST route of an ingest path and its CORS preflight (Segment's paths: its own tag and answers)."""
    name = path.strip("/").replace("/", "_")
    segment_api = path.startswith("/v1/")
    tags = ("Segment API" if segment_api else "Ingest",)
    return [Route("POST", path, handler, WRITE, name=f"ingest.{name}", tags=tags, summary=summary,
                  op_id=("segment_" if segment_api else "") + op_id),
            Route("OPTIONS", path, preflight, PUBLIC, name=f"ingest.options.{name}", tags=tags,
                  summary=f"CORS preflight of {path}", op_id=f"preflight_{name}", note="CORS preflight")]


ROUTES = [
    *(route for path, kind in SINGLE.items()
      for route in _routes(path, _single_handler(kind), SUMMARIES[kind], kind + ("_short" if len(path) == 5 else ""))),
    *(route for path, op_id in (("/batch", "batch"), ("/v1/batch", "batch"), ("/v1/import", "import"),
                                ("/v1/b", "batch_short"))
      for route in _routes(path, batch, "Record up to 100 messages at once", op_id)),
]
