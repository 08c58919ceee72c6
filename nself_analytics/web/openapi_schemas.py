"""JSON Schemas of the OpenAPI document (components/schemas) written by hand.

The ingest bodies' schemas are not written here: they come from the Structs of ``model.wire``; nor those of the
typed routes (web/openapi_types.py): their parameters and answers are their Structs.
"""

from __future__ import annotations

from typing import Any

from ..model.alert_spec import alert_schemas
from ..model.report_spec import report_schemas
from ..model.schema import ingest_schemas

__all__ = ["SCHEMAS", "obj", "ref"]

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
_QUOTA_PERIOD = {"type": "string", "enum": ["minute", "hour", "day", "month"]}
_HEALTH_STORE = obj({"reachable": {"type": "boolean"}, "error": STRING}, required=["reachable"])


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
    **alert_schemas(),  # AlertBody, Series, Condition, Channels: the Structs of model/alert_spec.py
    **report_schemas(),  # ReportBody, ReportChannels: model/report_spec.py
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
}
