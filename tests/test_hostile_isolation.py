"""Accounts share nothing, stored values never break a read, secrets stay out of logs (issue 21, items 4, 5, 7):
de-duplication per account, a site token's reads limited to its site, sums that cannot overflow, event names
that cannot collide with a key of an answer, webhook URLs logged without their secrets."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from aiohttp import web

from nself_analytics.config import Settings
from nself_analytics.ingest.redis_keys import DEDUPE_PREFIX
from nself_analytics.pipeline.webhook_sender import log_url, redact_url
from nself_analytics.web.access import BOUND_ACCESS, Access, route_key
from nself_analytics.web.appkeys import ANALYTICS_APP

from .conftest import SECRET, WRITE_KEY, pg_execute
from .log_support import capture_logs
from .test_beacon_guard import CHROME
from .test_webhooks import Receiver, create_hook, logged
from .test_webhooks import track as track_as

KEY_A, KEY_B = "wk_alpha_key", "wk_bravo_key"
SITE, SITE_TOKEN = "shop.example", "tok_site_shop_example_0001"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def two_accounts(settings: Settings) -> Settings:
    return settings.with_(write_keys=(WRITE_KEY, f"tenant_a={KEY_A}", f"tenant_b={KEY_B}"))


def stored_ids(settings: Settings) -> list[tuple[str, str]]:
    return [(a, e) for a, e in pg_execute(settings.database_url, "SELECT source_account_id, event FROM "
                                                                  "np_analytics_events ORDER BY 1, 2")]


async def track(client: Any, key: str, message_id: str, event: str = "e") -> dict[str, Any]:
    response = await client.post("/analytics/track", headers=bearer(key),
                                 json={"event": event, "user_id": "u", "message_id": message_id})
    assert response.status == 202, await response.text()
    return dict(await response.json())


async def test_retry_in_one_account_is_a_duplicate(make_client: Any, settings: Settings, drain: Any) -> None:
    bound = two_accounts(settings)
    client = await make_client(bound)
    message_id = str(uuid.uuid4())
    first, retry = await track(client, KEY_A, message_id), await track(client, KEY_A, message_id)
    assert (first["duplicate"], retry["duplicate"]) == (False, True)
    await drain()
    assert stored_ids(bound) == [("tenant_a", "e")]


async def test_another_accounts_id_neither_suppresses_nor_reveals(make_client: Any, settings: Settings,
                                                                  drain: Any) -> None:
    """Hostile: B sends the id first; A's event with it is stored, and A's answer is the one it gets when the id
    was never used (B learns nothing from A's answer either)."""
    bound = two_accounts(settings)
    client = await make_client(bound)
    fresh = await track(client, KEY_A, str(uuid.uuid4()))
    taken = "order-1042"  # not a uuid: mapped to one by the server, the same for both accounts
    by_b = await track(client, KEY_B, taken, "b_event")
    by_a = await track(client, KEY_A, taken, "a_event")
    answers = [{k: v for k, v in answer.items() if k != "message_id"} for answer in (fresh, by_b, by_a)]
    assert answers[0] == answers[1] == answers[2] and by_a["duplicate"] is False
    assert by_a["message_id"] == by_b["message_id"]
    batch = await client.post("/analytics/v1/batch", headers=bearer(KEY_A),
                              json={"batch": [{"type": "track", "event": "a_batch", "userId": "u",
                                               "messageId": "order-1043"}]})
    await client.post("/analytics/v1/batch", headers=bearer(KEY_B),
                      json={"batch": [{"type": "track", "event": "b_batch", "userId": "u",
                                       "messageId": "order-1043"}]})
    assert batch.status == 200
    await drain()
    assert stored_ids(bound) == [("tenant_a", "a_batch"), ("tenant_a", "a_event"), ("tenant_a", "e"),
                                 ("tenant_b", "b_batch"), ("tenant_b", "b_event")]
    keys = {k.decode() for k in redis.Redis.from_url(bound.redis_url).keys(DEDUPE_PREFIX + "*")}
    assert {k.rsplit(":", 2)[1] for k in keys} == {"tenant_a", "tenant_b"}  # every key names its account


async def test_retry_of_a_message_deduplicated_before_the_upgrade_is_stored_once(
        make_client: Any, settings: Settings, drain: Any) -> None:
    """Upgrade: a message accepted before keys had an account (its Redis key of the old form, DEDUPE_PREFIX + id)
    retried after the upgrade passes Redis (its new key is absent) and is caught by np_analytics_message_ids,
    which is per account; an old-form key never makes a new message a duplicate."""
    bound = two_accounts(settings)
    client = await make_client(bound)
    message_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    await track(client, KEY_A, message_id)
    await drain()
    store = redis.Redis.from_url(bound.redis_url)
    store.delete(*store.keys(DEDUPE_PREFIX + "*"))  # the state right after the upgrade: only old-form keys
    store.set(DEDUPE_PREFIX + message_id, "1", ex=86_400)
    store.set(DEDUPE_PREFIX + other, "1", ex=86_400)
    assert (await track(client, KEY_A, message_id))["duplicate"] is False  # Redis does not know it...
    assert (await track(client, KEY_A, other, "new"))["duplicate"] is False
    await drain()
    assert stored_ids(bound) == [("tenant_a", "e"), ("tenant_a", "new")]  # ...Postgres does: stored once



async def send(client: Any, path: str, body: dict[str, Any], key: str = WRITE_KEY) -> None:
    response = await client.post(path, json=body, headers={**bearer(key), "User-Agent": CHROME})
    assert response.status == 202, await response.text()


def site_reads(client: Any) -> list[str]:
    """The url of every read a site token may open (Access.SITE), with a goal on a custom event."""
    sub = client.app[ANALYTICS_APP]
    paths = [route_key(route)[1].removeprefix("/analytics") for route in sub.router.routes()
             if route.method == "GET" and sub[BOUND_ACCESS][route] is Access.SITE]
    assert not [p for p in paths if re.search(r"\{", p)]  # no path parameter to fill
    return [f"/analytics{path}?site={SITE}&goal=event:signup&goal=path:/pricing" for path in paths]


async def answers(client: Any, urls: list[str]) -> dict[str, Any]:
    found = {}
    for url in urls:
        response = await client.get(url, headers=bearer(SITE_TOKEN))
        assert response.status == 200, (url, await response.text())
        body = await response.json()
        body.get("meta", {}).pop("start", None)  # realtime's window moves with the clock
        body.get("meta", {}).pop("end", None)
        found[url] = body
    return found


async def test_site_token_reads_only_what_its_site_produced(make_client: Any, settings: Settings,
                                                             drain: Any) -> None:
    """Hostile: events without a site (a back end's), of another site, and of another account (same site, same
    names) change no answer a site token can read; the site's own signup is counted by the event goal."""
    bound = settings.with_(secret_token=f"{SECRET},site:{SITE}={SITE_TOKEN}",
                           write_keys=(WRITE_KEY, f"tenant_b={KEY_B}"))
    client = await make_client(bound)
    page = {"url": f"https://{SITE}/pricing"}
    await send(client, "/analytics/page", {"anonymousId": "visitor", "properties": page})
    await send(client, "/analytics/track", {"event": "signup", "anonymousId": "visitor",
                                            "context": {"page": page}})
    await drain()
    urls = site_reads(client)
    assert len(urls) > 20
    before = await answers(client, urls)
    goals = before[next(u for u in urls if "/api/goals" in u)]["data"]
    assert [(g["goal"], g["conversions"], g["visitors"]) for g in goals] == [("event:signup", 1, 1),
                                                                             ("path:/pricing", 1, 1)]
    await send(client, "/analytics/track", {"event": "signup", "user_id": "server-user"})  # no site
    await send(client, "/analytics/track", {"event": "$pageview", "user_id": "server-user",
                                            "properties": {"path": "/pricing"}})
    other = {"url": "https://other.example/pricing"}
    await send(client, "/analytics/page", {"anonymousId": "elsewhere", "properties": other})
    await send(client, "/analytics/track", {"event": "signup", "anonymousId": "elsewhere", "context": {"page": other}})
    await send(client, "/analytics/page", {"anonymousId": "tenant-b", "properties": page}, KEY_B)
    await send(client, "/analytics/track", {"event": "signup", "anonymousId": "tenant-b", "context": {"page": page}},
               KEY_B)
    await drain()
    assert pg_execute(bound.database_url, "SELECT count(*) FROM np_analytics_events") == [(8,)]
    assert await answers(client, urls) == before
    # the reads outside the site's web stats stay closed to it
    for path in ("/analytics/events", f"/analytics/events?site={SITE}", "/analytics/metrics",
                 f"/analytics/trends?site={SITE}&event=signup", "/analytics/users/server-user"):
        response = await client.get(path, headers=bearer(SITE_TOKEN))
        assert response.status == 403, path


def strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: Infinity and NaN are not numbers."""
    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} in an answer")
    return json.loads(text, parse_constant=refuse)


def last_two_days() -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {"start_date": (today - timedelta(days=1)).isoformat(), "end_date": today.isoformat()}


async def trend_totals(client: Any, event: str) -> dict[str, Any]:
    totals = {}
    for measure in ("sum:amount", "avg:amount", "count"):
        response = await client.get("/analytics/trends", headers=bearer(SECRET),
                                    params={"events": event, "measure": measure})
        assert response.status == 200, await response.text()
        [series] = strict_json(await response.text())["series"]
        totals[measure] = series["total"]
    return totals


async def test_sums_are_exact(client: Any, drain: Any) -> None:
    for amount in (0.1, 0.2, 7):
        await send(client, "/analytics/track", {"event": "paid", "user_id": "u", "properties": {"amount": amount}})
    await drain()
    totals = await trend_totals(client, "paid")
    assert totals == {"sum:amount": 7.3, "avg:amount": pytest.approx(7.3 / 3), "count": 3}  # not 7.300000000000001


async def test_huge_stored_values_never_break_a_sum_or_an_average(client: Any, drain: Any) -> None:
    """Hostile: two amounts of 1.7e308 (each a valid double, accepted) sum past the double range: a sum that
    comes back inside it is exact, one that stays past it saturates at the largest double, the average is
    exact, nothing answers 500 or Infinity."""
    for amount in (1.7e308, 1.7e308, -1.7e308, 5):
        await send(client, "/analytics/track", {"event": "paid", "user_id": "u", "properties": {"amount": amount}})
    for amount in (-1.7e308, -1.7e308):
        await send(client, "/analytics/track", {"event": "refund", "user_id": "u", "properties": {"amount": amount}})
    await drain()
    assert await trend_totals(client, "paid") == {"sum:amount": 1.7e308, "avg:amount": 0.425e308,
                                                  "count": 4}
    assert await trend_totals(client, "refund") == {"sum:amount": -sys.float_info.max, "avg:amount": -1.7e308,
                                                    "count": 2}
    with_previous = await client.get("/analytics/trends", headers=bearer(SECRET),
                                     params={"events": "refund,paid", "measure": "sum:amount", "compare": "previous",
                                             "breakdown": "amount", "interval": "hour", **last_two_days()})
    assert with_previous.status == 200, await with_previous.text()
    assert -sys.float_info.max in [s["total"] for s in strict_json(await with_previous.text())["series"]]


async def test_event_names_never_collide_with_the_keys_of_an_answer(client: Any, drain: Any) -> None:
    """Hostile: events named date, counts and status leave /metrics rows dated and shaped; trends and the explorer
    carry names as values, never as keys."""
    for name in ("date", "counts", "status", "signup", "date"):
        await send(client, "/analytics/track", {"event": name, "user_id": "u"})
    await drain()
    today = datetime.now(UTC).date().isoformat()
    metrics = await (await client.get("/analytics/metrics", headers=bearer(SECRET), params=last_two_days())).json()
    assert metrics["status"] == "success" and metrics["events"] == ["counts", "date", "signup", "status"]
    assert [row["date"] for row in metrics["data"]][-1] == today
    assert all(set(row) == {"date", "counts"} for row in metrics["data"])
    assert metrics["data"][-1]["counts"] == {"counts": 1, "date": 2, "signup": 1, "status": 1}
    trends = await (await client.get("/analytics/trends", headers=bearer(SECRET),
                                     params={"events": "date,status", "breakdown": "date"})).json()
    assert [(s["event"], s["total"]) for s in trends["series"]] == [("date", 2), ("status", 1)]
    names = await (await client.get("/analytics/events", headers=bearer(SECRET))).json()
    assert names["status"] == "success" and {row["event"] for row in names["data"]} >= {"date", "status"}


def test_log_url_keeps_only_scheme_host_and_port() -> None:
    assert log_url("https://hooks.example.com/") == "https://hooks.example.com/"
    assert log_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/"
    assert log_url("https://u:pw@hooks.example.com:8443/services/T1/B2/s3cr3t?token=abc#frag") == \
        "https://hooks.example.com:8443/..."
    assert log_url("http://[::1]:9/x?k=v") == "http://[::1]:9/..."
    assert log_url("http://host:99999999/x?token=abc") == "(not a URL)"
    url = "https://u:pw@h.example/p?token=abc"
    assert redact_url(f"InvalidURL: {url} (bad)", url) == "InvalidURL: https://h.example/... (bad)"


async def test_webhook_urls_are_logged_without_their_secrets(make_client: Any, settings: Settings, auth: Any,
                                                             aiohttp_server: Any) -> None:
    """Hostile: a receiver URL with a token in its query, a secret path and (stored before they were refused) user
    info: the webhook_failed and webhook_delivered lines show only its scheme, host and port."""
    receiver, app = Receiver(fail_first=1), web.Application()
    app.router.add_post("/hook", receiver.handle)
    receiver.url = str((await aiohttp_server(app)).make_url("/hook"))
    client = await make_client(settings.with_(webhook_retry_base=0.05, webhook_timeout=2.0), worker=True)
    secret_url = receiver.url + "?token=query-s3cr3t&sig=abc"  # (a secret path: test_log_url_...)
    hook = await create_hook(client, auth, url=receiver.url, events=["event.tracked"], event_names=["signup"])
    with_userinfo = secret_url.replace("http://", "http://hookuser:pa55w0rd@")
    pg_execute(settings.database_url, "UPDATE np_analytics_webhooks SET url = %s WHERE id = %s",
               (with_userinfo, hook["id"]))
    with capture_logs() as lines:
        await track_as(client, auth, "signup", "u1")
        await logged(client, auth, hook["id"], "delivered")
        # the sender logs a delivery after storing its outcome (each send is its own task): wait for the line
        for _ in range(100):
            if any(line["event"] == "webhook_delivered" for line in lines):
                break
            await asyncio.sleep(0.1)
    events = [line for line in lines if line["event"] in ("webhook_failed", "webhook_delivered")]
    assert [line["event"] for line in events] == ["webhook_failed", "webhook_delivered"]
    origin = receiver.url.rsplit("/", 1)[0]
    assert {line["url"] for line in events} == {origin + "/..."}
    assert all(line["webhook"] == hook["id"] for line in events)
    text = repr(lines)
    for secret in ("query-s3cr3t", "/hook", "pa55w0rd", "hookuser", "sig=abc"):
        assert secret not in text
    assert receiver.calls[-1]["headers"]["Authorization"].startswith("Basic ")  # the URL as stored was used
