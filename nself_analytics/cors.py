"""CORS for ingest from any origin: routes named ``ingest.*`` answer preflights and carry the headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["CORS_HEADERS", "cors_middleware", "preflight"]

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding, X-Request-Id",
    "Access-Control-Expose-Headers": "Retry-After, X-Request-Id",
    "Access-Control-Max-Age": "86400",
}


def _is_ingest(request: web.Request) -> bool:
    route = request.match_info.route
    return bool(route.name and route.name.startswith("ingest."))


@web.middleware
async def cors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    if _is_ingest(request):
        response.headers.update(CORS_HEADERS)
    return response


async def preflight(request: web.Request) -> web.Response:
    """Answer an OPTIONS preflight of an ingest route (headers added by the middleware)."""
    return web.Response(status=204)
