"""The hand-written OpenAPI descriptions of the product routes not yet typed (saved funnels, counters, quotas) and the
webhooks (assembled in web/openapi.py)."""

from __future__ import annotations

from .openapi_parts import (
    ACCOUNT_HEADER,
    ERRORS,
    NOT_FOUND,
    Op,
    _body,
    _error,
    _json,
    _op,
    _query,
)
from .openapi_schemas import obj, ref

__all__ = ["Op"]

# --- product analytics --------------------------------------------------------------------------

NAME = {"type": "string", "minLength": 1, "maxLength": 200}
ID_PATH = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _product_ops() -> dict[tuple[str, str], Op]:
    return {
        ("GET", "/funnels"): _op({"200": _json(obj(
            {"status": {"const": "success"}, "funnels": {"type": "array", "items": ref("SavedFunnel")}},
            required=["status", "funnels"])), **ERRORS}, parameters=[ACCOUNT_HEADER]),
        ("POST", "/funnels"): _op(
            {"201": _json(obj({"status": {"const": "success"}, "funnel": ref("SavedFunnel")},
                              required=["status", "funnel"]), "Created"), **ERRORS},
            parameters=[ACCOUNT_HEADER],
            body=_body(ref("FunnelDefinition"), "The definition")),
        ("GET", "/funnels/{id}"): _op(
            {"200": _json(obj({"status": {"const": "success"}, "funnel": ref("SavedFunnel")},
                              required=["status", "funnel"])), **ERRORS, **NOT_FOUND},
            parameters=[ID_PATH, ACCOUNT_HEADER]),
        ("DELETE", "/funnels/{id}"): _op(
            {"200": _json(ref("Deleted")), **ERRORS, **NOT_FOUND},
            parameters=[ID_PATH, ACCOUNT_HEADER]),
        ("GET", "/quotas"): _op(
            {"200": _json(obj(
                {"status": {"const": "success"}, "quotas": {"type": "array", "items": ref("Quota")}},
                required=["status", "quotas"])), **ERRORS},
            parameters=[_query("event", "Only rules of this event", NAME),
                                                              ACCOUNT_HEADER]),
        ("POST", "/quotas"): _op(
            {"201": _json(ref("QuotaEnvelope"), "Created"), **ERRORS},
            parameters=[ACCOUNT_HEADER],
            body=_body(ref("QuotaRule"), "The rule")),
        ("GET", "/quotas/violations"): _op(
            {"200": _json(obj({"status": {"const": "success"},
                               "violations": {"type": "array", "items": ref("QuotaViolation")}},
                              required=["status", "violations"])), **ERRORS},
            parameters=[_query("user_id", "Only this user", {"type": "string"}),
                        _query("quota_id", "Only this rule", {"type": "integer", "minimum": 1}),
                        _query("limit", "Rows", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
                        ACCOUNT_HEADER]),
        ("GET", "/quotas/{id}"): _op(
            {"200": _json(ref("QuotaEnvelope")), **ERRORS, **NOT_FOUND},
            parameters=[ID_PATH, ACCOUNT_HEADER]),
        ("PUT", "/quotas/{id}"): _op(
            {"200": _json(ref("QuotaEnvelope")), **ERRORS, **NOT_FOUND}, parameters=[ID_PATH, ACCOUNT_HEADER],
            body=_body(ref("QuotaRule"), "The rule")),
        ("DELETE", "/quotas/{id}"): _op(
            {"200": _json(ref("Deleted")), **ERRORS, **NOT_FOUND},
            parameters=[ID_PATH, ACCOUNT_HEADER]),
        ("POST", "/quota/check"): _op(
            {"200": _json(ref("QuotaCheck")), **ERRORS, "409": _error("Quota counting is disabled")},
            parameters=[ACCOUNT_HEADER],
            body=_body(obj({"user_id": NAME, "event": NAME}, required=["user_id", "event"]), "Who and what")),
    }


# --- webhooks ------------------------------------------------------------------------------------

_WEBHOOK_EVENTS = {"type": "string", "enum": ["quota.exceeded", "funnel.completed", "event.tracked", "alert.fired",
                                              "alert.resolved"]}
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
            {"201": _json(_WEBHOOK_ENVELOPE, "Created (the only response carrying the secret)"), **ERRORS,
             "409": _error("The account has 100 webhooks")}, parameters=[ACCOUNT_HEADER],
            body=_body(obj(_WEBHOOK_FIELDS, required=["url", "events"], extra=False),
                                                    "The subscription")),
        ("GET", "/webhooks"): _op(
            {"200": _json(obj(
                {"status": {"const": "success"}, "webhooks": {"type": "array", "items": ref("Webhook")}},
                required=["status", "webhooks"])), **ERRORS}, parameters=[ACCOUNT_HEADER]),
        ("GET", "/webhooks/{id}"): _op(
            {"200": _json(_WEBHOOK_ENVELOPE), **ERRORS, **NOT_FOUND},
            parameters=both),
        ("PATCH", "/webhooks/{id}"): _op(
            {"200": _json(_WEBHOOK_ENVELOPE), **ERRORS, **NOT_FOUND},
            parameters=both,
            body=_body(obj(_WEBHOOK_FIELDS, extra=False), "The fields to change")),
        ("DELETE", "/webhooks/{id}"): _op(
            {"200": _json(ref("Deleted")), **ERRORS,
                                                                   **NOT_FOUND},
            parameters=both),
        ("GET", "/webhooks/{id}/deliveries"): _op(
            {"200": _json(obj({"status": {"const": "success"}, "deliveries": {
                "type": "array", "items": ref("WebhookDelivery")}}, required=["status", "deliveries"])),
             **ERRORS, **NOT_FOUND}, parameters=[*both, _query("status", "Only deliveries in this state",
                                      {"type": "string", "enum": ["pending", "delivered", "failed"]}),
                        _query("limit", "At most this many", {"type": "integer", "minimum": 1, "maximum": 1000,
                                                              "default": 100})]),
    }
