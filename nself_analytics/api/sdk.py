"""GET /sdk/analytics.js: the browser SDK's script-tag bundle (built from sdk/js by its build script).

Public like the beacon: a web page loads it, and any site may (CORS ``*``, cross-origin resource policy).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .scripts import script_handler

__all__ = ["SDK_PATH", "routes"]

routes = web.RouteTableDef()

SDK_PATH = Path(__file__).resolve().parent.parent / "static" / "sdk" / "analytics.js"

routes.get("/sdk/analytics.js", name="sdk")(
    script_handler(SDK_PATH, "The browser SDK (window.NselfAnalytics; replays the async snippet's buffered calls)."))
