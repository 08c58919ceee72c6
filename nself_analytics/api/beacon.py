"""The beacon: GET /a.js (the script) and POST /hit (the public endpoint it sends page views to).

/hit takes no key (a script in a web page cannot keep a secret) and answers CORS ``*``: its route
names start with ``ingest.`` so the CORS middleware serves it like the other ingest routes. Instead of a key
it is guarded by ANALYTICS_SITES (403 for other sites; a site's account) and per-IP and per-site token
buckets (429 + Retry-After): see ingest/site_guard.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from redis.exceptions import RedisError

from ..ingest.enrich import browser_hit_is_bot, daily_salt
from ..ingest.hits import FLOOD_LIMIT_PER_MINUTE, count_hit, derived_session, parse_hit
from ..ingest.normalize import MessageError
from ..ingest.service import RequestMeta
from ..ingest.site_guard import RATE_IP_PREFIX, RATE_SITE_PREFIX, ip_key, site_account, take
from ..model.record import EventRecord
from ..web.appkeys import REDIS, SETTINGS
from ..web.body import read_json_body
from ..web.cors import preflight
from ..web.errors import ApiError
from .ingest import client_ip, enqueue
from .scripts import script_handler

__all__ = ["BEACON_PATH", "routes"]

routes = web.RouteTableDef()

BEACON_PATH = Path(__file__).resolve().parent.parent / "static" / "a.js"

routes.get("/a.js", name="beacon")(script_handler(BEACON_PATH, "The page-view beacon script (minified, under 2 KB)."))


@routes.post("/hit", name="ingest.hit")
async def hit(request: web.Request) -> web.Response:
    """Record one page view sent by the beacon; answers 202 once it is in the ingest queue."""
    body = await read_json_body(request)
    meta = RequestMeta(received_at=datetime.now(UTC), ip=client_ip(request),
                       user_agent=request.headers.get("User-Agent"))
    try:
        item = parse_hit(body, meta.received_at)
    except MessageError as exc:
        raise ApiError(400, str(exc)) from None
    record = item.record
    assert isinstance(record, EventRecord)
    site = str(record.site)  # parse_hit requires it
    settings = request.config_dict[SETTINGS]
    account = site_account(settings.sites, site)
    if account is None:
        raise ApiError(403, f"Hits for {site} are not accepted here (ANALYTICS_SITES)")
    record.source_account_id = account
    redis = request.config_dict[REDIS]
    buckets = []
    if settings.hit_rate_ip is not None:
        # an IP, whatever the account; keyed by a keyed hash, so Redis never holds the raw address
        buckets.append((RATE_IP_PREFIX + ip_key(meta.ip, settings.secret_token), settings.hit_rate_ip))
    if settings.hit_rate_site is not None:
        buckets.append((f"{RATE_SITE_PREFIX}{account}:{site}", settings.hit_rate_site))
    try:
        wait = await take(redis, int(meta.received_at.timestamp() * 1000), buckets)
        if wait:
            raise ApiError(429, "Too many hits; retry later", headers={"Retry-After": str(int(wait))})
        if record.session_id is None:
            record.session_id = derived_session(await daily_salt(redis, meta.received_at), site, meta.ip,
                                                meta.user_agent)
        count = await count_hit(redis, site, record.session_id, meta.received_at)
    except RedisError:
        raise ApiError(503, "Ingest queue is unavailable; retry later", headers={"Retry-After": "2"}) from None
    flooding = count > FLOOD_LIMIT_PER_MINUTE
    record.is_bot = record.is_bot or flooding or browser_hit_is_bot(meta.user_agent)
    await enqueue(request, [item], meta)
    return web.json_response({"status": "success"}, status=202)


routes.route("OPTIONS", "/hit", name="ingest.options.hit")(preflight)
