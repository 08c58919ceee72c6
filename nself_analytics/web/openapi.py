"""The OpenAPI 3.1 description of the service, generated from the route table for the instance that serves it.

:func:`document` walks the app's routes (``api.ROUTES``, web/routing.py): each operation's path, method, tags,
summary, operationId and security come from its :class:`Route`. Its parameters and answer come from the Route's
msgspec types when it declares them (web/openapi_types.py); a route not yet converted takes them from
``DESCRIPTIONS``, hand-written here and in web/openapi_product.py and looked up by the route's (method, path).
A route with neither has no operation, which tests/test_openapi.py refuses.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from .. import __version__
from ..ingest.redis_keys import DEDUPE_TTL_SECONDS
from .access import Access
from .openapi_admin import admin_ops
from .openapi_dropin import dropin_ops
from .openapi_parts import (
    ACCOUNT_HEADER,
    INGEST_ERRORS,
    PUBLIC,
    SECRET,
    SEGMENT_RESPONSES,
    STORE_ERRORS,
    WRITE,
    Op,
    _body,
    _error,
    _json,
    _op,
)
from .openapi_product import (
    _WEBHOOK_EVENTS,
    _product_ops,
    _webhook_ops,
)
from .openapi_schemas import SCHEMAS, ref
from .openapi_types import typed_operation
from .routing import Route

__all__ = ["DESCRIPTIONS", "SECURITY", "document", "operation"]

# --- ingest -----------------------------------------------------------------------------------

# analytics.js (@segment/analytics-next) posts each call to <apiHost>/<first letter of its type>, batches to /b
SEGMENT_SHORT = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias"}


def _ingest_ops() -> dict[tuple[str, str], Op]:
    ops: dict[tuple[str, str], Op] = {}
    singles = {"track": "Track", "identify": "Identify", "page": "Page"}
    kinds = {**singles, "screen": "Screen", "group": "Group", "alias": "Alias"}
    accepted = {"202": _json(ref("Accepted"), "Queued for storage"), **INGEST_ERRORS}
    batch_accepted = {"202": _json(ref("BatchAccepted"), "All messages queued"), **INGEST_ERRORS}
    paths = [(f"/v1/{kind}", kind) for kind in kinds] + [(f"/{kind}", kind) for kind in singles]
    paths += [(f"/v1/{letter}", kind) for letter, kind in SEGMENT_SHORT.items()]
    for path, kind in paths:
        segment_api = path.startswith("/v1/")
        ops[("POST", path)] = _op(
            SEGMENT_RESPONSES if segment_api else accepted,
            description="Authenticated by a write key (Bearer, HTTP Basic user name, or `writeKey` in the body)."
                        + (" Segment's tracking API: answers 200 `{\"success\": true}`." if segment_api else ""),
            body=_body(ref(kinds[kind]), f"One {kind} message", any_type=True), parameters=[ACCOUNT_HEADER])
    for path in ("/batch", "/v1/batch", "/v1/import", "/v1/b"):
        ops[("POST", path)] = _op(
            SEGMENT_RESPONSES if path.startswith("/v1/") else batch_accepted,
            body=_body(ref("Batch"), "A batch", any_type=True), parameters=[ACCOUNT_HEADER],
            description="All messages are validated first: one bad message rejects the batch (400 with its index).")
    for path in [p for (_m, p) in list(ops)] + ["/hit"]:
        ops[("OPTIONS", path)] = _op({"204": {"description": "CORS headers (any origin)"}})
    return ops


# --- web analytics ----------------------------------------------------------------------------

def _web_ops() -> dict[tuple[str, str], Op]:
    ops: dict[tuple[str, str], Op] = {
        ("GET", "/a.js"): _op(
            {"200": {"description": "JavaScript, under 2 KB; cacheable for an hour",
                     "content": {"application/javascript": {"schema": {"type": "string"}}}},
             "304": {"description": "Not modified (If-None-Match)"}},
            description='Add `<script async src="https://HOST/analytics/a.js"></script>` to a page: no '
                        "configuration, no cookies; single-page apps are followed."),
        ("GET", "/sdk/analytics.js"): _op(
            {"200": {"description": "JavaScript (window.NselfAnalytics); cacheable for an hour",
                     "content": {"application/javascript": {"schema": {"type": "string"}}}},
             "304": {"description": "Not modified (If-None-Match)"}},
            description="track, identify, page, screen, group and alias from a web page, sent to `/batch` with a "
                        "write key. Load it with the async snippet of sdk/js/README.md, or "
                        '`<script src="https://HOST/analytics/sdk/analytics.js" data-write-key="wk_..."></script>`.'),
        ("POST", "/hit"): _op(
            {"202": _json(ref("Ok"), "Queued"), **INGEST_ERRORS,
             "403": _error("The site is not in ANALYTICS_SITES"),
             "429": {**_error("Rate limit of the client IP or of the site (token buckets): retry after Retry-After"),
                     "headers": {"Retry-After": {"schema": {"type": "string"}, "description": "seconds to wait"}}}},
            description="Public (no key) and CORS `*`. The body is JSON whatever the content type. Device, browser, "
                        "OS and country come from the request; bots and sessions sending over 60 hits a minute are "
                        "kept but marked. Guarded by ANALYTICS_SITES (403) and per-IP (default 300/m) and per-site "
                        "(default 6000/m) token buckets (429 + Retry-After).",
            body=_body(ref("Hit"), "A page view", any_type=True)),
    }
    return ops


# --- service and documentation pages -----------------------------------------------------------

def _html(description: str = "") -> Op:
    return _op({"200": {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}},
               description=description)


def _service_ops() -> dict[tuple[str, str], Op]:
    return {
        ("GET", "/health"): _op(
            {"200": _json(ref("Health")), "503": _json(ref("Health"), "A store is unreachable")}),
        ("GET", "/openapi.json"): _op({"200": _json({"type": "object"}, "OpenAPI 3.1")}),
        ("GET", "/docs"): _html(),
        ("GET", "/dashboard"): _html("A static page: it asks for the site and the secret token and shows nothing "
                                     "without them."),
        ("GET", "/mcp"): _op(
            {"200": {"description": "HTML, or JSON with Accept: application/json", "content": {
                "text/html": {"schema": {"type": "string"}}, "application/json": {"schema": ref("McpConfig")}}}}),
        ("GET", "/static/{path}"): _op(
            {"200": {"description": "The file", "content": {"*/*": {"schema": {"type": "string"}}}},
             "404": _error("No such file")},
            parameters=[{"name": "path", "in": "path", "required": True,
                         "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"},
                         "example": "dashboard.js"}]),
    }


# The hand-written parameters and answers of the routes not yet converted to typed ones, by (method, path)
DESCRIPTIONS: dict[tuple[str, str], Op] = {**_ingest_ops(), **_web_ops(), **_product_ops(),
                                           **_webhook_ops(), **_service_ops(), **admin_ops(),
                                           **dropin_ops()}
SECURITY: dict[Access, list[Any]] = {Access.PUBLIC: PUBLIC, Access.WRITE: WRITE, Access.TOKEN: SECRET,
                                     Access.SITE: SECRET}
# The document's sections, in this order (a route's tag not listed here is added after them)
TAGS = ("Ingest", "Segment API", "PostHog API", "Web analytics", "Funnels", "Retention", "Counters", "Quotas",
        "Metrics", "Trends", "Explorer", "People", "Event names", "Webhooks", "Alerts", "Reports", "Service")


def _outgoing_webhooks() -> dict[str, Any]:
    """What the service POSTs to a subscribed URL, one entry per event (OpenAPI 3.1 ``webhooks``)."""
    headers = [
        {"name": "X-Nself-Delivery", "in": "header", "required": True, "schema": {"type": "string", "format": "uuid"},
         "description": "The delivery id, the same on every retry: deduplicate on it"},
        {"name": "X-Nself-Event", "in": "header", "required": True, "schema": _WEBHOOK_EVENTS},
        {"name": "X-Nself-Timestamp", "in": "header", "required": True, "schema": {"type": "string"},
         "description": "Send time, Unix seconds: refuse old ones against replay"},
        {"name": "X-Nself-Signature", "in": "header", "required": True, "schema": {"type": "string"},
         "description": "sha256=<hex HMAC-SHA256, keyed with the webhook's secret, of timestamp + '.' + raw body>"},
    ]
    out = {}
    for event in _WEBHOOK_EVENTS["enum"]:
        out[event] = {"post": {
            "summary": f"{event}: sent to each active webhook subscribed to it", "operationId": f"webhook_{event}",
            "tags": ["Webhooks"], "parameters": headers,
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("WebhookBody")}}},
            "responses": {"2XX": {"description": "Delivered; anything else is retried with backoff for 24 h"}}}}
    return out


def operation(route: Route, schemas: dict[str, Any]) -> Op | None:
    """The OpenAPI operation of ``route`` (None when it has neither types nor a hand-written description); the
    schemas its types refer to are added to ``schemas``."""
    if route.params is not None or route.answer is not None or route.body is not None:
        described = typed_operation(route, schemas)
    elif route.key in DESCRIPTIONS:
        described = copy.deepcopy(DESCRIPTIONS[route.key])
    else:
        return None
    responses = described.pop("responses")
    if route.access in (Access.TOKEN, Access.SITE):  # every secret-token call reads or writes a store
        responses = {**STORE_ERRORS, **responses}
    op: Op = {"tags": list(route.tags), "summary": route.summary, "operationId": route.operation_id,
              "security": SECURITY[route.access], "responses": dict(sorted(responses.items()))}
    if route.description:
        described["description"] = route.description
    return {**op, **described}


def document(base_url: str, routes: Iterable[Route]) -> dict[str, Any]:
    """The OpenAPI document for the instance at ``base_url`` (its /analytics URL): one operation per route of
    ``routes`` (the app's table)."""
    paths: dict[str, dict[str, Any]] = {}
    schemas = copy.deepcopy(SCHEMAS)
    tags = list(TAGS)
    for route in routes:
        op = operation(route, schemas)
        if op is not None:
            paths.setdefault(route.key[1], {})[route.method.lower()] = op
            tags += [tag for tag in route.tags if tag not in tags]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "nself-analytics",
            "version": __version__,
            "description": "Self-hosted product and web analytics: event ingest (Segment-compatible), funnels, "
                           "retention, real-time counters, quotas, metrics, sessions, and cookieless web "
                           "analytics. Reads need the secret token; ingest takes a write key (or the token). "
                           "Errors are `{\"status\": \"error\", \"message\": ...}`. Webhooks (below) push "
                           "facts to other systems; the MCP server (`nself-analytics mcp`) and the report bots "
                           "(`nself-analytics bot telegram|discord`) are clients of this API.",
            "license": {"name": "MIT", "identifier": "MIT"},
            # How long a message id is remembered, so a retried message is stored once. The SDKs never
            # send a message later than this after queueing it (their tests compare with this value).
            "x-dedupe-window-seconds": DEDUPE_TTL_SECONDS,
        },
        "servers": [{"url": base_url, "description": "this instance"}],
        "tags": [{"name": t} for t in tags],
        "paths": dict(sorted(paths.items())),
        "webhooks": _outgoing_webhooks(),
        "components": {
            "securitySchemes": {
                "secretToken": {"type": "http", "scheme": "bearer",
                                "description": "The secret token (ANALYTICS_SECRET_TOKEN): every read and admin call"},
                "writeKey": {"type": "http", "scheme": "bearer",
                             "description": "A write key (ANALYTICS_WRITE_KEYS) or the secret token: ingest only"},
                "writeKeyBasic": {"type": "http", "scheme": "basic",
                                  "description": "A write key as the HTTP Basic user name, empty password (Segment)"},
            },
            "schemas": schemas,
        },
    }
