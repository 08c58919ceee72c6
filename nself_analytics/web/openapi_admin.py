"""The OpenAPI operations of the secret token's data administration: explicit identity merges and splits, and the
account's event names (assembled in web/openapi.py)."""

from __future__ import annotations

from .openapi_parts import ACCOUNT_HEADER, ERRORS, NOT_FOUND, SECRET, Op, _body, _error, _json, _op
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


def admin_ops() -> dict[tuple[str, str], Op]:
    return {
        ("POST", "/persons/merge"): _op(
            "People", "Merge the whole person of `from` into the person of `into`", {"200": _json(_CHANGE),
                                                                                    **_PERSON_ERRORS,
                                                                                    "422": _error("into = from")},
            security=SECRET, op_id="persons_merge",
            description="Also merges two identified persons (which alias and identify never do). The root of "
                        "`into`'s person stays the person id. Every figure follows at once (ids are resolved when "
                        "reading).",
            parameters=[ACCOUNT_HEADER],
            body=_body(obj({"into": _ID, "from": _ID}, required=["into", "from"]), "The two distinct ids")),
        ("POST", "/persons/split"): _op(
            "People", "Split a distinct id off its person (undo its link)", {"200": _json(_CHANGE),
                                                                              **_PERSON_ERRORS},
            security=SECRET, op_id="persons_split",
            description="The id becomes its own person. When it was the person's root, the other ids stay one "
                        "person whose new root is the smallest of them in byte order.",
            parameters=[ACCOUNT_HEADER],
            body=_body(obj({"distinct_id": _ID}, required=["distinct_id"]), "The distinct id")),
    }
