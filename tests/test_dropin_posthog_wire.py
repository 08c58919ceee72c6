"""PostHog's capture API on the wire, in-process: every encoding and place of the key its SDKs use, the meaning
of its special events and times, the answers its SDKs expect, and a hostile test beside each new input (bad gzip,
bad base64, lz garbage, decompression bombs, too many events, a wrong or missing key, no distinct_id)."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import lzstring
import pytest

from nself_analytics.web.appkeys import ANALYTICS_APP, REDIS

from .conftest import WRITE_KEY, pg_execute

LZ = lzstring.LZString()


def batch(*events: dict[str, Any], key: str = WRITE_KEY, **extra: Any) -> dict[str, Any]:
    return {"api_key": key, "batch": list(events), **extra}


def event(name: str = "Signed Up", distinct_id: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"event": name, "distinct_id": distinct_id, **extra}


def rows(settings: Any, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    return pg_execute(settings.database_url, sql, params)


async def post(client: Any, path: str, data: Any, **headers: str) -> Any:
    raw = data if isinstance(data, bytes | str) else json.dumps(data)
    response = await client.post(path, data=raw, headers=headers)
    return response.status, await response.json()


def events_named(settings: Any, name: str) -> list[tuple[Any, ...]]:
    return rows(settings, "SELECT user_id, anonymous_id, ts, message_id::text, site, path, session_id, properties "
                          "FROM np_analytics_events WHERE event = %s ORDER BY ts", (name,))


# --- encodings: each one the SDKs send ---------------------------------------------------------------------------

def _encodings(body: dict[str, Any]) -> list[tuple[str, bytes | str, dict[str, str]]]:
    text = json.dumps(body)
    b64 = base64.b64encode(text.encode()).decode()
    lz = LZ.compressToBase64(text)
    return [
        ("/analytics/batch/", text, {"Content-Type": "application/json"}),
        ("/analytics/batch/", gzip.compress(text.encode()), {"Content-Encoding": "gzip",
                                                              "Content-Type": "application/json"}),
        ("/analytics/e/?compression=gzip-js", gzip.compress(text.encode()), {"Content-Type": "text/plain"}),
        ("/analytics/i/v0/e/", gzip.compress(text.encode()), {"Content-Type": "text/plain"}),  # header only
        ("/analytics/e/?compression=base64", f"data={quote(b64)}",
         {"Content-Type": "application/x-www-form-urlencoded"}),
        ("/analytics/e/?compression=base64", b64, {"Content-Type": "text/plain"}),  # sendBeacon
        ("/analytics/e/", f"data={quote(b64)}&compression=base64",
         {"Content-Type": "application/x-www-form-urlencoded"}),
        ("/analytics/e/?compression=lz64", f"data={quote(lz)}", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("/analytics/e/?compression=lz64", lz, {"Content-Type": "text/plain"}),
        ("/analytics/capture/", text, {}),
        ("/analytics/engage", text, {}),
    ]


async def test_every_encoding_is_read_and_stored_once(client: Any, drain: Any, settings: Any) -> None:
    count = len(_encodings(batch(event())))
    for index in range(count):  # each request carries its own event
        body = batch(event("Encoded", f"enc-{index}", properties={"n": index, "é": "ü"}))
        path, raw, headers = _encodings(body)[index]
        assert await post(client, path, raw, **headers) == (200, {"status": 1}), path
    await drain()
    stored = events_named(settings, "Encoded")
    assert sorted(r[0] for r in stored) == sorted(f"enc-{i}" for i in range(count))
    assert all(r[7]["é"] == "ü" for r in stored)


async def test_key_in_api_key_token_properties_or_header(client: Any, drain: Any, settings: Any) -> None:
    bodies = [
        [event("Keyed", "k1", properties={"token": WRITE_KEY})],  # a bare array, posthog-js's older shape
        {**event("Keyed", "k2"), "api_key": WRITE_KEY},  # one event
        {**event("Keyed", "k3"), "token": WRITE_KEY},
        {"batch": [event("Keyed", "k4", properties={"token": WRITE_KEY})]},
    ]
    for body in bodies:
        assert await post(client, "/analytics/e/", body) == (200, {"status": 1}), body
    response = await client.post("/analytics/capture", json=event("Keyed", "k5"),
                                 headers={"Authorization": f"Bearer {WRITE_KEY}"})
    assert response.status == 200
    await drain()
    assert sorted(r[0] for r in events_named(settings, "Keyed")) == ["k1", "k2", "k3", "k4", "k5"]
    stored = events_named(settings, "Keyed")
    assert all("token" not in (r[7] or {}) for r in stored)  # the key is never stored


# --- hostile: each new input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,headers,status", [
    (b"\x1f\x8b" + b"garbage-not-deflate" * 10, {"Content-Type": "text/plain"}, 400),  # bad gzip
    (gzip.compress(b'{"api_key": "' + WRITE_KEY.encode() + b'", "batch": [{"event": "x"')[:-12],
     {"Content-Type": "text/plain"}, 400),  # truncated gzip
    (gzip.compress(b"not json at all"), {"Content-Type": "text/plain"}, 400),
    (gzip.compress(b"[" + b" " * (2 * 1024 * 1024) + b"]"), {"Content-Type": "text/plain"}, 413),  # a gzip bomb
], ids=["bad", "truncated", "not-json", "bomb"])  # named: gzip's bytes carry the time, and xdist's workers compare ids
async def test_bad_gzip_is_refused(client: Any, drain: Any, raw: bytes, headers: dict[str, str], status: int) -> None:
    got, body = await post(client, "/analytics/e/", raw, **headers)
    assert (got, body["status"]) == (status, "error")
    assert await drain() == 0


async def test_gzip_bomb_with_content_encoding_is_refused(client: Any, drain: Any) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * (3 * 1024 * 1024) + b"]}")
    response = await client.post("/analytics/batch/", data=bomb, headers={
        "Content-Encoding": "gzip", "Authorization": f"Bearer {WRITE_KEY}"})
    assert response.status == 413
    assert await drain() == 0


@pytest.mark.parametrize("path,raw", [
    ("/analytics/e/?compression=base64", "data=%%%not-base64!!"),
    ("/analytics/e/?compression=base64", "!!!!not base64"),
    ("/analytics/e/?compression=base64", base64.b64encode(b"not json").decode()),
    ("/analytics/e/?compression=lz64", "!!!!"),
    ("/analytics/e/?compression=lz64", "AAAAAAAA"),  # a valid alphabet, no stream
    ("/analytics/e/?compression=lz64", "BBBBBBBB" * 50),  # decodes to a few characters, not JSON
    ("/analytics/e/", "compression=base64&other=1"),  # a form without data
    ("/analytics/e/", "data=" + "&x=1" * 50),  # a form with too many fields
    ("/analytics/e/", "42"),  # JSON, but no object or array
])
async def test_bad_base64_lz64_and_forms_are_400(client: Any, drain: Any, path: str, raw: str) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded" if raw.startswith(("data=", "compression="))
               else "text/plain", "Authorization": f"Bearer {WRITE_KEY}"}
    got, body = await post(client, path, raw, **headers)
    assert (got, body["status"]) == (400, "error"), body
    assert await drain() == 0


async def test_lz64_bomb_is_413(client: Any, drain: Any) -> None:
    bomb = LZ.compressToBase64('{"batch": [' + " " * (2 * 1024 * 1024) + "]}")
    assert len(bomb) < 50_000  # tiny on the wire
    got, _answer = await post(client, "/analytics/e/?compression=lz64", bomb, Authorization=f"Bearer {WRITE_KEY}")
    assert got == 413
    assert await drain() == 0


async def test_wrong_or_missing_key_is_401(client: Any, drain: Any) -> None:
    for body in (batch(event(), key="wrong-key"), {"batch": [event()]}, [event(properties={"token": "nope"})],
                 {**event(), "api_key": 42}):
        got, answer = await post(client, "/analytics/batch/", body)
        assert (got, answer["status"]) == (401, "error"), body
    assert (await client.post("/batch", data=gzip.compress(json.dumps(batch(event(), key="wrong")).encode()),
                              headers={"Content-Type": "text/plain"})).status == 401
    assert await drain() == 0


async def test_too_many_events_is_413_so_posthog_node_halves_its_batch(client: Any, drain: Any) -> None:
    got, answer = await post(client, "/analytics/batch/", batch(*[event(distinct_id=f"u{i}") for i in range(101)]))
    assert got == 413 and "100" in answer["message"]
    assert await post(client, "/analytics/batch/", batch(*[event(distinct_id=f"u{i}") for i in range(100)])) == (
        200, {"status": 1})
    assert await drain() == 100


@pytest.mark.parametrize("bad,fragment", [
    ({"event": "x"}, "distinct_id is required"),
    ({"event": "x", "distinct_id": "  "}, "distinct_id is required"),
    ({"event": "x", "distinct_id": True}, "batch[1]"),
    ({"distinct_id": "u"}, "batch[1]"),
    ({"event": "x" * 201, "distinct_id": "u"}, "batch[1]"),
    ({"event": "x", "distinct_id": "u" * 256}, "batch[1]"),
    ({"event": "x", "distinct_id": "u", "properties": []}, "batch[1]"),
    ({"event": "x", "distinct_id": "u", "timestamp": "yesterday"}, "timestamp"),
    ({"event": "x", "distinct_id": "u", "timestamp": "9999-01-01T00:00:00Z"}, "timestamp"),
    ({"event": "x", "distinct_id": "u", "offset": -5}, "batch[1]"),
    ({"event": "$create_alias", "distinct_id": "u", "properties": {}}, "alias"),
    ({"event": "$groupidentify", "distinct_id": "u", "properties": {"$group_type": "c"}}, "$group_key"),
    ("not an event", "batch[1]"),
])
async def test_a_bad_event_rejects_the_batch_naming_its_index(client: Any, drain: Any, bad: Any,
                                                             fragment: str) -> None:
    got, answer = await post(client, "/analytics/batch/", batch(event(), bad))
    assert (got, answer["status"]) == (400, "error")
    assert fragment in answer["message"] and answer.get("index") == 1, answer
    assert await drain() == 0


async def test_bodies_without_events_are_400(client: Any, drain: Any) -> None:
    for body in ([], {"api_key": WRITE_KEY}, batch(), {"api_key": WRITE_KEY, "batch": "x"}):
        got, answer = await post(client, "/analytics/batch/", body, Authorization=f"Bearer {WRITE_KEY}")
        assert (got, answer["status"]) == (400, "error"), body
    assert await drain() == 0


# --- meaning ------------------------------------------------------------------------------------------------------

async def test_special_events_become_identify_alias_group_page_and_screen(client: Any, drain: Any,
                                                                          settings: Any) -> None:
    body = batch(
        {"event": "$identify", "distinct_id": "user-1", "$set": {"plan": "pro"}, "$set_once": {"first": "a"},
         "properties": {"$anon_distinct_id": "anon-1", "$set": {"tier": "gold"}, "$set_once": {"since": 2020}}},
        {"event": "$set", "distinct_id": "user-1", "properties": {"$set": {"seats": 3}}},
        {"event": "$create_alias", "distinct_id": "old-1", "properties": {"distinct_id": "old-1", "alias": "user-1"}},
        {"event": "$groupidentify", "distinct_id": "user-1",
         "properties": {"$group_type": "company", "$group_key": "acme", "$group_set": {"name": "Acme"}}},
        {"event": "$pageview", "distinct_id": "anon-1", "properties": {
            "$current_url": "https://shop.example/cart?utm_source=x", "$pathname": "/cart", "$referrer": "$direct",
            "$session_id": "s-1", "$is_identified": False, "$ip": "203.0.113.9", "$os": "Linux"}},
        {"event": "$screen", "distinct_id": "user-1", "properties": {"$screen_name": "Settings"}},
    )
    assert await post(client, "/analytics/batch/", body) == (200, {"status": 1})
    await drain()
    traits = rows(settings, "SELECT traits FROM np_analytics_users WHERE user_id = 'user-1'")[0][0]
    assert {k: traits.get(k) for k in ("plan", "first", "tier", "since", "seats")} == {
        "plan": "pro", "first": "a", "tier": "gold", "since": 2020, "seats": 3}
    # $set_once fills only what the user has none of, in a later request and inside one batch; $set overwrites
    later = batch({"event": "$set_once", "distinct_id": "user-1", "properties": {"$set_once": {"tier": "x", "new": 1}}},
                  {"event": "$set", "distinct_id": "user-1", "properties": {"$set": {"plan": "max"}}},
                  {"event": "$set_once", "distinct_id": "user-1", "$set_once": {"new": 2, "plan": "once"}})
    assert await post(client, "/analytics/batch/", later) == (200, {"status": 1})
    await drain()
    traits = rows(settings, "SELECT traits FROM np_analytics_users WHERE user_id = 'user-1'")[0][0]
    assert {k: traits.get(k) for k in ("plan", "tier", "new", "seats")} == {"plan": "max", "tier": "gold", "new": 1,
                                                                            "seats": 3}
    links = dict(rows(settings, "SELECT distinct_id, person_id FROM np_analytics_person_map"))
    assert links.get("anon-1") == links.get("old-1") == "user-1", links
    assert [r[7]["group_id"] for r in events_named(settings, "$group")] == ["acme"]
    page = events_named(settings, "$pageview")[0]
    assert page[:2] == (None, "anon-1") and page[4:7] == ("shop.example", "/cart", "s-1")
    assert "$ip" not in page[7] and "$os" not in page[7] and "203.0.113.9" not in json.dumps(page[7])
    assert [r[7]["name"] for r in events_named(settings, "$screen")] == ["Settings"]


async def test_uuid_is_the_message_id_and_a_retry_is_stored_once(client: Any, drain: Any, settings: Any) -> None:
    message_id = str(uuid.uuid4())
    body = batch(event("Paid", "payer", uuid=message_id, timestamp=datetime.now(UTC).isoformat()))
    for _ in range(3):
        assert await post(client, "/analytics/batch/", body) == (200, {"status": 1})
    await drain()
    assert [r[3] for r in events_named(settings, "Paid")] == [message_id]


async def test_times_follow_posthogs_rule_within_our_bounds(client: Any, drain: Any, settings: Any) -> None:
    now = datetime.now(UTC)
    skewed_clock = now + timedelta(hours=2)  # the client's clock is two hours ahead
    body = batch(
        event("Skewed", "t", timestamp=(skewed_clock - timedelta(hours=1)).isoformat()),  # an hour ago, its clock
        event("Offset", "t", offset=30 * 60 * 1000),  # half an hour ago
        event("Untimed", "t"),
        sent_at=skewed_clock.isoformat())
    assert await post(client, "/analytics/batch/", body) == (200, {"status": 1})
    # no sent_at: the timestamp as it is; a future one becomes now; one before retention is not stored
    later = batch(event("Stamped", "t", timestamp=(now - timedelta(days=2)).isoformat()),
                  event("Future", "t", timestamp=(now + timedelta(days=1)).isoformat()),
                  event("Ancient", "t", timestamp=(now - timedelta(days=3650)).isoformat()))
    assert await post(client, "/analytics/batch/", later) == (200, {"status": 1})
    await drain()
    times = {name: events_named(settings, name)[0][2] for name in ("Skewed", "Offset", "Stamped", "Untimed",
                                                                    "Future")}
    tolerance = timedelta(minutes=2)
    assert abs(times["Skewed"] - (now - timedelta(hours=1))) < tolerance
    assert abs(times["Offset"] - (now - timedelta(minutes=30))) < tolerance
    assert abs(times["Stamped"] - (now - timedelta(days=2))) < tolerance
    assert abs(times["Untimed"] - now) < tolerance and abs(times["Future"] - now) < tolerance
    assert events_named(settings, "Ancient") == []


async def test_sent_at_in_the_query_is_milliseconds_and_a_cache_buster_is_ignored(client: Any, drain: Any,
                                                                                    settings: Any) -> None:
    now = datetime.now(UTC)
    clock = now - timedelta(hours=3)  # the browser's clock is three hours behind
    stamp = (clock - timedelta(minutes=10)).isoformat()
    sent = int(clock.timestamp() * 1000)
    for path in (f"/analytics/e/?sent_at={sent}", f"/analytics/e/?_={sent}", "/analytics/e/?_=abc&ver=1.2"):
        body = [event("Queried", path, timestamp=stamp, properties={"token": WRITE_KEY})]
        assert await post(client, path, body) == (200, {"status": 1}), path
    await drain()
    times = {r[0]: r[2] for r in events_named(settings, "Queried")}
    for path in ("/analytics/e/?sent_at=", "/analytics/e/?_="):
        assert abs(times[path + str(sent)] - (now - timedelta(minutes=10))) < timedelta(minutes=2)
    assert abs(times["/analytics/e/?_=abc&ver=1.2"] - (clock - timedelta(minutes=10))) < timedelta(minutes=2)
    got, answer = await post(client, f"/analytics/e/?sent_at={10**14}", [event(properties={"token": WRITE_KEY},
                                                                                timestamp=stamp)])
    assert (got, answer["status"]) == (400, "error")  # a sent_at past 2999: outside every time bound


# --- routes and answers -------------------------------------------------------------------------------------------

async def test_our_own_batch_and_track_stay_under_analytics(client: Any, drain: Any, settings: Any) -> None:
    ours = {"batch": [{"type": "track", "event": "Native", "userId": "n"}]}
    response = await client.post("/analytics/batch", json=ours, headers={"Authorization": f"Bearer {WRITE_KEY}"})
    assert response.status == 202 and (await response.json())["accepted"] == 1
    response = await client.post("/analytics/track", json={"event": "Native", "userId": "n2"},
                                 headers={"Authorization": f"Bearer {WRITE_KEY}"})
    assert response.status == 202
    # PostHog's at the root: /batch and /track without the slash too, and the other paths with or without it
    for path in ("/batch", "/batch/", "/track", "/track/", "/e", "/e/", "/i/v0/e", "/i/v0/e/", "/capture",
                 "/capture/", "/engage/", "/analytics/track/", "/analytics/i/v0/e"):
        assert await post(client, path, batch(event("Rooted", path))) == (200, {"status": 1}), path
    await drain()
    assert len(events_named(settings, "Rooted")) == 13 and len(events_named(settings, "Native")) == 2


async def test_flags_decide_and_config_say_there_is_nothing(client: Any) -> None:
    for path in ("/flags/?v=2", "/flags", "/decide/?v=3", "/analytics/flags/?v=2&config=true", "/analytics/decide"):
        response = await client.post(path, json={"api_key": WRITE_KEY, "distinct_id": "u"})
        answer = await response.json()
        assert response.status == 200, path
        assert answer["flags"] == {} and answer["errorsWhileComputingFlags"] is False
        assert answer["featureFlags"] == {} and uuid.UUID(answer["requestId"])
    assert (await client.post("/flags/?v=2", json={"api_key": "wrong", "distinct_id": "u"})).status == 401
    for path in ("/array/phc_anything/config", "/analytics/array/phc_anything/config"):
        response = await client.get(path)
        answer = await response.json()
        assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
        assert answer["hasFeatureFlags"] is False and answer["sessionRecording"] is False
        assert answer["siteApps"] == [] and "gzip-js" in answer["supportedCompression"]


async def test_preflight_and_cors_on_every_answer(client: Any) -> None:
    response = await client.options("/e/", headers={"Origin": "https://site.example",
                                                    "Access-Control-Request-Method": "POST"})
    assert response.status == 204 and response.headers["Access-Control-Allow-Origin"] == "*"
    response = await client.post("/e/", data=b"\x1f\x8bbad", headers={"Origin": "https://site.example"})
    assert response.status in (400, 401) and response.headers["Access-Control-Allow-Origin"] == "*"


async def test_full_queue_is_503_with_retry_after(make_client: Any, settings: Any) -> None:
    client = await make_client(settings.with_(queue_bytes=16 * 1024))
    big = {"p": "y" * 3000}
    statuses = []
    for index in range(10):
        response = await client.post("/batch/", json=batch(*[event("Full", f"f{index}-{i}", properties=big)
                                                             for i in range(3)]))
        statuses.append(response.status)
        if response.status == 503:
            assert int(response.headers["Retry-After"]) > 0
    assert 503 in statuses and set(statuses) <= {200, 503}, statuses
    assert await client.app[ANALYTICS_APP][REDIS].xlen("np_analytics:events") > 0
