"""Segment's tracking API wire contract, kept by the routes under ``/v1/`` (named ``ingest.v1_*``).

Unchanged Segment and RudderStack clients read the status code and, on an error, the body: RudderStack's
Python SDK treats anything but 200 as a failed upload and reads ``code`` and ``message`` from the body.
So on these routes an accepted request answers 200 ``{"success": true}`` (the other ingest routes keep
their 202 and richer body), and an error answers with the usual ``{"status": "error", "message"}`` plus
Segment's ``success: false`` and a ``code``; 429 and 503 always carry ``Retry-After``.

Where we differ from Segment on purpose: a message Segment would take with 200 and then drop (no user or
anonymous id, a track without an event) is a 400 here, and the batch it came in stores nothing, so a
client learns of it instead of losing data silently.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["ERROR_CODES", "RETRY_AFTER_SECONDS", "ROUTE_PREFIX", "SUCCESS", "is_segment_name", "is_segment_route",
           "segment_error"]

ROUTE_PREFIX = "ingest.v1_"
SUCCESS = {"success": True}
RETRY_AFTER_SECONDS = "2"
ERROR_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "rate_limited",
    503: "service_unavailable",
}


def is_segment_name(name: str | None) -> bool:
    """Whether a route of this name is one of the Segment-compatible routes."""
    return bool(name and name.startswith(ROUTE_PREFIX))


def is_segment_route(request: web.Request) -> bool:
    """Whether the request was routed to one of the Segment-compatible routes."""
    return is_segment_name(request.match_info.route.name)


def segment_error(status: int, headers: dict[str, str]) -> tuple[dict[str, object], dict[str, str]]:
    """The fields an error body adds on a Segment route, and its headers (``Retry-After`` on 429/503)."""
    if status in (429, 503) and not any(k.lower() == "retry-after" for k in headers):
        headers = {**headers, "Retry-After": RETRY_AFTER_SECONDS}
    return {"success": False, "code": ERROR_CODES.get(status, "server_error" if status >= 500 else "error")}, headers
