"""Drop-in compatibility: the unchanged client libraries of Segment and RudderStack against the live service,
each configured only with a host (the service's root: they post to <host>/v1/...) and a write key.

Python: segment-analytics-python and rudder-sdk-python (PyPI). Node: @segment/analytics-node and
@rudderstack/rudder-sdk-node (tests/clients, installed by .ci/run's npm ci). Browser: @segment/analytics-next
from the npm package, in Chromium. For each: track, identify, page, screen (where the library has it), alias
and group are stored exactly once, identify and alias link the person, and the library reports no error.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from .browser_support import CHROMIUM, guarded_page
from .conftest import LiveService, pg_execute, serving

CLIENTS_DIR = Path(__file__).parent / "clients"
ANALYTICS_NEXT = CLIENTS_DIR / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd" / "index.js"
PAGE = {"url": "https://compat.test/home", "path": "/home", "title": "Home"}
EVERY_EVENT = {"Order Completed": 1, "$pageview": 1, "$screen": 1, "$group": 1, "$alias": 1}


def stored_events(live: LiveService, user: str, expected: dict[str, int], timeout: float = 30) -> Counter[str]:
    """The events stored for ``user`` once every expected one is there (the live drain runs on its own)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = pg_execute(live.database_url, "SELECT event FROM np_analytics_events WHERE user_id = %s", (user,))
        got = Counter(r[0] for r in rows)
        if all(got[name] >= count for name, count in expected.items()) or time.monotonic() > deadline:
            time.sleep(0.3)  # a duplicate would be written by the same drain pass: look once more
            rows = pg_execute(live.database_url, "SELECT event FROM np_analytics_events WHERE user_id = %s", (user,))
            return Counter(r[0] for r in rows)
        time.sleep(0.2)


def assert_person(live: LiveService, user: str, anonymous_id: str | None, previous_id: str) -> None:
    """identify stored the user's traits and linked the anonymous id; alias linked the previous id."""
    users = pg_execute(live.database_url, "SELECT traits FROM np_analytics_users WHERE user_id = %s", (user,))
    assert users and users[0][0].get("tier") == "compat", users
    links = dict(pg_execute(live.database_url,
                            "SELECT distinct_id, person_id FROM np_analytics_person_map WHERE person_id = %s", (user,)))
    assert links.get(previous_id) == user, links
    if anonymous_id is not None:
        assert links.get(anonymous_id) == user, links


@pytest.mark.parametrize("library", ["segment", "rudder"])
def test_python_libraries(live_service: LiveService, library: str) -> None:
    errors: list[Any] = []
    user = f"py-{library}-{uuid.uuid4().hex[:8]}"
    factory = SegmentClient if library == "segment" else RudderClient
    client = factory(live_service.write_key, host=live_service.base_url,
                     on_error=lambda error, batch: errors.append(error))
    client.identify(user, {"tier": "compat"}, anonymous_id=f"anon-{user}")
    client.track(user, "Order Completed", {"total": 12})
    client.page(user, name="Home", properties=PAGE)
    client.screen(user, name="Main")
    client.group(user, f"group-{user}", {"name": "Acme"})
    client.alias(f"prev-{user}", user)
    client.flush()
    client.shutdown()
    assert errors == []
    assert stored_events(live_service, user, EVERY_EVENT) == EVERY_EVENT
    assert_person(live_service, user, f"anon-{user}", f"prev-{user}")
    pages = pg_execute(live_service.database_url,
                       "SELECT site, path FROM np_analytics_events WHERE user_id = %s AND event = '$pageview'", (user,))
    assert pages == [("compat.test", "/home")]


@pytest.mark.parametrize("library", ["segment", "rudder"])
def test_python_libraries_see_our_errors_in_segments_shape(live_service: LiveService, library: str) -> None:
    """Hostile: a wrong write key is refused; the library reports it as an API error with its code (RudderStack's
    SDK used to fail on a KeyError for 'code'), and nothing is stored."""
    errors: list[Any] = []
    user = f"py-bad-{library}-{uuid.uuid4().hex[:8]}"
    factory = SegmentClient if library == "segment" else RudderClient
    client = factory("not-a-write-key", host=live_service.base_url, on_error=lambda error, batch: errors.append(error),
                     max_retries=0) if library == "segment" else factory(
        "not-a-write-key", host=live_service.base_url, on_error=lambda error, batch: errors.append(error))
    client.track(user, "Order Completed")
    client.flush()
    client.shutdown()
    assert len(errors) == 1
    assert (errors[0].status, errors[0].code) == (401, "unauthorized")
    assert pg_execute(live_service.database_url, "SELECT count(*) FROM np_analytics_events WHERE user_id = %s",
                      (user,)) == [(0,)]


def test_node_libraries(live_service: LiveService) -> None:
    suffix = uuid.uuid4().hex[:8]
    assert (CLIENTS_DIR / "node_modules").is_dir(), "run: (cd tests/clients && npm ci)"  # fail, never skip
    result = subprocess.run(["node", "node_clients.mjs", live_service.base_url, live_service.write_key, suffix],
                            cwd=CLIENTS_DIR, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"errors": []}, result.stdout
    for library in ("segment", "rudder"):
        user = f"node-{library}-{suffix}"
        assert stored_events(live_service, user, EVERY_EVENT) == EVERY_EVENT, library
        assert_person(live_service, user, f"anon-{user}", f"prev-{user}")


@pytest.fixture
async def ajs_site(live_service: LiveService) -> AsyncIterator[str]:
    """A website on another origin serving analytics.js from the npm package (no CDN anywhere)."""
    api_host = f"127.0.0.1:{live_service.port}/v1"

    async def index(request: web.Request) -> web.Response:
        # the snippet's settings as Segment's CDN would give them, inline: analytics.js fetches nothing
        settings = {"integrations": {"Segment.io": {"apiKey": live_service.write_key, "apiHost": api_host,
                                                    "protocol": "http"}}}
        body = (f'<script src="/ajs.js"></script><script>window.CDN_SETTINGS = {json.dumps(settings)};'
                f'window.WRITE_KEY = {json.dumps(live_service.write_key)};</script>')
        return web.Response(text=f"<!doctype html><html><head><title>Home</title></head><body>{body}</body></html>",
                            content_type="text/html")

    async def script(request: web.Request) -> web.FileResponse:
        return web.FileResponse(ANALYTICS_NEXT)

    app = web.Application()
    app.router.add_get("/ajs.js", script)
    app.router.add_get("/{tail:.*}", index)
    async with serving(app) as port:
        yield f"http://compat.test:{port}"


def test_browser_and_package_are_installed() -> None:
    """The browser test below needs both (fail, never skip)."""
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install chromium"
    assert ANALYTICS_NEXT.is_file(), "run: (cd tests/clients && npm ci)"


async def test_analytics_next_in_chromium(live_service: LiveService, ajs_site: str) -> None:
    user = f"ajs-{uuid.uuid4().hex[:8]}"
    outside: list[str] = []
    async with guarded_page({"127.0.0.1", "compat.test"}, outside) as page:
        await page.goto(f"{ajs_site}/home")
        result = await page.evaluate("""async (user) => {
            const errors = []
            const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
                { writeKey: window.WRITE_KEY, cdnSettings: window.CDN_SETTINGS })
            analytics.on('error', (err) => errors.push(String(err && (err.code || err.reason || err))))
            const contexts = [
                await analytics.identify(user, { tier: 'compat' }),
                await analytics.track('Order Completed', { total: 12 }),
                await analytics.page('Home'),
                await analytics.group('group-' + user, { name: 'Acme' }),
                await analytics.alias(user, 'prev-' + user),
            ]
            for (const ctx of contexts) {
                const failed = ctx.failedDelivery()
                if (failed) errors.push(String(failed.reason))
            }
            return { errors, anonymousId: analytics.user().anonymousId() }
        }""", user)
    assert result["errors"] == [] and outside == []
    expected = {"Order Completed": 1, "$pageview": 1, "$group": 1, "$alias": 1}
    assert stored_events(live_service, user, expected) == expected
    assert_person(live_service, user, result["anonymousId"], f"prev-{user}")
    pages = pg_execute(live_service.database_url, "SELECT site, path, is_bot FROM np_analytics_events "
                       "WHERE user_id = %s AND event = '$pageview'", (user,))
    assert pages == [("compat.test", "/home", False)]
