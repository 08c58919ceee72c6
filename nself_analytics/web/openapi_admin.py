"""The OpenAPI operations of the secret token's data administration: explicit identity merges and splits, and the
account's event names (assembled in web/openapi.py)."""

from __future__ import annotations

from .openapi_parts import ACCOUNT_HEADER, ERRORS, NOT_FOUND, Op, _body, _error, _json, _op, _query
from .openapi_schemas import obj

__all__ = ["admin_ops"]

_ID = {"type": "string", "minLength": 1, "maxLength": 200}
_CHANGE = obj({
    "status": {"const": "success"},
    "outcome": {"type": "string", "enum": ["merged", "same", "split", "alone"],
                "description": "merged / split: done; same: already one person; alone: the id had no other id"},
    "person_id": {"type": ["string", "null"],
                  "description": "merge: the person of into; split: the person the other ids keep"},
    "moved": {"type": "integer", "minimum": 0, "description": "ids re-pointed to another root"},
    "size": {"type": ["integer", "null"], "description": "merge: the merged person's ids"},
}, required=["status", "outcome", "person_id", "moved"])
_PERSON_ERRORS = {**ERRORS, **NOT_FOUND, "409": _error("The person would hold more than ANALYTICS_MAX_IDS_PER_PERSON "
                                                       "ids")}


_NAME_PATH = {"name": "name", "in": "path", "required": True, "schema": _ID}
_NAME = obj({"status": {"const": "success"}, "name": _ID, "blocked": {"type": "boolean"},
             "deleting": {"type": "boolean"}}, required=["status", "name"])
_NAME_ROW = obj({
    "name": _ID,
    "first_source": {"type": ["string", "null"], "enum": ["public", "server", None],
                     "description": "the kind of write key that first brought the name in"},
    "first_seen": {"type": ["integer", "null"], "description": "Unix seconds"},
    "last_seen": {"type": ["integer", "null"], "description": "Unix seconds"},
    "volume": {"type": "integer", "minimum": 0, "description": "stored events"},
    "dropped": {"type": "integer", "minimum": 0, "description": "messages dropped for this name"},
    "blocked": {"type": "boolean"}, "deleting": {"type": "boolean"},
}, required=["name", "volume", "dropped", "blocked", "deleting"])


def _name_ops() -> dict[tuple[str, str], Op]:
    return {
        ("GET", "/event-names"): _op(
            {"200": _json(obj({"status": {"const": "success"}, "limit": {"type": "integer"},
                               "offset": {"type": "integer"}, "total": {"type": "integer"},
                               "data": {"type": "array", "items": _NAME_ROW}},
                              required=["status", "data", "total"])), **ERRORS},
            description="Most recently seen first; blocked names too.",
            parameters=[_query("limit", "Names per page", {"type": "integer", "minimum": 1, "maximum": 1000,
                                                           "default": 100}),
                        _query("offset", "Names to skip", {"type": "integer", "minimum": 0, "default": 0}),
                        ACCOUNT_HEADER]),
        ("POST", "/event-names/{name}/block"): _op(
            {"200": _json(_NAME),
                                                                                       **ERRORS},
            parameters=[_NAME_PATH, ACCOUNT_HEADER]),
        ("DELETE", "/event-names/{name}/block"): _op(
            {"200": _json(_NAME), **ERRORS, **NOT_FOUND},
            parameters=[_NAME_PATH, ACCOUNT_HEADER]),
        ("DELETE", "/event-names/{name}"): _op(
            {"202": _json(_NAME, "Accepted: the events are deleted in batches in the background"), **ERRORS,
             **NOT_FOUND},
            parameters=[_NAME_PATH, ACCOUNT_HEADER],
            description="The name is blocked until its events are deleted (/health: event_name_deletions)."),
    }


def admin_ops() -> dict[tuple[str, str], Op]:
    return {
        **_name_ops(),
        ("POST", "/persons/merge"): _op(
            {"200": _json(_CHANGE),
                                                                                    **_PERSON_ERRORS,
                                                                                    "422": _error("into = from")},
            description="Also merges two identified persons (which alias and identify never do). The root of "
                        "`into`'s person stays the person id. Every figure follows at once (ids are resolved when "
                        "reading).",
            parameters=[ACCOUNT_HEADER],
            body=_body(obj({"into": _ID, "from": _ID}, required=["into", "from"]), "The two distinct ids")),
        ("POST", "/persons/split"): _op(
            {"200": _json(_CHANGE),
                                                                              **_PERSON_ERRORS},
            description="The id becomes its own person. When it was the person's root, the other ids stay one "
                        "person whose new root is the smallest of them in byte order.",
            parameters=[ACCOUNT_HEADER],
            body=_body(obj({"distinct_id": _ID}, required=["distinct_id"]), "The distinct id")),
    }
