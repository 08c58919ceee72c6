"""Serving the scripts web pages load (the beacon, the browser SDK): public, cacheable, embeddable anywhere."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path

from aiohttp import web

__all__ = ["SCRIPT_CACHE", "script_handler"]

# An hour: sites pick up a new script within the hour, browsers and proxies spare the service; the ETag makes
# revalidation cheap.
SCRIPT_CACHE = "public, max-age=3600"


@lru_cache(maxsize=8)
def _load(path: Path) -> tuple[bytes, str]:
    body = path.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def script_handler(path: Path, doc: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A GET handler answering ``path`` (read once) as JavaScript, with an ETag and 304 on If-None-Match."""

    async def handler(request: web.Request) -> web.Response:
        body, etag = _load(path)
        # Embeddable by any site, including ones that isolate themselves (COEP) or load it with crossorigin/SRI.
        headers = {"Cache-Control": SCRIPT_CACHE, "ETag": etag, "X-Content-Type-Options": "nosniff",
                   "Cross-Origin-Resource-Policy": "cross-origin", "Access-Control-Allow-Origin": "*"}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="application/javascript", charset="utf-8", headers=headers)

    handler.__doc__ = doc
    return handler
