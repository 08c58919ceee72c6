"""The dashboard in real headless Chromium against a live service holding known data: every view's figures,
read from the page, equal the API's; row clicks filter the whole dashboard (chips kept in the URL);
exports download the tables; the realtime, product and people views; a 390 px phone; the read-only shared
view of a site-scoped token; no console errors. Screenshots of each view go to test-output/screenshots/."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from playwright.async_api import Browser, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from nself_analytics.host.migrate import apply_migrations

from . import test_browser_web
from .conftest import (
    SECRET,
    WRITE_KEY,
    Stores,
    drop_databases,
    free_port,
    pg_execute,
    start_service,
    stop_service,
    wait_for,
    wait_healthy,
)
from .test_browser_web import PERSON_UA

# the Chromium fixtures of the beacon's browser tests (Debian's /usr/bin/chromium; fails, never skips, without it)
chromium, dash_browser = test_browser_web.chromium, test_browser_web.browser

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("TEST_OUTPUT_DIR", ROOT / "test-output")) / "screenshots"
SITE = "shop.example"
SITE_TOKEN = "sk_site_token_for_shop_example_0123"
MOBILE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Version/17.0 Mobile/15E148 Safari/604.1")


class Live:
    def __init__(self, base_url: str, database_url: str) -> None:
        self.base_url = base_url
        self.database_url = database_url

    def get(self, endpoint: str, /, token: str = SECRET, **params: Any) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        request = urllib.request.Request(f"{self.base_url}/analytics/{endpoint}?{query}",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.load(response)

    def post(self, path: str, body: Any, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(f"{self.base_url}/analytics/{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json", **headers})
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.load(response)


def _seed(live: Live) -> None:
    """Page views of SITE (through the public hit endpoint, so the service derives device and browser) and
    product events and people (through the batch API), all inside the default 30-day ranges."""
    hits = [
        ("s1", "/", "https://news.example/post", {"utm_source": "newsletter", "utm_medium": "email",
                                                  "utm_campaign": "spring"}, PERSON_UA, 1280, "8.8.8.8"),
        ("s1", "/pricing", None, {}, PERSON_UA, 1280, "8.8.8.8"),
        ("s1", "/signup", None, {}, PERSON_UA, 1280, "8.8.8.8"),
        ("s2", "/", "https://www.search.example/?q=x", {"utm_source": "search"}, PERSON_UA, 1440, "81.2.69.142"),
        ("s2", "/docs", None, {}, PERSON_UA, 1440, "81.2.69.142"),
        ("s3", "/pricing", "https://news.example/other", {"utm_source": "newsletter", "utm_term": "shoes",
                                                          "utm_content": "banner"}, MOBILE_UA, 390, "5.9.0.1"),
        ("s4", "/", None, {}, MOBILE_UA, 390, "1.1.1.1"),
        ("s5", "/", None, {"utm_campaign": "=HYPERLINK(\"http://x.test\")"}, PERSON_UA, 1280, "8.8.4.4"),  # a formula
    ]
    # the addresses (the trusted local proxy forwards them) give the page views countries for the map
    for session, path, referrer, utm, agent, width, ip in hits:
        body = {"site": SITE, "path": path, "referrer": referrer, "session_id": session, "screen_width": width,
                "language": "en-US", **utm}
        live.post("hit", body, {"User-Agent": agent, "X-Forwarded-For": ip})
    now = datetime.now(UTC).replace(microsecond=0)
    events: list[dict[str, Any]] = []
    for i, (user, plan) in enumerate([("alice", "pro"), ("bob", "free"), ("carol", "pro"), ("dave", "free")]):
        events.append({"type": "identify", "userId": user, "anonymousId": f"anon-{user}",
                       "traits": {"plan": plan, "email": f"{user}@example.com"},
                       "timestamp": (now - timedelta(days=3, hours=i)).isoformat()})
        events.append({"type": "track", "event": "signup", "userId": user, "properties": {"plan": plan},
                       "timestamp": (now - timedelta(days=3 - i % 2, hours=i)).isoformat()})
        if i < 3:
            events.append({"type": "track", "event": "activate", "userId": user, "properties": {"plan": plan},
                           "timestamp": (now - timedelta(days=2, hours=i)).isoformat()})
        if i < 2:
            events.append({"type": "track", "event": "purchase", "userId": user,
                           "properties": {"plan": plan, "amount": 10 * (i + 1)},
                           "timestamp": (now - timedelta(days=1, hours=i)).isoformat()})
    events.append({"type": "track", "event": "browse", "anonymousId": "anon-alice", "properties": {"plan": "pro"},
                   "timestamp": (now - timedelta(days=4)).isoformat()})
    assert live.post("batch", {"batch": events}, {"Authorization": f"Bearer {WRITE_KEY}"})["accepted"] == len(events)
    wait_for(lambda: live.get("api/pageviews", site=SITE)["data"]["pageviews"] == len(hits), timeout=30)
    wait_for(lambda: _exists(live, "users/alice") and live.get("users/alice")["event_count"] >= 4, timeout=30)
    wait_for(lambda: live.get("users/anon-alice")["person_id"] == "alice", timeout=30)


def _exists(live: Live, path: str) -> bool:
    try:
        live.get(path)
        return True
    except urllib.error.HTTPError:
        return False


@contextlib.contextmanager
def serve(stores: Stores, tmp_path_factory: pytest.TempPathFactory, **extra_env: str) -> Iterator[Live]:
    """A live service of its own (database, Redis db) whose tokens include a site-scoped one for SITE, with
    ``extra_env`` added to its environment; its database is dropped after."""
    name = "dash_" + uuid.uuid4().hex[:8]
    pg_execute(stores.database_url, f"CREATE DATABASE {name}")
    parts = urllib.parse.urlsplit(stores.redis_url)
    redis_url = urllib.parse.urlunsplit(parts._replace(path="/14"))
    redis.Redis.from_url(redis_url).flushdb()
    database_url = urllib.parse.urlunsplit(urllib.parse.urlsplit(stores.database_url)._replace(path="/" + name))
    apply_migrations(database_url)
    data_dir = tmp_path_factory.mktemp("dash")
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "ANALYTICS_PORT": str(port),
           "ANALYTICS_HOST": "127.0.0.1", "ANALYTICS_DATA_DIR": str(data_dir),
           "ANALYTICS_SECRET_TOKEN": f"{SECRET},site:{SITE}={SITE_TOKEN}", "ANALYTICS_WRITE_KEYS": WRITE_KEY,
           "ANALYTICS_AGGREGATE_INTERVAL": "2s", **extra_env}
    process = start_service(env, data_dir / "service.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url)
        yield Live(base_url, database_url)
    finally:
        stop_service(process)
        drop_databases(stores, name)


@pytest.fixture(scope="module")
def dash_service(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The dashboard's service, holding the known data of ``_seed``."""
    with serve(stores, tmp_path_factory) as live:
        _seed(live)
        yield live


class Watch:
    """Console errors, page errors and failed responses of one page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)


async def shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def open_dashboard(browser: Browser, live: Live, width: int = 1280, query: str = "") -> tuple[Page, Watch]:
    context = await browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    watch = Watch(page)
    await page.goto(f"{live.base_url}/analytics/dashboard{query}")
    return page, watch


async def login(page: Page) -> None:
    await page.fill("#site", SITE)
    await page.fill("#token", SECRET)
    await page.click("#login button[type=submit]")


async def table(page: Page, selector: str) -> list[list[str]]:
    return await page.eval_on_selector_all(
        f"{selector} tbody tr:not(:has(td.empty))", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


async def wait_rows(page: Page, selector: str, rows: int) -> list[list[str]]:
    await page.wait_for_function(
        "([s, n]) => document.querySelectorAll(s + ' tbody tr:not(:has(td.empty))').length === n", arg=[selector, rows])
    return await table(page, selector)


async def wait_table(page: Page, selector: str, expected: list[list[str]]) -> list[list[str]]:
    """The table once it shows ``expected`` (within 10 s; else as it is, for the assertion's diff): after a filter
    the panel may still hold the previous answer's rows, as many as the new one has."""
    with contextlib.suppress(PlaywrightTimeout):
        await page.wait_for_function(
            "([s, want]) => JSON.stringify([...document.querySelectorAll(s + ' tbody tr:not(:has(td.empty))')]"
            ".map(r => [...r.cells].map(c => c.textContent))) === JSON.stringify(want)",
            arg=[selector, expected], timeout=10_000)
    return await table(page, selector)


def rows_of(data: list[dict[str, Any]], *keys: str) -> list[list[str]]:
    return [[str(row[k]) for k in keys] for row in data]


async def test_web_tab_matches_the_api_and_filters(dash_browser: Browser, dash_service: Live) -> None:
    live = dash_service
    page, watch = await open_dashboard(dash_browser, live)
    await login(page)
    api = {name: live.get(f"api/{name}", site=SITE)["data"]
           for name in ("pageviews", "pages", "referrers", "devices", "browsers", "utm-sources", "utm-mediums",
                        "utm-terms", "entry-pages", "screen-widths", "session-duration")}
    assert await wait_rows(page, "#top-pages", len(api["pages"])) == rows_of(api["pages"], "path", "pageviews",
                                                                              "sessions")
    assert await page.text_content("#kpi-pageviews") == str(api["pageviews"]["pageviews"])
    assert await page.text_content("#kpi-visitors") == str(api["pageviews"]["visitors"])
    assert await page.text_content("#kpi-sessions") == str(api["pageviews"]["sessions"])
    assert await page.text_content("#chg-pageviews") == "new"  # nothing in the previous period
    for selector, name, key in [("#referrers", "referrers", "referrer"), ("#devices", "devices", "device"),
                                ("#browsers", "browsers", "browser"), ("#utm-sources", "utm-sources", "utm_source"),
                                ("#utm-mediums", "utm-mediums", "utm_medium"), ("#utm-terms", "utm-terms", "utm_term")]:
        assert await wait_rows(page, selector, len(api[name])) == rows_of(api[name], key, "pageviews", "sessions")
    assert await table(page, "#entry-pages") == rows_of(api["entry-pages"], "path", "sessions")
    assert await table(page, "#screen-widths") == rows_of(api["screen-widths"], "bucket", "pageviews", "sessions")
    dots = await page.eval_on_selector_all("#timeseries svg circle[data-series=pageviews]",
                                           "els => els.map(e => +e.dataset.value)")
    assert sum(dots) == api["pageviews"]["pageviews"]
    assert api["referrers"] and api["utm-sources"] and len(api["devices"]) == 2  # the data is rich enough
    await shot(page, "web")

    # a click on a row filters the whole dashboard; the chip is in the URL and removable
    await page.click("#top-pages tbody tr:has(td:text-is('/pricing'))")
    await page.wait_for_selector(".chip[data-filter=path]")
    assert "path=%2Fpricing" in page.url
    filtered = live.get("api/pageviews", site=SITE, path="/pricing")["data"]
    await page.wait_for_function("n => document.getElementById('kpi-pageviews').textContent === n",
                                 arg=str(filtered["pageviews"]))
    devices = live.get("api/devices", site=SITE, path="/pricing")["data"]
    want = rows_of(devices, "device", "pageviews", "sessions")
    assert await wait_table(page, "#devices", want) == want
    await page.click("#devices tbody tr:has(td:text-is('mobile'))")
    await page.wait_for_selector(".chip[data-filter=device]")
    both = live.get("api/pageviews", site=SITE, path="/pricing", device="mobile")["data"]["pageviews"]
    await page.wait_for_function("n => document.getElementById('kpi-pageviews').textContent === n", arg=str(both))
    assert both < filtered["pageviews"] < api["pageviews"]["pageviews"]
    await shot(page, "web-filtered")
    # the bookmarked URL opens the same filtered view
    bookmark = page.url
    await page.goto(bookmark)
    await page.wait_for_selector(".chip[data-filter=device]")
    await page.wait_for_function("n => document.getElementById('kpi-pageviews').textContent === n", arg=str(both))
    await page.click(".chip[data-filter=device] button")
    await page.click(".chip[data-filter=path] button")
    await page.wait_for_function("n => document.getElementById('kpi-pageviews').textContent === n",
                                 arg=str(api["pageviews"]["pageviews"]))
    assert "path=" not in page.url and await page.locator(".chip").count() == 0
    # UTM and browser rows filter too (each list behind its tab of the Sources and Devices cards)
    await page.click("[data-card-tab=utm-sources]")
    await page.click("#utm-sources tbody tr:has(td:text-is('newsletter'))")
    await page.wait_for_selector(".chip[data-filter=utm_source]")
    await page.click("[data-card-tab=browsers]")
    await page.click("#browsers tbody tr:has(td:text-is('Safari'))")
    await page.wait_for_selector(".chip[data-filter=browser]")
    assert "utm_source=newsletter" in page.url and "browser=Safari" in page.url
    narrowed = live.get("api/pageviews", site=SITE, utm_source="newsletter", browser="Safari")["data"]["pageviews"]
    await page.wait_for_function("n => document.getElementById('kpi-pageviews').textContent === n",
                                 arg=str(narrowed))
    assert 0 < narrowed < live.get("api/pageviews", site=SITE, utm_source="newsletter")["data"]["pageviews"]
    await page.click(".chip[data-filter=browser] button")
    await page.click(".chip[data-filter=utm_source] button")
    await page.wait_for_function("n => document.getElementById('kpi-pageviews').textContent === n",
                                 arg=str(api["pageviews"]["pageviews"]))

    # goals: conversions and rate as the API counts them
    await page.fill("#goal-input", "path:/pricing")
    await page.click("#goal-form button[type=submit]")
    await page.fill("#goal-input", "event:signup")
    await page.click("#goal-form button[type=submit]")
    goals = live.get("api/goals", site=SITE, goal=["path:/pricing", "event:signup"])["data"]
    shown = await wait_rows(page, "#goals", 2)
    assert [row[:4] for row in shown] == [[g["goal"], str(g["conversions"]), str(g["visitors"]),
                                           f"{g['conversion_rate'] * 100:.1f}%"] for g in goals]
    assert goals[0]["conversions"] == 2 and "goal=path%3A%2Fpricing" in page.url

    # export downloads the table as shown
    async with page.expect_download() as info:
        await page.click("button[data-export=top-pages]")
    download = await info.value
    text = await asyncio.to_thread(Path.read_text, Path(await download.path()))
    expected = [["Page", "Views", "Sessions"], *rows_of(api["pages"], "path", "pageviews", "sessions")]
    assert list(csv.reader(io.StringIO(text))) == expected
    assert download.suggested_filename == f"{SITE}-top-pages.csv"
    # a value that looks like a spreadsheet formula is exported as text
    await page.click("[data-card-tab=utm-campaigns]")
    async with page.expect_download() as info:
        await page.click("button[data-export=utm-campaigns]")
    text = await asyncio.to_thread(Path.read_text, Path(await (await info.value).path()))
    cells = [row[0] for row in csv.reader(io.StringIO(text))]
    assert "'=HYPERLINK(\"http://x.test\")" in cells and "spring" in cells
    # the token stays in this browser until "Forget token"
    assert await page.evaluate("() => localStorage.getItem('np_analytics_token')") == SECRET
    assert SECRET not in page.url
    await page.click("#logout")
    assert await page.evaluate("() => localStorage.getItem('np_analytics_token')") is None
    assert await page.is_hidden("#board")
    assert watch.errors == []
    await page.context.close()


async def test_realtime_view(dash_browser: Browser, dash_service: Live) -> None:
    live = dash_service
    page, watch = await open_dashboard(dash_browser, live, query="?tab=realtime&site=" + SITE)
    await login(page)
    await page.wait_for_selector("#rt-latest tbody tr:not(:has(td.empty))")
    data = live.get("api/realtime", site=SITE, limit=20)["data"]
    assert await page.text_content("#rt-visitors") == str(data["visitors"])
    assert [r[1] for r in await table(page, "#rt-latest")] == [r["path"] for r in data["latest"]]
    # refreshed on its own: a new page view appears without a click
    live.post("hit", {"site": SITE, "path": "/live-now", "session_id": "s9"}, {"User-Agent": PERSON_UA})
    await page.wait_for_selector("#rt-latest tbody td:text-is('/live-now')", timeout=30_000)
    await shot(page, "realtime")
    assert watch.errors == []
    await page.context.close()


async def test_product_and_people_views(dash_browser: Browser, dash_service: Live) -> None:
    live = dash_service
    page, watch = await open_dashboard(dash_browser, live, query="?tab=product")
    await login(page)
    names = [e["event"] for e in live.get("events")["data"]]
    await page.wait_for_selector("#trends-chart svg circle")
    assert await page.eval_on_selector_all("#trends-event-1 option", "os => os.map(o => o.value)") == names
    # the product tab opens on trends of the most frequent event
    trend = live.get("trends", events=names[0])
    dots = await page.eval_on_selector_all("#trends-chart svg circle[data-series=s0]",
                                           "els => els.map(e => +e.dataset.value)")
    assert dots == trend["series"][0]["data"]
    # two events, a breakdown and the previous period
    await page.select_option("#trends-event-1", "signup")
    await page.select_option("#trends-event-2", "purchase")
    await page.wait_for_function("() => [...document.querySelectorAll('#trends-breakdown option')]"
                                 ".some(o => o.value === 'plan')")
    await page.select_option("#trends-breakdown", "plan")
    await page.check("#trends-compare")
    await page.click("#trends-form button[type=submit]")
    trend = live.get("trends", events="signup,purchase", breakdown="plan", compare="previous")
    shown = await wait_rows(page, "#trends-table", len(trend["series"]))
    assert [(row[0], row[1]) for row in shown] == [
        (f"{s['event']} · {s['breakdown_value']}", str(s["total"])) for s in trend["series"]]
    assert await page.locator("#trends-chart svg path.line.prev").count() == len(trend["series"])

    # funnel with a breakdown
    start, end = live.get("events")["start_date"], live.get("events")["end_date"]
    # one window: the range picker's 30 days are the product queries' dates, already in the funnel and
    # retention forms, and stated with their zone beside the picker
    for form in ("funnel", "retention"):
        assert (await page.input_value(f"#{form}-start"), await page.input_value(f"#{form}-end")) == (start, end)
    assert await page.text_content("#window") == f"{start} to {end} (UTC)"
    await page.fill("#funnel-steps", "signup, activate, purchase")
    await page.dispatch_event("#funnel-steps", "change")
    await page.fill("#funnel-start", start)
    await page.fill("#funnel-end", end)
    await page.wait_for_function("() => [...document.querySelectorAll('#funnel-breakdown option')]"
                                 ".some(o => o.value === 'plan')")
    await page.select_option("#funnel-breakdown", "plan")
    await page.click("#funnel-form button[type=submit]")
    funnel = live.get("funnel", steps="signup,activate,purchase", start_date=start, end_date=end, breakdown="plan")
    rows = await wait_rows(page, "#funnel-breakdown-table", len(funnel["breakdown_values"]))
    assert rows == [[g["value"]] + [str(s["users"]) for s in g["steps"]]
                    + [f"{g['steps'][-1]['conversion_from_start'] * 100:.1f}%"] for g in funnel["breakdown_values"]]
    assert [r[1] for r in await table(page, "#funnel-table")] == [str(s["users"]) for s in funnel["steps"]]
    events_table = await table(page, "#events-table")
    assert [(r[0], r[1]) for r in events_table] == [(e["event"], str(e["count"])) for e in live.get("events")["data"]]

    await shot(page, "product")
    # sum of a numeric property
    await page.select_option("#trends-event-1", "purchase")
    await page.select_option("#trends-event-2", "")
    await page.select_option("#trends-breakdown", "")
    await page.select_option("#trends-measure", "sum")
    await page.wait_for_function("() => [...document.querySelectorAll('#trends-property option')]"
                                 ".some(o => o.value === 'amount')")
    await page.select_option("#trends-property", "amount")
    await page.click("#trends-form button[type=submit]")
    summed = live.get("trends", events="purchase", measure="sum:amount")["series"][0]["total"]
    await page.wait_for_function("t => document.querySelector('#trends-table tbody tr td:nth-child(2)')"
                                 "?.textContent === t", arg=str(round(summed)))
    async with page.expect_download() as info:  # the total, a figure, is exported as a bare number
        await page.click("button[data-export=trends-table]")
    exported = await asyncio.to_thread(Path.read_bytes, Path(await (await info.value).path()))
    assert exported.decode().split("\r\n")[1].split(",")[1] == str(round(summed))

    # people: the list, a person, a linked id
    await page.click(".tabs button[data-tab=people]")
    users = live.get("users")["data"]
    assert [r[0] for r in await wait_rows(page, "#people-table", len(users))] == [u["user_id"] for u in users]
    await page.fill("#people-trait", "plan=pro")
    await page.click("#people-form button[type=submit]")
    pro = live.get("users", **{"trait.plan": "pro"})["data"]
    assert [r[0] for r in await wait_rows(page, "#people-table", len(pro))] == [u["user_id"] for u in pro]
    await page.click("#people-table a[data-user=alice]")
    await page.wait_for_selector("#person:not([hidden]) #person-events tbody tr:not(:has(td.empty))")
    alice = live.get("users/alice")
    assert await page.text_content("#person-count") == str(alice["event_count"])
    assert [r[1] for r in await table(page, "#person-events")] == [e["event"] for e in alice["events"]]
    assert "user=alice" in page.url
    await shot(page, "person")
    await page.click("#person-linked a[data-user=anon-alice]")
    await page.wait_for_function("() => document.getElementById('person-id').textContent === 'anon-alice'")
    assert await page.text_content("#person-count") == str(alice["event_count"])  # the same person
    assert watch.errors == []
    await page.context.close()


async def test_the_dashboard_reads_the_days_of_the_browsers_zone(dash_browser: Browser, dash_service: Live) -> None:
    # a browser in Kathmandu (UTC+5:45): the window is its days, stated with the zone, and every read of the web and
    # product tabs asks for those days in that zone; the trend on the page is the API's answer in that zone
    zone = "Asia/Kathmandu"
    live = dash_service
    context = await dash_browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=zone)
    page = await context.new_page()
    watch = Watch(page)
    reads: list[dict[str, list[str]]] = []
    page.on("request", lambda r: reads.append(urllib.parse.parse_qs(urllib.parse.urlsplit(r.url).query))
            if "/analytics/" in r.url and "start_date=" in r.url else None)
    await page.goto(f"{live.base_url}/analytics/dashboard?tab=product")
    await login(page)
    await page.wait_for_selector("#trends-chart svg circle")
    # Chromium names the zone by its ICU name (Asia/Katmandu, an IANA alias): the service takes it too
    zone = await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert ZoneInfo(zone).utcoffset(datetime.now()) == timedelta(hours=5, minutes=45)
    today = datetime.now(ZoneInfo(zone)).date()
    start, end = (today - timedelta(days=29)).isoformat(), today.isoformat()
    assert await page.text_content("#window") == f"{start} to {end} ({zone})"
    assert reads and all(r.get("tz") == [zone] for r in reads)
    assert [start, end] in [[r["start_date"][0], r["end_date"][0]] for r in reads]
    names = [e["event"] for e in live.get("events", tz=zone)["data"]]
    trend = live.get("trends", events=names[0], tz=zone)
    dots = await page.eval_on_selector_all("#trends-chart svg circle[data-series=s0]",
                                           "els => els.map(e => +e.dataset.value)")
    assert dots == trend["series"][0]["data"]
    await page.click(".tabs button[data-tab=web]")
    await page.wait_for_function("z => document.getElementById('heat-title').textContent.includes(z)", arg=zone)
    assert watch.errors == []
    await context.close()


async def test_phone_screen(dash_browser: Browser, dash_service: Live) -> None:
    page, watch = await open_dashboard(dash_browser, dash_service, width=390)
    await login(page)
    await page.wait_for_selector("#top-pages tbody tr:not(:has(td.empty))")
    await page.wait_for_selector("#utm-sources tbody tr:not(:has(td.empty))", state="attached")
    wide = await page.evaluate("() => [...document.querySelectorAll('body *')].filter(e => "
                               "e.getBoundingClientRect().right > 391).slice(0, 5)"
                               ".map(e => e.tagName + '#' + e.id + ' ' + e.getBoundingClientRect().right)")
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 390, wide
    await shot(page, "phone-web")
    await page.click(".tabs button[data-tab=product]")
    await page.wait_for_selector("#trends-chart svg circle")
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 390
    await shot(page, "phone-product")
    assert watch.errors == []
    await page.context.close()


async def test_shared_read_only_view(dash_browser: Browser, dash_service: Live) -> None:
    live = dash_service
    page, watch = await open_dashboard(dash_browser, live, query=f"?site={SITE}#share={SITE_TOKEN}")
    pages = live.get("api/pages", token=SITE_TOKEN, site=SITE)["data"]
    assert await wait_rows(page, "#top-pages", len(pages)) == rows_of(pages, "path", "pageviews", "sessions")
    assert await page.is_hidden("#login") and await page.is_visible("#shared")
    assert await page.is_hidden(".tabs button[data-tab=product]") and await page.is_hidden("#logout")
    assert await page.evaluate("() => localStorage.getItem('np_analytics_token')") is None
    await shot(page, "shared")
    assert watch.errors == []
    await page.context.close()
    # the site token opens nothing else
    with pytest.raises(urllib.error.HTTPError):
        live.get("events", token=SITE_TOKEN)
