"""The beacon: GET /a.js (the script) and POST /hit (the public endpoint it sends page views to).

/hit takes no key (a script in a web page cannot keep a secret) and answers CORS ``*``: its route
names start with ``ingest.`` so the CORS middleware serves it like the other ingest routes. Instead of a key
it is guarded by ANALYTICS_SITES (403 for other sites; a site's account) and per-IP and per-site token
buckets (429 + Retry-After): see ingest/site_guard.py; the rules themselves are Ingestor.admit_hit
(ingest/service.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from ..ingest.hits import parse_hit
from ..ingest.normalize import MessageError
from ..ingest.service import Ingestor, RequestMeta
from ..web.appkeys import PRODUCER, REDIS, SETTINGS
from ..web.body import read_json_body
from ..web.cors import preflight
from ..web.errors import ApiError
from ..web.routing import PUBLIC, Route
from .scripts import script_handler

__all__ = ["BEACON_PATH", "ROUTES"]

BEACON_PATH = Path(__file__).resolve().parent.parent / "static" / "a.js"

async def hit(request: web.Request) -> web.Response:
    """Record one page view sent by the beacon; answers 202 once it is in the ingest queue."""
    body = await read_json_body(request)
    meta = RequestMeta(received_at=datetime.now(UTC), ip=request.remote,  # behind a trusted proxy: forwarded
                       user_agent=request.headers.get("User-Agent"), public=True)
    try:
        item = parse_hit(body, meta.received_at)
    except MessageError as exc:
        raise ApiError(400, str(exc)) from None
    app = request.config_dict
    # site -> account, rate buckets, session, bot marking; then the queue
    await Ingestor(app[PRODUCER], app[REDIS], app[SETTINGS]).accept_hit(item, meta)
    return web.json_response({"status": "success"}, status=202)


ROUTES = [
    Route("GET", "/a.js", script_handler(BEACON_PATH, "The page-view beacon script (minified, under 2 KB)."), PUBLIC,
          name="beacon", tags=("Web analytics",), summary="The page-view beacon script"),
    Route("POST", "/hit", hit, PUBLIC, name="ingest.hit", tags=("Web analytics",), op_id="hit",
          summary="Record a page view sent by the beacon"),
    Route("OPTIONS", "/hit", preflight, PUBLIC, name="ingest.options.hit", tags=("Web analytics",),
          op_id="preflight_hit", summary="CORS preflight of /hit", note="CORS preflight"),
]
