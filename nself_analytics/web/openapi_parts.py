"""Building blocks of the OpenAPI operations (web/openapi.py, web/openapi_product.py): security schemes, error
responses, and the helpers that write a parameter, a body, a JSON answer and an operation."""

from __future__ import annotations

from typing import Any

from .openapi_schemas import ref

__all__ = ["Op"]

Op = dict[str, Any]

SECRET: list[dict[str, list[str]]] = [{"secretToken": []}]
# {}: the key may come as writeKey in the body
WRITE: list[dict[str, list[str]]] = [{"writeKey": []}, {"writeKeyBasic": []}, {}]
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


def _op(responses: dict[str, Any], *, description: str = "", parameters: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None) -> Op:
    """The hand-written part of an operation: its answers, parameters, body and description (the route table gives
    its tags, summary, operationId and security: web/openapi.py ``operation``)."""
    if body:
        responses = {**BODY_ERRORS, **responses}
    operation: Op = {"responses": responses}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = body
    return operation
