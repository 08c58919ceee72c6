"""Webhooks: the /webhooks API (happy and hostile), and deliveries from the background task to a real
local aiohttp receiver that fails its first attempts: delivered at least once, signed, deduplicable by
id, retried with backoff, logged, and surviving a restart of the service (the outbox is in Postgres)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from nself_analytics.config import Settings
from nself_analytics.pipeline.webhook_facts import completes
from nself_analytics.pipeline.webhook_sender import backoff

from .conftest import pg_execute

SECRET_VALUE = "whsec_test_signing_secret_0123456789"


@dataclass
class Receiver:
    """A real HTTP endpoint: answers ``fail_first`` attempts with 500 (or waits ``delay`` seconds), then 200."""

    fail_first: int = 0
    delay: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls.append({"headers": dict(request.headers), "body": body, "at": time.monotonic()})
        if self.delay:
            await asyncio.sleep(self.delay)
        if len(self.calls) <= self.fail_first:
            return web.Response(status=500, text="not yet")
        return web.Response(status=204)

    def delivered(self) -> list[dict[str, Any]]:
        """Distinct deliveries by X-Nself-Delivery (what a receiver that deduplicates keeps)."""
        seen: dict[str, dict[str, Any]] = {}
        for index, call in enumerate(self.calls):
            if index >= self.fail_first:
                seen.setdefault(call["headers"]["X-Nself-Delivery"], json.loads(call["body"]))
        return list(seen.values())


@pytest.fixture
async def receiver(aiohttp_server: Any) -> Receiver:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    server = await aiohttp_server(app)
    recv.url = str(server.make_url("/hook"))
    return recv


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """Retries after 0.05 s, 0.1 s, ... (the schedule is the production one, scaled down)."""
    return settings.with_(webhook_retry_base=0.05, webhook_timeout=2.0)


def verify(call: dict[str, Any], secret: str = SECRET_VALUE) -> None:
    """The receiver's check, written from the README's scheme (not with the service's code)."""
    timestamp = call["headers"]["X-Nself-Timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + call["body"], hashlib.sha256).hexdigest()
    assert call["headers"]["X-Nself-Signature"] == f"sha256={expected}"
    assert abs(int(timestamp) - time.time()) < 60


async def until(predicate: Callable[[], Any], seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def create_hook(client: Any, auth: Any, **body: Any) -> dict[str, Any]:
    response = await client.post("/analytics/webhooks", headers=auth["secret"], json={"secret": SECRET_VALUE, **body})
    assert response.status == 201, await response.text()
    return dict((await response.json())["webhook"])


async def deliveries(client: Any, auth: Any, hook_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/analytics/webhooks/{hook_id}/deliveries", headers=auth["secret"])
    assert response.status == 200
    return list((await response.json())["deliveries"])


async def logged(client: Any, auth: Any, hook_id: int, status: str, count: int = 1) -> list[dict[str, Any]]:
    """The delivery log once ``count`` deliveries have ``status`` (the receiver answers before the log is written)."""
    deadline = time.monotonic() + 15
    while True:
        rows = await deliveries(client, auth, hook_id)
        if sum(r["status"] == status for r in rows) >= count:
            return rows
        assert time.monotonic() < deadline, rows
        await asyncio.sleep(0.05)


async def track(client: Any, auth: Any, event: str, user_id: str, **extra: Any) -> None:
    response = await client.post("/analytics/track", headers=auth["write"],
                                 json={"event": event, "user_id": user_id, **extra})
    assert response.status in (200, 202), await response.text()


# --- the API ---------------------------------------------------------------------------------------

async def test_crud_per_account(client: Any, auth: Any) -> None:
    created = await create_hook(client, auth, url="https://example.com/in", events=["event.tracked", "quota.exceeded"],
                                event_names=["signup", "signup", "purchase"])
    assert created["secret"] == SECRET_VALUE and created["active"] is True
    assert created["events"] == ["quota.exceeded", "event.tracked"] and created["event_names"] == ["purchase", "signup"]
    generated = await (await client.post("/analytics/webhooks", headers=auth["secret"],
                                         json={"url": "http://127.0.0.1:9/x", "events": ["funnel.completed"]})).json()
    assert generated["webhook"]["secret"].startswith("whsec_") and len(generated["webhook"]["secret"]) > 32
    one = await (await client.get(f"/analytics/webhooks/{created['id']}", headers=auth["secret"])).json()
    assert "secret" not in one["webhook"] and one["webhook"]["url"] == "https://example.com/in"
    listed = await (await client.get("/analytics/webhooks", headers=auth["secret"])).json()
    assert [h["id"] for h in listed["webhooks"]] == [created["id"], generated["webhook"]["id"]]
    assert all("secret" not in h for h in listed["webhooks"])
    patched = await (await client.patch(f"/analytics/webhooks/{created['id']}", headers=auth["secret"],
                                        json={"active": False, "event_names": ["refund"]})).json()
    assert patched["webhook"]["active"] is False and patched["webhook"]["event_names"] == ["refund"]
    assert patched["webhook"]["url"] == "https://example.com/in"
    other = {**auth["secret"], "X-Source-Account-Id": "other"}
    assert (await (await client.get("/analytics/webhooks", headers=other)).json())["webhooks"] == []
    for method in ("get", "patch", "delete"):
        response = await getattr(client, method)(f"/analytics/webhooks/{created['id']}", headers=other, json={})
        assert response.status == 404, method
    assert (await client.get(f"/analytics/webhooks/{created['id']}/deliveries", headers=other)).status == 404
    deleted = await client.delete(f"/analytics/webhooks/{created['id']}", headers=auth["secret"])
    assert deleted.status == 200
    assert (await client.get(f"/analytics/webhooks/{created['id']}", headers=auth["secret"])).status == 404


@pytest.mark.parametrize(("body", "message"), [
    ({"events": ["quota.exceeded"]}, "url is required"),
    ({"url": "ftp://example.com/x", "events": ["quota.exceeded"]}, "http:// or https://"),
    ({"url": "javascript:alert(1)", "events": ["quota.exceeded"]}, "http:// or https://"),
    ({"url": "/relative", "events": ["quota.exceeded"]}, "http:// or https://"),
    ({"url": "https://u:p@example.com/", "events": ["quota.exceeded"]}, "credentials"),
    ({"url": "https://example.com/" + "a" * 2048, "events": ["quota.exceeded"]}, "longer than 2048"),
    ({"url": "https://example.com/", "events": []}, "events is required"),
    ({"url": "https://example.com/", "events": "quota.exceeded"}, "events is required"),
    ({"url": "https://example.com/", "events": ["user.deleted"]}, "Unknown event"),
    ({"url": "https://example.com/", "events": ["event.tracked"]}, "event_names is required"),
    ({"url": "https://example.com/", "events": ["event.tracked"], "event_names": ["x"] * 101}, "more than 100"),
    ({"url": "https://example.com/", "events": ["event.tracked"], "event_names": [""]}, "each event name"),
    ({"url": "https://example.com/", "events": ["event.tracked"], "event_names": ["x" * 201]}, "longer than"),
    ({"url": "https://example.com/", "events": ["quota.exceeded"], "secret": "short"}, "secret must be"),
    ({"url": "https://example.com/", "events": ["quota.exceeded"], "secret": "s" * 257}, "secret must be"),
    ({"url": "https://example.com/", "events": ["quota.exceeded"], "active": "yes"}, "active must be"),
    ({"url": "https://example.com/", "events": ["quota.exceeded"], "extra": 1}, "Unknown field"),
    ({"url": "https://example.com/\u0000", "events": ["quota.exceeded"]}, "NUL"),
])
async def test_create_refuses_bad_bodies(client: Any, auth: Any, settings: Settings, body: dict[str, Any],
                                         message: str) -> None:
    response = await client.post("/analytics/webhooks", headers=auth["secret"], json=body)
    payload = await response.json()
    assert response.status == 400 and payload["status"] == "error"
    assert message in payload["message"]
    assert pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_webhooks") == [(0,)]


async def test_credentials_and_bounds(client: Any, auth: Any, settings: Settings) -> None:
    for method, path in [("post", "/webhooks"), ("get", "/webhooks"), ("get", "/webhooks/1"),
                         ("patch", "/webhooks/1"), ("delete", "/webhooks/1"), ("get", "/webhooks/1/deliveries")]:
        for headers in ({}, auth["write"]):
            response = await getattr(client, method)(f"/analytics{path}", headers=headers, json={})
            assert response.status == 401, (method, path, headers)
    hook = await create_hook(client, auth, url="https://example.com/", events=["event.tracked"], event_names=["a"])
    bad = await client.patch(f"/analytics/webhooks/{hook['id']}", headers=auth["secret"], json={"event_names": []})
    assert bad.status == 400 and "event_names is required" in (await bad.json())["message"]
    assert (await client.get("/analytics/webhooks/99999999999999999999", headers=auth["secret"])).status == 404
    for query in ({"status": "lost"}, {"limit": "0"}, {"limit": "1001"}, {"limit": "x"}):
        response = await client.get(f"/analytics/webhooks/{hook['id']}/deliveries", headers=auth["secret"],
                                    params=query)
        assert response.status == 400, query
    not_json = await client.post("/analytics/webhooks", headers=auth["secret"], data=b"{nope")
    assert not_json.status == 400
    pg_execute(settings.database_url, "INSERT INTO np_analytics_webhooks (url, events, secret) SELECT "
                                      "'https://example.com/', '{quota.exceeded}', 'x' FROM generate_series(2, 100)")
    full = await client.post("/analytics/webhooks", headers=auth["secret"],
                             json={"url": "https://example.com/", "events": ["quota.exceeded"]})
    assert full.status == 409


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n, 10) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff(30, 10) == 3600


def test_completion_follows_the_funnel_semantics() -> None:
    from datetime import UTC, datetime, timedelta

    t = datetime.now(UTC)
    at = [t + timedelta(seconds=s) for s in range(5)]
    assert completes(["a", "b"], [("a", at[0]), ("b", at[1])], at[1]) == at[0]
    assert completes(["a", "b"], [("b", at[0]), ("a", at[1])], at[1]) is None  # out of order
    assert completes(["a", "b"], [("a", at[1]), ("b", at[1])], at[1]) is None  # ties are not "after"
    assert completes(["a", "a"], [("a", at[0]), ("a", at[2])], at[2]) == at[0]
    assert completes(["a", "b", "c"], [("a", at[0]), ("c", at[1]), ("b", at[2]), ("c", at[3])], at[3]) == at[0]


# --- deliveries ------------------------------------------------------------------------------------

async def test_event_tracked_is_delivered_signed_after_failures(make_client: Any, fast: Settings, auth: Any,
                                                                receiver: Receiver) -> None:
    receiver.fail_first = 2
    client = await make_client(fast, worker=True)
    hook = await create_hook(client, auth, url=receiver.url, events=["event.tracked"], event_names=["signup"])
    await track(client, auth, "signup", "u1", properties={"plan": "pro"})
    await track(client, auth, "pageview_like", "u1")
    await until(lambda: receiver.delivered())
    rows = await logged(client, auth, hook["id"], "delivered")
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "delivered" and row["attempts"] == 3 and row["last_error"] is None
    assert [c["headers"]["X-Nself-Delivery"] for c in receiver.calls] == [row["id"]] * 3
    for call in receiver.calls:
        verify(call)
        assert call["headers"]["X-Nself-Event"] == "event.tracked"
    # the retries waited (exponential backoff: 0.05 s then 0.1 s at least)
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.calls, receiver.calls[1:], strict=False)]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09
    body = receiver.delivered()[0]
    assert body["id"] == row["id"] and body["type"] == "event.tracked" and body["webhook_id"] == hook["id"]
    assert body["data"]["event"] == "signup" and body["data"]["user_id"] == "u1"
    assert body["data"]["properties"] == {"plan": "pro"}
    doc = await (await client.get("/analytics/openapi.json")).json()
    documented = doc["webhooks"]["event.tracked"]["post"]
    assert {p["name"] for p in documented["parameters"]} <= set(receiver.calls[-1]["headers"])
    assert set(doc["components"]["schemas"]["WebhookBody"]["required"]) <= set(body)
    tampered = {**receiver.calls[-1], "body": receiver.calls[-1]["body"].replace(b"u1", b"u2")}
    with pytest.raises(AssertionError):
        verify(tampered)
    with pytest.raises(AssertionError):
        verify(receiver.calls[-1], secret="whsec_some_other_secret_value")


async def test_quota_exceeded_and_funnel_completed(make_client: Any, fast: Settings, auth: Any,
                                                   receiver: Receiver) -> None:
    receiver.fail_first = 1
    client = await make_client(fast.with_(quota_enabled=True), worker=True)
    hook = await create_hook(client, auth, url=receiver.url, events=["quota.exceeded", "funnel.completed"])
    rule = await (await client.post("/analytics/quotas", headers=auth["secret"],
                                    json={"event": "export", "limit": 1, "period": "day"})).json()
    funnel = await (await client.post("/analytics/funnels", headers=auth["secret"],
                                      json={"name": "buy", "steps": ["signup", "purchase"], "window": "1h"})).json()
    other = {**auth["secret"], "X-Source-Account-Id": "other"}
    await client.post("/analytics/webhooks", headers=other, json={"url": receiver.url, "events": ["quota.exceeded"]})
    await track(client, auth, "export", "u1")
    await track(client, auth, "export", "u1")  # crosses the limit of 1
    await track(client, auth, "export", "u1")  # a later crossing of the same period: not a new fact
    await track(client, auth, "signup", "u2")
    await track(client, auth, "purchase", "u2")  # completes the funnel
    await track(client, auth, "purchase", "u3")  # no signup: does not
    await until(lambda: len(receiver.delivered()) >= 2)
    await asyncio.sleep(0.5)  # negative check (bounded): nothing more arrives
    bodies = {b["type"]: b for b in receiver.delivered()}
    assert len(receiver.delivered()) == 2 and set(bodies) == {"quota.exceeded", "funnel.completed"}
    quota = bodies["quota.exceeded"]["data"]
    assert quota["quota_id"] == rule["quota"]["id"] and quota["user_id"] == "u1" and quota["limit"] == 1
    assert quota["used"] in (2, 3) and quota["event"] == "export" and quota["period"] == "day"
    done = bodies["funnel.completed"]["data"]
    assert done["funnel_id"] == funnel["funnel"]["id"] and done["user_id"] == "u2"
    assert done["steps"] == ["signup", "purchase"] and done["started_at"] <= done["completed_at"]
    for call in receiver.calls:
        verify(call)
        assert call["headers"]["X-Nself-Event"] == json.loads(call["body"])["type"]
    rows = await logged(client, auth, hook["id"], "delivered", 2)
    assert sorted(r["status"] for r in rows) == ["delivered", "delivered"]
    assert sum(r["attempts"] for r in rows) == 3


async def test_timeouts_are_retried_and_given_up_after_the_horizon(make_client: Any, fast: Settings, auth: Any,
                                                                   receiver: Receiver) -> None:
    receiver.delay = 1.0  # longer than the attempt's timeout: every attempt times out
    client = await make_client(fast.with_(webhook_timeout=0.2, webhook_retry_for=1.0), worker=True)
    hook = await create_hook(client, auth, url=receiver.url, events=["event.tracked"], event_names=["e"])
    await track(client, auth, "e", "u1")
    rows = await logged(client, auth, hook["id"], "failed")
    assert rows[0]["attempts"] >= 2 and "Timeout" in rows[0]["last_error"] and rows[0]["next_attempt_at"] is None
    calls = len(receiver.calls)
    await asyncio.sleep(0.5)  # negative check (bounded): no further attempt within it
    assert len(receiver.calls) == calls  # a failed delivery is not sent again


async def test_a_delivery_survives_a_restart(make_client: Any, fast: Settings, auth: Any, receiver: Receiver,
                                             settings: Settings) -> None:
    receiver.fail_first = 10**6  # down for now
    client = await make_client(fast.with_(webhook_retry_base=0.3), worker=True)
    hook = await create_hook(client, auth, url=receiver.url, events=["event.tracked"], event_names=["paid"])
    await track(client, auth, "paid", "u1")
    await until(lambda: receiver.calls)
    await client.close()  # the service stops: the worker and its sender with it
    pending = pg_execute(settings.database_url,
                         "SELECT id::text, status, attempts FROM np_analytics_webhook_deliveries")
    assert len(pending) == 1 and pending[0][1] == "pending" and pending[0][2] >= 1
    receiver.fail_first = len(receiver.calls)  # back up
    restarted = await make_client(fast, worker=True)
    await until(lambda: receiver.delivered(), seconds=20)
    rows = await logged(restarted, auth, hook["id"], "delivered")
    assert rows[0]["id"] == pending[0][0] and rows[0]["status"] == "delivered"
    assert {c["headers"]["X-Nself-Delivery"] for c in receiver.calls} == {pending[0][0]}
    assert len(receiver.delivered()) == 1


async def test_inactive_and_unsubscribed_hooks_get_nothing(make_client: Any, fast: Settings, auth: Any,
                                                           receiver: Receiver, settings: Settings) -> None:
    client = await make_client(fast, worker=True)
    paused = await create_hook(client, auth, url=receiver.url, events=["event.tracked"], event_names=["a"],
                               active=False)
    await create_hook(client, auth, url=receiver.url, events=["event.tracked"], event_names=["b"])
    await track(client, auth, "a", "u1")
    await track(client, auth, "c", "u1")
    await track(client, auth, "b", "u1")
    await until(lambda: receiver.calls)
    await asyncio.sleep(0.3)  # negative check (bounded): the paused hook and event "c" send nothing within it
    assert [json.loads(c["body"])["data"]["event"] for c in receiver.calls] == ["b"]
    assert await deliveries(client, auth, paused["id"]) == []
    events = pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_events")
    assert events == [(3,)]


async def test_settled_deliveries_leave_the_log_after_the_retention(make_client: Any, fast: Settings, auth: Any,
                                                                   settings: Settings) -> None:
    from nself_analytics.pipeline.webhook_sender import WebhookSender
    from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL

    client = await make_client(fast)
    hook = await create_hook(client, auth, url="https://example.com/", events=["quota.exceeded"])
    for index, (status, age) in enumerate([("delivered", 91), ("failed", 91), ("pending", 91), ("delivered", 89)]):
        pg_execute(settings.database_url,
                   "INSERT INTO np_analytics_webhook_deliveries (id, webhook_id, event, dedupe_key, payload, status, "
                   "created_at) VALUES (gen_random_uuid(), %s, 'quota.exceeded', %s, '{}', %s, "
                   "now() - make_interval(days => %s))", (hook["id"], str(index), status, age))
    sender = WebhookSender(client.app[ANALYTICS_APP][PG_POOL], fast.with_(retention_days=90))
    assert await sender.prune() == 2
    left = pg_execute(settings.database_url, "SELECT status FROM np_analytics_webhook_deliveries ORDER BY dedupe_key")
    assert left == [("pending",), ("delivered",)]
