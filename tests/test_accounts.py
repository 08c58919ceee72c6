"""Accounts are a boundary: a bound write key writes only its account, a bound token reads only its account on
every read route (web stats included), a site token reads one site's web stats; bare credentials serve all."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from nself_analytics.config import Settings
from nself_analytics.web.access import BOUND_ACCESS, Access, route_key
from nself_analytics.web.appkeys import ANALYTICS_APP

from .conftest import SECRET, WRITE_KEY, pg_execute
from .test_beacon_guard import CHROME, queued

TOKEN_A = "tok_alpha_account_0123456"
SITE_TOKEN = "tok_site_shared_example_01"
KEY_A, KEY_B = "wk_alpha_key", "wk_bravo_key"
SITE = "shared.example"


def bearer(token: str, account: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if account:
        headers["X-Source-Account-Id"] = account
    return headers


async def seeded(make_client: Any, settings: Settings, drain: Any) -> tuple[Any, Settings]:
    bound = settings.with_(secret_token=f"{SECRET},tenant_a={TOKEN_A},site:{SITE}={SITE_TOKEN}",
                           write_keys=(WRITE_KEY, f"tenant_a={KEY_A}", f"tenant_b={KEY_B}"),
                           quota_enabled=True)
    client = await make_client(bound)
    for key, name in ((KEY_A, "alpha"), (KEY_B, "bravo"), (WRITE_KEY, "primary")):
        for path, body in (("/analytics/track", {"event": f"{name}_event", "user_id": f"{name}_user",
                                                  "properties": {f"{name}_prop": 1}}),
                           ("/analytics/page", {"anonymousId": f"{name}_visitor",
                                                "properties": {"url": f"https://{SITE}/{name}-page"}})):
            response = await client.post(path, json=body, headers={**bearer(key), "User-Agent": CHROME})
            assert response.status == 202, await response.text()
    await drain()
    return client, bound


async def test_bound_write_key_writes_only_its_account(make_client: Any, settings: Settings, drain: Any) -> None:
    client, bound = await seeded(make_client, settings, drain)
    rows = pg_execute(bound.database_url, "SELECT DISTINCT source_account_id, event FROM np_analytics_events "
                                          "WHERE type = 'track' ORDER BY 1")
    assert rows == [("primary", "primary_event"), ("tenant_a", "alpha_event"), ("tenant_b", "bravo_event")]
    before = queued(bound)
    for headers in (bearer(KEY_A, "tenant_b"), bearer(KEY_A, "primary")):
        response = await client.post("/analytics/track", json={"event": "x", "user_id": "u"}, headers=headers)
        assert response.status == 403 and (await response.json())["status"] == "error"
        batch = await client.post("/analytics/v1/batch", json={"batch": [{"type": "track", "event": "x",
                                                                          "userId": "u"}]}, headers=headers)
        assert batch.status == 403
    assert queued(bound) == before
    # the bound key with its own account named, or none: fine; a bare key still writes anywhere
    assert (await client.post("/analytics/track", json={"event": "x", "user_id": "u"},
                              headers=bearer(KEY_A, "tenant_a"))).status == 202
    assert (await client.post("/analytics/track", json={"event": "x", "user_id": "u"},
                              headers=bearer(WRITE_KEY, "tenant_z"))).status == 202


def _read_urls(client: Any) -> list[tuple[str, str]]:
    """(path, url) of every GET read route, with parameters that make each answer (a new read route with a
    required parameter: add it to the query, so the route is really read here)."""
    today = datetime.now(UTC).date()
    query = (f"?start_date={today - timedelta(days=1)}&end_date={today}&site={SITE}&steps=alpha_event,zulu_event"
             "&start_event=alpha_event&stop_event=zulu_event&events=alpha_event&goal=path:/alpha-page")
    values = {"id": "1", "event": "alpha_event", "name": "alpha_event", "job": "00000000-0000-0000-0000-000000000001"}
    sub = client.app[ANALYTICS_APP]
    urls = []
    for route in sub.router.routes():
        path = route_key(route)[1].removeprefix("/analytics")
        if route.method == "GET" and sub[BOUND_ACCESS][route] in (Access.TOKEN, Access.SITE):
            urls.append((path, "/analytics" + re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: values[m.group(1)], path)
                         + query))
    return urls


async def test_bound_token_reads_only_its_account_on_every_read_route(
        make_client: Any, settings: Settings, drain: Any) -> None:
    client, _bound = await seeded(make_client, settings, drain)
    urls = _read_urls(client)
    assert len(urls) > 25 and any(p.startswith("/api/") for p, _ in urls)
    seen_alpha = set()
    for path, url in urls:
        response = await client.get(url, headers=bearer(TOKEN_A))
        assert response.status in (200, 404), (path, response.status, await response.text())
        text = await response.text()
        assert "bravo" not in text and "primary_" not in text, path
        if "alpha" in text.replace("alpha_event", "") or ("alpha" in text and "/events" in path):
            seen_alpha.add(path)
        as_header = await client.get(url, headers=bearer(SECRET, "tenant_a"))
        assert as_header.status == response.status, path
        refused = await client.get(url, headers=bearer(TOKEN_A, "tenant_b"))
        assert refused.status == 403, path
    # the reads really show data: tenant_a's own rows appear, and tenant_b's appear to a bare token naming it
    assert {"/events", "/api/pages"} <= seen_alpha, seen_alpha
    assert SITE in await (await client.get("/analytics/sites", headers=bearer(TOKEN_A))).text()
    events = await (await client.get("/analytics/events", headers=bearer(SECRET, "tenant_b"))).text()
    assert "bravo_event" in events
    pages = await (await client.get(f"/analytics/api/pages?site={SITE}", headers=bearer(SECRET, "tenant_b"))).text()
    assert "bravo-page" in pages and "alpha-page" not in pages
    counts = await (await client.get("/analytics/counters/bravo_event", headers=bearer(TOKEN_A))).json()
    assert counts["counts"]["total"] == 0
    counts = await (await client.get("/analytics/counters/bravo_event", headers=bearer(SECRET, "tenant_b"))).json()
    assert counts["counts"]["total"] == 1


async def test_bound_token_cannot_touch_another_accounts_saved_objects(
        make_client: Any, settings: Settings, drain: Any) -> None:
    client, _bound = await seeded(make_client, settings, drain)
    as_b = bearer(SECRET, "tenant_b")
    quota = await (await client.post("/analytics/quotas", json={"event": "bravo_event", "limit": 5, "period": "day"},
                                      headers=as_b)).json()
    funnel = await (await client.post("/analytics/funnels", json={"name": "f", "steps": ["a", "b"]},
                                      headers=as_b)).json()
    quota_id, funnel_id = quota["quota"]["id"], funnel["funnel"]["id"]
    a = bearer(TOKEN_A)
    assert (await client.get(f"/analytics/quotas/{quota_id}", headers=a)).status == 404
    assert (await client.put(f"/analytics/quotas/{quota_id}", json={"event": "x", "limit": 1, "period": "day"},
                             headers=a)).status == 404
    assert (await client.delete(f"/analytics/quotas/{quota_id}", headers=a)).status == 404
    assert (await client.get(f"/analytics/funnels/{funnel_id}", headers=a)).status == 404
    assert (await client.delete(f"/analytics/funnels/{funnel_id}", headers=a)).status == 404
    assert (await client.get(f"/analytics/quotas/{quota_id}", headers=as_b)).status == 200
    created = await (await client.post("/analytics/quotas", json={"event": "alpha_event", "limit": 1,
                                                                  "period": "day"}, headers=a)).json()
    assert (await client.get(f"/analytics/quotas/{created['quota']['id']}", headers=bearer(SECRET, "tenant_a"))
            ).status == 200


async def test_site_token_reads_only_its_sites_web_stats(make_client: Any, settings: Settings, drain: Any) -> None:
    client, _bound = await seeded(make_client, settings, drain)
    token = bearer(SITE_TOKEN)
    pages = await client.get(f"/analytics/api/pages?site={SITE}", headers=token)
    assert pages.status == 200
    text = await pages.text()
    assert "primary-page" in text and "alpha-page" not in text and "bravo-page" not in text
    assert (await client.get("/analytics/api/pages?site=other.example", headers=token)).status == 403
    assert (await client.get(f"/analytics/api/pages?site={SITE}", headers=bearer(SITE_TOKEN, "tenant_b"))
            ).status == 403
    for path in ("/analytics/events", "/analytics/sites", "/analytics/quotas", f"/analytics/metrics?site={SITE}"):
        assert (await client.get(path, headers=token)).status == 403, path
    assert (await client.post("/analytics/track", json={"event": "x", "user_id": "u"}, headers=token)).status == 401
