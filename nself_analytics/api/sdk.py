"""GET /sdk/analytics.js: the browser SDK's script-tag bundle (built from sdk/js by its build script).

Public like the beacon: a web page loads it, and any site may (CORS ``*``, cross-origin resource policy).
"""

from __future__ import annotations

from pathlib import Path

from ..web.routing import PUBLIC, Route
from .scripts import script_handler

__all__ = ["ROUTES", "SDK_PATH"]

SDK_PATH = Path(__file__).resolve().parent.parent / "static" / "sdk" / "analytics.js"

ROUTES = [
    Route("GET", "/sdk/analytics.js", script_handler(
        SDK_PATH, "The browser SDK (window.NselfAnalytics; replays the async snippet's buffered calls)."), PUBLIC,
        name="sdk", tags=("Web analytics",), op_id="sdk_script", summary="The browser SDK (script-tag bundle)"),
]
