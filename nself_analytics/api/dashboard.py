"""GET /dashboard: the static dashboard page; it asks for the site and the secret token itself."""

from __future__ import annotations

from aiohttp import web

from .docs import PAGE_HEADERS, STATIC_DIR

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/dashboard", name="dashboard")
async def dashboard(request: web.Request) -> web.StreamResponse:
    """The dashboard shell (static/dashboard.html); data comes from the read API with the token."""
    return web.FileResponse(STATIC_DIR / "dashboard.html", headers=PAGE_HEADERS)
