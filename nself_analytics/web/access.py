"""Route access: each route's credential is declared once, in its ``Route`` of the route table (web/routing.py,
collected in ``api.ROUTES``), and enforced here, for every route (``check_access``, called by the edge middleware).

- ``PUBLIC``: no credential. A valid token, when sent, is still recognised (``/health`` then shows details).
- ``WRITE``: a write key or a token, as ``Authorization: Bearer``, HTTP Basic user name, or ``writeKey`` in the
  JSON body (navigator.sendBeacon can send no headers); on PostHog's routes, the project key of the PostHog body
  (``api_key``, ``token`` or an event's ``properties.token``: web/posthog_body.py).
- ``TOKEN``: a token (full or account-bound); site-scoped tokens are refused (403).
- ``SITE``: a token, or a site-scoped token whose site is the request's ``site`` parameter.

A missing or unknown credential is a 401; a valid one that does not open the route (a site token elsewhere, an
account-bound credential naming another account) a 403. The app factory refuses to build an app with a route the
table does not declare, so an undeclared route cannot be served.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from ..config import Settings
from . import params
from .auth import GRANT, bearer_or_basic, token_grant, write_grant
from .body import read_json_body
from .credentials import Grant
from .errors import ApiError
from .posthog_body import is_posthog_route, posthog_key, read_posthog_body

__all__ = ["BOUND_ACCESS", "Access", "bind_access", "check_access", "route_key"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="nself-analytics"'}


class Access(StrEnum):
    """The credential a route needs."""

    PUBLIC = "public"
    WRITE = "write"
    TOKEN = "token"
    SITE = "site"


BOUND_ACCESS: web.AppKey[dict[AbstractRoute, Access]] = web.AppKey("bound_access", dict)


def route_key(route: AbstractRoute) -> tuple[str, str]:
    """(method, path) of a route as the table declares it (HEAD rides with GET), before the app is mounted."""
    path = route.resource.canonical if route.resource is not None else ""
    return ("GET" if route.method == "HEAD" else route.method), path


def bind_access(app: web.Application, table: Mapping[tuple[str, str], Access]) -> None:
    """Attach each route of ``app`` to its declared access; RuntimeError naming the routes without one."""
    bound: dict[AbstractRoute, Access] = {}
    missing = []
    for route in app.router.routes():
        key = route_key(route)
        if key in table:
            bound[route] = table[key]
        else:
            missing.append(key)
    if missing:
        raise RuntimeError("routes without an access declaration (declare each as a Route in its module's ROUTES): "
                           f"{sorted(missing)}")
    app[BOUND_ACCESS] = bound


async def _body_key(request: web.Request) -> object:
    """The write key a body carries: ``writeKey`` in ours, the project key (``api_key``, ``token``) in PostHog's."""
    if is_posthog_route(request):
        return posthog_key(await read_posthog_body(request))  # unwrapped once, kept for the handler
    body = await read_json_body(request)  # kept on the request for the handler
    return body.get("writeKey") or body.get("write_key")


async def _write(request: web.Request, settings: Settings) -> Grant:
    key = bearer_or_basic(request)
    if key is None:
        found = await _body_key(request)
        if not found:
            raise ApiError(401, "Missing write key: send Authorization: Bearer <write key> or writeKey in the body")
        if not isinstance(found, str):
            raise ApiError(401, "Invalid write key")
        key = found
    grant = write_grant(settings, key)
    if grant is None:
        raise ApiError(401, "Invalid write key")
    return grant


def _token(request: web.Request, access: Access, settings: Settings) -> Grant:
    key = bearer_or_basic(request)
    if key is None:
        raise ApiError(401, "Missing secret token: send Authorization: Bearer <secret token>", headers=_CHALLENGE)
    grant = token_grant(settings, key)
    if grant is None:
        raise ApiError(401, "Invalid secret token", headers=_CHALLENGE)
    if grant.role == "site":
        if access is not Access.SITE:
            raise ApiError(403, f"This token reads only the web stats (/api/*) of {grant.site}")
        if request.query.get("site", "").strip().lower() != grant.site:
            raise ApiError(403, f"This token reads only the web stats of site={grant.site}")
    return grant


async def check_access(request: web.Request, access: Access, settings: Settings) -> None:
    """Refuse the request (ApiError 401/403) unless its credential opens a route of ``access``; keep the grant on
    the request. Called for every routed request by the edge middleware (web/edge.py)."""
    if access is Access.PUBLIC:
        key = bearer_or_basic(request)
        grant = token_grant(settings, key) if key else None
        if grant is not None:
            request[GRANT] = grant
        return
    request[GRANT] = await _write(request, settings) if access is Access.WRITE else _token(request, access, settings)
    params.account(request)  # 403 now when the credential is bound to another account than the one named
