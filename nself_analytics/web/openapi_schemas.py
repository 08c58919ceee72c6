"""JSON Schemas of the OpenAPI document (components/schemas) and of the web stats rows.

The ingest bodies' schemas are not written here: they come from the Structs of ``model.wire``.
"""

from __future__ import annotations

from typing import Any

from ..model.schema import ingest_schemas

__all__ = ["SCHEMAS", "STATS_ROWS", "obj", "ref"]

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], required: list[str] | None = None, extra: bool = True) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": extra}
    if required:
        schema["required"] = required
    return schema


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
INT = {"type": "integer"}
NUMBER = {"type": "number"}
COUNT = {"type": "integer", "minimum": 0}
RATE = {"type": "number", "minimum": 0, "maximum": 1}
SUCCESS = {"const": "success"}
DATE = {"type": "string", "format": "date"}
DATETIME = {"type": "string", "format": "date-time"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 200}


def _row(key: str, key_schema: Schema) -> Schema:
    return {"type": "array", "items": obj({key: key_schema, "pageviews": COUNT, "sessions": COUNT},
                                          required=[key, "pageviews", "sessions"])}


STATS_ROWS: dict[str, Schema] = {
    "pageviews": obj({"pageviews": COUNT, "sessions": COUNT, "visitors": {
        **COUNT, "description": "Distinct visitors (persons). Exact when the range holds no whole UTC day or the "
        "account has identity links; otherwise the whole days' visitors come from per-day HyperLogLog sketches "
        "(2^14 registers, standard error 0.81%) merged with the others: within 2% of the exact count (about 99% "
        "of the time; small counts almost exactly). Page views and sessions are always exact."}},
                     required=["pageviews", "sessions", "visitors"]),
    "pages": _row("path", STRING), "referrers": _row("referrer", STRING),
    "timeseries": _row("date", DATE), "devices": _row("device", STRING), "languages": _row("language", STRING),
    "browsers": _row("browser", STRING), "os": _row("os", STRING), "countries": _row("country", STRING),
    "hostnames": _row("hostname", STRING), "peak-hours": _row("hour", {"type": "integer", "minimum": 0, "maximum": 23}),
    "active": obj({"active": COUNT, "pageviews": COUNT}, required=["active", "pageviews"]),
    "entry-pages": {"type": "array", "items": obj({"path": STRING, "sessions": COUNT}, required=["path", "sessions"])},
    "exit-pages": {"type": "array", "items": obj({"path": STRING, "sessions": COUNT}, required=["path", "sessions"])},
    "bounce-rates": {"type": "array", "items": obj(
        {"path": STRING, "sessions": COUNT, "bounces": COUNT, "bounce_rate": RATE},
        required=["path", "sessions", "bounces", "bounce_rate"])},
    "screen-widths": {"type": "array", "items": obj(
        {"bucket": STRING, "min": COUNT, "max": nullable(COUNT), "pageviews": COUNT, "sessions": COUNT},
        required=["bucket", "min", "max", "pageviews", "sessions"])},
    "session-duration": obj(
        {"sessions": COUNT, "average_seconds": NUMBER, "median_seconds": NUMBER, "pageviews_per_session": NUMBER,
         "bounces": COUNT, "bounce_rate": RATE},
        required=["sessions", "average_seconds", "median_seconds", "pageviews_per_session", "bounces",
                  "bounce_rate"]),
}

_FUNNEL_STEP = obj({
    "step": {"type": "integer", "minimum": 1}, "event": STRING, "users": COUNT,
    "conversion_from_start": nullable(RATE), "conversion_from_previous": nullable(RATE), "drop_off": COUNT,
    "drop_off_rate": nullable(RATE), "median_seconds_from_previous": nullable(NUMBER),
}, required=["step", "event", "users", "conversion_from_start", "conversion_from_previous", "drop_off",
             "median_seconds_from_previous"])
_QUOTA_PERIOD = {"type": "string", "enum": ["minute", "hour", "day", "month"]}
_HEALTH_STORE = obj({"reachable": {"type": "boolean"}, "error": STRING}, required=["reachable"])


def _listing(name: str, count: str) -> dict[str, Any]:
    """An explorer list: ``{name, count, first_seen, last_seen}`` rows over a date range."""
    item = obj({name: STRING, count: COUNT, "first_seen": DATETIME, "last_seen": DATETIME},
               required=[name, count, "first_seen", "last_seen"])
    return obj({"status": SUCCESS, "start_date": DATE, "end_date": DATE, "limit": COUNT,
                "data": {"type": "array", "items": item}}, required=["status", "start_date", "end_date", "data"])

SCHEMAS: dict[str, Schema] = {
    "Error": obj({"status": {"const": "error"}, "message": STRING}, required=["status", "message"]),
    "Ok": obj({"status": SUCCESS}, required=["status"]),
    # Segment's tracking API shapes (the /v1/ routes; nself_analytics/web/segment.py)
    "SegmentSuccess": obj({"success": {"const": True}}, required=["success"], extra=False),
    "SegmentError": obj({"status": {"const": "error"}, "success": {"const": False},
                         "code": {"type": "string", "description": "invalid_request, unauthorized, payload_too_large, "
                                  "rate_limited, service_unavailable, ..."}, "message": STRING},
                        required=["status", "success", "code", "message"]),
    "Deleted": obj({"status": SUCCESS, "deleted": {"const": True}}, required=["status", "deleted"]),
    **ingest_schemas(),  # Track, Page, ..., Batch, Hit: generated from the Structs that validate them
    "Accepted": obj({"status": SUCCESS, "message_id": {"type": "string", "format": "uuid"},
                     "duplicate": {"type": "boolean", "description": "true when this message id was seen before"},
                     "warnings": {"type": "array", "items": STRING}},
                    required=["status", "message_id", "duplicate", "warnings"]),
    "BatchAccepted": obj({
        "status": SUCCESS, "accepted": COUNT,
        "duplicates": {"type": "array", "items": COUNT, "description": "indexes of messages seen before"},
        "message_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
        "warnings": {"type": "array", "items": obj({"index": COUNT, "message": STRING})},
    }, required=["status", "accepted", "duplicates", "message_ids", "warnings"]),
    "StatsMeta": obj({"site": STRING, "start": INT, "end": INT}, required=["site", "start", "end"]),
    "FunnelStep": _FUNNEL_STEP,
    "FunnelResult": obj({
        "status": SUCCESS, "funnel_id": nullable(INT), "start_date": DATE, "end_date": DATE,
        "window_seconds": NUMBER, "steps": {"type": "array", "items": ref("FunnelStep")},
        "breakdown": STRING,
        "breakdown_values": {"type": "array", "items": obj({"value": nullable(STRING), "steps": {
            "type": "array", "items": ref("FunnelStep")}})},
        "breakdown_values_total": COUNT, "breakdown_values_limit": COUNT,
    }, required=["status", "steps"]),
    "FunnelDefinition": obj({
        "name": _NAME,
        "steps": {"type": "array", "items": _NAME, "minItems": 2, "maxItems": 20,
                  "description": "event names in order (a comma-separated string is accepted too)"},
        "window": {"type": ["string", "number"], "description": "a duration (7d) or seconds", "default": "7d"},
        "breakdown": nullable(STRING),
    }, required=["name", "steps"]),
    "SavedFunnel": obj({"id": INT, "name": STRING, "steps": {"type": "array", "items": STRING},
                        "window_seconds": INT, "breakdown": nullable(STRING), "created_at": DATETIME,
                        "updated_at": DATETIME},
                       required=["id", "name", "steps", "window_seconds", "breakdown"]),
    "RetentionResult": obj({
        "status": SUCCESS, "period": STRING, "periods": INT, "start_date": DATE, "end_date": DATE,
        "start_event": nullable(STRING), "return_event": nullable(STRING),
        "data": {"type": "array", "items": obj({"cohort": DATE, "size": COUNT,
                                                "retained": {"type": "array", "items": COUNT}},
                                               required=["cohort", "size", "retained"])},
    }, required=["status", "data"]),
    "Counters": obj({
        "status": SUCCESS, "event": STRING, "user_id": nullable(STRING),
        "counts": {"type": "object", "additionalProperties": COUNT}, "period": STRING, "count": COUNT,
        "resets_at": nullable(DATETIME),
    }, required=["status", "event", "counts"]),
    "QuotaRule": obj({"event": _NAME, "segment": {"type": "object", "description": "user traits to match"},
                      "limit": {"type": "integer", "minimum": 0}, "period": _QUOTA_PERIOD},
                     required=["event", "limit", "period"]),
    "Quota": obj({"id": INT, "event": STRING, "segment": {"type": "object"}, "limit": COUNT, "period": _QUOTA_PERIOD,
                  "created_at": DATETIME, "updated_at": DATETIME}, required=["id", "event", "limit", "period"]),
    "QuotaEnvelope": obj({"status": SUCCESS, "quota": ref("Quota")}, required=["status", "quota"]),
    "QuotaViolation": obj({"id": INT, "quota_id": INT, "event": STRING, "user_id": STRING, "period": STRING,
                           "period_start": DATETIME, "used": COUNT, "limit": COUNT, "created_at": DATETIME}),
    "QuotaCheck": obj({
        "status": SUCCESS, "allowed": {"type": "boolean"}, "used": nullable(COUNT), "limit": nullable(COUNT),
        "remaining": nullable(COUNT), "resets_at": nullable(DATETIME), "period": nullable(STRING),
        "quota_id": nullable(INT), "rules": {"type": "array", "items": {"type": "object"}},
    }, required=["status", "allowed"]),
    "MetricsResult": obj({
        "status": SUCCESS, "group_by": STRING, "events": {"type": "array", "items": STRING},
        "events_truncated": {"type": "boolean"},
        "data": {"type": "array", "items": obj({
            "date": DATE, "counts": {"type": "object", "additionalProperties": COUNT,
                                     "description": "event name -> its count in the period (0 where none)"}},
            required=["date", "counts"])},
    }, required=["status", "data"]),
    "SessionsResult": obj({
        "status": SUCCESS, "group_by": STRING, "start_event": STRING, "stop_event": STRING,
        "data": {"type": "array", "items": obj({"date": DATE, "totalDuration": NUMBER, "sessionCount": COUNT,
                                                "averageDuration": NUMBER},
                                               required=["date", "totalDuration", "sessionCount", "averageDuration"])},
    }, required=["status", "data"]),
    "Health": obj({
        "status": {"enum": ["success", "error"]}, "healthy": {"type": "boolean"}, "version": STRING,
        "postgres": _HEALTH_STORE, "redis": _HEALTH_STORE, "aggregate_lag_seconds": nullable(NUMBER),
        "queue_depth": nullable(COUNT), "queue_pending": nullable(COUNT), "message": STRING,
        "replica": obj({"reachable": {"type": "boolean"}, "in_recovery": {"type": "boolean"},
                        "lag_seconds": nullable(NUMBER), "error": STRING}, required=["reachable"]),
        "process": obj({"pid": INT, "leader": {"type": "boolean", "description": "runs the aggregator and pruner"}},
                       required=["pid", "leader"]),
        "backfills": nullable({"type": "array", "description": "the upgrade's backfills: rollups rebuilt for the "
                               "events stored before it, newest day first (reads stay exact meanwhile)",
                               "items": obj({"name": STRING, "finished": {"type": "boolean"},
                                             "done_down_to": nullable(STRING), "down_to": nullable(STRING),
                                             "batches": INT, "hours": INT, "updated_at": nullable(STRING)},
                                            required=["name", "finished"])}),
    }, required=["status", "healthy", "postgres", "redis"]),
    "Webhook": obj({"id": INT, "url": STRING, "events": {"type": "array", "items": STRING},
                    "event_names": {"type": "array", "items": STRING}, "active": {"type": "boolean"},
                    "secret": {"type": "string", "description": "only in the response to a create"},
                    "created_at": DATETIME, "updated_at": DATETIME}, required=["id", "url", "events", "active"]),
    "WebhookBody": obj({
        "id": {"type": "string", "format": "uuid"}, "type": {"enum": ["quota.exceeded", "funnel.completed",
                                                                      "event.tracked"]},
        "webhook_id": INT, "source_account_id": STRING, "created_at": DATETIME,
        "data": {"type": "object", "description": "quota.exceeded: quota_id, event, period, user_id, used, limit; "
                                                  "funnel.completed: funnel_id, steps, user_id, started_at, "
                                                  "completed_at; event.tracked: the stored event"},
    }, required=["id", "type", "webhook_id", "created_at", "data"]),
    "WebhookDelivery": obj({
        "id": {"type": "string", "format": "uuid", "description": "X-Nself-Delivery: the same on every retry"},
        "event": STRING, "status": {"enum": ["pending", "delivered", "failed"]}, "attempts": COUNT,
        "last_status": nullable(INT), "last_error": nullable(STRING), "payload": {"type": "object"},
        "created_at": DATETIME, "next_attempt_at": nullable(DATETIME), "delivered_at": nullable(DATETIME),
    }, required=["id", "event", "status", "attempts"]),
    "McpConfig": obj({"base_url": STRING, "openapi_url": STRING, "clients": {"type": "object"}},
                     required=["base_url", "openapi_url", "clients"]),
    "EventNames": _listing("event", "count"),
    "EventProperties": obj({
        "status": SUCCESS, "event": STRING, "start_date": DATE, "end_date": DATE, "limit": COUNT,
        "sampled_events": {**COUNT, "description": "events surveyed: the newest ones, at most sample_limit"},
        "sample_limit": COUNT,
        "data": {"type": "array", "items": obj({
            "key": STRING, "count": {**COUNT, "description": "surveyed events carrying the key"},
            "types": {"type": "array", "items": {"enum": ["string", "number", "boolean", "object", "array", "null"]}},
            "values": {"type": "array", "description": "most frequent scalar values (cut to 200 characters)",
                       "items": obj({"value": STRING, "count": COUNT}, required=["value", "count"])},
        }, required=["key", "count", "types", "values"])},
    }, required=["status", "event", "sampled_events", "data"]),
    "Sites": _listing("site", "pageviews"),
    "UserList": obj({
        "status": SUCCESS, "limit": COUNT, "offset": COUNT, "has_more": {"type": "boolean"},
        "data": {"type": "array", "items": obj({"user_id": STRING, "traits": {"type": "object"},
                                                "first_seen": DATETIME, "last_seen": DATETIME},
                                               required=["user_id", "traits", "first_seen", "last_seen"])},
    }, required=["status", "has_more", "data"]),
    "Person": obj({
        "status": SUCCESS, "limit": COUNT, "offset": COUNT, "id": STRING, "person_id": STRING,
        "distinct_ids": {"type": "array", "items": STRING,
                         "description": "a page of the person's ids (ids_limit from ids_offset, in id order)"},
        "distinct_id_count": {"type": "integer", "description": "how many ids the person has"},
        "more_ids": {"type": "boolean", "description": "whether ids follow this page"},
        "user_ids": {"type": "array", "items": STRING, "description": "the identified ones"},
        "linked_ids": {"type": "array", "items": STRING, "description": "the person's other ids (anonymous ids, "
                                                                          "aliases)"},
        "traits": {"type": "object"}, "first_seen": nullable(DATETIME), "last_seen": nullable(DATETIME),
        "event_count": COUNT,
        "event_counts": {"type": "array", "items": obj({"event": STRING, "count": COUNT}),
                         "description": "the 50 most frequent event names"},
        "events": {"type": "array", "items": obj({
            "ts": DATETIME, "event": STRING, "distinct_id": STRING, "session_id": nullable(STRING),
            "site": nullable(STRING), "path": nullable(STRING), "properties": nullable({"type": "object"})})},
        "more_events": {"type": "boolean"},
    }, required=["status", "id", "person_id", "distinct_ids", "traits", "event_count", "events"]),
    "TrendSeries": obj({
        "event": STRING, "breakdown_value": nullable(STRING),
        "other": {"type": "boolean", "description": "the events of every value outside the top 10"},
        "data": {"type": "array", "items": nullable(NUMBER), "description": "one figure per bucket (avg: null "
                                                                             "where no event has the property)"},
        "total": nullable(NUMBER),
    }, required=["event", "breakdown_value", "other", "data", "total"]),
    "TrendsResult": obj({
        "status": SUCCESS, "events": {"type": "array", "items": STRING}, "interval": STRING, "measure": STRING,
        "property": nullable(STRING), "breakdown": nullable(STRING), "breakdown_limit": COUNT,
        "start_date": DATE, "end_date": DATE,
        "buckets": {"type": "array", "items": STRING, "description": "bucket starts: dates, or UTC hours"},
        "series": {"type": "array", "items": ref("TrendSeries")},
        "previous": obj({"start_date": DATE, "end_date": DATE, "buckets": {"type": "array", "items": STRING},
                         "series": {"type": "array", "items": ref("TrendSeries")}},
                        required=["start_date", "end_date", "buckets", "series"]),
    }, required=["status", "events", "interval", "measure", "buckets", "series"]),
}
