"""Drop-in compatibility with Plausible's and Umami's trackers: Plausible's official tracker
(@plausible-analytics/tracker, npm) in Chromium and Umami's official client (@umami/node, npm), unchanged but for
the host, against the live service: their page views and custom events show in the web stats and the goals. Then,
in-process, each input of POST /api/event and /api/send with a hostile test beside it (ANALYTICS_SITES, rate
limits and bot rules apply as for /hit)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from nself_analytics.model.settings_values import Rate, parse_sites

from .browser_support import BROWSER_UA, guarded_page
from .conftest import SECRET, LiveService, pg_execute, serving, wait_for
from .test_dropin_posthog import CLIENTS_DIR

PLAUSIBLE_JS = CLIENTS_DIR / "node_modules" / "@plausible-analytics" / "tracker" / "plausible.js"
WEBSITE = "50429a93-8479-4073-be80-d5d29c09c2ec"


def stats(live: LiveService, report: str, site: str, **params: str) -> Any:
    query = urllib.parse.urlencode({"site": site, "start": int(time.time()) - 3600, "end": int(time.time()) + 60,
                                    **params}, doseq=True)
    request = urllib.request.Request(f"{live.base_url}/analytics/api/{report}?{query}",
                                     headers={"Authorization": f"Bearer {live.secret}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def goal(live: LiveService, site: str, name: str) -> int:
    return int(stats(live, "goals", site, goal=f"event:{name}")["data"][0]["conversions"])


@pytest.fixture
async def plausible_site(live_service: LiveService) -> AsyncIterator[tuple[str, str]]:
    """A website (its own origin) loading Plausible's npm tracker, pointed at the live service's root."""
    domain = f"pl-{uuid.uuid4().hex[:8]}.test"
    endpoint = f"{live_service.base_url}/api/event"

    async def index(request: web.Request) -> web.Response:
        script = (f"import {{ init, track }} from '/plausible.js'\n"
                  f"init({{ domain: {json.dumps(domain)}, endpoint: {json.dumps(endpoint)} }})\n"
                  "window.signup = () => new Promise((resolve) => track('signup', { props: { plan: 'startup' },"
                  " revenue: { amount: 15.99, currency: 'USD' }, callback: resolve }))\n"
                  "window.ready = true\n")
        return web.Response(text=f"<!doctype html><html><head><title>Pricing</title></head><body>"
                                 f"<script type=module>{script}</script></body></html>", content_type="text/html")

    async def tracker(request: web.Request) -> web.FileResponse:
        return web.FileResponse(PLAUSIBLE_JS, headers={"Content-Type": "text/javascript"})

    app = web.Application()
    app.router.add_get("/plausible.js", tracker)
    app.router.add_get("/{tail:.*}", index)
    async with serving(app) as port:
        yield f"http://{domain}:{port}", domain


def test_trackers_are_installed() -> None:
    assert PLAUSIBLE_JS.is_file(), "run: (cd tests/clients && npm ci)"  # fail, never skip
    assert (CLIENTS_DIR / "node_modules" / "@umami" / "node").is_dir(), "run: (cd tests/clients && npm ci)"


async def test_plausible_tracker_in_chromium(live_service: LiveService, plausible_site: tuple[str, str]) -> None:
    origin, domain = plausible_site
    outside: list[str] = []
    answers: list[int] = []
    async with guarded_page({"127.0.0.1", domain}, outside) as page:
        page.on("response", lambda r: answers.append(r.status) if r.url.endswith("/api/event") else None)
        await page.goto(f"{origin}/pricing?utm_source=newsletter", referer="https://news.example/item")
        await page.wait_for_function("window.ready === true")
        result = await page.evaluate("window.signup()")
        await page.goto(f"{origin}/docs")  # a second page view (a new document: the tracker starts again)
        await page.wait_for_function("window.ready === true")
        await page.wait_for_timeout(500)
    assert outside == [] and result == {"status": 202}
    assert answers and set(answers) == {202}, answers
    views = wait_for(lambda: (s := stats(live_service, "pageviews", domain)["data"])["pageviews"] >= 2 and s,
                     timeout=30)
    assert views["pageviews"] == 2 and views["visitors"] == 1, views
    pages = {row["path"]: row["pageviews"] for row in stats(live_service, "pages", domain)["data"]}
    assert pages == {"/pricing": 1, "/docs": 1}
    assert wait_for(lambda: goal(live_service, domain, "signup") == 1, timeout=30)
    sources = stats(live_service, "utm-sources", domain)["data"]
    assert [row["utm_source"] for row in sources] == ["newsletter"], sources
    rows = pg_execute(live_service.database_url, "SELECT properties, is_bot FROM np_analytics_events "
                      "WHERE site = %s AND event = 'signup'", (domain,))
    assert rows == [({"plan": "startup", "revenue": {"amount": 15.99, "currency": "USD"},
                      "utm_source": "newsletter"}, False)]  # the page's campaign, as its page view's


def test_umami_node_client(live_service: LiveService) -> None:
    hostname = f"um-{uuid.uuid4().hex[:8]}.example"
    result = subprocess.run(["node", "umami_node.mjs", live_service.base_url, WEBSITE, hostname],
                            cwd=CLIENTS_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {"errors": [], "statuses": [200, 200, 200, 200]}, answer
    views = wait_for(lambda: (s := stats(live_service, "pageviews", hostname)["data"])["pageviews"] >= 2 and s,
                     timeout=30)
    assert views["pageviews"] == 2, views
    pages = {row["path"]: row["pageviews"] for row in stats(live_service, "pages", hostname)["data"]}
    assert pages == {"/home": 1, "/pricing": 1}
    assert wait_for(lambda: goal(live_service, hostname, "signup") == 1, timeout=30)
    rows = pg_execute(live_service.database_url, "SELECT event, properties, screen_width, language, is_bot "
                      "FROM np_analytics_events WHERE site = %s ORDER BY event", (hostname,))
    assert [r[0] for r in rows] == ["$pageview", "$pageview", "signup"]
    assert rows[2][1] == {"plan": "startup", "umami_website": WEBSITE}
    assert {r[2] for r in rows[:2]} == {1440} and {r[3] for r in rows[:2]} == {"en-US"}
    assert not any(r[4] for r in rows)


# --- in-process: each input, and a hostile test beside it ---------------------------------------------------------

def _events(settings: Any, site: str) -> list[tuple[Any, ...]]:
    return pg_execute(settings.database_url, "SELECT event, type, path, referrer, properties, source_account_id, "
                      "is_bot, screen_width FROM np_analytics_events WHERE site = %s ORDER BY ts", (site,))


async def _post(client: Any, path: str, body: Any, **headers: str) -> tuple[int, Any]:
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    response = await client.post(path, data=raw, headers={"User-Agent": BROWSER_UA, "Content-Type": "text/plain",
                                                           **headers})
    return response.status, await response.json()


async def test_plausible_api_long_and_short_names(client: Any, drain: Any, settings: Any) -> None:
    site = "shop.example"
    bodies = [
        {"name": "pageview", "url": "https://shop.example/a?utm_source=x&utm_medium=y", "domain": site,
         "referrer": "https://ref.example/p?q=secret"},
        {"n": "pageview", "u": "https://shop.example/app#/settings", "d": f"{site},other.example", "h": 1},
        {"n": "signup", "u": "https://shop.example/a", "d": site, "p": json.dumps({"plan": "pro"})},
        {"name": "Purchase", "url": "https://shop.example/cart", "domain": site, "props": {"items": 2},
         "revenue": {"amount": "15.99", "currency": "EUR", "extra": "dropped"}},
        {"n": "engagement", "u": "https://shop.example/a", "d": site, "e": 3000, "sd": 50},  # not stored
    ]
    for index, body in enumerate(bodies):
        path = "/api/event" if index % 2 else "/analytics/api/event"
        assert await _post(client, path, body) == (202, {"status": "success"}), body
    await drain()
    rows = _events(settings, site)
    assert [(r[0], r[1], r[2]) for r in rows] == [("$pageview", "page", "/a"), ("$pageview", "page", "/app#/settings"),
                                                  ("signup", "track", "/a"), ("Purchase", "track", "/cart")]
    assert rows[0][3] == "https://ref.example/p" and rows[0][4] == {"utm_source": "x", "utm_medium": "y"}
    assert rows[2][4] == {"plan": "pro"}
    assert rows[3][4] == {"items": 2, "revenue": {"amount": "15.99", "currency": "EUR"}}


@pytest.mark.parametrize("body", [
    {"url": "https://shop.example/", "domain": "shop.example"},  # no name
    {"name": "pageview", "domain": "shop.example"},  # no url
    {"name": "pageview", "url": "https://shop.example/"},  # no domain
    {"name": "pageview", "url": "https://shop.example/", "domain": ","},
    {"name": "pageview", "url": "https://shop.example/", "domain": "not a host!"},
    {"name": "pageview", "url": "http://[::1", "domain": "shop.example"},
    {"name": "x" * 201, "url": "https://shop.example/", "domain": "shop.example"},
    {"name": "signup", "url": "https://shop.example/", "domain": "shop.example", "props": "not json"},
    {"name": "signup", "url": "https://shop.example/", "domain": "shop.example", "props": "[1]"},
    {"name": "signup", "url": "https://shop.example/", "domain": "shop.example", "props": 5},
    {"name": 5, "url": "https://shop.example/", "domain": "shop.example"},
    [1, 2],
    "not json",
])
async def test_plausible_bad_events_are_400(client: Any, drain: Any, body: Any) -> None:
    status, answer = await _post(client, "/api/event", body)
    assert (status, answer["status"]) == (400, "error"), answer
    assert await drain() == 0


async def test_plausible_large_props_are_truncated(client: Any, drain: Any, settings: Any) -> None:
    props = {f"k{i}": "v" * 100 for i in range(100)}
    body = {"name": "signup", "url": "https://big.example/", "domain": "big.example", "props": props}
    assert (await _post(client, "/api/event", body))[0] == 202
    await drain()
    stored = _events(settings, "big.example")[0][4]
    assert stored["$truncated"] is True and len(json.dumps(stored, separators=(",", ":"))) <= 4096


async def test_sites_rate_limits_and_bots_apply(make_client: Any, settings: Any) -> None:
    from nself_analytics.pipeline.drain import Drainer
    from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

    client = await make_client(settings.with_(sites=parse_sites(f"shop.example,tenant_b=blog.example@{WEBSITE}"),
                                              hit_rate_ip=Rate(4, 3600), hit_rate_site=None))
    plausible = {"name": "pageview", "url": "https://x.example/", "domain": "x.example"}
    umami = {"type": "event", "payload": {"hostname": "x.example", "url": "/"}}
    assert (await _post(client, "/api/event", plausible))[0] == 403  # not in ANALYTICS_SITES
    assert (await _post(client, "/api/send", umami))[0] == 403
    ok = {"name": "pageview", "url": "https://shop.example/", "domain": "shop.example"}
    assert (await _post(client, "/api/event", ok, **{"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot)"}))[
        0] == 202
    # the website id names blog.example (tenant_b's) whatever hostname the payload claims
    mapped = {"type": "event", "payload": {"website": WEBSITE, "url": "/post", "name": "subscribe"}}
    assert await _post(client, "/api/send", mapped) == (200, {"status": "success"})
    statuses = [(await _post(client, "/api/event", ok))[0] for _ in range(3)]
    assert statuses == [202, 202, 429]  # four a client an hour: the bot's, Umami's and these two
    response = await client.post("/api/event", data=json.dumps(ok), headers={"User-Agent": BROWSER_UA})
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0
    sub = client.app[ANALYTICS_APP]
    await Drainer(sub[PG_POOL], sub[REDIS], settings, name="test-drainer").drain_until_empty()
    assert [(r[0], r[6]) for r in _events(settings, "shop.example")] == [("$pageview", True), ("$pageview", False),
                                                                         ("$pageview", False)]
    assert [(r[0], r[5]) for r in _events(settings, "blog.example")] == [("subscribe", "tenant_b")]


async def test_umami_collect_api(client: Any, drain: Any, settings: Any) -> None:
    bodies = [
        {"type": "event", "payload": {"website": WEBSITE, "hostname": "um.example", "url": "/a?utm_campaign=c",
                                      "screen": "1920x1080", "language": "de-DE", "title": "A",
                                      "referrer": "https://ref.example/x"}},
        {"type": "event", "payload": {"website": WEBSITE, "hostname": "um.example",
                                      "url": "https://um.example/b", "name": "clicked", "data": {"n": 1}}},
        {"type": "identify", "payload": {"website": WEBSITE, "data": {"plan": "pro"}}},  # answered, not stored
    ]
    for index, body in enumerate(bodies):
        path = "/api/send" if index % 2 else "/analytics/api/send"
        assert await _post(client, path, body) == (200, {"status": "success"}), body
    await drain()
    rows = _events(settings, "um.example")
    assert [(r[0], r[2]) for r in rows] == [("$pageview", "/a"), ("clicked", "/b")]
    assert rows[0][4] == {"utm_campaign": "c"} and rows[0][7] == 1920 and rows[0][3] == "https://ref.example/x"
    assert rows[1][4] == {"n": 1, "umami_website": WEBSITE}


@pytest.mark.parametrize("body", [
    {"type": "event", "payload": {"website": WEBSITE, "url": "/"}},  # no hostname, an unlisted website id
    {"type": "event", "payload": {"hostname": "", "url": "/"}},
    {"type": "event", "payload": {"hostname": "bad host!", "url": "/"}},
    {"type": "event", "payload": {"hostname": "um.example", "url": "http://[::1"}},
    {"type": "event", "payload": {"hostname": "um.example", "name": "x" * 201}},
    {"type": "event", "payload": {"hostname": "um.example", "name": "   "}},
    {"type": "event", "payload": {"hostname": "um.example", "data": [1]}},
    {"type": "event", "payload": {"hostname": "um.example", "website": "w" * 65}},
    {"type": "event", "payload": "x"},
    {"type": "other", "payload": {"hostname": "um.example"}},
    {"type": "event"},
    "not json",
])
async def test_umami_bad_events_are_400(client: Any, drain: Any, body: Any) -> None:
    status, answer = await _post(client, "/api/send", body)
    assert (status, answer["status"]) == (400, "error"), answer
    assert await drain() == 0


def test_umami_website_ids_in_analytics_sites_are_checked() -> None:
    assert parse_sites(f"a.example@{WEBSITE.upper()}")[0].umami_website == WEBSITE
    for bad in (f"*.a.example@{WEBSITE}", "a.example@not-a-uuid", "a.example@"):
        with pytest.raises(ValueError):
            parse_sites(bad)


async def test_tracker_routes_answer_preflights_and_keep_the_read_namespace(client: Any) -> None:
    for path in ("/api/event", "/analytics/api/send"):
        response = await client.options(path, headers={"Origin": "https://shop.example",
                                                       "Access-Control-Request-Method": "POST"})
        assert response.status == 204 and response.headers["Access-Control-Allow-Origin"] == "*"
    # /api/* stays the web stats' read namespace: a read still needs the token, a POST elsewhere there is refused
    assert (await client.get("/analytics/api/pageviews?site=shop.example")).status == 401
    response = await client.get("/analytics/api/pageviews?site=shop.example",
                                headers={"Authorization": f"Bearer {SECRET}"})
    assert response.status == 200
    assert (await client.post("/analytics/api/pageviews", data="{}")).status == 405
    assert (await client.get("/analytics/api/event")).status in (404, 405)
