"""Ingest: POST /track, /batch, /identify, /page and the Segment tracking API under /v1/.

Authenticated by a write key (Bearer, HTTP Basic user name, or ``writeKey`` in the body, since
navigator.sendBeacon can send no headers). A 202 means the messages are in the Redis stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from .. import params
from ..auth import bearer_or_basic, write_key_allowed
from ..cors import preflight
from ..errors import ApiError
from ..ingest import Ingestor, RequestMeta
from ..keys import PRODUCER, REDIS, SETTINGS
from ..messages import KINDS, MAX_BATCH, MessageError, Normalized, normalize
from ..queue import EnqueueResult, QueueFull, QueueUnavailable

__all__ = ["MAX_BODY_BYTES", "client_ip", "read_json_body", "routes"]

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.Response]]

MAX_BODY_BYTES = 500 * 1024
RETRY_AFTER_SECONDS = "2"

SINGLE = {
    "/track": "track", "/identify": "identify", "/page": "page",
    "/v1/track": "track", "/v1/identify": "identify", "/v1/page": "page",
    "/v1/screen": "screen", "/v1/group": "group", "/v1/alias": "alias",
}
BATCH = ("/batch", "/v1/batch", "/v1/import")
# A \uD800-\uDFFF escape: JSON allows it, but an unpaired one is no text (it cannot be encoded as
# UTF-8 for Redis or Postgres). Only bodies holding such an escape pay for the full check.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# PostgreSQL text and jsonb cannot hold NUL: one such string would fail the drain's whole batch.
_NUL_ESCAPE = b"\\u0000"


def _parses_loosely(raw: bytes) -> bool:
    """Whether the stdlib parser (which lets unpaired surrogates through) accepts ``raw``: then that was the fault."""
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


def _without_nul(value: Any) -> Any:
    """``value`` with every NUL character removed from its strings (keys included)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


async def read_json_body(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object (any content type: beacons send text/plain), else a 4xx."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "Request body exceeds 500 KB") from None
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "Request body exceeds 500 KB")
    if not raw.strip():
        raise ApiError(400, "Request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)  # strict: invalid UTF-8, unpaired surrogates and nesting over 1024 are errors
    except orjson.JSONDecodeError:
        if _SURROGATE_ESCAPE.search(raw) and _parses_loosely(raw):
            raise ApiError(400, "Invalid JSON body: a \\u escape is an unpaired surrogate") from None
        raise ApiError(400, "Invalid JSON body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    if _NUL_ESCAPE in raw:
        body = _without_nul(body)
    return body


def client_ip(request: web.Request) -> str | None:
    """The client's address: the first X-Forwarded-For entry (behind the nself proxy), else the peer."""
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        return forwarded.split(",")[0].strip() or None
    return request.headers.get("X-Real-IP") or request.remote


async def _authorized_body(request: web.Request) -> dict[str, Any]:
    header_key = bearer_or_basic(request)
    if header_key is not None and not write_key_allowed(request, header_key):
        raise ApiError(401, "Invalid write key")
    body = await read_json_body(request)
    if header_key is None:
        body_key = body.get("writeKey") or body.get("write_key")
        if not body_key:
            raise ApiError(401, "Missing write key: send Authorization: Bearer <write key> or writeKey in the body")
        if not isinstance(body_key, str) or not write_key_allowed(request, body_key):
            raise ApiError(401, "Invalid write key")
    return body


def _meta(request: web.Request) -> RequestMeta:
    return RequestMeta(received_at=datetime.now(UTC), ip=client_ip(request),
                       user_agent=request.headers.get("User-Agent"))


async def enqueue(request: web.Request, items: list[Normalized], meta: RequestMeta) -> EnqueueResult:
    """Hand validated messages to the queue; map a full or unreachable queue to 503 + Retry-After."""
    app = request.config_dict
    ingestor = Ingestor(app[PRODUCER], app[REDIS], app[SETTINGS])
    try:
        return await ingestor.accept(items, meta)
    except QueueFull:
        raise ApiError(503, "Ingest queue is full; retry later", headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
    except QueueUnavailable:
        raise ApiError(503, "Ingest queue is unavailable; retry later",
                       headers={"Retry-After": RETRY_AFTER_SECONDS}) from None


async def single(request: web.Request, kind: str) -> web.Response:
    body = await _authorized_body(request)
    meta = _meta(request)
    try:
        item = normalize(body, kind, meta.received_at, source_account_id=params.account(request))
    except MessageError as exc:
        raise ApiError(400, str(exc)) from None
    result = await enqueue(request, [item], meta)
    return web.json_response({"status": "success", "message_id": item.message_id,
                              "duplicate": bool(result.duplicates), "warnings": item.warnings}, status=202)


async def batch(request: web.Request) -> web.Response:
    body = await _authorized_body(request)
    messages = body.get("batch")
    if not isinstance(messages, list):
        raise ApiError(400, "batch must be an array of messages")
    if not messages:
        raise ApiError(400, "batch must hold at least one message")
    if len(messages) > MAX_BATCH:
        raise ApiError(400, f"batch holds {len(messages)} messages; at most {MAX_BATCH} are allowed")
    shared_context = body.get("context") if isinstance(body.get("context"), dict) else {}
    meta = _meta(request)
    account = params.account(request)
    items: list[Normalized] = []
    for index, message in enumerate(messages):
        try:
            if not isinstance(message, dict):
                raise MessageError("each message must be a JSON object")
            kind = message.get("type")
            if kind not in KINDS:
                raise MessageError(f"type must be one of {', '.join(KINDS)}")
            if shared_context and isinstance(message.get("context", {}), dict):
                message = {**message, "context": {**shared_context, **(message.get("context") or {})}}
            items.append(normalize(message, kind, meta.received_at, sent_at=body.get("sentAt"),
                                   source_account_id=account))
        except MessageError as exc:
            raise ApiError(400, f"batch[{index}]: {exc}", index=index) from None
    result = await enqueue(request, items, meta)
    warnings = [{"index": i, "message": w} for i, item in enumerate(items) for w in item.warnings]
    return web.json_response({"status": "success", "accepted": len(items), "duplicates": result.duplicates,
                              "message_ids": [item.message_id for item in items], "warnings": warnings},
                             status=202)


def _single_handler(kind: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return await single(request, kind)

    return handler


for _path, _kind in SINGLE.items():
    routes.post(_path, name="ingest." + _path.strip("/").replace("/", "_"))(_single_handler(_kind))
    routes.route("OPTIONS", _path, name="ingest.options." + _path.strip("/").replace("/", "_"))(preflight)
for _path in BATCH:
    routes.post(_path, name="ingest." + _path.strip("/").replace("/", "_"))(batch)
    routes.route("OPTIONS", _path, name="ingest.options." + _path.strip("/").replace("/", "_"))(preflight)
