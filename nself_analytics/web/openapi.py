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

from ..ingest.redis_keys import DEDUPE_TTL_SECONDS
from .openapi_schemas import SCHEMAS, STATS_ROWS, obj, ref

__all__ = ["OPERATIONS", "document", "routed_operations"]

Op = dict[str, Any]

SECRET = [{"secretToken": []}]
WRITE = [{"writeKey": []}, {"writeKeyBasic": []}, {}]  # {}: the key may come as writeKey in the body
PUBLIC: list[dict[str, list[str]]] = []
ACCOUNT_HEADER = {
    "name": "X-Source-Account-Id", "in": "header", "required": False,
    "description": "Source account (multi-app isolation); `primary` when absent.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"},
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


ERRORS = {
    "400": _error("Invalid request: the message names the parameter or field"),
    "401": _error("Missing or wrong credentials"),
    "403": _error("The credential is bound to another account (X-Source-Account-Id) or, a site token, another site"),
}
NOT_FOUND = {"404": _error("Not found")}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds to wait"}}
# errors.error_middleware: any call that reaches a store may meet one down, or (reads) ANALYTICS_QUERY_TIMEOUT
STORE_ERRORS = {"503": {**_error("PostgreSQL or Redis is unavailable, or the query ran past ANALYTICS_QUERY_TIMEOUT "
                                 "(it was cancelled; narrow the range and retry): retry after Retry-After seconds"),
                        "headers": _RETRY_AFTER}}
BODY_ERRORS = {"413": _error("Request body over 500 KB")}
INGEST_ERRORS = {
    **ERRORS,
    **BODY_ERRORS,
    "503": {**_error("Ingest queue full or unavailable: retry after Retry-After seconds"), "headers": _RETRY_AFTER},
}


def _segment_error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref("SegmentError")}}}


# Segment's tracking API answers (web/segment.py): 200 {"success": true}; errors also carry success and code.
SEGMENT_RESPONSES = {
    "200": {"description": "Accepted: queued for storage",
            "content": {"application/json": {"schema": ref("SegmentSuccess")}}},
    "400": _segment_error("Invalid JSON or an invalid message (in a batch, one bad message rejects the batch)"),
    "401": _segment_error("Missing or wrong write key"),
    "413": _segment_error("Request body over 500 KB"),
    "429": {**_segment_error("Too many requests: retry after Retry-After seconds"), "headers": _RETRY_AFTER},
    "503": {**_segment_error("Ingest queue full or unavailable: retry after Retry-After seconds"),
            "headers": _RETRY_AFTER},
}


def _json(schema: dict[str, Any], description: str = "Success") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def _body(schema: dict[str, Any], description: str, any_type: bool = False) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}}
    if any_type:  # beacons send text/plain; the body is parsed as JSON whatever the type says
        content["text/plain"] = {"schema": {"type": "string", "contentMediaType": "application/json"}}
    return {"required": True, "description": description, "content": content}


def _op(tag: str, summary: str, responses: dict[str, Any], *, security: list[Any], op_id: str,
        description: str = "", parameters: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None) -> Op:
    if security is SECRET:  # every secret-token call reads or writes a store
        responses = {**STORE_ERRORS, **responses}
    if body:
        responses = {**BODY_ERRORS, **responses}
    operation: Op = {"tags": [tag], "summary": summary, "operationId": op_id, "security": security,
                     "responses": dict(sorted(responses.items()))}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = body
    return operation


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
                    "name sent from the site or without a site (SDK events).",
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


# --- product analytics --------------------------------------------------------------------------

DATE = {"type": "string", "format": "date", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"}
DATES = [_query("start_date", "First day (UTC, inclusive); give both dates or neither (the last 30 days, "
                               "today included)", DATE),
         _query("end_date", "Last day (UTC, inclusive); at most 366 days after start_date", DATE)]
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
GROUP_BY = _query("group_by", "Period of a row", {"type": "string", "enum": ["day", "week", "month"], "default": "day"})
USER = _query("user_id", "Only this user's events", {"type": "string", "maxLength": 200})
ID_PATH = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _product_ops() -> dict[tuple[str, str], Op]:
    return {
        ("GET", "/funnel"): _op(
            "Funnels", "Conversion through an ordered sequence of events",
            {"200": _json(ref("FunnelResult")), **ERRORS, **NOT_FOUND}, security=SECRET, op_id="funnel",
            parameters=[
                _query("steps", "Comma-separated event names, 2 to 20 (or funnel_id)", {"type": "string"}),
                _query("funnel_id", "A saved funnel instead of steps", {"type": "integer", "minimum": 1}),
                *DATES,
                _query("window", "Time to complete the funnel from its first step (30s, 15m, 2h, 7d; max 90d)",
                       {"type": "string", "default": "7d"}),
                _query("breakdown", "Split by this event property", {"type": "string", "maxLength": 200}),
                ACCOUNT_HEADER,
            ]),
        ("GET", "/funnels"): _op("Funnels", "List saved funnels", {"200": _json(obj(
            {"status": {"const": "success"}, "funnels": {"type": "array", "items": ref("SavedFunnel")}},
            required=["status", "funnels"])), **ERRORS}, security=SECRET, op_id="funnels_list",
            parameters=[ACCOUNT_HEADER]),
        ("POST", "/funnels"): _op(
            "Funnels", "Save a funnel definition",
            {"201": _json(obj({"status": {"const": "success"}, "funnel": ref("SavedFunnel")},
                              required=["status", "funnel"]), "Created"), **ERRORS},
            security=SECRET, op_id="funnels_create", parameters=[ACCOUNT_HEADER],
            body=_body(ref("FunnelDefinition"), "The definition")),
        ("GET", "/funnels/{id}"): _op(
            "Funnels", "One saved funnel",
            {"200": _json(obj({"status": {"const": "success"}, "funnel": ref("SavedFunnel")},
                              required=["status", "funnel"])), **ERRORS, **NOT_FOUND},
            security=SECRET, op_id="funnels_get", parameters=[ID_PATH, ACCOUNT_HEADER]),
        ("DELETE", "/funnels/{id}"): _op(
            "Funnels", "Delete a saved funnel", {"200": _json(ref("Deleted")), **ERRORS, **NOT_FOUND},
            security=SECRET, op_id="funnels_delete", parameters=[ID_PATH, ACCOUNT_HEADER]),
        ("GET", "/retention"): _op(
            "Retention", "Cohort retention table", {"200": _json(ref("RetentionResult")), **ERRORS},
            security=SECRET, op_id="retention",
            parameters=[*DATES,
                        _query("period", "Cohort period", {"type": "string", "enum": ["day", "week", "month"],
                                                           "default": "week"}),
                        _query("periods", "Columns, period 0 included", {"type": "integer", "minimum": 1,
                                                                          "maximum": 60, "default": 8}),
                        _query("start_event", "Event that puts a user in a cohort (default: any first event)", NAME),
                        _query("return_event", "Event that counts as a return (default: any)", NAME),
                        ACCOUNT_HEADER]),
        ("GET", "/counters/{event}"): _op(
            "Counters", "Real-time count of an event (from Redis)",
            {"200": _json(ref("Counters")), **ERRORS, "409": _error("Per-user counters need quotas enabled")},
            security=SECRET, op_id="counters",
            parameters=[{"name": "event", "in": "path", "required": True, "schema": NAME},
                        _query("user_id", "Count this user's events only (needs ANALYTICS_QUOTA_ENABLED=true)",
                               {"type": "string", "maxLength": 200}),
                        _query("period", "One period only", {"type": "string",
                                                             "enum": ["minute", "hour", "day", "month", "total"]})]),
        ("GET", "/quotas"): _op(
            "Quotas", "List quota rules", {"200": _json(obj(
                {"status": {"const": "success"}, "quotas": {"type": "array", "items": ref("Quota")}},
                required=["status", "quotas"])), **ERRORS},
            security=SECRET, op_id="quotas_list", parameters=[_query("event", "Only rules of this event", NAME),
                                                              ACCOUNT_HEADER]),
        ("POST", "/quotas"): _op(
            "Quotas", "Create a quota rule", {"201": _json(ref("QuotaEnvelope"), "Created"), **ERRORS},
            security=SECRET, op_id="quotas_create", parameters=[ACCOUNT_HEADER],
            body=_body(ref("QuotaRule"), "The rule")),
        ("GET", "/quotas/violations"): _op(
            "Quotas", "First crossing of each rule per user and period, newest first",
            {"200": _json(obj({"status": {"const": "success"},
                               "violations": {"type": "array", "items": ref("QuotaViolation")}},
                              required=["status", "violations"])), **ERRORS},
            security=SECRET, op_id="quotas_violations",
            parameters=[_query("user_id", "Only this user", {"type": "string"}),
                        _query("quota_id", "Only this rule", {"type": "integer", "minimum": 1}),
                        _query("limit", "Rows", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
                        ACCOUNT_HEADER]),
        ("GET", "/quotas/{id}"): _op(
            "Quotas", "One quota rule", {"200": _json(ref("QuotaEnvelope")), **ERRORS, **NOT_FOUND},
            security=SECRET, op_id="quotas_get", parameters=[ID_PATH, ACCOUNT_HEADER]),
        ("PUT", "/quotas/{id}"): _op(
            "Quotas", "Replace a quota rule (takes effect at once)",
            {"200": _json(ref("QuotaEnvelope")), **ERRORS, **NOT_FOUND}, security=SECRET, op_id="quotas_update",
            parameters=[ID_PATH, ACCOUNT_HEADER], body=_body(ref("QuotaRule"), "The rule")),
        ("DELETE", "/quotas/{id}"): _op(
            "Quotas", "Delete a quota rule", {"200": _json(ref("Deleted")), **ERRORS, **NOT_FOUND},
            security=SECRET, op_id="quotas_delete", parameters=[ID_PATH, ACCOUNT_HEADER]),
        ("POST", "/quota/check"): _op(
            "Quotas", "Whether a user may perform an event now",
            {"200": _json(ref("QuotaCheck")), **ERRORS, "409": _error("Quota counting is disabled")},
            security=SECRET, op_id="quota_check", parameters=[ACCOUNT_HEADER],
            body=_body(obj({"user_id": NAME, "event": NAME}, required=["user_id", "event"]), "Who and what")),
        ("GET", "/metrics"): _op(
            "Metrics", "Event counts per day, week or month", {"200": _json(ref("MetricsResult")), **ERRORS},
            security=SECRET, op_id="metrics", parameters=[*DATES, GROUP_BY, USER, ACCOUNT_HEADER, _query(
                "limit", "Event names at most (the most frequent in the range; events_truncated says if more)",
                {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})]),
        ("GET", "/sessions"): _op(
            "Metrics", "Session durations from start/stop event pairs", {"200": _json(ref("SessionsResult")), **ERRORS},
            security=SECRET, op_id="sessions",
            parameters=[*DATES, GROUP_BY, USER,
                        _query("start_event", "Event that starts a session", {**NAME, "default": "play"}),
                        _query("stop_event", "Event that stops a session", {**NAME, "default": "stop"}),
                        ACCOUNT_HEADER]),
    }


def _explorer_ops() -> dict[tuple[str, str], Op]:
    limit = _query("limit", "Rows at most", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
    note = "Bot events are left out."
    return {
        ("GET", "/events"): _op(
            "Explorer", "Event names with counts and first/last seen", {"200": _json(ref("EventNames")), **ERRORS},
            security=SECRET, op_id="events_list", description=note + " Most frequent first.",
            parameters=[*DATES, limit, _query("search", "Only names containing this text (any case)", NAME),
                        ACCOUNT_HEADER]),
        ("GET", "/events/{name}/properties"): _op(
            "Explorer", "Property keys of an event: types and top values with counts",
            {"200": _json(ref("EventProperties")), **ERRORS}, security=SECRET, op_id="event_properties",
            description=note + " The newest 10,000 events of the name in the range are surveyed.",
            parameters=[{"name": "name", "in": "path", "required": True, "schema": NAME}, *DATES, limit,
                        _query("values", "Top values per key", {"type": "integer", "minimum": 0, "maximum": 50,
                                                                 "default": 10}),
                        ACCOUNT_HEADER]),
        ("GET", "/trends"): _op(
            "Trends", "A measure of events per time bucket: one series per event and breakdown value",
            {"200": _json(ref("TrendsResult")), **ERRORS}, security=SECRET, op_id="trends",
            description=note + " Buckets are UTC (ISO weeks start on Monday). With a breakdown, each event's 10 "
                               "values with the most events get a series, the rest one `other` series; the "
                               "previous period is grouped by the same values.",
            parameters=[
                _query("events", "Comma-separated event names, 1 to 10", {"type": "string"}, required=True),
                _query("interval", "Bucket size (hour: ranges of at most 31 days)",
                       {"type": "string", "enum": ["hour", "day", "week", "month"], "default": "day"}),
                _query("measure", "count (events), users (distinct user or anonymous ids), sum:<property> or "
                                  "avg:<property> (over events where it is a number)",
                       {"type": "string", "pattern": "^(count|users|(sum|avg):.{1,200})$", "default": "count"}),
                _query("breakdown", "Split each event by this property (top 10 values and other)",
                       {"type": "string", "maxLength": 200}),
                _query("compare", "previous: add the same number of days right before the range",
                       {"type": "string", "enum": ["previous", "none"], "default": "none"}),
                *DATES, ACCOUNT_HEADER]),
        ("GET", "/users"): _op(
            "People", "Identified users, most recently seen first", {"200": _json(ref("UserList")), **ERRORS},
            security=SECRET, op_id="users_list",
            description="`trait.<key>=<value>` (repeatable for other keys, at most 10) keeps users whose trait "
                        "has that text value.",
            parameters=[_query("search", "Text in the user id or any trait (any case)", NAME),
                        {"name": "trait.{key}", "in": "query", "required": False,
                         "schema": {"type": "string", "maxLength": 1000},
                         "description": "A trait filter (e.g. trait.plan=pro)"},
                        _query("limit", "Users per page", {"type": "integer", "minimum": 1, "maximum": 200,
                                                           "default": 50}),
                        _query("offset", "Users to skip", {"type": "integer", "minimum": 0, "maximum": 100000,
                                                           "default": 0}),
                        ACCOUNT_HEADER]),
        ("GET", "/users/{id}"): _op(
            "People", "A person: ids, traits, first/last seen, event counts, recent events newest first",
            {"200": _json(ref("Person")), **ERRORS, **NOT_FOUND}, security=SECRET, op_id="users_get",
            description="Any distinct id (user id or anonymous id) opens the person it belongs to (identify and "
                        "alias links).",
            parameters=[{"name": "id", "in": "path", "required": True, "schema": NAME},
                        _query("limit", "Events per page", {"type": "integer", "minimum": 1, "maximum": 200,
                                                            "default": 50}),
                        _query("offset", "Events to skip", {"type": "integer", "minimum": 0, "maximum": 100000,
                                                            "default": 0}),
                        _query("ids_limit", "The person's ids per page", {"type": "integer", "minimum": 1,
                                                                         "maximum": 1000, "default": 100}),
                        _query("ids_offset", "The person's ids to skip", {"type": "integer", "minimum": 0,
                                                                         "maximum": 100000, "default": 0}),
                        ACCOUNT_HEADER]),
        ("GET", "/sites"): _op(
            "Explorer", "Sites (beacon hostnames) with their page views", {"200": _json(ref("Sites")), **ERRORS},
            security=SECRET, op_id="sites_list", description=note + " Most viewed first.",
            parameters=[*DATES, limit, ACCOUNT_HEADER]),
    }


# --- webhooks ------------------------------------------------------------------------------------

_WEBHOOK_EVENTS = {"type": "string", "enum": ["quota.exceeded", "funnel.completed", "event.tracked"]}
_WEBHOOK_FIELDS = {
    "url": {"type": "string", "maxLength": 2048, "format": "uri",
            "description": "http(s) URL deliveries are POSTed to"},
    "events": {"type": "array", "items": _WEBHOOK_EVENTS, "minItems": 1},
    "event_names": {"type": "array", "items": NAME, "maxItems": 100,
                    "description": "event.tracked: the event names to deliver"},
    "secret": {"type": "string", "minLength": 16, "maxLength": 256,
               "description": "HMAC-SHA256 signing secret (generated when absent; returned on create only)"},
    "active": {"type": "boolean", "default": True},
}
_WEBHOOK_ENVELOPE = obj({"status": {"const": "success"}, "webhook": ref("Webhook")}, required=["status", "webhook"])


def _webhook_ops() -> dict[tuple[str, str], Op]:
    both = [ID_PATH, ACCOUNT_HEADER]
    return {
        ("POST", "/webhooks"): _op(
            "Webhooks", "Subscribe a URL to quota.exceeded, funnel.completed or event.tracked",
            {"201": _json(_WEBHOOK_ENVELOPE, "Created (the only response carrying the secret)"), **ERRORS,
             "409": _error("The account has 100 webhooks")}, security=SECRET, op_id="webhooks_create",
            parameters=[ACCOUNT_HEADER], body=_body(obj(_WEBHOOK_FIELDS, required=["url", "events"], extra=False),
                                                    "The subscription")),
        ("GET", "/webhooks"): _op(
            "Webhooks", "List webhooks", {"200": _json(obj(
                {"status": {"const": "success"}, "webhooks": {"type": "array", "items": ref("Webhook")}},
                required=["status", "webhooks"])), **ERRORS}, security=SECRET, op_id="webhooks_list",
            parameters=[ACCOUNT_HEADER]),
        ("GET", "/webhooks/{id}"): _op(
            "Webhooks", "One webhook", {"200": _json(_WEBHOOK_ENVELOPE), **ERRORS, **NOT_FOUND},
            security=SECRET, op_id="webhooks_get", parameters=both),
        ("PATCH", "/webhooks/{id}"): _op(
            "Webhooks", "Change some fields of a webhook", {"200": _json(_WEBHOOK_ENVELOPE), **ERRORS, **NOT_FOUND},
            security=SECRET, op_id="webhooks_update", parameters=both,
            body=_body(obj(_WEBHOOK_FIELDS, extra=False), "The fields to change")),
        ("DELETE", "/webhooks/{id}"): _op(
            "Webhooks", "Delete a webhook and its delivery log", {"200": _json(ref("Deleted")), **ERRORS,
                                                                   **NOT_FOUND},
            security=SECRET, op_id="webhooks_delete", parameters=both),
        ("GET", "/webhooks/{id}/deliveries"): _op(
            "Webhooks", "Delivery log, newest first: status, attempts, last error",
            {"200": _json(obj({"status": {"const": "success"}, "deliveries": {
                "type": "array", "items": ref("WebhookDelivery")}}, required=["status", "deliveries"])),
             **ERRORS, **NOT_FOUND}, security=SECRET, op_id="webhooks_deliveries",
            parameters=[*both, _query("status", "Only deliveries in this state",
                                      {"type": "string", "enum": ["pending", "delivered", "failed"]}),
                        _query("limit", "At most this many", {"type": "integer", "minimum": 1, "maximum": 1000,
                                                              "default": 100})]),
    }


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
                                         **_campaign_ops(), **_webhook_ops(), **_service_ops()}


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
            "version": "1.1.1",
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
