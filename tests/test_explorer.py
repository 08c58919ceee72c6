"""GET /events, /events/{name}/properties and /sites against a plain-Python count of known events,
and the default range (the last 30 days) of every product query."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nself_analytics.store.partitions import ensure_partitions
from nself_analytics.store.rollups.aggregates import materialize

from .queries_support import BASE, Ev, insert
from .store_writes import write_events

TOGETHER = "start_date and end_date go together: give both, or neither for the last 30 days"
RANGE = {"start_date": f"{BASE:%Y}-01-01", "end_date": f"{BASE:%Y}-01-07"}
HOUR = timedelta(hours=1)


def _events() -> list[Ev]:
    t = BASE + HOUR
    return [
        Ev("u1", t, "signup", {"plan": "pro", "seats": 3, "beta": True}),
        Ev("u2", t + HOUR, "signup", {"plan": "free", "seats": 1}),
        Ev("u3", t + 2 * HOUR, "signup", {"plan": "pro", "tags": ["a"], "ref": None}),
        Ev(None, t + 3 * HOUR, "signup", {"plan": "x" * 300}, anon="a1"),
        Ev("u1", t + timedelta(days=2), "purchase", {"amount": 10.5}),
        Ev("u2", t + timedelta(days=3), "purchase", {"amount": 10.5}),
        Ev("u1", t + timedelta(days=6), "open", None),
        Ev("bot", t, "signup", {"plan": "bot"}, bot=True),  # bots are left out
        Ev("u9", t, "other-account", {"plan": "pro"}, account="app-b"),
        Ev("u1", t + timedelta(days=8), "late", None),  # after the range
    ]


def _ref_names(events: list[Ev], start: datetime, end: datetime, account: str = "primary") -> list[dict[str, Any]]:
    seen: dict[str, list[datetime]] = defaultdict(list)
    for e in events:
        if e.account == account and not e.bot and start <= e.ts < end:
            seen[e.event].append(e.ts)
    rows = [{"event": name, "count": len(times), "first_seen": min(times).isoformat().replace("+00:00", "Z"),
             "last_seen": max(times).isoformat().replace("+00:00", "Z")} for name, times in seen.items()]
    return sorted(rows, key=lambda r: (-r["count"], r["event"]))


def _ref_properties(events: list[Ev], name: str, values: int) -> list[dict[str, Any]]:
    kinds = {str: "string", bool: "boolean", int: "number", float: "number", list: "array", dict: "object",
             type(None): "null"}
    count: Counter[str] = Counter()
    types: dict[str, set[str]] = defaultdict(set)
    tops: dict[str, Counter[str]] = defaultdict(Counter)
    for e in events:
        if e.event != name or e.bot or e.account != "primary" or not e.props:
            continue
        for key, value in e.props.items():
            count[key] += 1
            types[key].add(kinds[type(value)])
            if isinstance(value, bool):
                tops[key][json.dumps(value)] += 1
            elif isinstance(value, str | int | float):
                tops[key][str(value)[:200]] += 1
    rows = []
    for key in sorted(count, key=lambda k: (-count[k], k)):
        top = sorted(tops[key].items(), key=lambda kv: (-kv[1], kv[0]))[:values]
        rows.append({"key": key, "count": count[key], "types": sorted(types[key]),
                     "values": [{"value": v, "count": c} for v, c in top]})
    return rows


async def test_event_names_match_the_reference(client: Any, auth: Any, pool_conn: Any) -> None:
    events = _events()
    await insert(pool_conn, events)
    response = await client.get("/analytics/events", headers=auth["secret"], params=RANGE)
    assert response.status == 200
    body = await response.json()
    start, end = BASE, BASE + timedelta(days=7)
    assert body["data"] == _ref_names(events, start, end)
    assert [r["event"] for r in body["data"]] == ["signup", "purchase", "open"]
    assert (body["start_date"], body["end_date"], body["limit"]) == (f"{BASE:%Y}-01-01", f"{BASE:%Y}-01-07", 100)
    limited = await (await client.get("/analytics/events", headers=auth["secret"], params={**RANGE, "limit": 2})).json()
    assert limited["data"] == _ref_names(events, start, end)[:2]
    found = await (await client.get("/analytics/events", headers=auth["secret"],
                                    params={**RANGE, "search": "CHAS"})).json()
    assert [r["event"] for r in found["data"]] == ["purchase"]
    other = await (await client.get("/analytics/events", headers={**auth["secret"], "X-Source-Account-Id": "app-b"},
                                    params=RANGE)).json()
    assert other["data"] == _ref_names(events, start, end, "app-b")


async def test_event_properties_match_the_reference(client: Any, auth: Any, pool_conn: Any) -> None:
    events = _events()
    await insert(pool_conn, events)
    body = await (await client.get("/analytics/events/signup/properties", headers=auth["secret"],
                                   params=RANGE)).json()
    assert body["event"] == "signup" and body["sampled_events"] == 4
    assert body["data"] == _ref_properties(events, "signup", 10)
    assert body["data"][0] == {"key": "plan", "count": 4, "types": ["string"], "values": [
        {"value": "pro", "count": 2}, {"value": "free", "count": 1}, {"value": "x" * 200, "count": 1}]}
    one = await (await client.get("/analytics/events/signup/properties", headers=auth["secret"],
                                  params={**RANGE, "values": 1, "limit": 2})).json()
    assert one["data"] == [{**row, "values": row["values"][:1]} for row in _ref_properties(events, "signup", 1)][:2]
    purchase = await (await client.get("/analytics/events/purchase/properties", headers=auth["secret"],
                                       params=RANGE)).json()
    assert purchase["data"] == [{"key": "amount", "count": 2, "types": ["number"],
                                 "values": [{"value": "10.5", "count": 2}]}]
    # an event without properties, and one never seen: no keys, nothing surveyed for the latter
    empty = await (await client.get("/analytics/events/open/properties", headers=auth["secret"],
                                    params=RANGE)).json()
    assert (empty["sampled_events"], empty["data"]) == (1, [])
    unknown = await (await client.get("/analytics/events/nope/properties", headers=auth["secret"],
                                      params=RANGE)).json()
    assert (unknown["sampled_events"], unknown["data"]) == (0, [])


async def _pageviews(conn: Any, rows: list[tuple[str, datetime, str, bool]]) -> None:
    await ensure_partitions(conn, {ts.date() for _, ts, _, _ in rows})
    await write_events(conn, [
        {**Ev(None, ts, "$pageview", anon=f"v{i}", bot=bot, account=account).row(), "site": site, "path": "/"}
        for i, (site, ts, account, bot) in enumerate(rows)], [])


async def test_sites_with_page_views(client: Any, auth: Any, pool_conn: Any) -> None:
    t = BASE + HOUR
    await _pageviews(pool_conn, [
        ("a.example", t, "primary", False), ("a.example", t + HOUR, "primary", False),
        ("b.example", t + 2 * HOUR, "primary", False), ("b.example", t, "primary", True),
        ("c.example", t, "app-b", False), ("a.example", t + timedelta(days=9), "primary", False),
    ])
    body = await (await client.get("/analytics/sites", headers=auth["secret"], params=RANGE)).json()
    assert body["data"] == [
        {"site": "a.example", "pageviews": 2, "first_seen": f"{BASE:%Y}-01-01T01:00:00Z",
         "last_seen": f"{BASE:%Y}-01-01T02:00:00Z"},
        {"site": "b.example", "pageviews": 1, "first_seen": f"{BASE:%Y}-01-01T03:00:00Z",
         "last_seen": f"{BASE:%Y}-01-01T03:00:00Z"},
    ]
    other = await (await client.get("/analytics/sites", headers={**auth["secret"], "X-Source-Account-Id": "app-b"},
                                    params=RANGE)).json()
    assert [r["site"] for r in other["data"]] == ["c.example"]
    one = await (await client.get("/analytics/sites", headers=auth["secret"], params={**RANGE, "limit": 1})).json()
    assert [r["site"] for r in one["data"]] == ["a.example"]
    # aggregated: the same answer from the rollup with the raw rows gone (whole days: the day rows and the
    # fragments of a session spanning midnight), then a late page view of a day read from its clean hours'
    # fragments and the raw dirty hour
    midnight = BASE + timedelta(days=1)
    await ensure_partitions(pool_conn, {BASE.date(), midnight.date()})
    await write_events(pool_conn, [
        {**Ev(None, ts, "$pageview", anon="span").row(), "site": "d.example", "path": "/", "session_id": "s-span"}
        for ts in (midnight - timedelta(minutes=10), midnight + timedelta(minutes=10))], [])
    while await materialize(pool_conn, retention_days=36500):
        pass
    async with pool_conn.cursor() as cur:
        await cur.execute("DELETE FROM np_analytics_events")
        await cur.execute("SELECT count(*) FROM np_analytics_web_sessions WHERE spans")
        assert (await cur.fetchone())[0] == 2
    d = {"site": "d.example", "pageviews": 2, "first_seen": f"{BASE:%Y}-01-01T23:50:00Z",
         "last_seen": f"{BASE:%Y}-01-02T00:10:00Z"}
    rolled = await (await client.get("/analytics/sites", headers=auth["secret"], params=RANGE)).json()
    assert rolled["data"] == [body["data"][0], d, body["data"][1]]  # ties in page views: by site
    await _pageviews(pool_conn, [("b.example", t + 5 * HOUR, "primary", False)])
    after = await (await client.get("/analytics/sites", headers=auth["secret"], params=RANGE)).json()
    late = {**body["data"][1], "pageviews": 2, "last_seen": f"{BASE:%Y}-01-01T06:00:00Z"}  # b.example, one view more
    assert after["data"] == [body["data"][0], late, d]


async def test_product_queries_default_to_the_last_30_days(client: Any, auth: Any, pool_conn: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    inside = now - timedelta(days=29)
    outside = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=30, seconds=1)
    await insert(pool_conn, [Ev("u1", inside, "a"), Ev("u1", now, "b"), Ev("u2", outside, "a"),
                             Ev("u2", outside, "b")])
    first = (today - timedelta(days=29)).isoformat()
    names = await (await client.get("/analytics/events", headers=auth["secret"])).json()
    assert (names["start_date"], names["end_date"]) == (first, today.isoformat())
    assert {r["event"]: r["count"] for r in names["data"]} == {"a": 1, "b": 1}
    funnel = await (await client.get("/analytics/funnel", headers=auth["secret"], params={"steps": "a,b",
                                                                                         "window": "30d"})).json()
    assert (funnel["start_date"], funnel["end_date"]) == (first, today.isoformat())
    assert [s["users"] for s in funnel["steps"]] == [1, 1]
    metrics = await (await client.get("/analytics/metrics", headers=auth["secret"])).json()
    assert sum(row["counts"].get("a", 0) + row["counts"].get("b", 0) for row in metrics["data"]) == 2
    retention = await (await client.get("/analytics/retention", headers=auth["secret"],
                                        params={"period": "month"})).json()
    assert retention["start_date"] == first and sum(r["size"] for r in retention["data"]) == 1


EXPLORER = ["/analytics/events", "/analytics/events/signup/properties", "/analytics/sites"]


@pytest.mark.parametrize("path", EXPLORER)
async def test_explorer_needs_the_secret(client: Any, auth: Any, path: str) -> None:
    for headers in ({}, auth["write"], {"Authorization": "Bearer wrong"}):
        response = await client.get(path, headers=headers)
        assert response.status == 401 and (await response.json())["status"] == "error"


@pytest.mark.parametrize("path", EXPLORER)
@pytest.mark.parametrize(("params", "message"), [
    ({"limit": "0"}, "limit must be between 1 and 1000"),
    ({"limit": "1001"}, "limit must be between 1 and 1000"),
    ({"limit": "1; DROP TABLE np_analytics_events"}, "limit must be an integer"),
    ({"start_date": "2025-01-01"}, TOGETHER),
    ({"end_date": "2025-01-01"}, TOGETHER),
    ({"start_date": "2025-01-01", "end_date": "2025-1-2"}, "Invalid date format. Use YYYY-MM-DD"),
    ({"start_date": "2024-01-01", "end_date": "2025-12-31"}, "The date range is limited to 366 days"),
])
async def test_explorer_refuses_bad_parameters(client: Any, auth: Any, path: str, params: dict[str, str],
                                               message: str) -> None:
    response = await client.get(path, headers=auth["secret"], params=params)
    assert response.status == 400
    assert await response.json() == {"status": "error", "message": message}


async def test_explorer_hostile_names_are_data(client: Any, auth: Any, pool_conn: Any) -> None:
    hostile = "x' OR '1'='1"
    await insert(pool_conn, [Ev("u1", BASE + HOUR, hostile, {"k'; DROP TABLE np_analytics_events; --": "v"}),
                             Ev("u1", BASE + HOUR, "signup", {"plan": "pro"})])
    body = await (await client.get(f"/analytics/events/{hostile}/properties", headers=auth["secret"],
                                   params=RANGE)).json()
    assert body["event"] == hostile
    assert body["data"] == [{"key": "k'; DROP TABLE np_analytics_events; --", "count": 1, "types": ["string"],
                             "values": [{"value": "v", "count": 1}]}]
    found = await (await client.get("/analytics/events", headers=auth["secret"],
                                    params={**RANGE, "search": "%"})).json()
    assert found["data"] == []  # % is a character here, not a pattern
    too_long = await client.get(f"/analytics/events/{'e' * 201}/properties", headers=auth["secret"])
    assert too_long.status == 400 and "longer than 200" in (await too_long.json())["message"]
    values = await client.get("/analytics/events/signup/properties", headers=auth["secret"], params={"values": "51"})
    assert values.status == 400 and (await values.json())["message"] == "values must be between 0 and 50"
    search = await client.get("/analytics/events", headers=auth["secret"], params={"search": "s" * 201})
    assert search.status == 400
    account = await client.get("/analytics/sites", headers={**auth["secret"], "X-Source-Account-Id": "a b"})
    assert account.status == 400
