"""Domain errors raised low, mapped to JSON HTTP errors in one place (the middleware)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from .segment import is_segment_route, segment_error

__all__ = ["ApiError", "error_middleware", "json_error"]

log = structlog.get_logger("nself_analytics.http")


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
    except Exception:
        log.exception("unhandled_error", path=request.path)
        return _error(request, 500, "Internal server error")
