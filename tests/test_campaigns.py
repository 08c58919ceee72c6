"""GET /api/utm-* and /api/goals against plain-Python counts of known page views and events."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nself_analytics.store.partitions import ensure_partitions
from nself_analytics.store.rollups.aggregates import materialize

from .clock_support import days_ago
from .queries_support import Ev
from .store_writes import write_events

T0 = days_ago(30, hour=10)
RANGE = {"site": "shop.example", "start": str(int(T0.timestamp()) - 3600), "end": str(int(T0.timestamp()) + 86400)}
# (session, anonymous id, path, utm properties, country, bot)
VIEWS = [
    ("s1", "a1", "/", {"utm_source": "news", "utm_medium": "email", "utm_campaign": "spring"}, "DE", False),
    ("s1", "a1", "/pricing", {"utm_source": "news"}, "DE", False),
    ("s2", "a2", "/", {"utm_source": "news", "utm_term": "shoes", "utm_content": "banner"}, "US", False),
    ("s3", "a3", "/pricing", {"utm_source": "ads", "utm_medium": "cpc", "utm_campaign": "spring"}, "US", False),
    ("s4", "a4", "/", {"utm_source": "ads"}, "US", True),  # a bot: left out
    ("s5", "a5", "/", {}, "FR", False),
]


async def _write(conn: Any) -> list[dict[str, Any]]:
    rows = []
    for i, (session, anon, path, utm, country, bot) in enumerate(VIEWS):
        rows.append({**Ev(None, T0 + timedelta(minutes=i), "$pageview", utm or None, anon=anon, bot=bot).row(),
                     "site": "shop.example", "path": path, "session_id": session, "country": country})
    rows.append({**Ev(None, T0, "$pageview", {"utm_source": "news"}, anon="z").row(), "site": "other.example",
                 "path": "/", "session_id": "sz"})
    rows.append(Ev("user-1", T0 + timedelta(hours=1), "signup", anon=None).row())  # a back end's: no site
    for hours, site in ((1, "shop.example"), (2, "shop.example"), (3, "other.example")):
        rows.append({**Ev(None, T0 + timedelta(hours=hours), "signup", anon="a1").row(), "site": site})
    await ensure_partitions(conn, {T0.date()})
    await write_events(conn, rows, [])
    return rows


def _ref_utm(key: str) -> list[dict[str, Any]]:
    """A session counts under its first page view's value (docs/web-metrics.md), with all its page views."""
    views: Counter[str] = Counter()
    sessions: dict[str, set[str]] = defaultdict(set)
    first: dict[str, str | None] = {}
    for session, _anon, _path, utm, _country, bot in VIEWS:
        if not bot:
            value = first.setdefault(session, utm.get(key))
            if value:
                views[value] += 1
                sessions[value].add(session)
    rows = [{key: v, "pageviews": n, "sessions": len(sessions[v])} for v, n in views.items()]
    return sorted(rows, key=lambda r: (-r["pageviews"], -r["sessions"], r[key]))


@pytest.mark.parametrize("name", ["source", "medium", "campaign", "term", "content"])
async def test_utm_reports(client: Any, auth: Any, pool_conn: Any, name: str) -> None:
    await _write(pool_conn)
    response = await client.get(f"/analytics/api/utm-{name}s", headers=auth["secret"], params=RANGE)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["data"] == _ref_utm(f"utm_{name}")
    assert body["meta"]["site"] == "shop.example"
    # the same answer from the web rollup alone, once aggregated (the raw page views gone)
    while await materialize(pool_conn, retention_days=36500):
        pass
    async with pool_conn.cursor() as cur:
        await cur.execute("DELETE FROM np_analytics_events")
    rolled = await client.get(f"/analytics/api/utm-{name}s", headers=auth["secret"], params=RANGE)
    assert (await rolled.json())["data"] == _ref_utm(f"utm_{name}")


async def test_utm_filters_and_limit(client: Any, auth: Any, pool_conn: Any) -> None:
    await _write(pool_conn)
    us = await (await client.get("/analytics/api/utm-sources", headers=auth["secret"],
                                 params={**RANGE, "country": "US"})).json()
    assert us["data"] == [{"utm_source": "ads", "pageviews": 1, "sessions": 1},
                          {"utm_source": "news", "pageviews": 1, "sessions": 1}]
    bots = await (await client.get("/analytics/api/utm-sources", headers=auth["secret"],
                                   params={**RANGE, "include_bots": "true", "limit": "1"})).json()
    assert bots["data"] == [{"utm_source": "news", "pageviews": 3, "sessions": 2}]


async def test_goals(client: Any, auth: Any, pool_conn: Any) -> None:
    await _write(pool_conn)
    response = await client.get("/analytics/api/goals", headers=auth["secret"],
                                params=[*RANGE.items(), ("goal", "path:/pricing"), ("goal", "event:signup"),
                                        ("goal", "path:/nowhere")])
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["meta"]["visitors"] == 4  # a1, a2, a3, a5 (the bot is left out)
    assert body["data"] == [
        {"goal": "path:/pricing", "kind": "path", "value": "/pricing", "conversions": 2, "visitors": 2,
         "conversion_rate": 0.5},
        {"goal": "event:signup", "kind": "event", "value": "signup", "conversions": 2, "visitors": 1,
         "conversion_rate": 0.25},  # the site's signups only: not the back end's (no site), not other.example's
        {"goal": "path:/nowhere", "kind": "path", "value": "/nowhere", "conversions": 0, "visitors": 0,
         "conversion_rate": 0.0},
    ]
    de = await (await client.get("/analytics/api/goals", headers=auth["secret"],
                                 params={**RANGE, "country": "DE", "goal": "path:/pricing"})).json()
    assert (de["meta"]["visitors"], de["data"][0]["visitors"], de["data"][0]["conversion_rate"]) == (1, 1, 1.0)


@pytest.mark.parametrize(("params", "message"), [
    ({}, "goal is required: goal=path:/pricing or goal=event:signup (repeatable)"),
    ({"goal": "pricing"}, "Invalid goal 'pricing': use path:/some/page or event:name"),
    ({"goal": "url:/x"}, "Invalid goal 'url:/x': use path:/some/page or event:name"),
    ({"goal": "path:pricing"}, "A path goal is a path starting with / of at most 1024 characters"),
    ({"goal": "path:/" + "p" * 1024}, "A path goal is a path starting with / of at most 1024 characters"),
    ({"goal": "event:"}, "goal event is required"),
    ({"goal": "event:" + "e" * 201}, "goal event is longer than 200 characters"),
])
async def test_goals_refuse_bad_goals(client: Any, auth: Any, params: dict[str, str], message: str) -> None:
    response = await client.get("/analytics/api/goals", headers=auth["secret"], params={**RANGE, **params})
    assert response.status == 400
    assert await response.json() == {"status": "error", "message": message}


async def test_goals_and_utm_hostile(client: Any, auth: Any, pool_conn: Any) -> None:
    await _write(pool_conn)
    many = [*RANGE.items(), *[("goal", f"event:e{i}") for i in range(21)]]
    response = await client.get("/analytics/api/goals", headers=auth["secret"], params=many)
    assert response.status == 400 and (await response.json())["message"] == "At most 20 goals"
    injected = await client.get("/analytics/api/goals", headers=auth["secret"],
                                params={**RANGE, "goal": "path:/' OR '1'='1"})
    assert (await injected.json())["data"][0]["conversions"] == 0
    for path in ("/analytics/api/utm-sources", "/analytics/api/goals"):
        assert (await client.get(path, headers=auth["write"], params={**RANGE, "goal": "event:x"})).status == 401
        missing = await client.get(path, headers=auth["secret"], params={"goal": "event:x"})
        assert missing.status == 400 and "site is required" in (await missing.json())["message"]


async def test_realtime_visitors_and_latest_page_views(client: Any, auth: Any, pool_conn: Any) -> None:
    now = datetime.now(UTC)
    rows = [{**Ev(None, now - timedelta(seconds=s), "$pageview", anon=who, bot=bot).row(), "site": "live.example",
             "path": path, "session_id": f"s-{who}"}
            for s, who, path, bot in [(10, "a", "/x", False), (20, "a", "/y", False), (30, "b", "/z", False),
                                      (40, "c", "/bot", True), (400, "d", "/old", False)]]
    await ensure_partitions(pool_conn, {(now - timedelta(seconds=400)).date(), now.date()})
    await write_events(pool_conn, rows, [])
    body = await (await client.get("/analytics/api/realtime", headers=auth["secret"],
                                   params={"site": "live.example", "limit": "2"})).json()
    assert (body["data"]["visitors"], body["data"]["pageviews"]) == (2, 3)
    assert [r["path"] for r in body["data"]["latest"]] == ["/x", "/y"]
    other = await client.get("/analytics/api/realtime", headers={**auth["secret"], "X-Source-Account-Id": "app-b"},
                             params={"site": "live.example"})
    assert (await other.json())["data"] == {"visitors": 0, "pageviews": 0, "latest": []}
    assert (await client.get("/analytics/api/realtime", headers=auth["write"],
                             params={"site": "live.example"})).status == 401
    bad = await client.get("/analytics/api/realtime", headers=auth["secret"], params={"site": "x y"})
    assert bad.status == 400


async def test_browser_os_and_utm_filters_select_whole_sessions(client: Any, auth: Any, pool_conn: Any) -> None:
    rows = await _write(pool_conn)
    async with pool_conn.cursor() as cur:  # two browsers and systems among the page views of shop.example
        await cur.execute("UPDATE np_analytics_events SET browser = CASE WHEN session_id = 's3' THEN 'Safari' "
                          "ELSE 'Chrome' END, os = CASE WHEN session_id = 's3' THEN 'iOS' ELSE 'Linux' END "
                          "WHERE site = 'shop.example'")
    assert rows

    async def views(**filters: str) -> int:
        response = await client.get("/analytics/api/pageviews", headers=auth["secret"], params={**RANGE, **filters})
        assert response.status == 200, await response.text()
        return int((await response.json())["data"]["pageviews"])

    assert await views() == 5
    assert await views(browser="Safari") == 1 and await views(os="Linux") == 4
    # a session's UTM is its first page view's: s1's second page view counts with it
    assert await views(utm_source="news") == 3 and await views(utm_source="news", utm_medium="email") == 2
    assert await views(utm_source="news", country="US") == 1 and await views(utm_term="shoes") == 1
    assert await views(browser="Nope") == 0
    pages = await (await client.get("/analytics/api/pages", headers=auth["secret"],
                                    params={**RANGE, "utm_campaign": "spring"})).json()
    # every page of the selected sessions (s1: / and /pricing; s3: /pricing)
    assert pages["data"] == [{"path": "/pricing", "pageviews": 2, "sessions": 2},
                             {"path": "/", "pageviews": 1, "sessions": 1}]
    mediums = await (await client.get("/analytics/api/utm-mediums", headers=auth["secret"],
                                      params={**RANGE, "browser": "Safari"})).json()
    assert mediums["data"] == [{"utm_medium": "cpc", "pageviews": 1, "sessions": 1}]
    for name, value in (("browser", "b" * 101), ("os", "o" * 101), ("utm_source", "s" * 201)):
        bad = await client.get("/analytics/api/pageviews", headers=auth["secret"], params={**RANGE, name: value})
        assert bad.status == 400 and name in (await bad.json())["message"]
    injected = await client.get("/analytics/api/pageviews", headers=auth["secret"],
                                params={**RANGE, "utm_source": '"}, "x": {"'})
    assert injected.status == 200 and (await injected.json())["data"]["pageviews"] == 0
