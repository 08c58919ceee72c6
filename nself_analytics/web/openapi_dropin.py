"""OpenAPI descriptions (web/openapi.py ``DESCRIPTIONS``) of other trackers' wire formats, by (method, path): the
bodies of PostHog's capture API (api/posthog.py) and of Plausible's and Umami's tracker endpoints
(api/webtrackers.py), which no msgspec type of theirs states (their translators read any JSON)."""

from __future__ import annotations

from typing import Any

from .openapi_parts import INGEST_ERRORS, Op, _error, _json, _op
from .posthog_body import CAPTURE_PATHS, FLAGS_PATHS

__all__ = ["dropin_ops"]

_LABEL = "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?"
_HOST = {"type": "string", "minLength": 1, "maxLength": 253, "pattern": f"^{_LABEL}(\\.{_LABEL})*$"}
_EVENT = {"type": "object", "required": ["event", "distinct_id"], "properties": {
    "event": {"type": "string", "minLength": 1, "maxLength": 200},
    "distinct_id": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "\\S"},
    "properties": {"type": "object"}, "uuid": {"type": "string", "format": "uuid"},
    "timestamp": {"type": "string", "format": "date-time"}, "offset": {"type": "integer", "minimum": 0}}}
_ANY = {"oneOf": [
    {"type": "object", "required": ["batch"], "properties": {
        "api_key": {"type": "string"}, "batch": {"type": "array", "minItems": 1, "maxItems": 100, "items": _EVENT},
        "sent_at": {"type": "string", "format": "date-time"}, "historical_migration": {"type": "boolean"}}},
    {"type": "array", "minItems": 1, "maxItems": 100, "items": _EVENT},
]}
_RETRY = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds to wait"}}
_POSTHOG_BODY = {
    "required": True,
    "description": "A batch `{api_key, batch: [events], sent_at, historical_migration}`, a bare array of events, or "
                   "one event `{event, distinct_id, properties, timestamp, uuid}`: JSON, gzip (Content-Encoding, or "
                   "raw gzip as text/plain), form `data=` base64, or lz64 (`compression=`)",
    "content": {"application/json": {"schema": _ANY},
                "text/plain": {"schema": {"type": "string"}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object",
                                                                 "properties": {"data": {"type": "string"}}}}},
}
_COMPRESSION = {"name": "compression", "in": "query", "required": False,
                "description": "how the body is wrapped (gzip is also recognised by its header)",
                "schema": {"type": "string", "enum": ["gzip", "gzip-js", "base64", "lz64"]}}


_PLAUSIBLE = {"type": "object", "required": ["name", "url", "domain"], "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
    "url": {"type": "string", "format": "uri", "pattern": "^https?://[a-z0-9.-]+(/[A-Za-z0-9/._-]*)?$"},
    "domain": _HOST, "referrer": {"type": "string", "maxLength": 1024}, "props": {"type": "object"},
    "revenue": {"type": "object", "properties": {"amount": {"type": ["number", "string"]},
                                                 "currency": {"type": "string"}}}}}
_UMAMI = {"type": "object", "required": ["payload"], "properties": {
    "type": {"enum": ["event", "identify"]},
    "payload": {"type": "object", "required": ["hostname"], "properties": {
        "website": {"type": "string", "format": "uuid"}, "hostname": _HOST,
        "url": {"type": "string", "pattern": "^/[A-Za-z0-9/._-]*$"}, "referrer": {"type": "string", "maxLength": 1024},
        "title": {"type": "string", "maxLength": 1024},
        "screen": {"type": "string", "pattern": "^[0-9]{1,5}x[0-9]{1,5}$"},
        "language": {"type": "string", "maxLength": 35}, "data": {"type": "object"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"}}}}}


def _tracker_body(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "description": description,
            "content": {"application/json": {"schema": schema},
                        "text/plain": {"schema": {"type": "string", "contentMediaType": "application/json"}}}}


def dropin_ops() -> dict[tuple[str, str], Op]:
    """The parameters, bodies and answers of PostHog's, Plausible's and Umami's routes (their tags, summaries and
    operationIds are their Route declarations'; posthog-js's remote config is typed, api/posthog.py)."""
    ops: dict[tuple[str, str], Op] = {}
    ok = {"200": _json({"type": "object", "properties": {"status": {"const": 1}}}, "All events queued"),
          **INGEST_ERRORS, "429": {**_error("Too many requests"), "headers": _RETRY}}
    for path in CAPTURE_PATHS:
        ops[("POST", path)] = _op(
            ok, body=_POSTHOG_BODY, parameters=[_COMPRESSION],
            description="The project key (a write key) in `api_key`, `token` or an event's `properties.token`, or "
                        "a Bearer header. Answers 200 `{\"status\": 1}`; 413 past 500 KB or 100 events.")
    flags = _json({"type": "object", "properties": {"flags": {"type": "object"},
                                                    "errorsWhileComputingFlags": {"type": "boolean"},
                                                    "requestId": {"type": "string"}}}, "No feature flags")
    for path in FLAGS_PATHS:
        ops[("POST", path)] = _op({"200": flags, **INGEST_ERRORS}, body=_POSTHOG_BODY, parameters=[_COMPRESSION])
    hit_errors = {"400": _error("Invalid event"), "403": _error("Site not accepted here (ANALYTICS_SITES)"),
                  "429": {**_error("Too many hits: retry after Retry-After seconds"), "headers": _RETRY},
                  "503": {**_error("Ingest queue full or unavailable"), "headers": _RETRY}}
    ops[("POST", "/api/event")] = _op(
        {"202": _json({"type": "object"}, "Queued"), **hit_errors},
        body=_tracker_body("`{name, url, domain, referrer, props, revenue}` (or the tracker's n, u, d, r, p, $)",
                           _PLAUSIBLE),
        description="Plausible's tracker script works here by changing its endpoint's host. Guarded like /hit.")
    ops[("POST", "/api/send")] = _op(
        {"200": _json({"type": "object"}, "Queued"), **hit_errors},
        body=_tracker_body("`{type: \"event\", payload: {website, hostname, url, referrer, title, screen, language, "
                           "name, data}}`; the site is `hostname`", _UMAMI),
        description="Umami's tracker and clients work here by changing their host. Guarded like /hit.")
    for path in (*CAPTURE_PATHS, *FLAGS_PATHS, "/api/event", "/api/send"):
        ops[("OPTIONS", path)] = _op({"204": {"description": "CORS headers (any origin)"}})
    return ops
