"""The JSON object body of an ingest request, read once (the access middleware may read it for ``writeKey``)."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from aiohttp import web

from .errors import ApiError
from .guards import check_depth

__all__ = ["MAX_BODY_BYTES", "decode_json", "read_json_body", "read_raw_body"]

MAX_BODY_BYTES = 500 * 1024
# The parsed body, kept on the request so the handler does not parse it a second time.
BODY: web.RequestKey[dict[str, Any]] = web.RequestKey("json_body", dict)
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


def decode_json(raw: bytes) -> Any:
    """``raw`` as JSON (strict: invalid UTF-8, unpaired surrogates and nesting over 1024 are 400s; nesting past the
    guard's depth too), NUL characters removed from its strings."""
    if not raw.strip():
        raise ApiError(400, "Request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)  # strict: invalid UTF-8, unpaired surrogates and nesting over 1024 are errors
    except orjson.JSONDecodeError:
        if _SURROGATE_ESCAPE.search(raw) and _parses_loosely(raw):
            raise ApiError(400, "Invalid JSON body: a \\u escape is an unpaired surrogate") from None
        raise ApiError(400, "Invalid JSON body") from None
    check_depth(raw, body)
    if _NUL_ESCAPE in raw:
        body = _without_nul(body)
    return body


async def read_raw_body(request: web.Request) -> bytes:
    """The request's bytes (decoded from its Content-Encoding by aiohttp), at most MAX_BODY_BYTES, else a 413."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "Request body exceeds 500 KB") from None
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "Request body exceeds 500 KB")
    return raw


async def read_json_body(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object (any content type: beacons send text/plain), else a 4xx."""
    if BODY in request:
        return request[BODY]
    body = decode_json(await read_raw_body(request))
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    request[BODY] = body
    return body
