"""Plausible's and Umami's tracker endpoints, so their scripts send here by changing only their host:
``POST /api/event`` (Plausible: 202) and ``POST /api/send`` (Umami: 200), under ``/analytics`` and at the root.

Like ``/hit`` they take no key (a script in a web page cannot keep one) and answer CORS ``*`` (route names start
with ``ingest.``); they are guarded instead by ANALYTICS_SITES, the per-IP and per-site rate limits and the bot
rules: Ingestor.admit_hit (ingest/service.py), as for the beacon. The translators are ingest/plausible.py and
ingest/umami.py. ``/api/*`` is otherwise the web stats' read namespace (GET only): these two are its only POSTs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..ingest import plausible, umami
from ..ingest.hits import Hit
from ..ingest.normalize import MessageError
from ..ingest.service import Ingestor, RequestMeta
from ..web.appkeys import PRODUCER, REDIS, SETTINGS
from ..web.body import read_json_body
from ..web.cors import preflight
from ..web.errors import ApiError
from ..web.routing import PUBLIC, Route

__all__ = ["AT_ROOT", "ROUTES"]

AT_ROOT = {"/api/event": "/api/event", "/api/send": "/api/send"}


async def _record(request: web.Request, translate: Callable[[Any, datetime], Hit | None]) -> None:
    body = await read_json_body(request)
    app = request.config_dict
    meta = RequestMeta(received_at=datetime.now(UTC), ip=request.remote, user_agent=request.headers.get("User-Agent"),
                       public=True)  # as the beacon: new event names limited per day
    try:
        item = translate(body, meta.received_at)
    except MessageError as exc:
        raise ApiError(400, str(exc)) from None
    if item is None:
        return
    # as a beacon hit: site -> account, rate buckets, session, bot marking; then the queue
    await Ingestor(app[PRODUCER], app[REDIS], app[SETTINGS]).accept_hit(item, meta)


async def plausible_event(request: web.Request) -> web.Response:
    """Record one event of Plausible's tracker; 202 as Plausible answers."""
    await _record(request, plausible.translate)
    return web.json_response({"status": "success"}, status=202)


async def umami_send(request: web.Request) -> web.Response:
    """Record one event of Umami's tracker or client; 200 as Umami answers."""
    sites = request.config_dict[SETTINGS].sites
    await _record(request, lambda body, received_at: umami.translate(body, received_at, sites))
    return web.json_response({"status": "success"})


_TAGS = ("Web analytics",)
ROUTES = [
    Route("POST", "/api/event", plausible_event, PUBLIC, name="ingest.plausible_event", tags=_TAGS,
          op_id="plausible_event", summary="Plausible's events API: a page view or a custom event"),
    Route("POST", "/api/send", umami_send, PUBLIC, name="ingest.umami_send", tags=_TAGS, op_id="umami_send",
          summary="Umami's collect API: a page view or a custom event"),
    Route("OPTIONS", "/api/event", preflight, PUBLIC, name="ingest.options.plausible_event", tags=_TAGS,
          op_id="preflight_api_event", summary="CORS preflight of /api/event", note="CORS preflight"),
    Route("OPTIONS", "/api/send", preflight, PUBLIC, name="ingest.options.umami_send", tags=_TAGS,
          op_id="preflight_api_send", summary="CORS preflight of /api/send", note="CORS preflight"),
]
