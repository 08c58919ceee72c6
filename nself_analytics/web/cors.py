"""CORS for ingest from any origin: routes named ``ingest.*`` answer preflights and carry the headers."""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

__all__ = ["CORS_HEADERS", "is_ingest_route", "preflight"]

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding, X-Request-Id",
    "Access-Control-Expose-Headers": "Retry-After, X-Request-Id",
    "Access-Control-Max-Age": "86400",
}


def is_ingest_route(route: AbstractRoute) -> bool:
    """Whether answers of ``route`` carry the CORS headers (every answer, errors included: web/edge.py adds them)."""
    return bool(route.name and route.name.startswith("ingest."))


async def preflight(request: web.Request) -> web.Response:
    """Answer an OPTIONS preflight of an ingest route (headers added by the edge middleware)."""
    return web.Response(status=204)
