"""GET /dashboard: the static dashboard page; it asks for the site and the secret token itself."""

from __future__ import annotations

from aiohttp import web

from ..web.routing import PUBLIC, Route
from .docs import PAGE_HEADERS, STATIC_DIR

__all__ = ["ROUTES"]



async def dashboard(request: web.Request) -> web.StreamResponse:
    """The dashboard shell (static/dashboard.html); data comes from the read API with the token."""
    return web.FileResponse(STATIC_DIR / "dashboard.html", headers=PAGE_HEADERS)


ROUTES = [
    Route("GET", "/dashboard", dashboard, PUBLIC, name="dashboard", tags=("Service",),
          summary="Web-analytics and product dashboard"),
]
