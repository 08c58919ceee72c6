"""The one middleware every request of the analytics app passes: request id, forwarded headers, error shapes,
CORS, the NUL guard and the route's credential, in this order, in one coroutine.

They were six middlewares (a coroutine frame, a ``partial`` call and a ``config_dict`` lookup each, per request),
which cost one-event ingest requests (``/track``) more than their own handler did. What a route needs is
looked up once, at start-up (:class:`RoutePolicy`), so a request pays one dictionary lookup for it. Each step
keeps its own module and its own rules: ``web/forwarded.py``, ``web/errors.py``, ``web/cors.py``, ``web/guards.py``,
``web/access.py``.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import structlog
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute
from structlog.contextvars import bind_contextvars, unbind_contextvars

from ..config import Settings
from .access import BOUND_ACCESS, Access, check_access
from .cors import CORS_HEADERS, is_ingest_route
from .errors import ApiError, error_response
from .forwarded import forwarded_request
from .guards import check_nul
from .segment import is_segment_name

__all__ = ["ROUTE_POLICIES", "RoutePolicy", "bind_policies", "edge_middleware"]

log = structlog.get_logger("nself_analytics.web.edge")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RoutePolicy(NamedTuple):
    """What one route needs of every request, decided once at start-up."""

    access: Access
    cors: bool  # an ingest route: CORS headers on every answer, errors included
    segment: bool  # a Segment route: errors in Segment's shape too


ROUTE_POLICIES: web.AppKey[dict[AbstractRoute, RoutePolicy]] = web.AppKey("route_policies", dict)


def bind_policies(app: web.Application) -> dict[AbstractRoute, RoutePolicy]:
    """Each route's policy from its declared access (``access.bind_access`` first) and its name."""
    policies = {route: RoutePolicy(access, is_ingest_route(route), is_segment_name(route.name))
                for route, access in app[BOUND_ACCESS].items()}
    app[ROUTE_POLICIES] = policies
    return policies


def edge_middleware(settings: Settings, policies: dict[AbstractRoute, RoutePolicy]) -> Callable[..., Awaitable[
        web.StreamResponse]]:
    """The middleware of an app whose routes' policies are ``policies`` (filled by :func:`bind_policies`)."""
    networks = settings.trusted_proxies
    # request ids: this app's random prefix and a counter (32 hex digits, as a uuid's), not a uuid4 per request:
    # os.urandom is a system call per request, where a CPU-starved worker was preempted most (stall sampling)
    prefix = secrets.token_hex(8)
    numbers = itertools.count(1)

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id") or f"{prefix}{next(numbers):016x}"
        bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        try:
            request = forwarded_request(request, networks)
            route = request.match_info.route
            policy = policies.get(route)
            try:
                check_nul(request)
                if policy is None:
                    if request.match_info.http_exception is None:
                        raise ApiError(500, "Route without an access declaration")
                else:
                    await check_access(request, policy.access, settings)
                response = await handler(request)
            except Exception as exc:  # mapped to a JSON error, or raised again (a redirect)
                response = error_response(request, exc, segment=policy is not None and policy.segment)
            if policy is not None and policy.cors:
                response.headers.update(CORS_HEADERS)
            if response.status >= 400:  # only failures: a line per accepted event would cost ingest throughput
                log.info("request_failed", method=request.method, path=request.path, status=response.status,
                         ms=round((time.perf_counter() - started) * 1000, 2))
        finally:
            unbind_contextvars("request_id")
        response.headers["X-Request-Id"] = request_id
        return response

    return edge
