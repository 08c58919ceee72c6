"""The body of a PostHog capture request, unwrapped from its transport encodings, and the key it carries.

PostHog's SDKs send JSON in several wrappings (read from their request code):

- posthog-python and posthog-node: JSON, often with ``Content-Encoding: gzip`` (aiohttp decodes it);
- posthog-js: raw gzip bytes as ``text/plain`` (``compression=gzip-js`` in the query, or, in newer versions,
  nothing: the ``1f 8b`` header tells), a form ``data=<base64>`` (``compression=base64``), a bare base64 body
  from ``navigator.sendBeacon`` (``compression=base64``), plain JSON, and in old versions lz-string (``lz64``).

Every step is bounded: the request by MAX_BODY_BYTES, and what it decompresses to by the same bound (413 past it),
so no wrapping can make the JSON parser see more than a plain body could carry. A body that is not what it claims
is a 400. The unwrapped JSON is kept on the request: the access check reads the key from it, then the handler.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from .body import MAX_BODY_BYTES, decode_json, read_raw_body
from .errors import ApiError
from .lz64 import LzError, decompress_base64

__all__ = ["CAPTURE_PATHS", "CONFIG_PATHS", "FLAGS_PATHS", "POSTHOG_ROUTE_PREFIX", "is_posthog_route", "posthog_key",
           "read_posthog_body"]

# The names of PostHog's routes (api/posthog.py): "ingest." gives them CORS (web/cors.py); the access check reads
# their key from a PostHog body (web/access.py).
POSTHOG_ROUTE_PREFIX = "ingest.posthog."
# PostHog's paths under /analytics (api/posthog.py serves them, web/openapi_dropin.py describes them): /batch and
# /track without the slash are this service's own ingest routes (api/ingest.py), so only /batch/ and /track/ here.
CAPTURE_PATHS = ("/batch/", "/track/", *(p + s for p in ("/capture", "/e", "/i/v0/e", "/engage") for s in ("", "/")))
FLAGS_PATHS = ("/flags", "/flags/", "/decide", "/decide/")
CONFIG_PATHS = ("/array/{token}/config", "/array/{token}/config/")
POSTHOG_BODY: web.RequestKey[Any] = web.RequestKey("posthog_body", object)
GZIP_MAGIC = b"\x1f\x8b"
_FORM_FIELDS = 8  # data, compression, ver, ... a form with more fields is no SDK's
_TOO_LARGE = "Request body exceeds 500 KB once decompressed"


def is_posthog_route(request: web.Request) -> bool:
    """Whether the request was routed to one of PostHog's capture or flags routes."""
    name = request.match_info.route.name
    return bool(name and name.startswith(POSTHOG_ROUTE_PREFIX))


def _gunzip(raw: bytes) -> bytes:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(raw, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise ApiError(400, "Invalid gzip body") from None
    if len(out) > MAX_BODY_BYTES:
        raise ApiError(413, _TOO_LARGE)
    if not decompressor.eof:
        raise ApiError(400, "Invalid gzip body: truncated")
    return out


def _form(raw: bytes) -> dict[str, str]:
    try:
        fields = parse_qs(raw.decode("ascii"), keep_blank_values=True, max_num_fields=_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "Invalid form body") from None
    return {name: values[-1] for name, values in fields.items()}


def _b64(text: str | bytes) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "Invalid base64 body") from None


def _lz64(text: str) -> bytes:
    try:
        return decompress_base64(text.strip(), MAX_BODY_BYTES).encode()
    except LzError as exc:
        if "past" in str(exc):
            raise ApiError(413, _TOO_LARGE) from None
        raise ApiError(400, f"Invalid lz64 body: {exc}") from None
    except UnicodeEncodeError:
        raise ApiError(400, "Invalid lz64 body: an unpaired surrogate") from None


def unwrap(raw: bytes, compression: str, content_type: str) -> bytes:
    """The JSON bytes inside ``raw`` (the body as aiohttp decoded its Content-Encoding)."""
    payload: bytes | str = raw
    if content_type == "application/x-www-form-urlencoded" or raw.startswith(b"data="):
        form = _form(raw)
        if "data" not in form:
            raise ApiError(400, "Form body without data")
        payload = form["data"]
        compression = compression or form.get("compression", "").lower()
    if compression == "lz64":
        text = payload if isinstance(payload, str) else payload.decode("ascii", "replace")
        return _lz64(text)
    if compression == "base64":
        payload = _b64(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    if data[:2] == GZIP_MAGIC:  # gzip-js, or a newer posthog-js that no longer says so
        return _gunzip(data)
    if compression in ("gzip", "gzip-js"):
        raise ApiError(400, "Invalid gzip body: no gzip header")
    return data


async def read_posthog_body(request: web.Request) -> Any:
    """The request's JSON (an object or an array), unwrapped; 400/413 otherwise. Read once per request."""
    if POSTHOG_BODY in request:
        return request[POSTHOG_BODY]
    raw = await read_raw_body(request)
    compression = request.query.get("compression", "").strip().lower()
    body = decode_json(unwrap(raw, compression, request.content_type))
    if not isinstance(body, dict | list):
        raise ApiError(400, "Request body must be a JSON object or array")
    request[POSTHOG_BODY] = body
    return body


def _token_of(event: Any) -> str | None:
    if not isinstance(event, dict):
        return None
    properties = event.get("properties")
    for value in (event.get("api_key"), event.get("token"),
                  properties.get("token") if isinstance(properties, dict) else None):
        if isinstance(value, str) and value:
            return value
    return None


def posthog_key(body: Any) -> str | None:
    """The project key a PostHog body carries: ``api_key``, ``token`` or ``properties.token`` of the body, else of
    its first event (the browser SDK puts it in each event's properties)."""
    if isinstance(body, dict):
        found = _token_of(body)
        events = body.get("batch") if isinstance(body.get("batch"), list) else body.get("data")
    else:
        found, events = None, body
    if found is None and isinstance(events, list) and events:
        found = _token_of(events[0])
    return found
