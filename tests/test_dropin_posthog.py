"""Drop-in compatibility with PostHog: its unchanged SDKs against the live service, each given only the service's
host and a write key as its project API key.

posthog-python (PyPI), posthog-node (npm, tests/clients) and posthog-js in Chromium (npm, tests/clients; every
request leaving the machine aborted and asserted absent). Each sends an event, an identify, an alias, a group, a
page view and a screen; each is stored exactly once, the identity links are made, and the SDK reports no error.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from posthog import Posthog

from .browser_support import guarded_page
from .conftest import LiveService, pg_execute, serving, wait_for
from .test_clients import stored_events

CLIENTS_DIR = Path(__file__).parent / "clients"
POSTHOG_JS = CLIENTS_DIR / "node_modules" / "posthog-js" / "dist" / "array.full.no-external.js"
# what each SDK's calls store: the event, the page view, the screen, the group and the alias as events (identify
# and $set are traits, not events)
EVERY_EVENT = {"Order Completed": 1, "$pageview": 1, "$screen": 1, "$group": 1, "$alias": 1}


def person_of(live: LiveService, distinct_id: str) -> str:
    rows = pg_execute(live.database_url, "SELECT person_id FROM np_analytics_person_map WHERE distinct_id = %s",
                      (distinct_id,))
    return str(rows[0][0]) if rows else distinct_id


def assert_identity(live: LiveService, user: str, anonymous_id: str, alias: str) -> None:
    """identify stored the traits and linked the anonymous id; the alias joined the user's person."""
    traits = wait_for(lambda: pg_execute(live.database_url, "SELECT traits FROM np_analytics_users WHERE user_id = %s",
                                         (user,)))
    assert traits[0][0].get("tier") == "compat" and traits[0][0].get("plan") == "pro", traits
    wait_for(lambda: person_of(live, anonymous_id) == person_of(live, user) == person_of(live, alias))


def events_of(live: LiveService, *ids: str) -> list[tuple[Any, ...]]:
    return pg_execute(live.database_url, "SELECT event, site, path, message_id::text, user_id, anonymous_id, "
                      "properties FROM np_analytics_events WHERE user_id = ANY(%s) OR anonymous_id = ANY(%s)",
                      (list(ids), list(ids)))


@pytest.mark.parametrize("compressed", [False, True])
def test_posthog_python(live_service: LiveService, compressed: bool) -> None:
    errors: list[Any] = []
    user = f"py-ph-{uuid.uuid4().hex[:8]}"
    client = Posthog(live_service.write_key, host=live_service.base_url, gzip=compressed,
                     on_error=lambda error, batch: errors.append(error))
    order = str(uuid.uuid4())
    client.capture("$identify", distinct_id=user, properties={"$anon_distinct_id": f"anon-{user}",
                                                               "$set": {"tier": "compat"}})
    client.set(distinct_id=user, properties={"plan": "pro"})
    client.capture("Order Completed", distinct_id=user, properties={"total": 12}, uuid=order)
    client.capture("$pageview", distinct_id=user, properties={"$current_url": "https://compat.test/home?x=1"})
    client.capture("$screen", distinct_id=user, properties={"$screen_name": "Main"})
    client.group_identify("company", f"acme-{user}", {"name": "Acme"}, distinct_id=user)
    # posthog-python: alias(previous_id, distinct_id): the previous id joins the person of distinct_id
    client.alias(previous_id=f"prev-{user}", distinct_id=user)
    client.flush()
    client.shutdown()
    assert errors == []
    stored = stored_events(live_service, user, EVERY_EVENT)
    assert stored == EVERY_EVENT, stored
    assert_identity(live_service, user, f"anon-{user}", f"prev-{user}")
    rows = {row[0]: row for row in events_of(live_service, user, f"prev-{user}")}
    assert rows["$pageview"][1:3] == ("compat.test", "/home")
    assert rows["Order Completed"][3] == order  # uuid is the message id
    assert rows["$group"][6]["group_id"] == f"acme-{user}" and rows["$group"][6]["group_type"] == "company"
    assert rows["$alias"][4] == user and rows["$alias"][6]["previous_id"] == f"prev-{user}"
    assert rows["$screen"][6]["name"] == "Main"


def test_posthog_python_sees_a_wrong_key_as_an_api_error(live_service: LiveService) -> None:
    """Hostile: a wrong project key is a 401 the SDK reports; nothing is stored."""
    errors: list[Any] = []
    user = f"py-ph-bad-{uuid.uuid4().hex[:8]}"
    client = Posthog("not-a-write-key", host=live_service.base_url, max_retries=0,
                     on_error=lambda error, batch: errors.append(error))
    client.capture("Order Completed", distinct_id=user)
    client.flush()
    client.shutdown()
    assert len(errors) == 1 and errors[0].status == 401
    assert events_of(live_service, user) == []


def test_posthog_node(live_service: LiveService) -> None:
    suffix = uuid.uuid4().hex[:8]
    assert (CLIENTS_DIR / "node_modules" / "posthog-node").is_dir(), "run: (cd tests/clients && npm ci)"
    result = subprocess.run(["node", "posthog_node.mjs", live_service.base_url, live_service.write_key, suffix],
                            cwd=CLIENTS_DIR, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"errors": []}, result.stdout
    user = f"node-ph-{suffix}"
    assert stored_events(live_service, user, EVERY_EVENT) == EVERY_EVENT
    assert_identity(live_service, user, f"anon-{user}", f"prev-{user}")


@pytest.fixture
async def posthog_site(live_service: LiveService) -> AsyncIterator[str]:
    """A website on another origin serving posthog-js from the npm package (no CDN anywhere)."""

    async def index(request: web.Request) -> web.Response:
        body = (f'<script src="/posthog.js"></script><script>window.API_HOST = '
                f'{json.dumps(live_service.base_url)}; window.KEY = {json.dumps(live_service.write_key)};</script>')
        return web.Response(text=f"<!doctype html><html><head><title>Home</title></head><body>{body}</body></html>",
                            content_type="text/html")

    async def script(request: web.Request) -> web.FileResponse:
        return web.FileResponse(POSTHOG_JS)

    app = web.Application()
    app.router.add_get("/posthog.js", script)
    app.router.add_get("/{tail:.*}", index)
    async with serving(app) as port:
        yield f"http://compat.test:{port}"


def test_posthog_js_is_installed() -> None:
    assert POSTHOG_JS.is_file(), "run: (cd tests/clients && npm ci)"  # fail, never skip


async def test_posthog_js_in_chromium(live_service: LiveService, posthog_site: str) -> None:
    user = f"js-ph-{uuid.uuid4().hex[:8]}"
    outside: list[str] = []
    statuses: list[tuple[str, int]] = []
    async with guarded_page({"127.0.0.1", "compat.test"}, outside) as page:
        page.on("response", lambda r: statuses.append((r.url, r.status)) if "127.0.0.1" in r.url else None)
        await page.goto(f"{posthog_site}/home")
        result = await page.evaluate("""async (user) => {
            const errors = []
            const loaded = new Promise((resolve) => {
                posthog.init(window.KEY, { api_host: window.API_HOST, loaded: resolve, capture_pageview: false,
                                           request_batching: true, on_request_error: (r) => errors.push(r.statusCode) })
            })
            await loaded
            const anonymous = posthog.get_distinct_id()
            posthog.capture('$pageview')
            posthog.identify(user, { tier: 'compat' }, {})
            posthog.setPersonProperties({ plan: 'pro' })
            posthog.capture('Order Completed', { total: 12 })
            posthog.capture('$screen', { $screen_name: 'Main' })
            posthog.group('company', 'acme-' + user, { name: 'Acme' })
            posthog.alias('prev-' + user)  // after identify: prev-<user> joins the identified user's person
            posthog.flush && posthog.flush()
            await new Promise((resolve) => setTimeout(resolve, 4000))
            return { errors, anonymous }
        }""", user)
    assert result["errors"] == [] and outside == []
    assert all(status == 200 for _url, status in statuses), statuses
    anonymous = result["anonymous"]
    expected = {"Order Completed": 1, "$screen": 1, "$group": 1, "$alias": 1}
    assert stored_events(live_service, user, expected) == expected
    wait_for(lambda: [r for r in events_of(live_service, anonymous) if r[0] == "$pageview"])
    views = [r for r in events_of(live_service, anonymous, user) if r[0] == "$pageview"]
    assert [(r[1], r[2], r[5]) for r in views] == [("compat.test", "/home", anonymous)]
    traits = wait_for(lambda: pg_execute(live_service.database_url,
                                         "SELECT traits FROM np_analytics_users WHERE user_id = %s", (user,)))
    assert traits[0][0].get("tier") == "compat"
    wait_for(lambda: person_of(live_service, anonymous) == person_of(live_service, user)
             == person_of(live_service, f"prev-{user}"))


def test_gzip_round_trip_at_the_root_and_under_analytics(live_service: LiveService) -> None:
    """posthog-python's path is /batch/; /analytics/batch (no slash) stays our own ingest route."""
    import urllib.request

    user = f"raw-ph-{uuid.uuid4().hex[:8]}"
    body = gzip.compress(json.dumps({"api_key": live_service.write_key, "batch": [
        {"event": "Root", "distinct_id": user}]}).encode())
    for url in (f"{live_service.base_url}/batch", f"{live_service.base_url}/analytics/batch/"):
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert (response.status, json.load(response)) == (200, {"status": 1})
    assert stored_events(live_service, user, {"Root": 2}) == {"Root": 2}
