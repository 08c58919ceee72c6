"""The hand-written parameters and answers of the /alerts routes (web/openapi.py ``DESCRIPTIONS``; their tags,
summaries and credentials are the ``Route`` entries of api/alerts.py); the body's schema is generated from
model/alert_spec.py (``AlertBody``)."""

from __future__ import annotations

from .openapi_parts import ACCOUNT_HEADER, ERRORS, NOT_FOUND, Op, _body, _error, _json, _op, _query
from .openapi_schemas import obj, ref

__all__ = ["alert_ops"]

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_NUMBER = {"type": ["number", "null"]}
_STATE = {"type": "string", "enum": ["firing", "not_firing", "errored", "snoozed"]}
_ALERT = {"allOf": [ref("AlertBody"), obj({
    "id": {"type": "integer"}, "state": _STATE, "firing": {"type": "boolean"},
    "last_period_start": _TIME, "last_checked_at": _TIME, "last_value": _NUMBER,
    "last_error": {"type": ["string", "null"]}, "last_notified_at": _TIME, "created_at": _TIME,
    "updated_at": _TIME}, required=["id", "state", "firing"])]}
_ENVELOPE = obj({"status": {"const": "success"}, "alert": _ALERT}, required=["status", "alert"])
_CHECK = obj({"period_start": _TIME, "period_end": _TIME, "checked_at": _TIME, "state": _STATE, "value": _NUMBER,
              "current": _NUMBER, "previous": _NUMBER, "error": {"type": ["string", "null"]},
              "notified": {"type": ["string", "null"], "enum": ["alert.fired", "alert.resolved", None]}})
_SENT = obj({"id": {"type": "integer"}, "channel": {"type": "string", "enum": ["telegram", "discord", "email"]},
             "target": {"type": "string"}, "status": {"type": "string", "enum": ["pending", "sent", "failed"]},
             "attempts": {"type": "integer"}, "last_error": {"type": ["string", "null"]}, "created_at": _TIME,
             "sent_at": _TIME})


def alert_ops() -> dict[tuple[str, str], Op]:
    both = [_ID, ACCOUNT_HEADER]
    return {
        ("POST", "/alerts"): _op(
            {"201": _json(_ENVELOPE, "Created"), **ERRORS, "409": _error("The account has 100 alerts")},
            parameters=[ACCOUNT_HEADER], body=_body(ref("AlertBody"), "The alert")),
        ("GET", "/alerts"): _op(
            {"200": _json(obj({"status": {"const": "success"}, "alerts": {"type": "array", "items": _ALERT}},
                              required=["status", "alerts"])), **ERRORS}, parameters=[ACCOUNT_HEADER]),
        ("GET", "/alerts/{id}"): _op({"200": _json(_ENVELOPE), **ERRORS, **NOT_FOUND}, parameters=both),
        ("PATCH", "/alerts/{id}"): _op(
            {"200": _json(_ENVELOPE), **ERRORS, **NOT_FOUND}, parameters=both,
            body=_body({"type": "object"}, "The top-level fields to change")),
        ("DELETE", "/alerts/{id}"): _op({"200": _json(ref("Deleted")), **ERRORS, **NOT_FOUND}, parameters=both),
        ("GET", "/alerts/{id}/checks"): _op(
            {"200": _json(obj({"status": {"const": "success"}, "checks": {"type": "array", "items": _CHECK},
                               "notifications": {"type": "array", "items": _SENT}},
                              required=["status", "checks", "notifications"])), **ERRORS, **NOT_FOUND},
            parameters=[*both, _query("limit", "At most this many", {"type": "integer", "minimum": 1,
                                                                    "maximum": 1000, "default": 100})]),
    }
