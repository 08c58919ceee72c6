"""Domain errors raised low, mapped to JSON HTTP errors in one place (the middleware)."""

from __future__ import annotations

from typing import Any

import psycopg2
import psycopg2.errors
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..ingest.refusals import IngestError, RateLimited, SiteRefused, TooLarge, Unavailable
from .segment import segment_error

__all__ = ["QUERY_TIMEOUT_MESSAGE", "RETRY_AFTER_SECONDS", "ApiError", "error_response", "json_error"]

log = structlog.get_logger("nself_analytics.http")
# What a 503 asks the client to wait before retrying (seconds).
RETRY_AFTER_SECONDS = "2"
# The ingest service's refusals (ingest/refusals.py) as HTTP answers.
_INGEST_STATUS = {TooLarge: 413, SiteRefused: 403, RateLimited: 429, Unavailable: 503}
QUERY_TIMEOUT_MESSAGE = "The query took longer than ANALYTICS_QUERY_TIMEOUT allows; narrow it and retry"


class ApiError(Exception):
    """An error the client caused (4xx) or a service condition (5xx), with a message for the client."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def json_error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    return web.json_response({"status": "error", "message": message, **extra}, status=status, headers=headers)


def _error(request: web.Request, status: int, message: str, headers: dict[str, str] | None = None,
           segment: bool = False, **extra: Any) -> web.Response:
    """An error response; on Segment's routes in Segment's shape too (web/segment.py)."""
    if segment:
        fields, headers = segment_error(status, headers or {})
        extra = {**fields, **extra}
    return json_error(status, message, headers, **extra)


def error_response(request: web.Request, exc: Exception, *, segment: bool = False) -> web.Response:
    """The JSON error answering ``exc`` (raised by a handler or a check before it); ``exc`` itself is raised
    again when it is no error (an HTTP redirect) or a server error of the HTTP layer. ``segment``: the route is
    one of Segment's (its errors also carry Segment's fields)."""
    if isinstance(exc, ApiError):
        return _error(request, exc.status, exc.message, exc.headers, segment, **exc.extra)
    if isinstance(exc, IngestError):
        status = _INGEST_STATUS[type(exc)]
        headers = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
        return _error(request, status, exc.message, headers, segment)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        message = {404: "Not found", 405: "Method not allowed"}.get(exc.status, exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return _error(request, exc.status, message, headers, segment)
    if isinstance(exc, HttpProcessingError | RequestPayloadError):  # e.g. a body that is not the gzip it claims
        code = getattr(exc, "code", 400)
        if not 400 <= code < 500:
            raise exc
        return _error(request, code, "Invalid request body: it does not decode as its Content-Encoding says",
                      segment=segment)
    if isinstance(exc, psycopg2.errors.QueryCanceled):
        log.warning("query_timeout", path=request.path)
        return _error(request, 503, QUERY_TIMEOUT_MESSAGE, {"Retry-After": RETRY_AFTER_SECONDS}, segment)
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        log.warning("postgres_unavailable", path=request.path, error=str(exc).strip()[:200])
        return _error(request, 503, "PostgreSQL is unavailable; retry later", {"Retry-After": RETRY_AFTER_SECONDS},
                      segment)
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        log.warning("redis_unavailable", path=request.path, error=str(exc).strip()[:200])
        return _error(request, 503, "Redis is unavailable; retry later", {"Retry-After": RETRY_AFTER_SECONDS},
                      segment)
    if isinstance(exc, ConnectionError | TimeoutError):  # a store's socket refused or timed out
        log.warning("store_unavailable", path=request.path, error=str(exc).strip()[:200])
        return _error(request, 503, "A store is unavailable; retry later", {"Retry-After": RETRY_AFTER_SECONDS},
                      segment)
    log.error("unhandled_error", path=request.path, exc_info=exc)
    return _error(request, 500, "Internal server error", segment=segment)
