"""In real headless Chromium against the live service: the beacon on a page of another origin
(a page load, a pushState navigation, a back button), seen through the stats API; headless
browsers counted as bots; the dashboard drawing charts and tables for the site and the token (every
view: test_browser_dashboard.py)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from nself_analytics.store.identity import EVENT_PERSON, EVENT_PERSON_JOIN

from .conftest import LiveService, pg_execute, serving

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync",
        # *.test names resolve to this machine, so each test has its own site (location.hostname)
        "--host-resolver-rules=MAP *.test 127.0.0.1",
        # a person's browser: navigator.webdriver is false (the beacon reports automation as a bot)
        "--disable-blink-features=AutomationControlled"]
PERSON_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0.0.0 "
             "Safari/537.36")


def stats(live: LiveService, name: str, **params: Any) -> Any:
    query = urllib.parse.urlencode(params)
    request = urllib.request.Request(f"{live.base_url}/analytics/api/{name}?{query}",
                                     headers={"Authorization": f"Bearer {live.secret}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


async def wait_for(check: Any, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(0.3)
    raise AssertionError(f"condition not met within {seconds}s (last: {last!r})")


@pytest.fixture
def chromium() -> str:
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: apt-get install chromium"  # fail, never skip
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium, args=ARGS,
                                           ignore_default_args=["--enable-automation"])
        yield launched
        await launched.close()


@pytest.fixture
async def site_server(live_service: LiveService) -> AsyncIterator[str]:
    """Pages of a website on another port (another origin than the service), with the script tag."""
    script = f"{live_service.base_url}/analytics/a.js"

    async def page(request: web.Request) -> web.Response:
        if request.path == "/from":
            body = f'<a id="go" href="http://{request.query["to"]}/landing?utm_source=newsletter&utm_campaign=launch">go</a>'
        elif request.path == "/both":  # the browser SDK (no automatic page view) and the beacon on one page
            sdk = f"{live_service.base_url}/analytics/sdk/analytics.js"
            body = (f'<script src="{sdk}" data-write-key="{live_service.write_key}" data-host="{live_service.base_url}"'
                    f' data-page="false"></script><script async src="{script}"></script>')
        else:
            body = f'<h1>{request.path}</h1><script async src="{script}"></script>'
        return web.Response(text=f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async with serving(app) as port:
        yield f"{port}"


async def visit(browser: Browser, site: str, port: str, *, user_agent: str | None) -> tuple[Page, Any]:
    context = await browser.new_context(user_agent=user_agent, locale="fr-FR",
                                        screen={"width": 1280, "height": 800}, viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    hits: list[Any] = []
    page.on("request", lambda r: hits.append(r) if r.url.endswith("/analytics/hit") else None)
    await page.goto(f"http://referrer.test:{port}/from?to={site}:{port}")
    await page.click("#go")
    await page.wait_for_url(f"http://{site}:{port}/landing*")
    await page.wait_for_function("() => sessionStorage.getItem('np_sid') !== null")
    return page, hits


async def test_beacon_tracks_page_views_of_a_single_page_app(browser: Browser, site_server: str,
                                                             live_service: LiveService) -> None:
    site = f"shop-{uuid.uuid4().hex[:8]}.test"
    page, hits = await visit(browser, site, site_server, user_agent=PERSON_UA)
    await page.evaluate("() => history.pushState({}, '', '/pricing')")
    await page.evaluate("() => history.replaceState({}, '', '/pricing?tab=2')")  # same page: no hit
    await page.evaluate("() => new Promise(done => { addEventListener('popstate', done); history.back(); })")
    assert page.url.endswith("/landing?utm_source=newsletter&utm_campaign=launch")
    session = (await page.evaluate("() => sessionStorage.getItem('np_sid')")).split(".")[0]
    assert await page.evaluate("() => document.cookie") == ""

    totals = await wait_for(lambda: (d := stats(live_service, "pageviews", site=site))["pageviews"] >= 3 and d)
    assert totals == {"pageviews": 3, "sessions": 1, "visitors": 1}
    assert len(hits) == 3 and all(h.method == "POST" for h in hits)
    pages = stats(live_service, "pages", site=site)
    assert pages == [{"path": "/landing", "pageviews": 2, "sessions": 1}, {"path": "/pricing", "pageviews": 1,
                                                                            "sessions": 1}]
    # the session came from referrer.test: its row holds the session with its page views (docs/web-metrics.md)
    assert stats(live_service, "referrers", site=site) == [{"referrer": "referrer.test", "pageviews": 3,
                                                            "sessions": 1}]
    assert stats(live_service, "languages", site=site)[0]["language"] == "fr-FR"
    assert stats(live_service, "devices", site=site) == [{"device": "desktop", "pageviews": 3, "sessions": 1}]
    rows = pg_execute(live_service.database_url,
                      "SELECT path, session_id, screen_width, browser, os, is_bot, properties FROM np_analytics_events "
                      "WHERE site = %s ORDER BY ts", (site,))
    # the page load's hit comes first; the pushState and back hits leave within milliseconds of each other and are
    # timed by their arrival (the beacon sends no clock), so their order is not the beacon's to keep
    assert rows[0][0] == "/landing" and sorted(r[0] for r in rows[1:]) == ["/landing", "/pricing"]
    assert {r[1] for r in rows} == {session}
    assert rows[0][2:6] == (1280, "Chrome", "Linux", False)
    assert rows[0][6] == {"utm_source": "newsletter", "utm_campaign": "launch"}
    await page.context.close()


async def test_headless_browser_counted_as_bot(browser: Browser, site_server: str, live_service: LiveService) -> None:
    site = f"bots-{uuid.uuid4().hex[:8]}.test"
    page, hits = await visit(browser, site, site_server, user_agent=None)  # HeadlessChrome user agent
    assert "HeadlessChrome" in await page.evaluate("() => navigator.userAgent")
    await wait_for(lambda: stats(live_service, "pageviews", site=site, include_bots="true")["pageviews"] == 1)
    assert stats(live_service, "pageviews", site=site)["pageviews"] == 0
    assert len(hits) == 1
    await page.context.close()


async def test_dashboard_draws_the_site(browser: Browser, site_server: str, live_service: LiveService) -> None:
    site = f"dash-{uuid.uuid4().hex[:8]}.test"
    page, _ = await visit(browser, site, site_server, user_agent=PERSON_UA)
    # the navigation's hit is sent after pushState returns: the page stays open until its answer has come
    async with page.expect_response(lambda r: r.url.endswith("/analytics/hit") and r.ok
                                    and "/docs" in (r.request.post_data or "")):
        await page.evaluate("() => history.pushState({}, '', '/docs')")
    await wait_for(lambda: stats(live_service, "pageviews", site=site)["pageviews"] >= 2)
    await page.context.close()

    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
    dash = await context.new_page()
    errors: list[str] = []
    failed: list[tuple[int, str]] = []
    dash.on("pageerror", lambda e: errors.append(str(e)))
    dash.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
    await dash.goto(f"{live_service.base_url}/analytics/dashboard")
    assert await dash.is_hidden("#board")  # nothing without a site and a token
    await dash.fill("#site", site)
    await dash.fill("#token", live_service.secret)
    await dash.click("#login button[type=submit]")
    await dash.wait_for_selector("#top-pages tbody tr td >> text=/landing")
    assert live_service.secret not in dash.url and f"site={site}" in dash.url  # a bookmark of the view, no token
    assert await dash.evaluate("() => localStorage.getItem('np_analytics_token')") == live_service.secret
    # the cards and the panels come from separate requests: the cards may still show "-" when a panel is drawn
    await dash.wait_for_function("() => document.querySelector('#kpi-pageviews').textContent !== '-'")
    assert await dash.text_content("#kpi-pageviews") == "2"
    dots = await dash.eval_on_selector_all("#timeseries svg circle.series-0", "els => els.map(e => +e.dataset.value)")
    assert len(dots) >= 30 and sum(dots) == 2
    assert await dash.locator("#timeseries svg path.line").count() == 2  # page views, previous period
    pages = await dash.eval_on_selector_all("#top-pages tbody tr", "rows => rows.map(r => r.cells[0].textContent)")
    assert sorted(pages) == ["/docs", "/landing"]
    for panel in ("#referrers", "#devices", "#languages"):  # each panel is drawn when its own request answers
        await dash.wait_for_selector(f"{panel} tbody tr")
    referrers = await dash.eval_on_selector_all("#referrers tbody tr", "rows => rows.map(r => r.cells[0].textContent)")
    assert referrers == ["referrer.test"]
    devices = await dash.eval_on_selector_all("#devices tbody tr", "rows => rows.map(r => [r.cells[0].textContent, "
                                              "+r.cells[1].textContent])")
    assert devices == [["desktop", 2]]
    langs = await dash.eval_on_selector_all("#languages tbody tr", "rows => rows.map(r => r.cells[0].textContent)")
    assert langs == ["fr-FR"]
    # the token survives a reload of this tab, and a wrong one is refused and forgotten
    await dash.reload()
    await dash.wait_for_selector("#top-pages tbody tr td >> text=/landing")
    await dash.fill("#token", "wrong")
    await dash.click("#login button[type=submit]")
    await dash.wait_for_selector("#message.error")
    assert await dash.is_hidden("#board")
    assert await dash.evaluate("() => localStorage.getItem('np_analytics_token')") is None
    assert errors == []
    assert failed and all(status == 401 and ("/analytics/api/" in url or "/analytics/sites" in url)
                          for status, url in failed), failed
    await context.close()


async def test_api_explorer_renders_offline(browser: Browser, live_service: LiveService) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live_service.base_url) else None)
    await page.goto(f"{live_service.base_url}/analytics/docs")
    await page.wait_for_selector(".opblock-tag-section")
    text = await page.text_content("#ui")
    for tag in ("Ingest", "Web analytics", "Service"):
        assert tag in (text or "")
    assert await page.locator(".opblock").count() >= 30
    assert outside == []
    await context.close()


def post_json(live: LiveService, path: str, body: Any) -> Any:
    request = urllib.request.Request(f"{live.base_url}/analytics{path}", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {live.write_key}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def get_json(live: LiveService, path: str, **params: Any) -> Any:
    request = urllib.request.Request(f"{live.base_url}/analytics{path}?{urllib.parse.urlencode(params)}",
                                     headers={"Authorization": f"Bearer {live.secret}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


async def test_dashboard_product_views(browser: Browser, live_service: LiveService) -> None:
    tag = uuid.uuid4().hex[:6]
    signup, activate, purchase = f"signup-{tag}", f"activate-{tag}", f"purchase-{tag}"
    # days inside the retention window (older events are not stored)
    day1, day2, day3 = ((datetime.now(UTC) - timedelta(days=n)).date().isoformat() for n in (12, 11, 10))
    events = []
    # 4 users sign up on day 1, 2 on day 2; 3 activate at once and one a day later, 1 buys; the next day's
    # activations are the returns of the retention table
    for i, (user, day) in enumerate([(f"u{k}-{tag}", day1) for k in range(4)] + [(f"v{k}-{tag}", day2)
                                                                                 for k in range(2)]):
        events.append({"type": "track", "event": signup, "userId": user, "timestamp": f"{day}T10:00:00Z"})
        if i < 3:
            events.append({"type": "track", "event": activate, "userId": user, "timestamp": f"{day}T10:05:00Z"})
        if i == 0:
            events.append({"type": "track", "event": purchase, "userId": user, "timestamp": f"{day}T11:00:00Z"})
        if i in (0, 1, 4):
            events.append({"type": "track", "event": activate, "userId": user,
                           "timestamp": f"{day2 if day == day1 else day3}T09:00:00Z"})
    assert post_json(live_service, "/batch", {"batch": events})["accepted"] == len(events)
    funnel_params = {"steps": f"{signup},{activate},{purchase}", "start_date": day1, "end_date": day3}
    await wait_for(lambda: get_json(live_service, "/funnel", **funnel_params)["steps"][0]["users"] == 6)

    context = await browser.new_context(viewport={"width": 1280, "height": 1200})
    dash = await context.new_page()
    await dash.goto(f"{live_service.base_url}/analytics/dashboard")
    await dash.fill("#site", "product.test")
    await dash.fill("#token", live_service.secret)
    await dash.click("#login button[type=submit]")
    await dash.click(".tabs button[data-tab=product]")
    await dash.fill("#funnel-steps", f"{signup}, {activate}, {purchase}")
    await dash.fill("#funnel-start", day1)
    await dash.fill("#funnel-end", day3)
    await dash.click("#funnel-form button[type=submit]")
    await dash.wait_for_selector("#funnel-chart svg rect.bar")
    bars = await dash.eval_on_selector_all("#funnel-chart svg rect.bar",
                                           "els => els.map(e => [e.dataset.label, +e.dataset.value])")
    assert bars == [[signup, 6], [activate, 4], [purchase, 1]]
    widths = await dash.eval_on_selector_all("#funnel-chart svg rect.bar",
                                             "els => els.map(e => +e.getAttribute('width'))")
    assert widths[0] > widths[1] > widths[2] > 0
    rows = await dash.eval_on_selector_all("#funnel-table tbody tr", "rows => rows.map(r => r.cells[2].textContent)")
    assert rows == ["100.0%", "66.7%", "16.7%"]

    await dash.fill("#retention-start", day1)
    await dash.fill("#retention-end", day2)
    await dash.select_option("#retention-period", "day")
    await dash.fill("#retention-start-event", signup)
    await dash.fill("#retention-return-event", activate)
    await dash.click("#retention-form button[type=submit]")
    await dash.wait_for_selector("#retention-table tbody tr td[data-rate]")
    table = await dash.eval_on_selector_all(
        "#retention-table tbody tr",
        "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent, "
        "[...r.querySelectorAll('td[data-rate]')].slice(0, 2).map(c => +c.dataset.rate)])")
    assert table == [[day1, "4", [1.0, 0.5]], [day2, "2", [1.0, 0.5]]]
    shades = await dash.eval_on_selector_all("#retention-table td[data-rate]",
                                             "els => els.map(e => e.style.backgroundColor)")
    assert len(set(shades)) >= 2  # shaded by rate
    await context.close()


async def test_beacon_and_browser_sdk_are_one_visitor(browser: Browser, site_server: str,
                                                      live_service: LiveService) -> None:
    """The beacon keeps the anonymous id in localStorage under the browser SDK's key (nsa_anonymous_id): its page
    views carry the SDK's id, a reload keeps it, and the SDK's identify makes those page views the user's."""
    site = f"both-{uuid.uuid4().hex[:8]}.test"
    context = await browser.new_context(user_agent=PERSON_UA)
    page = await context.new_page()
    await page.goto(f"http://{site}:{site_server}/both")
    await page.wait_for_function("() => sessionStorage.getItem('np_sid') !== null")
    anonymous_id = await page.evaluate("() => window.nselfAnalytics.anonymousId()")
    assert await page.evaluate("() => localStorage.getItem('nsa_anonymous_id')") == anonymous_id
    await page.reload()
    await page.wait_for_function("() => sessionStorage.getItem('np_sid') !== null")
    user = f"user-{uuid.uuid4().hex[:8]}"
    await page.evaluate("(user) => { nselfAnalytics.identify(user); nselfAnalytics.track('purchase'); }", user)
    assert await page.evaluate("() => window.nselfAnalytics.flush()") is True
    def page_views() -> list[Any] | None:
        found = pg_execute(live_service.database_url, "SELECT anonymous_id FROM np_analytics_events "
                           "WHERE site = %s AND event = '$pageview'", (site,))
        return found if len(found) == 2 else None

    assert await wait_for(page_views) == [(anonymous_id,), (anonymous_id,)]
    await wait_for(lambda: pg_execute(live_service.database_url, "SELECT person_id FROM np_analytics_person_map "
                                      "WHERE distinct_id = %s", (anonymous_id,)) == [(user,)])
    # the user's person holds the beacon's page views (the same query /metrics?user_id= runs)
    counts = pg_execute(live_service.database_url, f"""
        SELECT e.event, count(*) FROM np_analytics_events e {EVENT_PERSON_JOIN}
        WHERE {EVENT_PERSON} = %s AND (e.site = %s OR e.event = 'purchase') GROUP BY 1""", (user, site))
    assert dict(counts) == {"$pageview": 2, "purchase": 1}
    assert stats(live_service, "pageviews", site=site)["visitors"] == 1
    await context.close()
