"""The OpenAPI 3.1 description of the service, built for the instance that serves it.

``OPERATIONS`` describes every operation, keyed by (method, path) as aiohttp registers it under the
mount (``/track``, ``/funnels/{id}``). :func:`document` keeps only the operations the running app
really routes, and names the instance's own URL as the server, so the document never promises a
route that is not there (tests/test_openapi.py fails when a route has no description).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from .. import __version__
from ..ingest.redis_keys import DEDUPE_TTL_SECONDS
from .openapi_admin import admin_ops
from .openapi_parts import (
    ACCOUNT_HEADER,
    ERRORS,
    INGEST_ERRORS,
    PUBLIC,
    SECRET,
    SEGMENT_RESPONSES,
    WRITE,
    Op,
    _body,
    _error,
    _json,
    _op,
    _query,
)
from .openapi_product import (
    _WEBHOOK_EVENTS,
    _explorer_ops,
    _product_ops,
    _webhook_ops,
)
from .openapi_schemas import SCHEMAS, STATS_ROWS, obj, ref

__all__ = ["OPERATIONS", "document", "routed_operations"]

# --- ingest -----------------------------------------------------------------------------------

# analytics.js (@segment/analytics-next) posts each call to <apiHost>/<first letter of its type>, batches to /b
SEGMENT_SHORT = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias"}


def _ingest_ops() -> dict[tuple[str, str], Op]:
    ops: dict[tuple[str, str], Op] = {}
    singles = {"track": ("Track", "Record one event"), "identify": ("Identify", "Set or update a user's traits"),
               "page": ("Page", "Record a page view (URL, referrer)")}
    segment = {"screen": ("Screen", "Record a mobile screen view"), "group": ("Group", "Associate a user with a group"),
               "alias": ("Alias", "Link a previous id to a user")}
    kinds = {**singles, **segment}
    accepted = {"202": _json(ref("Accepted"), "Queued for storage"), **INGEST_ERRORS}
    batch_accepted = {"202": _json(ref("BatchAccepted"), "All messages queued"), **INGEST_ERRORS}
    paths = [(f"/v1/{kind}", kind) for kind in kinds] + [(f"/{kind}", kind) for kind in singles]
    paths += [(f"/v1/{letter}", kind) for letter, kind in SEGMENT_SHORT.items()]
    for path, kind in paths:
        schema, summary = kinds[kind]
        segment_api = path.startswith("/v1/")
        op_id = ("segment_" if segment_api else "") + kind + ("_short" if len(path) == 5 else "")
        ops[("POST", path)] = _op(
            "Segment API" if segment_api else "Ingest", summary, SEGMENT_RESPONSES if segment_api else accepted,
            security=WRITE, op_id=op_id,
            description="Authenticated by a write key (Bearer, HTTP Basic user name, or `writeKey` in the body)."
                        + (" Segment's tracking API: answers 200 `{\"success\": true}`." if segment_api else ""),
            body=_body(ref(schema), f"One {kind} message", any_type=True), parameters=[ACCOUNT_HEADER])
    for path, op_id in (("/batch", "batch"), ("/v1/batch", "segment_batch"), ("/v1/import", "segment_import"),
                        ("/v1/b", "segment_batch_short")):
        segment_api = path.startswith("/v1/")
        ops[("POST", path)] = _op(
            "Segment API" if segment_api else "Ingest", "Record up to 100 messages at once",
            SEGMENT_RESPONSES if segment_api else batch_accepted, security=WRITE, op_id=op_id,
            body=_body(ref("Batch"), "A batch", any_type=True), parameters=[ACCOUNT_HEADER],
            description="All messages are validated first: one bad message rejects the batch (400 with its index).")
    for path in [p for (_m, p) in list(ops)] + ["/hit"]:
        ops[("OPTIONS", path)] = _op(
            "Segment API" if path.startswith("/v1/") else "Ingest" if path != "/hit" else "Web analytics",
            f"CORS preflight of {path}", {"204": {"description": "CORS headers (any origin)"}}, security=PUBLIC,
            op_id="preflight_" + path.strip("/").replace("/", "_"))
    return ops


# --- web analytics ----------------------------------------------------------------------------

STATS_PARAMS = [
    _query("site", "The site: the hostname the beacon reports (location.hostname or data-site)",
           {"type": "string", "minLength": 1, "maxLength": 253, "pattern": "^[A-Za-z0-9_.:\\[\\]-]+$"},
           required=True),
    _query("start", "Range start, Unix seconds (default: end - 30 days)",
           {"type": "integer", "minimum": 0, "maximum": 253402300799}),
    _query("end", "Range end (exclusive), Unix seconds (default: now)",
           {"type": "integer", "minimum": 0, "maximum": 253402300799}),
    _query("limit", "Rows of a top list", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}),
    _query("include_bots", "Count page views marked as bot traffic", {"type": "boolean", "default": False}),
    _query("path", "Only page views of this path", {"type": "string", "maxLength": 1024}),
    _query("referrer", "Only page views referred by this domain (www. ignored)", {"type": "string", "maxLength": 253}),
    _query("country", "Only page views from this country (ISO 3166 alpha-2)",
           {"type": "string", "pattern": "^[A-Za-z]{2}$"}),
    _query("device", "Only page views from this kind of device",
           {"type": "string", "enum": ["mobile", "tablet", "desktop"]}),
    _query("browser", "Only page views from this browser (as /api/browsers names it)",
           {"type": "string", "maxLength": 100}),
    _query("os", "Only page views from this operating system (as /api/os names it)",
           {"type": "string", "maxLength": 100}),
    *[_query(f"utm_{k}", f"Only page views carrying this utm_{k}", {"type": "string", "maxLength": 200})
      for k in ("source", "medium", "campaign", "term", "content")],
]
STATS_SUMMARIES = {
    "pageviews": "Page views, sessions and visitors (a visitor: user id, anonymous id, else the day's IP hash)",
    "pages": "Top pages", "referrers": "Top referring domains",
    "timeseries": "Page views and sessions per day (UTC), every day of the range",
    "devices": "Page views by device (mobile, tablet, desktop)", "languages": "Page views by browser language",
    "browsers": "Page views by browser", "os": "Page views by operating system", "countries": "Page views by country",
    "hostnames": "Page views by hostname", "active": "Sessions active in the last 5 minutes",
    "entry-pages": "Pages sessions start on", "exit-pages": "Pages sessions end on",
    "bounce-rates": "Per entry page: sessions with a single page view", "peak-hours": "Page views per hour (UTC)",
    "screen-widths": "Page views by screen width bucket",
    "session-duration": "Average and median seconds between a session's first and last page view",
}


def _web_ops() -> dict[tuple[str, str], Op]:
    ops: dict[tuple[str, str], Op] = {
        ("GET", "/a.js"): _op(
            "Web analytics", "The page-view beacon script",
            {"200": {"description": "JavaScript, under 2 KB; cacheable for an hour",
                     "content": {"application/javascript": {"schema": {"type": "string"}}}},
             "304": {"description": "Not modified (If-None-Match)"}},
            security=PUBLIC, op_id="beacon",
            description='Add `<script async src="https://HOST/analytics/a.js"></script>` to a page: no '
                        "configuration, no cookies; single-page apps are followed."),
        ("GET", "/sdk/analytics.js"): _op(
            "Web analytics", "The browser SDK (script-tag bundle)",
            {"200": {"description": "JavaScript (window.NselfAnalytics); cacheable for an hour",
                     "content": {"application/javascript": {"schema": {"type": "string"}}}},
             "304": {"description": "Not modified (If-None-Match)"}},
            security=PUBLIC, op_id="sdk_script",
            description="track, identify, page, screen, group and alias from a web page, sent to `/batch` with a "
                        "write key. Load it with the async snippet of sdk/js/README.md, or "
                        '`<script src="https://HOST/analytics/sdk/analytics.js" data-write-key="wk_..."></script>`.'),
        ("POST", "/hit"): _op(
            "Web analytics", "Record a page view sent by the beacon",
            {"202": _json(ref("Ok"), "Queued"), **INGEST_ERRORS,
             "403": _error("The site is not in ANALYTICS_SITES"),
             "429": {**_error("Rate limit of the client IP or of the site (token buckets): retry after Retry-After"),
                     "headers": {"Retry-After": {"schema": {"type": "string"}, "description": "seconds to wait"}}}},
            security=PUBLIC, op_id="hit",
            description="Public (no key) and CORS `*`. The body is JSON whatever the content type. Device, browser, "
                        "OS and country come from the request; bots and sessions sending over 60 hits a minute are "
                        "kept but marked. Guarded by ANALYTICS_SITES (403) and per-IP (default 300/m) and per-site "
                        "(default 6000/m) token buckets (429 + Retry-After).",
            body=_body(ref("Hit"), "A page view", any_type=True)),
    }
    for name, summary in STATS_SUMMARIES.items():
        ops[("GET", f"/api/{name}")] = _op(
            "Web analytics", summary,
            {"200": _json(obj({"status": {"const": "success"}, "data": STATS_ROWS[name], "meta": ref("StatsMeta")},
                              required=["status", "data", "meta"])),
             **ERRORS},
            security=SECRET, op_id="stats_" + name.replace("-", "_"), parameters=STATS_PARAMS,
            description="Bots are left out unless include_bots=true. Filters select page views; every figure is "
                        "computed from the selected page views." + (
                            " The range parameters are ignored: the window is the last 5 minutes."
                            if name == "active" else ""))
    return ops


def _campaign_ops() -> dict[tuple[str, str], Op]:
    ops: dict[tuple[str, str], Op] = {}
    for name in ("source", "medium", "campaign", "term", "content"):
        row = obj({f"utm_{name}": {"type": "string"}, "pageviews": {"type": "integer", "minimum": 0},
                   "sessions": {"type": "integer", "minimum": 0}}, required=[f"utm_{name}", "pageviews", "sessions"])
        ops[("GET", f"/api/utm-{name}s")] = _op(
            "Web analytics", f"Page views by utm_{name} (the page's URL parameter)",
            {"200": _json(obj({"status": {"const": "success"}, "data": {"type": "array", "items": row},
                               "meta": ref("StatsMeta")}, required=["status", "data", "meta"])), **ERRORS},
            security=SECRET, op_id=f"stats_utm_{name}s", parameters=STATS_PARAMS,
            description="Bots are left out unless include_bots=true; the filters select page views.")
    goal = obj({"goal": {"type": "string"}, "kind": {"enum": ["path", "event"]}, "value": {"type": "string"},
                "conversions": {"type": "integer", "minimum": 0}, "visitors": {"type": "integer", "minimum": 0},
                "conversion_rate": {"type": "number", "minimum": 0}},
               required=["goal", "kind", "value", "conversions", "visitors", "conversion_rate"])
    ops[("GET", "/api/goals")] = _op(
        "Web analytics", "Goal conversions: page views of a path or events of a name, and the visitors converted",
        {"200": _json(obj({"status": {"const": "success"}, "data": {"type": "array", "items": goal},
                           "meta": obj({"site": {"type": "string"}, "start": {"type": "integer"},
                                        "end": {"type": "integer"}, "visitors": {"type": "integer"}})},
                          required=["status", "data", "meta"])), **ERRORS},
        security=SECRET, op_id="stats_goals",
        description="conversion_rate: converted visitors / the site's visitors of the range. A path goal counts "
                    "the site's page views of that path (filters applied); an event goal counts events of that "
                    "name that carry the site (sent from its pages, or naming it); an event without a "
                    "site (a back end's) is not counted.",
        parameters=[_query("goal", "path:/pricing or event:signup; repeat for more (at most 20)",
                           {"type": "string", "pattern": "^(path:/|event:.)", "maxLength": 1030},
                           required=True), *STATS_PARAMS])
    latest = obj({"ts": {"type": "string", "format": "date-time"}, "path": {"type": ["string", "null"]},
                  "referrer": {"type": ["string", "null"]}, "country": {"type": ["string", "null"]},
                  "device": {"type": ["string", "null"]}, "browser": {"type": ["string", "null"]}})
    ops[("GET", "/api/realtime")] = _op(
        "Web analytics", "Visitors and page views of the last 5 minutes, and the latest page views",
        {"200": _json(obj({"status": {"const": "success"}, "data": obj({
            "visitors": {"type": "integer", "minimum": 0}, "pageviews": {"type": "integer", "minimum": 0},
            "latest": {"type": "array", "items": latest, "maxItems": 100}},
            required=["visitors", "pageviews", "latest"]),
            "meta": ref("StatsMeta")}, required=["status", "data", "meta"])), **ERRORS},
        security=SECRET, op_id="stats_realtime", parameters=STATS_PARAMS,
        description="The range parameters and filters are ignored: the window is the last 5 minutes; `limit` "
                    "(at most 100) bounds the latest page views, newest first.")
    return ops


# --- service and documentation pages -----------------------------------------------------------

def _html(summary: str, op_id: str, description: str = "") -> Op:
    return _op("Service", summary, {"200": {"description": "HTML page", "content": {"text/html": {
        "schema": {"type": "string"}}}}}, security=PUBLIC, op_id=op_id, description=description)


def _service_ops() -> dict[tuple[str, str], Op]:
    return {
        ("GET", "/health"): _op(
            "Service", "Up/down of Postgres and Redis; with the secret token also version, queue depth, "
            "aggregate lag and store errors",
            {"200": _json(ref("Health")), "503": _json(ref("Health"), "A store is unreachable")},
            security=PUBLIC, op_id="health"),
        ("GET", "/openapi.json"): _op(
            "Service", "This document", {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            security=PUBLIC, op_id="openapi"),
        ("GET", "/docs"): _html("Interactive API explorer", "docs"),
        ("GET", "/dashboard"): _html("Web-analytics and product dashboard", "dashboard",
                                     "A static page: it asks for the site and the secret token and shows nothing "
                                     "without them."),
        ("GET", "/mcp"): _op(
            "Service", "How to connect AI clients: the MCP server (nself-analytics mcp), an OpenAPI bridge, ChatGPT",
            {"200": {"description": "HTML, or JSON with Accept: application/json", "content": {
                "text/html": {"schema": {"type": "string"}}, "application/json": {"schema": ref("McpConfig")}}}},
            security=PUBLIC, op_id="mcp"),
        ("GET", "/static/{path}"): _op(
            "Service", "Files of the dashboard and the explorer",
            {"200": {"description": "The file", "content": {"*/*": {"schema": {"type": "string"}}}},
             "404": _error("No such file")},
            security=PUBLIC, op_id="static",
            parameters=[{"name": "path", "in": "path", "required": True,
                         "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"},
                         "example": "dashboard.js"}]),
    }


OPERATIONS: dict[tuple[str, str], Op] = {**_ingest_ops(), **_web_ops(), **_product_ops(), **_explorer_ops(),
                                         **_campaign_ops(), **_webhook_ops(), **_service_ops(),
                                         **admin_ops()}


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


def routed_operations(routes: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """(method, path) pairs of the app that a document must describe (HEAD rides along with GET)."""
    return {(m, p) for m, p in routes if m not in ("HEAD", "*")}


def document(base_url: str, routes: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The OpenAPI document for the instance at ``base_url`` (its /analytics URL), limited to ``routes``."""
    present = routed_operations(routes)
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), operation in OPERATIONS.items():
        if (method, path) in present:
            paths.setdefault(path, {})[method.lower()] = copy.deepcopy(operation)
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
        "tags": [{"name": t} for t in ("Ingest", "Segment API", "Web analytics", "Funnels", "Retention", "Counters",
                                       "Quotas", "Metrics", "Trends", "Explorer", "People", "Webhooks", "Service")],
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
            "schemas": copy.deepcopy(SCHEMAS),
        },
    }
