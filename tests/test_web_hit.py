"""The beacon: /a.js served small and cacheable; /hit public, CORS *, validated, enriched, flood-marked."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import redis

from nself_analytics.api.beacon import BEACON_PATH
from nself_analytics.ingest.hits import FLOOD_LIMIT_PER_MINUTE, FLOOD_PREFIX

from .conftest import pg_execute

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")
HEADLESS = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/150.0.0.0 "
            "Safari/537.36")
COLUMNS = ("type, event, site, path, referrer, language, screen_width, session_id, device, browser, os, country, "
           "is_bot, ip_hash, properties, context, user_id, anonymous_id")


def rows(settings: Any, where: str = "true") -> list[dict[str, Any]]:
    names = [c.strip() for c in COLUMNS.split(",")]
    result = pg_execute(settings.database_url, f"SELECT {COLUMNS} FROM np_analytics_events WHERE {where} ORDER BY ts")
    return [dict(zip(names, row, strict=True)) for row in result]


async def post_hit(client: Any, body: Any, ua: str | None = CHROME, ip: str = "8.8.8.8", **headers: str) -> Any:
    if ua is not None:
        headers["User-Agent"] = ua
    headers.setdefault("Content-Type", "text/plain;charset=UTF-8")  # what navigator.sendBeacon sends
    return await client.post("/analytics/hit", data=body if isinstance(body, bytes) else json.dumps(body),
                             headers={"X-Forwarded-For": ip, **headers}, skip_auto_headers=["User-Agent"])


HIT = {"site": "Shop.Example.com", "hostname": "shop.example.com", "path": "/pricing",
       "referrer": "https://www.google.com/search?q=secret#frag", "language": "de-DE", "screen_width": 1440,
       "session_id": "s-1", "utm_source": "newsletter", "utm_campaign": "spring", "utm_medium": ""}


async def test_beacon_script_is_small_minified_and_cacheable(client: Any) -> None:
    response = await client.get("/analytics/a.js")
    assert response.status == 200
    body = await response.read()
    assert len(body) < 2048, f"a.js is {len(body)} bytes"
    assert body == BEACON_PATH.read_bytes()
    assert response.headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    text = body.decode()
    assert text.count("\n") <= 1 and "/*" not in text  # minified: no comments, one line
    for needle in ("sessionStorage", "pushState", "replaceState", "popstate", "sendBeacon", "keepalive",
                   "currentScript", "utm_", "hit"):
        assert needle in text
    assert "cookie" not in text
    again = await client.get("/analytics/a.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""


async def test_hit_is_public_stored_as_a_page_view(client: Any, settings: Any, drain: Any) -> None:
    response = await post_hit(client, HIT, ua=IPHONE, Origin="https://shop.example.com")
    assert response.status == 202
    assert await response.json() == {"status": "success"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert await drain() == 1
    [row] = rows(settings)
    assert row == {
        "type": "page", "event": "$pageview", "site": "shop.example.com", "path": "/pricing",
        "referrer": "https://www.google.com/search", "language": "de-DE", "screen_width": 1440, "session_id": "s-1",
        "device": "mobile", "browser": "Safari", "os": "iOS", "country": "US", "is_bot": False,
        "ip_hash": row["ip_hash"], "properties": {"utm_source": "newsletter", "utm_campaign": "spring"},
        "context": None, "user_id": None, "anonymous_id": None,
    }
    assert len(row["ip_hash"]) == 16
    dump = pg_execute(settings.database_url, "SELECT row_to_json(e)::text FROM np_analytics_events e")[0][0]
    assert "8.8.8.8" not in dump


async def test_internal_referrer_dropped_and_other_hostname_kept(client: Any, settings: Any, drain: Any) -> None:
    for body in ({"site": "example.com", "hostname": "blog.example.com", "path": "/a",
                  "referrer": "https://blog.example.com/previous?x=1", "session_id": "s"},
                 {"site": "example.com", "path": "/b", "referrer": "https://example.com/", "session_id": "s"},
                 {"site": "example.com", "path": "/c", "referrer": "not a url", "session_id": "s"}):
        assert (await post_hit(client, body)).status == 202
    await drain()
    got = [(r["path"], r["referrer"], r["properties"]) for r in rows(settings)]
    assert sorted(got) == [("/a", None, {"hostname": "blog.example.com"}), ("/b", None, None), ("/c", None, None)]


async def test_hit_preflight_answers_cors(client: Any) -> None:
    response = await client.options("/analytics/hit", headers={
        "Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize(("body", "message"), [
    ({"path": "/"}, "site is required (the page's hostname)"),
    ({"site": "exa mple.com"}, "site must be a hostname such as example.com"),
    ({"site": 5}, "site must be a string"),
    ({"site": "example.com", "path": "pricing"}, "path must start with /"),
    ({"site": "example.com", "screen_width": "wide"}, "screen_width must be a number"),
    ({"site": "example.com", "session_id": ["x"]}, "session_id must be a string"),
    ({"site": "example.com", "webdriver": "yes"}, "webdriver must be a boolean"),
    ({"site": "example.com", "anonymous_id": 7}, "anonymous_id must be a string"),
    ({"site": "example.com", "anonymous_id": "a" * 256}, "anonymous_id is longer than 255 characters"),
    ({"site": None}, "site is required (the page's hostname)"),
    ({"site": "example.com", "screen_width": True}, "screen_width must be a number"),
    ({"site": "example.com", "utm_source": 3}, "utm_source must be a string"),
    (b"{nope", "Invalid JSON body"),
    (b"[]", "Request body must be a JSON object"),
])
async def test_bad_hits_are_400(client: Any, settings: Any, drain: Any, body: Any, message: str) -> None:
    response = await post_hit(client, body)
    assert response.status == 400
    assert await response.json() == {"status": "error", "message": message}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    await drain()
    assert rows(settings) == []


@pytest.mark.parametrize(("ua", "extra"), [
    (HEADLESS, {}), (None, {}), ("", {}), ("curl/8.5.0", {}),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", {}),
    (CHROME, {"webdriver": True}),
])
async def test_bot_hits_kept_and_marked(client: Any, settings: Any, drain: Any, ua: str | None,
                                        extra: dict[str, Any]) -> None:
    response = await post_hit(client, {"site": "example.com", "session_id": "b", **extra}, ua=ua)
    assert response.status == 202
    await drain()
    assert [r["is_bot"] for r in rows(settings)] == [True]


async def test_flooding_session_marked_not_dropped(client: Any, settings: Any, drain: Any) -> None:
    total = FLOOD_LIMIT_PER_MINUTE + 5
    minute = int(time.time()) // 60
    for i in range(total):
        response = await post_hit(client, {"site": "example.com", "path": f"/p{i}", "session_id": "flood"})
        assert response.status == 202
    response = await post_hit(client, {"site": "example.com", "path": "/calm", "session_id": "calm"})
    assert response.status == 202
    await drain()
    flags = [r["is_bot"] for r in rows(settings, "session_id = 'flood'")]
    assert len(flags) == total  # every hit stored
    assert flags[:FLOOD_LIMIT_PER_MINUTE] == [False] * FLOOD_LIMIT_PER_MINUTE
    if int(time.time()) // 60 == minute:  # a minute boundary mid-loop would reset the count
        assert flags[FLOOD_LIMIT_PER_MINUTE:] == [True] * 5
    assert [r["is_bot"] for r in rows(settings, "session_id = 'calm'")] == [False]


async def test_flood_marks_within_one_minute(client: Any, settings: Any, drain: Any) -> None:
    # pre-load this minute's counter as if 60 hits had arrived: the next one is marked
    r = redis.Redis.from_url(settings.redis_url)
    minute = int(time.time()) // 60
    for m in (minute, minute + 1):
        r.set(f"{FLOOD_PREFIX}example.com:busy:{m}", FLOOD_LIMIT_PER_MINUTE, ex=120)
    assert (await post_hit(client, {"site": "example.com", "session_id": "busy"})).status == 202
    await drain()
    assert [row["is_bot"] for row in rows(settings)] == [True]
    assert 0 < r.ttl(f"{FLOOD_PREFIX}example.com:busy:{int(time.time()) // 60}") <= 120


async def test_session_derived_when_missing(client: Any, settings: Any, drain: Any) -> None:
    for path in ("/x", "/y"):
        assert (await post_hit(client, {"site": "example.com", "path": path}, ip="81.2.69.142")).status == 202
    assert (await post_hit(client, {"site": "example.com", "path": "/z"}, ip="1.0.16.1")).status == 202
    await drain()
    got = {r["path"]: (r["session_id"], r["country"]) for r in rows(settings)}
    assert got["/x"][0] == got["/y"][0] != got["/z"][0]
    assert got["/x"][0].startswith("h") and got["/x"][1] == "GB" and got["/z"][1] == "JP"


@pytest.mark.parametrize(("path", "raw"), [
    ("/analytics/hit", rb'{"site": "example.com", "path": "/\ud800"}'),
    ("/analytics/track", rb'{"event": "e", "user_id": "u", "properties": {"a": "x\udfff"}}'),
    ("/analytics/batch", rb'{"batch": [{"type": "track", "event": "\udc00", "user_id": "u"}]}'),
])
async def test_unpaired_surrogates_are_400_and_harm_no_one(client: Any, auth: Any, settings: Any, drain: Any,
                                                           path: str, raw: bytes) -> None:
    # found by schemathesis: such a body could not be written to Redis, and failed every request of its round trip
    bad, good = await asyncio.gather(
        client.post(path, data=raw, headers=auth["write"]),
        post_hit(client, {"site": "example.com", "path": "/ok\ud83d\ude00", "session_id": "s"}))
    assert bad.status == 400
    message = "Invalid JSON body: a \\u escape is an unpaired surrogate"
    assert await bad.json() == {"status": "error", "message": message}
    assert good.status == 202
    await drain()
    assert [r["path"] for r in rows(settings)] == ["/ok\U0001F600"]


async def test_nul_characters_are_dropped_not_stored(client: Any, auth: Any, settings: Any, drain: Any) -> None:
    # found by schemathesis: PostgreSQL cannot store NUL, and one such event failed the drain's whole batch
    raw = rb'{"site": "example.com", "path": "/a\u0000b", "session_id": "s\u0000", "utm_source": "x\u0000"}'
    assert (await post_hit(client, raw)).status == 202
    response = await client.post("/analytics/track", headers=auth["write"],
                                 data=rb'{"event": "e\u0000", "user_id": "u", "properties": {"k\u0000": "v\u0000"}}')
    assert response.status == 202
    assert (await post_hit(client, {"site": "example.com", "path": "/after", "session_id": "s"})).status == 202
    assert await drain() == 3
    got = pg_execute(settings.database_url, "SELECT event, path, session_id, properties FROM np_analytics_events "
                                            "ORDER BY ts")
    assert got == [("$pageview", "/ab", "s", {"utm_source": "x"}), ("e", None, None, {"k": "v"}),
                   ("$pageview", "/after", "s", None)]


async def test_browser_sdk_bundle_is_served_public_and_cacheable(client: Any) -> None:
    from nself_analytics.api.sdk import SDK_PATH

    response = await client.get("/analytics/sdk/analytics.js")
    assert response.status == 200
    body = await response.read()
    assert body == SDK_PATH.read_bytes() and b"NselfAnalytics" in body and b"nsa_anonymous_id" in body
    assert response.headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    again = await client.get("/analytics/sdk/analytics.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""
    # nothing else of the folder, nor outside it, is reachable through this route
    for path in ("/analytics/sdk/", "/analytics/sdk/analytics.js/..", "/analytics/sdk/../a.js", "/analytics/sdk/x.js"):
        other = await client.get(path)
        assert other.status == 404 or (await other.read()) != body, path
