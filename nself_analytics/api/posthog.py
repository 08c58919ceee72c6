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
from typing import Annotated

import msgspec
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
from ..web.routing import PUBLIC, WRITE, Route

__all__ = ["AT_ROOT", "ROUTES"]

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
        if exc.index is None:
            raise ApiError(400, str(exc)) from None
        raise ApiError(400, str(exc), index=exc.index) from None
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


class ConfigPath(msgspec.Struct, frozen=True):
    """The path of posthog-js's remote config: its project key (not checked: the config is the same for all)."""

    token: Annotated[str, msgspec.Meta(description="The project API key the SDK was given")]


class RemoteConfig(msgspec.Struct, frozen=True, rename="camel"):
    """posthog-js's remote config: nothing to fetch, record or run."""

    supported_compression: list[str]
    has_feature_flags: bool = False
    session_recording: bool = False
    site_apps: list[str] = []
    surveys: bool = False
    heatmaps: bool = False
    autocapture_exceptions: bool = False
    capture_dead_clicks: bool = False
    capture_performance: bool = False
    default_identified_only: bool = True


async def config(request: web.Request, path: ConfigPath) -> RemoteConfig:
    """The browser SDK's remote config: no flags, no recordings, no surveys, no site apps (it calls nothing more)."""
    return RemoteConfig(supported_compression=COMPRESSIONS)


def _slug(path: str) -> str:
    """``/i/v0/e/`` -> ``i_v0_e_slash``: the route's name and operationId after their prefix."""
    return path.strip("/").replace("/", "_").replace("{token}", "token") + ("_slash" if path.endswith("/") else "")


_TAGS = ("PostHog API",)
ROUTES = [
    *(Route("POST", path, capture, WRITE, name=POSTHOG_ROUTE_PREFIX + _slug(path), tags=_TAGS,
            op_id=f"posthog_{_slug(path)}", summary="PostHog capture: record a batch, an array or one event")
      for path in CAPTURE_PATHS),
    *(Route("POST", path, flags, WRITE, name=POSTHOG_ROUTE_PREFIX + _slug(path), tags=_TAGS,
            op_id=f"posthog_{_slug(path)}", summary="PostHog feature flags: there are none")
      for path in FLAGS_PATHS),
    *(Route("GET", path, config, PUBLIC, name=POSTHOG_ROUTE_PREFIX + _slug(path), tags=_TAGS,
            op_id=f"posthog_{_slug(path)}", summary="posthog-js remote config: no flags, no recordings, no site apps",
            params=ConfigPath, answer=RemoteConfig)
      for path in CONFIG_PATHS),
    *(Route("OPTIONS", path, preflight, PUBLIC, name=f"{POSTHOG_ROUTE_PREFIX}options.{_slug(path)}", tags=_TAGS,
            op_id=f"preflight_posthog_{_slug(path)}", summary=f"CORS preflight of {path}", note="CORS preflight")
      for path in (*CAPTURE_PATHS, *FLAGS_PATHS)),
]
