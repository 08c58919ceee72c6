"""The hand-written parameters and answers of the /alerts and /reports routes (web/openapi.py ``DESCRIPTIONS``;
their tags, summaries and credentials are the ``Route`` entries of api/alerts.py and api/scheduled_reports.py);
the bodies' schemas are generated from model/alert_spec.py (``AlertBody``) and model/report_spec.py
(``ReportBody``)."""

from __future__ import annotations

from .openapi_parts import ACCOUNT_HEADER, ERRORS, NOT_FOUND, Op, _body, _error, _json, _op, _query
from .openapi_schemas import obj, ref

__all__ = ["alert_ops", "report_ops"]

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


_REPORT = {"allOf": [ref("ReportBody"), obj({
    "id": {"type": "integer"}, "last_period_start": _TIME, "last_sent_at": _TIME, "created_at": _TIME,
    "updated_at": _TIME}, required=["id"])]}
_REPORT_ENVELOPE = obj({"status": {"const": "success"}, "report": _REPORT}, required=["status", "report"])


def report_ops() -> dict[tuple[str, str], Op]:
    """/reports: the scheduled report subscriptions."""
    both = [_ID, ACCOUNT_HEADER]
    return {
        ("POST", "/reports"): _op(
            {"201": _json(_REPORT_ENVELOPE, "Created"), **ERRORS, "409": _error("The account has 100 reports")},
            parameters=[ACCOUNT_HEADER], body=_body(ref("ReportBody"), "The subscription")),
        ("GET", "/reports"): _op(
            {"200": _json(obj({"status": {"const": "success"}, "reports": {"type": "array", "items": _REPORT}},
                              required=["status", "reports"])), **ERRORS}, parameters=[ACCOUNT_HEADER]),
        ("GET", "/reports/{id}"): _op({"200": _json(_REPORT_ENVELOPE), **ERRORS, **NOT_FOUND}, parameters=both),
        ("PATCH", "/reports/{id}"): _op(
            {"200": _json(_REPORT_ENVELOPE), **ERRORS, **NOT_FOUND}, parameters=both,
            body=_body({"type": "object"}, "The top-level fields to change")),
        ("DELETE", "/reports/{id}"): _op({"200": _json(ref("Deleted")), **ERRORS, **NOT_FOUND}, parameters=both),
        ("POST", "/reports/{id}/send"): _op(
            {"202": _json(obj({"status": {"const": "success"}, "queued": {"type": "integer"}},
                              required=["status", "queued"]), "Queued for the leader's sender"),
             **ERRORS, **NOT_FOUND}, parameters=both,
            description="The report of the last complete period, whatever was sent before; sent within "
                        "ANALYTICS_ALERT_CHECK_INTERVAL."),
    }
