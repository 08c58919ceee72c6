"""Domain errors raised low, mapped to JSON HTTP errors in one place (the middleware)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg2
import psycopg2.errors
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .segment import is_segment_route, segment_error

__all__ = ["QUERY_TIMEOUT_MESSAGE", "RETRY_AFTER_SECONDS", "ApiError", "error_middleware", "json_error"]

log = structlog.get_logger("nself_analytics.http")
# What a 503 asks the client to wait before retrying (seconds).
RETRY_AFTER_SECONDS = "2"
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
           **extra: Any) -> web.Response:
    """An error response; on Segment's routes in Segment's shape too (segment.py)."""
    if is_segment_route(request):
        fields, headers = segment_error(status, headers or {})
        extra = {**fields, **extra}
    return json_error(status, message, headers, **extra)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(request, exc.status, exc.message, exc.headers, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {404: "Not found", 405: "Method not allowed"}.get(exc.status, exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return _error(request, exc.status, message, headers)
    except (HttpProcessingError, RequestPayloadError) as exc:  # e.g. a body that is not the gzip it claims to be
        code = getattr(exc, "code", 400)
        if not 400 <= code < 500:
            raise
        return _error(request, code, "Invalid request body: it does not decode as its Content-Encoding says")
    except psycopg2.errors.QueryCanceled:
        log.warning("query_timeout", path=request.path)
        return _error(request, 503, QUERY_TIMEOUT_MESSAGE, {"Retry-After": RETRY_AFTER_SECONDS})
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        log.warning("postgres_unavailable", path=request.path, error=str(exc).strip()[:200])
        return _error(request, 503, "PostgreSQL is unavailable; retry later", {"Retry-After": RETRY_AFTER_SECONDS})
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("redis_unavailable", path=request.path, error=str(exc).strip()[:200])
        return _error(request, 503, "Redis is unavailable; retry later", {"Retry-After": RETRY_AFTER_SECONDS})
    except (ConnectionError, TimeoutError) as exc:  # a store's socket refused or timed out
        log.warning("store_unavailable", path=request.path, error=str(exc).strip()[:200])
        return _error(request, 503, "A store is unavailable; retry later", {"Retry-After": RETRY_AFTER_SECONDS})
    except Exception:
        log.exception("unhandled_error", path=request.path)
        return _error(request, 500, "Internal server error")
