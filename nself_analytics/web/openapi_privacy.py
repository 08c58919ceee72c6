"""The OpenAPI operations of a person's data rights: erasure, its jobs, the suppression list and the export of one
person (assembled in web/openapi.py)."""

from __future__ import annotations

from .openapi_parts import ACCOUNT_HEADER, ERRORS, NOT_FOUND, SECRET, Op, _json, _op, _query
from .openapi_schemas import obj

__all__ = ["privacy_ops"]

_ID = {"name": "id", "in": "path", "required": True, "description": "A distinct id (user or anonymous id), taken as "
       "sent: 1-255 characters, percent-encoded in the path", "schema": {"type": "string", "minLength": 1,
                                                                          "maxLength": 255}}
_JOB = obj({
    "status": {"const": "success"},
    "job": {"type": "string", "format": "uuid"},
    "state": {"type": "string", "enum": ["pending", "running", "done", "failed"]},
    "phase": {"type": "string", "description": "queued, wait, events, scrub, people, rollup_rows, outbox, redis, "
                                               "rollups, done"},
    "progress": {"type": "number", "minimum": 0, "maximum": 1},
    "counts": {"type": "object", "additionalProperties": {"type": "integer"},
               "description": "rows and keys deleted so far, by kind (ids: the person's ids)"},
    "requested_by": {"type": "string", "description": "the credential's role and bound account"},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
    "finished_at": {"type": ["string", "null"], "format": "date-time"},
    "error": {"type": ["string", "null"]},
    "known": {"type": "boolean", "description": "(202 only) whether the id was seen: an unknown id is suppressed "
                                                "all the same"},
}, required=["status", "job", "state", "phase", "counts"])
_SUPPRESSION = obj({"id_hash": {"type": "string", "description": "salted SHA-256 of (account, id): never the id"},
                    "job": {"type": ["string", "null"]}, "created_at": {"type": "string", "format": "date-time"}},
                   required=["id_hash", "created_at"])


def privacy_ops() -> dict[tuple[str, str], Op]:
    return {
        ("DELETE", "/persons/{id}"): _op(
            "People", "Erase a person: every id linked to it and everything derived (SUPPRESS_WITH_DELETE)",
            {"202": _json(_JOB, "Accepted: the erasure job runs in the background"), **ERRORS},
            security=SECRET, op_id="persons_erase", parameters=[_ID, ACCOUNT_HEADER],
            description="Deletes the person's events, traits, identity links and per-id rollup rows, recomputes "
                        "every rollup from the remaining events, deletes its webhook deliveries, dead letters, "
                        "per-user counters and de-duplication keys, and suppresses its ids: later (and still "
                        "queued) events carrying them are dropped and counted in /health (dropped_suppressed) "
                        "until DELETE /suppressions/{id}. An unknown id is suppressed too (202, known false)."),
        ("GET", "/persons/erasures/{job}"): _op(
            "People", "The progress of an erasure job", {"200": _json(_JOB), **ERRORS, **NOT_FOUND},
            security=SECRET, op_id="persons_erasure",
            parameters=[{"name": "job", "in": "path", "required": True, "schema": {"type": "string",
                                                                                   "format": "uuid"}},
                        ACCOUNT_HEADER]),
        ("GET", "/persons/{id}/export"): _op(
            "People", "Export a person: every event, trait and identity link of all its ids, as NDJSON",
            {"200": {"description": "One JSON object a line: events in the export's Segment-like shape (with "
                                    "messageId), then identify lines (traits) and alias lines (links)",
                     "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}, **ERRORS},
            security=SECRET, op_id="persons_export", parameters=[_ID, ACCOUNT_HEADER]),
        ("GET", "/suppressions"): _op(
            "People", "The suppressed (erased) ids, as salted hashes",
            {"200": _json(obj({"status": {"const": "success"}, "total": {"type": "integer"},
                               "limit": {"type": "integer"}, "offset": {"type": "integer"},
                               "data": {"type": "array", "items": _SUPPRESSION}},
                              required=["status", "total", "data"])), **ERRORS},
            security=SECRET, op_id="suppressions_list",
            parameters=[_query("limit", "Rows per page", {"type": "integer", "minimum": 1, "maximum": 1000,
                                                          "default": 100}),
                        _query("offset", "Rows to skip", {"type": "integer", "minimum": 0, "default": 0}),
                        ACCOUNT_HEADER]),
        ("DELETE", "/suppressions/{id}"): _op(
            "People", "Lift the suppression of an id (UNSUPPRESS): its later events are stored again",
            {"200": _json(obj({"status": {"const": "success"}, "lifted": {"const": True}},
                              required=["status", "lifted"])), **ERRORS, **NOT_FOUND},
            security=SECRET, op_id="suppressions_lift", parameters=[_ID, ACCOUNT_HEADER]),
    }
