"""PostHog's capture API, so PostHog's SDKs (posthog-python, posthog-node, posthog-js) send here unchanged when
given this instance's host and a write key as their project API key.

Paths (read from the SDKs' request code): posthog-python and posthog-node post ``/batch/``; posthog-js posts
``/e/`` (``/i/v0/e/`` in some versions), fetches ``GET /array/{token}/config`` and, when the config says there are
flags, ``/flags/?v=2``. PostHog's own server also takes ``/capture``, ``/track`` and ``/engage``, and ``/decide`` is
the flags call of older clients. Under ``/analytics`` these are served with and without the trailing slash, except
``/batch`` and ``/track``, which stay this service's own ingest routes: there only ``/batch/`` and ``/track/`` are
PostHog's. At the root (the host an SDK is given: host/app.py), every path is PostHog's, ``/batch`` and ``/track``
included.

The key is a write key, read by the access check (web/access.py) from the Authorization header or, as the SDKs
send it, from the body's ``api_key``, ``token`` or an event's ``properties.token``. Success is 200
``{"status": 1}`` (posthog-js retries anything else but a 4xx); errors are the usual JSON with 400, 401, 413 (past
the byte bounds, or more than 100 events: posthog-node then halves its batch), 429 and 503 with Retry-After.
There are no feature flags here: ``/flags`` and ``/decide`` answer that there are none, and the config says so,
with no session recording and no site apps, so the browser SDK makes no further call.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import web

from ..ingest.normalize import MessageError
from ..ingest.posthog import translate
from ..ingest.service import Ingestor, RequestMeta
from ..web import params
from ..web.appkeys import PRODUCER, REDIS, SETTINGS
from ..web.auth import grant_of
from ..web.cors import preflight
from ..web.errors import ApiError
from ..web.posthog_body import CAPTURE_PATHS, CONFIG_PATHS, FLAGS_PATHS, POSTHOG_ROUTE_PREFIX, read_posthog_body

__all__ = ["AT_ROOT", "CAPTURE_PATHS", "CONFIG_PATHS", "FLAGS_PATHS", "routes"]

routes = web.RouteTableDef()

# At the root: every PostHog path, the root's /batch and /track forwarded to the sub-app's PostHog ones.
AT_ROOT: dict[str, str] = {**{p: p for p in (*CAPTURE_PATHS, *FLAGS_PATHS, *CONFIG_PATHS)},
                           "/batch": "/batch/", "/track": "/track/"}
SUCCESS = {"status": 1}
COMPRESSIONS = ["gzip", "gzip-js", "base64", "lz64"]


async def capture(request: web.Request) -> web.Response:
    """Record a batch, an array or one event of PostHog's; 200 ``{"status": 1}`` once all are queued."""
    body = await read_posthog_body(request)  # read (and its key checked) by the access check
    grant = grant_of(request)  # a public write key (posthog-js's, in a page): new names limited per day
    meta = RequestMeta(received_at=datetime.now(UTC), ip=request.remote, user_agent=request.headers.get("User-Agent"),
                       public=bool(grant and grant.public))
    settings = request.config_dict[SETTINGS]
    try:
        items = translate(body, meta.received_at, account=params.account(request),
                          retention_days=settings.retention_days,
                          query_sent_at=request.query.get("sent_at") or request.query.get("_"))
    except MessageError as exc:
        raise ApiError(400, str(exc), **({} if exc.index is None else {"index": exc.index})) from None
    app = request.config_dict
    await Ingestor(app[PRODUCER], app[REDIS], settings).accept(items, meta)
    return web.json_response(SUCCESS)


async def flags(request: web.Request) -> web.Response:
    """No feature flags: the answer of /flags (v2 and later) and, for older clients, /decide's fields."""
    await read_posthog_body(request)  # a body must be there (its key was checked)
    return web.json_response({
        "flags": {}, "errorsWhileComputingFlags": False, "requestId": str(uuid.uuid4()),
        "featureFlags": {}, "featureFlagPayloads": {}, "quotaLimited": [],
        "supportedCompression": COMPRESSIONS, "sessionRecording": False, "siteApps": [],
    })


async def config(request: web.Request) -> web.Response:
    """The browser SDK's remote config: no flags, no recordings, no surveys, no site apps (it calls nothing more)."""
    return web.json_response({
        "supportedCompression": COMPRESSIONS, "hasFeatureFlags": False, "sessionRecording": False,
        "siteApps": [], "surveys": False, "heatmaps": False, "autocaptureExceptions": False,
        "captureDeadClicks": False, "capturePerformance": False, "defaultIdentifiedOnly": True,
    })


def _name(path: str) -> str:
    return POSTHOG_ROUTE_PREFIX + (path.strip("/").replace("/", "_").replace("{token}", "token")
                                   + ("_slash" if path.endswith("/") else ""))


for _path in CAPTURE_PATHS:
    routes.post(_path, name=_name(_path))(capture)
for _path in FLAGS_PATHS:
    routes.post(_path, name=_name(_path))(flags)
for _path in CONFIG_PATHS:
    routes.get(_path, name=_name(_path))(config)
for _path in (*CAPTURE_PATHS, *FLAGS_PATHS):
    routes.route("OPTIONS", _path, name=_name(_path).replace(POSTHOG_ROUTE_PREFIX, POSTHOG_ROUTE_PREFIX + "options."))(
        preflight)
