"""Hostile webhooks (issue 21 item 4): one account's receiver that never answers does not hold another account's
delivery, and no number of webhooks adds work to the drain's statement (the fan-out is the facts task's)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from nself_analytics.config import Settings
from nself_analytics.pipeline.facts import Facts
from nself_analytics.pipeline.webhook_sender import PER_WEBHOOK_IN_FLIGHT
from nself_analytics.store.events import WRITE_BATCH
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .conftest import SECRET, WRITE_KEY, pg_execute


def as_account(key: str, account: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "X-Source-Account-Id": account}


async def until(predicate: Callable[[], Any], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def hook(client: Any, account: str, url: str, names: list[str]) -> int:
    response = await client.post("/analytics/webhooks", headers=as_account(SECRET, account), json={
        "url": url, "events": ["event.tracked"], "event_names": names, "secret": "whsec_hostile_0123456789"})
    assert response.status == 201, await response.text()
    return int((await response.json())["webhook"]["id"])


async def track(client: Any, account: str, event: str, n: int = 1) -> None:
    response = await client.post("/analytics/batch", headers=as_account(WRITE_KEY, account),
                                 json={"batch": [{"type": "track", "event": event, "userId": f"u{i}"}
                                                 for i in range(n)]})
    assert response.status == 202, await response.text()


async def test_a_dead_receiver_does_not_hold_another_accounts_delivery(make_client: Any, settings: Settings,
                                                                       aiohttp_server: Any) -> None:
    dead_calls: list[float] = []
    live_calls: list[float] = []
    in_flight = [0, 0]  # now, most
    # the receiver answers nothing until the test has asserted; then its held requests end, so the server's
    # teardown does not wait for them (it would wait out the sender's 30 s timeout)
    released = asyncio.Event()

    async def never_answers(request: web.Request) -> web.Response:
        dead_calls.append(time.monotonic())
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        try:
            await released.wait()
        finally:
            in_flight[0] -= 1
        return web.Response(status=204)

    async def answers(request: web.Request) -> web.Response:
        live_calls.append(time.monotonic())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/dead", never_answers)
    app.router.add_post("/live", answers)
    server = await aiohttp_server(app)
    # a receiver that never answers holds a delivery for the whole timeout (30 s here)
    client = await make_client(settings.with_(webhook_timeout=30.0, webhook_retry_base=0.05), worker=True)
    await hook(client, "tenant_a", str(server.make_url("/dead")), ["ping"])
    await track(client, "tenant_a", "ping", 40)
    await until(lambda: len(dead_calls) >= PER_WEBHOOK_IN_FLIGHT)
    await hook(client, "tenant_b", str(server.make_url("/live")), ["ping"])
    await track(client, "tenant_b", "ping")
    await until(lambda: live_calls)
    # tenant_b's delivery went out while every one of tenant_a's was still waiting on its receiver (none had
    # finished, not even by timing out), and tenant_a's webhook never held more than its own slots
    rows = await asyncio.to_thread(pg_execute, settings.database_url,
                                   "SELECT count(*) FILTER (WHERE attempts > 0), count(*) FROM "
                                   "np_analytics_webhook_deliveries WHERE source_account_id = 'tenant_a'")
    assert rows == [(0, 40)]
    assert in_flight[1] <= PER_WEBHOOK_IN_FLIGHT and len(dead_calls) <= PER_WEBHOOK_IN_FLIGHT
    released.set()


async def test_a_hundred_webhooks_add_no_work_to_the_drain(client: Any, settings: Settings, drain: Any,
                                                           aiohttp_server: Any) -> None:
    # structural: the drain's statement names no webhook, funnel or quota table (the facts task reads the outbox)
    for table in ("np_analytics_webhooks", "np_analytics_webhook_deliveries", "np_analytics_funnels",
                  "np_analytics_quotas"):
        assert table not in WRITE_BATCH
    app = web.Application()
    server = await aiohttp_server(app)
    for _ in range(100):
        await hook(client, "tenant_a", str(server.make_url("/none")), ["ping"])
    await track(client, "tenant_a", "ping", 3)
    await track(client, "tenant_b", "canary")
    await drain()
    stored = "SELECT count(*) FROM np_analytics_events"
    assert await asyncio.to_thread(pg_execute, settings.database_url, stored) == [(4,)]
    count = "SELECT count(*) FROM np_analytics_webhook_deliveries"
    assert await asyncio.to_thread(pg_execute, settings.database_url, count) == [(0,)]  # nothing on the ack path
    outbox = "SELECT count(*) FROM np_analytics_event_outbox"
    assert await asyncio.to_thread(pg_execute, settings.database_url, outbox) == [(4,)]  # one narrow row per event
    sub = client.app[ANALYTICS_APP]
    facts = Facts(sub[PG_POOL], sub[REDIS], settings)
    assert await facts.run_until_empty() == 4
    assert await facts.run_until_empty() == 0  # the outbox rows are gone with their facts: exactly once
    assert await asyncio.to_thread(pg_execute, settings.database_url, count) == [(300,)]
    assert await asyncio.to_thread(pg_execute, settings.database_url, outbox) == [(0,)]
