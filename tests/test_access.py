"""Route credentials: one route table (api.ROUTES), one middleware. The walk below visits every route of the real
router, so a route added without a declaration, or declared but not enforced, fails here."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web

from nself_analytics.api import ROUTES
from nself_analytics.config import Settings
from nself_analytics.web.access import BOUND_ACCESS, Access, bind_access, route_key
from nself_analytics.web.appkeys import ANALYTICS_APP
from nself_analytics.web.openapi import document
from nself_analytics.web.routing import Route, access_table

from .conftest import SECRET, WRITE_KEY

BOUND_TOKEN = "tok_bound_to_tenant_a_0123"
SITE_TOKEN = "tok_site_example_com_0123"
BOUND_KEY = "wk_bound_to_tenant_a"
# Routes a visitor may call without any credential: changing this list is a security decision.
PUBLIC = {
    ("GET", "/a.js"), ("GET", "/sdk/analytics.js"), ("POST", "/hit"), ("GET", "/health"), ("GET", "/openapi.json"),
    ("GET", "/docs"), ("GET", "/dashboard"), ("GET", "/mcp"), ("GET", "/static/{path}"),
    # other trackers' web endpoints (guarded like /hit) and posthog-js's remote config (static: nothing to read)
    ("POST", "/api/event"), ("POST", "/api/send"), ("GET", "/array/{token}/config"), ("GET", "/array/{token}/config/"),
}
PATH_VALUES = {"id": "1", "event": "play", "name": "play", "path": "dashboard.js", "token": "phc_x",
               "job": "00000000-0000-0000-0000-000000000001"}
SECURITY = {Access.PUBLIC: [], Access.TOKEN: [{"secretToken": []}], Access.SITE: [{"secretToken": []}],
            Access.WRITE: [{"writeKey": []}, {"writeKeyBasic": []}, {}]}


@pytest.fixture
def access_settings(settings: Settings) -> Settings:
    return settings.with_(secret_token=f"{SECRET},tenant_a={BOUND_TOKEN},site:example.com={SITE_TOKEN}",
                          write_keys=(WRITE_KEY, f"tenant_a={BOUND_KEY}"))


def _routes(client: Any) -> list[tuple[str, str, Access]]:
    """(method, path under the mount, access) of every route of the router, as the middleware sees them."""
    sub = client.app[ANALYTICS_APP]
    return [(route.method, route_key(route)[1].removeprefix("/analytics"), sub[BOUND_ACCESS][route])
            for route in sub.router.routes()]


def _url(path: str, access: Access) -> str:
    url = "/analytics" + re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: PATH_VALUES[m.group(1)], path)
    return url + ("?site=example.com" if access is Access.SITE else "")


async def _call(client: Any, method: str, url: str, token: str | None = None, **headers: str) -> int:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = b"{}" if method in ("POST", "PUT") else None
    response = await client.request(method, url, data=body, headers=headers)
    await response.read()
    return int(response.status)


async def test_every_route_refuses_missing_wrong_and_insufficient_credentials(
        make_client: Any, access_settings: Settings) -> None:
    client = await make_client(access_settings)
    walked = _routes(client)
    assert len(walked) > 60  # ingest, Segment, beacon, stats, product, admin, docs: the real router
    public = {(m, p) for m, p, a in walked if a is Access.PUBLIC and m not in ("OPTIONS", "HEAD")}
    assert public == PUBLIC, "a route became public (or stopped being): review it, then update PUBLIC"
    assert {a for m, p, a in walked if m == "OPTIONS"} == {Access.PUBLIC}
    for method, path, access in walked:
        url = _url(path, access)
        where = f"{method} {path} ({access})"
        if access is Access.PUBLIC:
            continue
        assert await _call(client, method, url) == 401, where
        assert await _call(client, method, url, "wrong-credential-0123456789") == 401, where
        assert await _call(client, method, url, SECRET) not in (401, 403), where
        if access is Access.WRITE:
            assert await _call(client, method, url, WRITE_KEY) not in (401, 403), where
            assert await _call(client, method, url, SITE_TOKEN) == 401, where
            assert await _call(client, method, url, BOUND_KEY, **{"X-Source-Account-Id": "tenant_b"}) == 403, where
            assert await _call(client, method, url, BOUND_KEY, **{"X-Source-Account-Id": "tenant_a"}) not in (
                401, 403), where
            continue
        assert await _call(client, method, url, WRITE_KEY) == 401, where
        assert await _call(client, method, url, BOUND_KEY) == 401, where
        assert await _call(client, method, url, BOUND_TOKEN, **{"X-Source-Account-Id": "tenant_b"}) == 403, where
        assert await _call(client, method, url, BOUND_TOKEN) not in (401, 403), where
        if access is Access.TOKEN:
            assert await _call(client, method, url, SITE_TOKEN) == 403, where
        else:
            assert await _call(client, method, url, SITE_TOKEN) not in (401, 403), where
            other_site = url.replace("site=example.com", "site=other.example")
            assert await _call(client, method, other_site, SITE_TOKEN) == 403, where


async def test_write_key_in_the_body_is_checked_by_the_middleware(make_client: Any, access_settings: Settings) -> None:
    client = await make_client(access_settings)
    event = {"event": "e", "user_id": "u"}
    for key, status in [(WRITE_KEY, 202), ("wrong", 401), (SITE_TOKEN, 401), (SECRET, 202), (BOUND_KEY, 202)]:
        response = await client.post("/analytics/track", json={**event, "writeKey": key})
        assert response.status == status, key
    response = await client.post("/analytics/track", json={**event, "writeKey": BOUND_KEY},
                                 headers={"X-Source-Account-Id": "tenant_b"})
    assert response.status == 403
    assert (await client.post("/analytics/track", json={**event, "writeKey": 5})).status == 401


def test_table_declares_exactly_the_routed_operations_and_matches_openapi(settings: Settings) -> None:
    from nself_analytics.host.app import create_app

    app = create_app(settings)
    routed = {route_key(r) for r in app.router.routes()}
    table = access_table(ROUTES)
    assert routed == set(table), "the router and the route table differ"
    paths = document("http://test/analytics", ROUTES)["paths"]
    for (method, path), access in table.items():
        assert paths[path][method.lower()]["security"] == SECURITY[access], (method, path)


async def _report(request: web.Request) -> web.Response:
    return web.json_response({"secret": "data"})


def test_an_undeclared_route_stops_the_app_factory(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The router is built from the table; a route added to it any other way has no credential rule: no app."""
    from nself_analytics.host import app as app_module

    table_routes = app_module.add_routes

    def add_with_a_stray(app: web.Application, routes: Any) -> None:
        table_routes(app, routes)
        app.router.add_get("/new-report", _report)

    monkeypatch.setattr(app_module, "add_routes", add_with_a_stray)
    with pytest.raises(RuntimeError, match="/new-report"):
        app_module.create_app(settings)
    app = web.Application()
    app.router.add_get("/new-report", _report)
    bind_access(app, {**access_table(ROUTES), ("GET", "/new-report"): Access.TOKEN})  # declared: accepted


def test_a_route_without_a_credential_rule_cannot_be_declared() -> None:
    with pytest.raises(TypeError):
        Route("GET", "/new-report", _report, name="report", summary="A report", tags=("Reports",))  # type: ignore
    with pytest.raises(ValueError, match="declared twice"):
        from nself_analytics.web.routing import add_routes

        add_routes(web.Application(), [ROUTES[0], ROUTES[0]])
