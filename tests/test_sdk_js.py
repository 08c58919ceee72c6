"""The browser SDK (sdk/js) in real headless Chromium (Debian's), driven by Playwright, against the
real service through the fault-injecting proxy; every check ends in Postgres.

The test pages are served by the proxy's static server, another origin than the proxy: requests
are cross-origin, as on a real site."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from .conftest import LiveService, pg_execute
from .sdk_proxy import SdkProxy, assert_fault_exercised, assert_stored_once, stored_counts

JS_DIR = Path(__file__).resolve().parent.parent / "sdk" / "js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

MODULE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head><body>
<script type="module">
import {{ Analytics }} from "/sdk/src/analytics.js";
window.Analytics = Analytics;
window.sdkErrors = [];
window.analytics = new Analytics({{ ...window.NSA_CONFIG,
  onError: (error, messages) => window.sdkErrors.push([error.message, messages.length]) }});
// ids of the messages this write key has in localStorage (one key each)
window.storedIds = () => Object.keys(localStorage)
  .filter((k) => k.startsWith("nsa:q:" + window.analytics.writeKey + ":"))
  .map((k) => JSON.parse(localStorage.getItem(k)).m.messageId);
window.sdkReady = true;
</script></body></html>"""


@pytest.fixture(scope="module")
def proxy(live_service: LiveService) -> Iterator[SdkProxy]:
    proxy = SdkProxy(live_service.base_url, static_dirs={"/sdk": JS_DIR}).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def chromium() -> str:
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing (CI installs Debian's chromium)"
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


def new_key(name: str) -> str:
    return f"js-{name}-{uuid.uuid4().hex[:10]}"


async def until(predicate: Callable[[], Any], within: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within}s")
        await asyncio.sleep(0.1)


async def open_page(browser: Browser, proxy: SdkProxy, key: str, mode: str, live_service: LiveService,
                    **config: Any) -> Page:
    """A fresh browser context (own localStorage) on a test page of the static origin, the SDK loaded
    with host = the proxy in ``mode`` and ``config``."""
    context = await browser.new_context()
    page = await context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.page_errors = page_errors  # type: ignore[attr-defined]
    settings = {"writeKey": live_service.write_key, "host": proxy.url(mode, key), **config}
    await page.add_init_script(f"window.NSA_CONFIG = {json.dumps(settings)};")
    url = proxy.add_page(f"/{key}.html", MODULE_PAGE.format(title=f"Test {key}"))
    await page.goto(url)
    await page.wait_for_function("window.sdkReady === true")
    return page


async def no_sdk_errors(page: Page) -> None:
    assert await page.evaluate("window.sdkErrors") == []
    assert page.page_errors == []  # type: ignore[attr-defined]


async def stored_once(live_service: LiveService, ids: list[str]) -> None:
    await asyncio.to_thread(assert_stored_once, live_service.database_url, ids)


def rows(live_service: LiveService, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return pg_execute(live_service.database_url, sql, params)


async def test_track_identify_page_are_stored_once(browser: Browser, proxy: SdkProxy,
                                                   live_service: LiveService) -> None:
    key = new_key("ok")
    event, user = f"js_sdk_{key}", f"user-{key}"
    page = await open_page(browser, proxy, key, "ok", live_service, flushAt=50, flushInterval=200)
    sent = await page.evaluate("""async ([event, user]) => {
        const a = window.analytics;
        const anon = a.anonymousId();
        const first = a.track(event, { n: 0 });
        a.identify(user, { plan: "pro", sdk: "js" });
        const tracks = [first];
        for (let i = 1; i < 5; i++) tracks.push(a.track(event, { n: i }));
        const named = a.page("Pricing", { path: "/pricing", url: "https://example.com/pricing" });
        const auto = a.page();
        const ok = await a.flush();
        return { anon, tracks, named, auto, ok, userId: a.userId(), stored: window.storedIds() };
    }""", [event, user])
    assert sent["ok"] is True and sent["userId"] == user
    assert sent["stored"] == [], "delivered messages must leave localStorage"
    ids = [*sent["tracks"], sent["named"], sent["auto"]]
    assert all(UUID4.match(i) for i in ids) and len(set(ids)) == 7
    await stored_once(live_service, ids)
    assert_fault_exercised(proxy, key, "ok", ids)
    for record in proxy.records(key):
        # a simple CORS request: text/plain, the write key in the body, no Authorization header
        assert record.body_write_key and record.authorization is None, record
        assert record.content_type.startswith("text/plain") and record.sec_fetch_mode == "cors", record

    tracked = rows(live_service, "SELECT properties->>'n', user_id, anonymous_id, type, context->'library'->>'name' "
                                 "FROM np_analytics_events WHERE event = %s ORDER BY (properties->>'n')", event)
    assert tracked == [("0", None, sent["anon"], "track", "@nself/analytics-js"),
                       *[(str(n), user, sent["anon"], "track", "@nself/analytics-js") for n in range(1, 5)]]
    named = rows(live_service, "SELECT event, type, path, user_id, properties->>'name' FROM np_analytics_events "
                               "WHERE message_id = %s", sent["named"])
    assert named == [("$pageview", "page", "/pricing", user, "Pricing")]
    auto = rows(live_service, "SELECT event, path, properties->>'title', properties->>'url', language "
                              "FROM np_analytics_events WHERE message_id = %s", sent["auto"])
    assert auto == [("$pageview", f"/{key}.html", f"Test {key}", f"{proxy.static_url}/{key}.html", "en-US")]
    users = await until(lambda: rows(live_service, "SELECT traits, anonymous_ids FROM np_analytics_users "
                                                   "WHERE user_id = %s", user), what="identify stored")
    assert users[0][0] == {"plan": "pro", "sdk": "js"}
    assert sent["anon"] in users[0][1]
    await no_sdk_errors(page)


async def test_batches_by_count_and_by_interval(browser: Browser, proxy: SdkProxy, live_service: LiveService) -> None:
    key, timed_key = new_key("count"), new_key("interval")
    event = f"js_sdk_{key}"
    page = await open_page(browser, proxy, key, "ok", live_service, flushAt=3, flushInterval=600_000)
    first_two = await page.evaluate("(e) => [window.analytics.track(e), window.analytics.track(e)]", event)
    await asyncio.sleep(0.7)  # negative check (bounded): nothing is sent before flushAt
    assert proxy.records(key) == [], "sent before flushAt messages were queued"
    third = await page.evaluate("(e) => window.analytics.track(e)", event)
    records = await until(lambda: proxy.records(key), what="a batch at flushAt")
    assert len(records) == 1 and records[0].message_ids == [*first_two, third]

    started = time.monotonic()
    timed = await page.evaluate("""([host, e]) => {
        const b = new window.Analytics({ ...window.NSA_CONFIG, host, flushAt: 100, flushInterval: 400,
                                         storagePrefix: "interval" });
        return [b.track(e), b.track(e)];
    }""", [proxy.url("ok", timed_key), event])
    records = await until(lambda: proxy.records(timed_key), what="a batch after flushInterval")
    assert records[0].message_ids == timed
    assert records[0].at - started >= 0.35, "sent before flushInterval"
    await stored_once(live_service, [*first_two, third, *timed])
    await no_sdk_errors(page)


@pytest.mark.parametrize("mode", ["503", "drop", "drop-after"])
async def test_retries_store_each_message_once(mode: str, browser: Browser, proxy: SdkProxy,
                                               live_service: LiveService) -> None:
    key = new_key(mode)
    page = await open_page(browser, proxy, key, mode, live_service, flushAt=4, minRetryDelay=200)
    ids = await page.evaluate("(e) => [1, 2, 3, 4].map((n) => window.analytics.track(e, { n }))", f"js_sdk_{key}")
    assert await page.evaluate("window.analytics.flush()") is True
    await stored_once(live_service, ids)
    assert_fault_exercised(proxy, key, mode, ids)
    assert rows(live_service, "SELECT count(*) FROM np_analytics_events WHERE event = %s", f"js_sdk_{key}") == [(4,)]
    assert await page.evaluate("window.storedIds()") == []
    await no_sdk_errors(page)


async def test_page_hide_delivers_with_send_beacon(browser: Browser, proxy: SdkProxy,
                                                   live_service: LiveService) -> None:
    key = new_key("beacon")
    page = await open_page(browser, proxy, key, "ok", live_service, flushAt=100, flushInterval=600_000)
    ids = await page.evaluate("""(e) => [window.analytics.track(e, { n: 1 }), window.analytics.track(e, { n: 2 }),
                                        window.analytics.page()]""", f"js_sdk_{key}")
    await asyncio.sleep(0.7)  # negative check (bounded): nothing is sent while the page is shown
    assert proxy.records(key) == [], "sent before the page was hidden"
    page_url = page.url
    await page.goto("about:blank")  # leaving the page: visibilitychange + pagehide
    records = await until(lambda: proxy.records(key), what="the beacon")
    beacon = records[0]
    assert beacon.message_ids == ids
    # navigator.sendBeacon of a text/plain body: a no-cors request with the write key in the body
    assert beacon.sec_fetch_mode == "no-cors" and beacon.body_write_key and beacon.authorization is None, beacon
    assert beacon.status == 202
    await stored_once(live_service, ids)

    # What the browser took for a beacon left localStorage: the next page view sends nothing again.
    await page.goto(page_url)
    await page.wait_for_function("window.sdkReady === true")
    assert await page.evaluate("window.storedIds()") == []
    await asyncio.sleep(1.5)  # negative check (bounded): the reloaded page sends nothing again
    assert len(proxy.records(key)) == 1, "sent again after the reload"
    assert await page.evaluate("window.analytics.pending") == 0
    await no_sdk_errors(page)


async def test_queued_events_survive_a_reload(browser: Browser, proxy: SdkProxy, live_service: LiveService) -> None:
    key = new_key("reload")
    proxy.set_down(key, True)  # the service is unreachable: every connection is cut
    page = await open_page(browser, proxy, key, "switch", live_service, flushAt=1, minRetryDelay=300,
                           maxRetryDelay=1000, maxRetries=1000)
    ids = await page.evaluate("(e) => [1, 2, 3].map((n) => window.analytics.track(e, { n }))", f"js_sdk_{key}")
    await until(lambda: any(r.outcome == "dropped" for r in proxy.records(key)), what="a failed attempt")
    await page.wait_for_function("window.analytics.failing === true")
    assert sorted(await page.evaluate("window.storedIds()")) == sorted(ids)

    reloaded_at = time.monotonic()
    await page.reload()
    await page.wait_for_function("window.sdkReady === true")
    # the new page view found them in localStorage and tries again (the service is still down)
    await until(lambda: any(r.at > reloaded_at and set(ids) <= set(r.message_ids) and r.outcome == "dropped"
                            for r in proxy.records(key)), what="a re-send after the reload")
    assert stored_counts(live_service.database_url, ids) == {}

    proxy.set_down(key, False)
    await stored_once(live_service, ids)
    delivered = [r for r in proxy.records(key) if r.status == 202]
    assert delivered and all(r.at > reloaded_at for r in delivered)
    await page.wait_for_function("window.storedIds().length === 0")
    assert rows(live_service, "SELECT count(*) FROM np_analytics_events WHERE event = %s", f"js_sdk_{key}") == [(3,)]


async def test_anonymous_id_persists_and_reset_starts_over(browser: Browser, proxy: SdkProxy,
                                                           live_service: LiveService) -> None:
    key = new_key("reset")
    event, user = f"js_sdk_{key}", f"user-{key}"
    page = await open_page(browser, proxy, key, "ok", live_service, flushAt=1)
    anon = await page.evaluate("window.analytics.anonymousId()")
    assert UUID4.match(anon)
    assert await page.evaluate("localStorage.getItem('nsa_anonymous_id')") == anon  # the beacon's key
    await page.evaluate("(u) => window.analytics.identify(u, { plan: 'free' })", user)
    await page.reload()
    await page.wait_for_function("window.sdkReady === true")
    assert await page.evaluate("[window.analytics.anonymousId(), window.analytics.userId()]") == [anon, user]
    before = await page.evaluate("(e) => window.analytics.track(e, { when: 'before' })", event)
    after = await page.evaluate("""(e) => {
        const a = window.analytics;
        a.reset();
        return [a.track(e, { when: 'after' }), a.anonymousId(), a.userId()];
    }""", event)
    after_id, new_anon, no_user = after
    assert no_user is None and UUID4.match(new_anon) and new_anon != anon
    await page.evaluate("window.analytics.flush()")
    await stored_once(live_service, [before, after_id])
    stored = rows(live_service, "SELECT properties->>'when', user_id, anonymous_id FROM np_analytics_events "
                                "WHERE event = %s ORDER BY ts", event)
    assert stored == [("before", user, anon), ("after", None, new_anon)]
    await no_sdk_errors(page)


def test_script_tag_build_is_fresh() -> None:
    assert shutil.which("node") and shutil.which("npm"), "Node.js is not installed (CI installs it)"
    if not (JS_DIR / "node_modules" / "esbuild").is_dir():
        ci = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR,
                            capture_output=True, text=True, timeout=300)
        assert ci.returncode == 0, ci.stdout + ci.stderr
    check = subprocess.run(["node", "scripts/build.mjs", "--check"], cwd=JS_DIR, capture_output=True, text=True,
                           timeout=60, env=dict(os.environ))
    assert check.returncode == 0, check.stdout + check.stderr


async def test_script_tag_build(browser: Browser, proxy: SdkProxy, live_service: LiveService) -> None:
    key = new_key("iife")
    host = proxy.url("ok", key)
    html = f"""<!doctype html><html><head><title>IIFE {key}</title></head><body>
<script src="{proxy.base_url}/analytics/sdk/analytics.js" data-write-key="{live_service.write_key}"
        data-host="{host}"></script>
<script>
  window.custom = new NselfAnalytics({{ writeKey: "{live_service.write_key}", host: "{host}", flushAt: 1,
                                        storagePrefix: "custom" }});
  window.trackId = window.custom.track("js_sdk_{key}", {{ via: "script tag" }});
</script></body></html>"""
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(proxy.add_page(f"/{key}.html", html))
    shape = await page.evaluate("""() => [typeof NselfAnalytics, NselfAnalytics.Analytics === NselfAnalytics,
                                         NselfAnalytics.VERSION, typeof window.nselfAnalytics]""")
    assert shape == ["function", True, "0.2.0", "object"]
    track_id = await page.evaluate("window.trackId")
    assert await page.evaluate("window.nselfAnalytics.flush()") is True
    await stored_once(live_service, [track_id])
    views = await until(lambda: rows(live_service, "SELECT message_id::text, anonymous_id FROM np_analytics_events "
                                                   "WHERE event = '$pageview' AND path = %s", f"/{key}.html"),
                        what="the automatic page view")
    await stored_once(live_service, [views[0][0]])
    assert views[0][1] == await page.evaluate("window.nselfAnalytics.anonymousId()")
    assert rows(live_service, "SELECT properties->>'via' FROM np_analytics_events WHERE message_id = %s",
                track_id) == [("script tag",)]
    await context.close()



@pytest.mark.timeout(300)  # tsc and node --test: ~10 s alone, more on a machine shared by parallel suites
def test_npm_test_runs_without_a_browser_or_the_service() -> None:
    """The package's own `npm test`: tsc on the .d.ts (strict), then node --test with a DOM-less harness."""
    if not (JS_DIR / "node_modules" / "typescript").is_dir():
        ci = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_DIR,
                            capture_output=True, text=True, timeout=300)
        assert ci.returncode == 0, ci.stdout + ci.stderr
    result = subprocess.run(["npm", "test"], cwd=JS_DIR, capture_output=True, text=True, timeout=280,
                            env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 17" in result.stdout, result.stdout


async def test_two_tabs_adopt_a_left_page_views_messages_once(browser: Browser, proxy: SdkProxy,
                                                              live_service: LiveService) -> None:
    """Messages a page left unsent (its service was down) are adopted by exactly one of two tabs that open at
    once (a Web Lock), while the tab that holds messages and is alive keeps them to itself."""
    key = new_key("tabs")
    event = f"js_sdk_{key}"
    proxy.set_down(key, True)
    context = await browser.new_context()
    settings = {"writeKey": live_service.write_key, "host": proxy.url("switch", key), "flushAt": 1,
                "minRetryDelay": 200, "maxRetryDelay": 400, "maxRetries": 1000}
    await context.add_init_script(f"window.NSA_CONFIG = {json.dumps(settings)};")
    url = proxy.add_page(f"/{key}.html", MODULE_PAGE.format(title=f"Test {key}"))
    first = await context.new_page()
    await first.goto(url)
    await first.wait_for_function("window.sdkReady === true")
    ids = await first.evaluate("(e) => [1, 2, 3].map((n) => window.analytics.track(e, { n }))", event)
    await first.wait_for_function("window.analytics.failing === true")

    # a second tab while the first is alive: it leaves the first tab's messages alone
    second = await context.new_page()
    await second.goto(url)
    await second.wait_for_function("window.sdkReady === true")
    await asyncio.sleep(0.5)  # negative check (bounded): the second tab takes none of the first tab's messages
    assert await second.evaluate("window.analytics.pending") == 0

    # the first tab is left while the service is down: nothing is beaconed, the messages stay stored
    await first.close(run_before_unload=True)
    assert sorted(await second.evaluate("window.storedIds()")) == sorted(ids)
    await second.close()
    proxy.set_down(key, False)
    pages = [await context.new_page() for _ in range(2)]
    await asyncio.gather(*(p.goto(url) for p in pages))
    await stored_once(live_service, ids)
    sent = [i for r in proxy.records(key) if r.status == 202 for i in r.message_ids]
    assert sorted(sent) == sorted(ids), f"adopted by both tabs: {sent}"
    for p in pages:
        await p.wait_for_function("window.storedIds().length === 0")
        assert await p.evaluate("window.sdkErrors") == []
    await context.close()


async def test_async_snippet_buffers_calls_until_the_served_script_loads(browser: Browser, proxy: SdkProxy,
                                                                         live_service: LiveService) -> None:
    """The README's async snippet, loading the bundle the service serves at /analytics/sdk/analytics.js."""
    readme = (JS_DIR / "README.md").read_text()
    snippet = re.search(r"<!-- async snippet[^>]*-->\n```html\n(<script>.*?</script>)", readme, re.S)
    assert snippet, "the README has no async snippet"
    key = new_key("snippet")
    event = f"js_sdk_{key}"
    code = (snippet.group(1).replace("WRITE_KEY", live_service.write_key)
            .replace("https://analytics.example.com", proxy.url("ok", key)))
    # the script is fetched from the service (through the proxy), the calls before it loads are buffered
    code = code.replace(proxy.url("ok", key) + '"}', proxy.url("ok", key) + '", flushAt: 1}')
    html = f"""<!doctype html><html><head><title>Snippet {key}</title>{code}
<script>window.nselfAnalytics.track("{event}", {{ early: true }});
window.bufferedType = Array.isArray(window.nselfAnalytics);</script></head><body></body></html>"""
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(proxy.add_page(f"/{key}.html", html))
    assert await page.evaluate("window.bufferedType") is True
    await page.wait_for_function("window.nselfAnalytics instanceof window.NselfAnalytics")
    await page.evaluate("window.nselfAnalytics.flush()")
    tracked = await until(lambda: rows(live_service, "SELECT message_id::text, properties->>'early' FROM "
                                                     "np_analytics_events WHERE event = %s", event), what="the track")
    assert tracked[0][1] == "true"
    views = await until(lambda: rows(live_service, "SELECT anonymous_id FROM np_analytics_events "
                                                   "WHERE event = '$pageview' AND path = %s", f"/{key}.html"),
                        what="the snippet's page view")
    assert views[0][0] == await page.evaluate("window.nselfAnalytics.anonymousId()")
    await stored_once(live_service, [tracked[0][0]])
    await context.close()


async def test_dedupe_window_matches_the_service(browser: Browser, proxy: SdkProxy, live_service: LiveService) -> None:
    """The SDK keeps messages no longer than the de-duplication window the service publishes."""
    page = await open_page(browser, proxy, new_key("window"), "ok", live_service)
    published = json.loads(await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"{live_service.base_url}/analytics/openapi.json", timeout=10).read()))
    window = await page.evaluate("import('/sdk/src/analytics.js').then((m) => m.DEDUPE_WINDOW_MS)")
    assert window == published["info"]["x-dedupe-window-seconds"] * 1000
