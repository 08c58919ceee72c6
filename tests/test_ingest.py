"""Ingest: every validation rule, auth, idempotency, warnings, sampling, IP hashing, counters, CORS."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from nself_analytics.ingest.counter_keys import counter_key
from nself_analytics.ingest.redis_keys import STREAM_KEY
from nself_analytics.ingest.service import sampled_in
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL, REDIS

from .clock_support import days_ago, iso
from .conftest import SECRET, WRITE_KEY, pg_execute


def rows(settings: Any, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    return pg_execute(settings.database_url, sql, params)


def count_events(settings: Any) -> int:
    return rows(settings, "SELECT count(*) FROM np_analytics_events")[0][0]


def stream_len(settings: Any) -> int:
    return int(redis.Redis.from_url(settings.redis_url).xlen(STREAM_KEY))


# --- happy paths ------------------------------------------------------------------------------

async def test_track_is_stored_after_drain(client: Any, auth: Any, settings: Any, drain: Any) -> None:
    when = days_ago(17)
    response = await client.post("/analytics/track", headers=auth["write"], json={
        "event": "subscription.created", "user_id": "user-1",
        "properties": {"plan": "pro", "amount_cents": 999}, "timestamp": iso(when)})
    assert response.status == 202
    body = await response.json()
    assert body["status"] == "success" and uuid.UUID(body["message_id"])
    assert stream_len(settings) == 1  # in Redis before the 202 returned
    assert await drain() == 1
    assert stream_len(settings) == 0
    [row] = rows(settings, "SELECT event, user_id, properties, ts, message_id::text, type FROM np_analytics_events")
    assert row[0] == "subscription.created" and row[1] == "user-1"
    assert row[2] == {"plan": "pro", "amount_cents": 999}
    assert row[3] == when and row[4] == body["message_id"] and row[5] == "track"


async def test_identify_merges_traits(client: Any, auth: Any, settings: Any, drain: Any) -> None:
    day0 = days_ago(38, hour=0)
    for traits, ts in (({"email": "a@x.io", "plan": "free"}, iso(day0 + timedelta(days=2))),
                       ({"plan": "pro", "name": "Alice"}, iso(day0 + timedelta(days=4)))):
        response = await client.post("/analytics/identify", headers=auth["write"],
                                     json={"user_id": "u1", "traits": traits, "timestamp": ts})
        assert response.status == 202
    await drain()
    await client.post("/analytics/identify", headers=auth["write"],
                      json={"user_id": "u1", "traits": {"seats": 3}, "timestamp": iso(day0)})
    await drain()
    [(traits, first, last)] = rows(settings, "SELECT traits, first_seen, last_seen FROM np_analytics_users")
    assert traits == {"email": "a@x.io", "plan": "pro", "name": "Alice", "seats": 3}
    assert first == day0 and last == day0 + timedelta(days=4)
    assert count_events(settings) == 0  # identify is a profile update, not an event


async def test_page_records_url_and_referrer(client: Any, auth: Any, settings: Any, drain: Any) -> None:
    response = await client.post("/analytics/page", headers={**auth["write"], "User-Agent": "Mozilla/5.0 (iPhone)"},
                                 json={"anonymous_id": "a1", "name": "Pricing", "properties": {
                                     "url": "https://Shop.Example.com/pricing?x=1", "referrer": "https://google.com/"}})
    assert response.status == 202
    await drain()
    [row] = rows(settings, "SELECT event, type, site, path, referrer, device, properties->>'name' "
                           "FROM np_analytics_events")
    assert row == ("$pageview", "page", "shop.example.com", "/pricing", "https://google.com/", "mobile", "Pricing")


async def test_batch_mixed_types(client: Any, auth: Any, settings: Any, drain: Any) -> None:
    batch = [
        {"type": "track", "event": "signup", "userId": "u1"},
        {"type": "identify", "userId": "u1", "traits": {"plan": "free"}},
        {"type": "page", "anonymousId": "a9", "properties": {"path": "/home"}},
    ]
    response = await client.post("/analytics/batch", headers=auth["write"], json={"batch": batch})
    assert response.status == 202
    body = await response.json()
    assert body["accepted"] == 3 and len(body["message_ids"]) == 3
    await drain()
    assert sorted(r[0] for r in rows(settings, "SELECT event FROM np_analytics_events")) == ["$pageview", "signup"]
    assert rows(settings, "SELECT user_id, traits FROM np_analytics_users") == [("u1", {"plan": "free"})]


async def test_segment_v1_paths_and_basic_auth(client: Any, settings: Any, drain: Any) -> None:
    """Segment's tracking API: 200 {"success": true} on every /v1/ route (also analytics.js's one-letter paths)."""
    basic = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
    msg_id = "ajs-next-1700000000000-abc"
    response = await client.post("/analytics/v1/track", headers=basic, json={
        "event": "Order Completed", "userId": "u7", "messageId": msg_id, "properties": {"total": 12},
        "context": {"library": {"name": "analytics.js"}}, "originalTimestamp": iso(days_ago(17)),
        "sentAt": iso(days_ago(17))})
    assert (response.status, await response.json()) == (200, {"success": True})
    response = await client.post("/analytics/v1/batch", headers=basic, json={"batch": [
        {"type": "screen", "userId": "u7", "name": "Home"}, {"type": "group", "userId": "u7", "groupId": "g1"}]})
    assert (response.status, await response.json()) == (200, {"success": True})
    response = await client.post("/analytics/v1/import", headers=basic, json={"batch": [
        {"type": "track", "event": "Imported", "userId": "u7"}]})
    assert (response.status, await response.json()) == (200, {"success": True})
    for path, body in (("t", {"event": "Short", "userId": "u7"}), ("p", {"anonymousId": "a7", "name": "Home"}),
                       ("a", {"userId": "u7", "previousId": "a7"}), ("g", {"userId": "u7", "groupId": "g2"}),
                       ("b", {"batch": [{"type": "track", "event": "Batched", "userId": "u7"}]})):
        response = await client.post(f"/analytics/v1/{path}", data=json.dumps({**body, "writeKey": WRITE_KEY}),
                                     headers={"Content-Type": "text/plain"})
        assert (response.status, await response.json()) == (200, {"success": True}), path
    response = await client.post("/analytics/v1/i", headers=basic, json={"userId": "u7", "traits": {"a": 1}})
    assert response.status == 200
    await drain()
    events = sorted(r[0] for r in rows(settings, "SELECT event FROM np_analytics_events"))
    assert events == ["$alias", "$group", "$group", "$pageview", "$screen", "Batched", "Imported", "Order Completed",
                      "Short"]
    [(stored_id,)] = rows(settings, "SELECT message_id::text FROM np_analytics_events WHERE event = 'Order Completed'")
    assert stored_id == str(uuid.uuid5(uuid.UUID("6f1c7a52-5d0e-4a55-9d46-1f3c3b7f8a10"), msg_id))
    assert rows(settings, "SELECT user_id FROM np_analytics_users") == [("u7",)]
    # the native routes keep their 202 and body
    response = await client.post("/analytics/track", headers=basic, json={"event": "e", "userId": "u7"})
    assert response.status == 202 and (await response.json())["status"] == "success"


@pytest.mark.parametrize(("path", "headers", "body", "status", "code"), [
    ("/v1/track", {"Authorization": "Basic " + base64.b64encode(b"wrong:").decode()}, {"event": "e", "userId": "u"},
     401, "unauthorized"),
    ("/v1/batch", None, "{not json", 400, "invalid_request"),
    ("/v1/track", None, {"event": "e"}, 400, "invalid_request"),  # no user or anonymous id
    ("/v1/alias", None, {"userId": "u"}, 400, "invalid_request"),  # no previous id
    ("/v1/group", None, {"userId": "u"}, 400, "invalid_request"),  # no group id
    ("/v1/batch", None, {"batch": [{"type": "track", "event": "ok", "userId": "u"}, {"type": "track", "userId": "u"}]},
     400, "invalid_request"),
    ("/v1/import", None, {"batch": [{"type": "track", "event": "e", "userId": "u",
                                     "properties": {"x": "y" * 600_000}}]}, 413, "payload_too_large"),
])
async def test_segment_v1_errors_carry_segments_code(client: Any, settings: Any, drain: Any, path: str,
                                                     headers: dict[str, str] | None, body: Any, status: int,
                                                     code: str) -> None:
    """Hostile: errors on the Segment routes are Segment-shaped (a `code` and `message` RudderStack's SDK reads) as
    well as ours, and store nothing."""
    headers = headers or {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
    data = body if isinstance(body, str) else json.dumps(body)
    response = await client.post(f"/analytics{path}", data=data,
                                 headers={**headers, "Content-Type": "application/json"})
    assert response.status == status
    payload = await response.json()
    assert payload["status"] == "error" and payload["success"] is False and payload["code"] == code
    assert payload["message"]
    await drain()
    assert count_events(settings) == 0


async def test_write_key_in_body_for_beacons(client: Any, settings: Any, drain: Any) -> None:
    response = await client.post("/analytics/batch", data=json.dumps({
        "writeKey": WRITE_KEY, "batch": [{"type": "track", "event": "e", "anonymousId": "a"}]}),
        headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert response.status == 202
    await drain()
    assert count_events(settings) == 1


async def test_secret_token_may_ingest(client: Any, settings: Any) -> None:
    response = await client.post("/analytics/track", headers={"Authorization": f"Bearer {SECRET}"},
                                 json={"event": "e", "user_id": "u"})
    assert response.status == 202


# --- rejected requests change nothing ---------------------------------------------------------

BAD_TRACKS = [
    ({"user_id": "u"}, "event is required"),
    ({"event": "", "user_id": "u"}, "event is required"),
    ({"event": 5, "user_id": "u"}, "event must be a string"),
    ({"event": "e"}, "user_id or anonymous_id is required"),
    ({"event": "e", "user_id": {"x": 1}}, "user_id must be a string"),
    ({"event": "e", "user_id": "u", "properties": [1, 2]}, "properties must be a JSON object"),
    ({"event": "e", "user_id": "u", "context": "x"}, "context must be a JSON object"),
    ({"event": "e", "user_id": "u", "timestamp": "yesterday"}, "timestamp is not a valid ISO-8601 timestamp"),
    ({"event": "e", "user_id": "u", "timestamp": True}, "timestamp must be an ISO-8601 string"),
    ({"event": "e", "user_id": "u", "sentAt": "soon", "timestamp": iso(days_ago(1))}, "sentAt is not a valid"),
    ({"event": "x" * 201, "user_id": "u"}, "event is longer than 200 characters"),
    ({"event": "e", "user_id": "u", "message_id": ""}, "message_id must be a non-empty string"),
]


@pytest.mark.parametrize(("body", "message"), BAD_TRACKS)
async def test_bad_track_is_400_and_stores_nothing(client: Any, auth: Any, settings: Any, body: Any,
                                                   message: str) -> None:
    response = await client.post("/analytics/track", headers=auth["write"], json=body)
    assert response.status == 400
    payload = await response.json()
    assert payload["status"] == "error" and payload["message"].startswith(message)
    assert stream_len(settings) == 0


@pytest.mark.parametrize(("raw", "status", "message"), [
    (b"{not json", 400, "Invalid JSON body"),
    (b"[1, 2]", 400, "Request body must be a JSON object"),
    (b"", 400, "Request body is empty; send a JSON object"),
    (b'"text"', 400, "Request body must be a JSON object"),
])
async def test_bad_bodies(client: Any, auth: Any, settings: Any, raw: bytes, status: int, message: str) -> None:
    response = await client.post("/analytics/track", headers=auth["write"], data=raw)
    assert response.status == status
    assert await response.json() == {"status": "error", "message": message}
    assert stream_len(settings) == 0


async def test_identify_needs_user_id(client: Any, auth: Any, settings: Any) -> None:
    response = await client.post("/analytics/identify", headers=auth["write"], json={"anonymous_id": "a"})
    assert response.status == 400 and (await response.json())["message"] == "identify needs a user_id"


async def test_body_over_500_kb_is_413(client: Any, auth: Any, settings: Any) -> None:
    big = {"event": "e", "user_id": "u", "properties": {"blob": "x" * (501 * 1024)}}
    response = await client.post("/analytics/track", headers=auth["write"], json=big)
    assert response.status == 413
    assert (await response.json())["message"] == "Request body exceeds 500 KB"
    assert stream_len(settings) == 0


async def test_batch_limits_and_bad_item(client: Any, auth: Any, settings: Any) -> None:
    item = {"type": "track", "event": "e", "user_id": "u"}
    response = await client.post("/analytics/batch", headers=auth["write"], json={"batch": [item] * 101})
    assert response.status == 400
    assert (await response.json())["message"] == "batch holds 101 messages; at most 100 are allowed"
    response = await client.post("/analytics/batch", headers=auth["write"],
                                 json={"batch": [item, item, {"type": "track", "user_id": "u"}, item]})
    assert response.status == 400
    body = await response.json()
    assert body == {"status": "error", "message": "batch[2]: event is required", "index": 2}
    for bad, message in (({"batch": "x"}, "batch must be an array of messages"),
                         ({"batch": []}, "batch must hold at least one message"),
                         ({"batch": [{"type": "fly", "user_id": "u"}]}, "batch[0]: type must be one of")):
        response = await client.post("/analytics/batch", headers=auth["write"], json=bad)
        assert response.status == 400 and (await response.json())["message"].startswith(message)
    assert stream_len(settings) == 0


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic !!!"},
    {"Authorization": "Basic " + base64.b64encode(b"wrong:").decode()},
])
async def test_missing_or_wrong_write_key_is_401(client: Any, settings: Any, headers: dict[str, str]) -> None:
    response = await client.post("/analytics/track", headers=headers, json={"event": "e", "user_id": "u"})
    assert response.status == 401
    body = await response.json()
    assert body["status"] == "error" and "write key" in body["message"]
    response = await client.post("/analytics/batch", headers=headers,
                                 json={"writeKey": "nope", "batch": [{"type": "track", "event": "e", "user_id": "u"}]})
    assert response.status == 401
    assert stream_len(settings) == 0


# --- rules ------------------------------------------------------------------------------------

async def test_future_timestamp_replaced_with_warning(client: Any, auth: Any, settings: Any, drain: Any) -> None:
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    before = datetime.now(UTC)
    response = await client.post("/analytics/track", headers=auth["write"],
                                 json={"event": "e", "user_id": "u", "timestamp": future})
    assert response.status == 202
    body = await response.json()
    assert body["warnings"] == ["timestamp is in the future; replaced by server time"]
    await drain()
    [(ts, warnings)] = rows(settings, "SELECT ts, context->'$warnings' FROM np_analytics_events")
    assert before - timedelta(seconds=1) <= ts <= datetime.now(UTC)
    assert warnings == body["warnings"]


async def test_clock_skew_corrected_with_sent_at(client: Any, auth: Any, settings: Any, drain: Any) -> None:
    # The client's clock runs 1 hour fast: its event happened 10 s before it sent the batch.
    client_now = datetime.now(UTC) + timedelta(hours=1)
    batch = [{"type": "track", "event": "e", "userId": "u",
              "timestamp": (client_now - timedelta(seconds=10)).isoformat()}]
    response = await client.post("/analytics/batch", headers=auth["write"],
                                 json={"batch": batch, "sentAt": client_now.isoformat()})
    assert response.status == 202 and (await response.json())["warnings"] == []
    await drain()
    [(ts,)] = rows(settings, "SELECT ts FROM np_analytics_events")
    expected = datetime.now(UTC) - timedelta(seconds=10)
    assert abs((ts - expected).total_seconds()) < 2


async def test_small_skew_keeps_client_time_so_late_retries_dedupe(client: Any, auth: Any, settings: Any,
                                                                    drain: Any) -> None:
    """Within 60 s of skew the client's timestamp is kept exactly: a retry arriving after the Redis
    dedupe keys expired still hits the (message_id, ts) unique index."""
    event_time = datetime.now(UTC) - timedelta(minutes=5)
    msg = {"type": "track", "event": "late", "userId": "u", "messageId": str(uuid.uuid4()),
           "timestamp": event_time.isoformat()}
    sent = datetime.now(UTC) - timedelta(seconds=3)  # in flight for 3 s: no skew correction
    assert (await client.post("/analytics/batch", headers=auth["write"],
                              json={"batch": [msg], "sentAt": sent.isoformat()})).status == 202
    await drain()
    redis.Redis.from_url(settings.redis_url).delete(*redis.Redis.from_url(settings.redis_url).keys("np_analytics:m:*"))
    retry_sent = datetime.now(UTC) - timedelta(seconds=9)
    response = await client.post("/analytics/batch", headers=auth["write"],
                                 json={"batch": [msg], "sentAt": retry_sent.isoformat()})
    assert (await response.json())["duplicates"] == []  # the Redis window has passed...
    await drain()
    assert rows(settings, "SELECT count(*), min(ts) FROM np_analytics_events") == [(1, event_time)]  # ...stored once


async def test_large_properties_truncated_event_kept(client: Any, auth: Any, settings: Any, drain: Any) -> None:
    properties = {"small": 1, "big": "y" * 5000, "tail": "z"}
    response = await client.post("/analytics/track", headers=auth["write"],
                                 json={"event": "e", "user_id": "u", "properties": properties})
    assert response.status == 202
    [warning] = (await response.json())["warnings"]
    assert warning.startswith("properties exceed 4 KB; truncated") and "big" in warning
    await drain()
    [(stored,)] = rows(settings, "SELECT properties FROM np_analytics_events")
    assert stored == {"$truncated": True, "small": 1, "tail": "z"}
    assert len(json.dumps(stored, separators=(",", ":"))) <= 4096


async def test_retries_stored_once(client: Any, auth: Any, settings: Any, drain: Any) -> None:
    msg = {"event": "e", "user_id": "u", "message_id": str(uuid.uuid4())}  # no timestamp: server time differs
    for _ in range(5):
        response = await client.post("/analytics/track", headers=auth["write"], json=msg)
        assert response.status == 202
    duplicate = await response.json()
    assert duplicate["duplicate"] is True
    batch = {"batch": [{"type": "track", "event": "b", "userId": "u", "messageId": f"m-{i}"} for i in range(10)]}
    for _ in range(3):
        assert (await client.post("/analytics/batch", headers=auth["write"], json=batch)).status == 202
    await drain()
    assert count_events(settings) == 11
    # a redelivery of the same stream entry (drainer crashed before XACK) is absorbed by ON CONFLICT
    assert rows(settings, "SELECT count(DISTINCT message_id) FROM np_analytics_events") == [(11,)]


async def test_ip_hashed_never_stored_raw(client: Any, auth: Any, settings: Any, drain: Any) -> None:
    ip = "203.0.113.77"
    response = await client.post("/analytics/batch", headers={**auth["write"], "X-Forwarded-For": f"{ip}, 10.0.0.1"},
                                 json={"batch": [
                                     {"type": "track", "event": "e", "userId": "u", "context": {"ip": "198.51.100.4"}},
                                     {"type": "page", "anonymousId": "a", "properties": {"url": "https://s.io/x"}}]})
    assert response.status == 202
    await drain()
    dump = rows(settings, "SELECT row_to_json(e)::text FROM np_analytics_events e")
    assert len(dump) == 2
    text = " ".join(r[0] for r in dump)
    assert ip not in text and "198.51.100.4" not in text
    hashes = rows(settings, "SELECT ip_hash FROM np_analytics_events ORDER BY event")
    assert all(h and len(h) == 16 for (h,) in hashes)


async def test_ip_kept_when_hashing_off(make_client: Any, settings: Any, auth: Any) -> None:
    client = await make_client(settings.with_(ip_hash=False))
    response = await client.post("/analytics/track", headers={**auth["write"], "X-Forwarded-For": "203.0.113.9"},
                                 json={"event": "e", "user_id": "u"})
    assert response.status == 202
    [(_entry_id, fields)] = redis.Redis.from_url(settings.redis_url, decode_responses=True).xrange(STREAM_KEY)
    record = json.loads(fields["e"])
    assert record["context"]["ip"] == "203.0.113.9" and record["ip_hash"] is None


def test_sampling_is_per_user_and_within_bounds() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    kept = sum(sampled_in(u, 0.1) for u in users)
    # binomial(20000, 0.1): sd ~ 42; 5 sd either side
    assert 2000 - 215 < kept < 2000 + 215
    assert all(sampled_in(u, 0.1) == sampled_in(u, 0.1) for u in users[:100])
    assert all(sampled_in(u, 1.0) for u in users[:100]) and not any(sampled_in(u, 0.0) for u in users[:100])


async def test_sampling_keeps_users_together(make_client: Any, settings: Any, auth: Any) -> None:
    sampled = settings.with_(sample_rate=0.3)
    client = await make_client(sampled)
    users = [f"s-{i}" for i in range(300)]
    for start in range(0, 300, 50):
        batch = [{"type": "track", "event": f"e{j}", "userId": u} for u in users[start:start + 50] for j in range(2)]
        assert (await client.post("/analytics/batch", headers=auth["write"], json={"batch": batch})).status == 202
    from nself_analytics.pipeline.drain import Drainer

    sub = client.app[ANALYTICS_APP]
    await Drainer(sub[PG_POOL], sub[REDIS], sampled).drain_until_empty()
    per_user = dict(rows(settings, "SELECT user_id, count(*) FROM np_analytics_events GROUP BY 1"))
    assert set(per_user.values()) <= {2}  # both or neither of a user's events
    assert set(per_user) == {u for u in users if sampled_in(u, 0.3)}
    assert 30 < len(per_user) < 150
    # counters still count every accepted event
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    assert int(r.get(counter_key("total", "e0", datetime.now(UTC))) or 0) == 300


async def test_counters_incremented_with_the_write(make_client: Any, settings: Any, auth: Any) -> None:
    client = await make_client(settings.with_(quota_enabled=True))
    for _ in range(3):
        await client.post("/analytics/track", headers=auth["write"], json={"event": "play", "user_id": "u1"})
    await client.post("/analytics/track", headers=auth["write"], json={"event": "play", "user_id": "u2"})
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    now = datetime.now(UTC)
    assert r.get(counter_key("day", "play", now)) == "4" and r.get(counter_key("total", "play", now)) == "4"
    assert r.get(counter_key("month", "play", now, "u1")) == "3"
    minute = counter_key("minute", "play", now)
    # total keys expire the retention window after their last increment (issue 10: counter keys are bounded)
    assert 0 < r.ttl(minute) <= 120 and 0 < r.ttl(counter_key("total", "play", now)) <= settings.retention_days * 86_400


async def test_backpressure_503_then_recovery(make_client: Any, settings: Any, auth: Any) -> None:
    small = settings.with_(queue_buffer=5)
    client = await make_client(small)
    for i in range(5):
        response = await client.post("/analytics/track", headers=auth["write"], json={"event": "e", "user_id": f"{i}"})
        assert response.status == 202
    response = await client.post("/analytics/track", headers=auth["write"], json={"event": "e", "user_id": "x"})
    assert response.status == 503 and response.headers["Retry-After"] == "2"
    assert (await response.json())["message"] == "Ingest queue is full; retry later"
    # Segment's routes (also at the root): the same 503 and Retry-After, in Segment's shape
    for path in ("/analytics/v1/track", "/v1/track"):
        response = await client.post(path, headers=auth["write"], json={"event": "e", "userId": "x"})
        assert response.status == 503 and response.headers["Retry-After"] == "2", path
        assert await response.json() == {"status": "error", "success": False, "code": "service_unavailable",
                                         "message": "Ingest queue is full; retry later"}
    assert stream_len(settings) == 5
    from nself_analytics.pipeline.drain import Drainer

    sub = client.app[ANALYTICS_APP]
    await Drainer(sub[PG_POOL], sub[REDIS], small).drain_until_empty()
    response = await client.post("/analytics/track", headers=auth["write"], json={"event": "e", "user_id": "x"})
    assert response.status == 202
    await Drainer(sub[PG_POOL], sub[REDIS], small).drain_until_empty()
    assert count_events(settings) == 6


async def test_cors_preflight_and_headers(client: Any, auth: Any) -> None:
    response = await client.options("/analytics/batch", headers={
        "Origin": "https://site.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    response = await client.post("/analytics/track", headers={**auth["write"], "Origin": "https://site.example"},
                                 json={"user_id": "u"})
    assert response.status == 400 and response.headers["Access-Control-Allow-Origin"] == "*"
    health = await client.get("/analytics/health", headers={"Origin": "https://x"})
    assert "Access-Control-Allow-Origin" not in health.headers


async def test_context_fields_held_in_columns_are_not_stored_twice(client: Any, auth: Any, settings: Any,
                                                                   drain: Any) -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
    context = {"library": {"name": "@nself/analytics-js", "version": "1.1.1"}, "userAgent": ua, "locale": "en-US",
               "page": {"url": "https://ex.com/pricing", "path": "/pricing", "referrer": "https://g.co/",
                        "title": "Pricing"}, "screen": {"width": 1440, "height": 900}}
    response = await client.post("/analytics/track", headers=auth["write"],
                                 json={"event": "clicked", "user_id": "u", "context": context})
    assert response.status == 202
    await drain()
    [row] = rows(settings, "SELECT site, path, referrer, language, screen_width, device, browser, os, context "
                           "FROM np_analytics_events")
    assert row[:8] == ("ex.com", "/pricing", "https://g.co/", "en-US", 1440, "desktop", "Chrome", "Linux")
    assert row[8] == {"library": context["library"], "page": {"title": "Pricing"}, "screen": {"height": 900}}
