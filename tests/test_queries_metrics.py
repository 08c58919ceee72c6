"""GET /metrics and GET /sessions: compared with the plain-Python reference across week and month edges,
from raw events, from the materialized aggregates, and from a mix of both."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nself_analytics.store.rollups.aggregates import materialize

from .queries_support import (
    BASE,
    Ev,
    Link,
    insert,
    links_of,
    periods_between,
    ref_metrics,
    ref_sessions,
    reset,
    run_examples,
)

MINUTE = timedelta(minutes=1)
# UTC, a whole-hour zone, zones of a 30- and a 45-minute offset (store/rollups/zones.py)
ZONES = st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu"])
# Dec 20 .. Feb 3: crosses a year, two month ends and ISO weeks spanning them
ORIGIN = BASE - timedelta(days=12)
raw_events = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 45 * 24 * 60), st.sampled_from(["play", "stop", "pause"]),
              st.booleans()),
    min_size=10, max_size=60,
)
# sessions: Thu Jan 30 .. Mon Feb 3 in 6-hour steps, so pairs nest, interleave and tie
SESSION_ORIGIN = BASE + timedelta(days=29)
session_events = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 20).map(lambda n: n * 360), st.sampled_from(["play", "stop", "x"]),
              st.just(False)),
    min_size=5, max_size=50,
)


def to_events(raw: list[tuple[int, int, str, bool]], origin: datetime = ORIGIN) -> list[Ev]:
    return [Ev(f"u{u}", origin + minutes * MINUTE, name, bot=bot and name == "pause")
            for u, minutes, name, bot in raw]


async def materialize_all(conn: Any) -> int:
    total = 0
    while claimed := await materialize(conn, 36500):
        total += claimed
    return total


def expected_rows(events: list[Ev], first: date, last: date, group_by: str, user: str | None,
                  links: list[Link], tz: str = "UTC") -> list[dict[str, Any]]:
    counts = ref_metrics(events, first, last, group_by, user, links, tz)
    names = sorted({name for per in counts.values() for name in per})
    return [{"date": p.isoformat(), "counts": {n: counts.get(p, {}).get(n, 0) for n in names}}
            for p in periods_between(first, last, group_by)]


async def test_metrics_match_reference(client: Any, auth: Any, pool_conn: Any) -> None:
    async def example(raw: list[Any], late: list[tuple[int, int]], group_by: str, first_offset: int, days: int,
                      user: str | None, links: list[Link], tz: str) -> None:
        await reset(pool_conn)
        events = to_events(raw)
        # late events land on the days of earlier ones after those were materialized: they re-dirty them
        late_events = []
        for index, minute in late:
            e = events[index % len(events)]
            day = e.ts.replace(hour=0, minute=0)
            late_events.append(Ev(e.user, day + minute * MINUTE, e.event))
        await insert(pool_conn, events)
        await materialize_all(pool_conn)
        if late_events:
            await insert(pool_conn, late_events)
        await insert(pool_conn, [], links=links)
        events += late_events
        first = ORIGIN.date() + timedelta(days=first_offset)
        last = first + timedelta(days=days - 1)
        query = {"start_date": first.isoformat(), "end_date": last.isoformat(), "group_by": group_by, "tz": tz}
        if user:
            query["user_id"] = user
        for _ in range(2):  # with late events pending (read from raw events), then all materialized
            response = await client.get("/analytics/metrics", headers=auth["secret"], params=query)
            assert response.status == 200, await response.text()
            assert (await response.json())["data"] == expected_rows(events, first, last, group_by, user, links, tz)
            await materialize_all(pool_conn)

    def check(run: Any) -> None:
        @settings(max_examples=30, deadline=None)
        @given(raw=raw_events, late=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 24 * 60 - 1)), max_size=8),
               group_by=st.sampled_from(["day", "week", "month"]), first_offset=st.integers(0, 44),
               days=st.integers(1, 40), user=st.sampled_from([None, "u1"]), links=links_of(["u0", "u1", "u2", "u3"]),
               tz=ZONES)
        def examples(raw: list[Any], late: list[tuple[int, int]], group_by: str, first_offset: int, days: int,
                     user: str | None, links: list[Link], tz: str) -> None:
            run(example(raw, late, group_by, first_offset, days, user, links, tz))

        examples()

    await run_examples(check)


async def test_metrics_example_and_aggregates_after_pruning(client: Any, auth: Any, pool_conn: Any,
                                                            settings: Any) -> None:
    day = BASE
    await insert(pool_conn, [Ev("u1", day + timedelta(hours=1), "play"), Ev("u1", day + timedelta(hours=2), "play"),
                             Ev("u2", day + timedelta(hours=3), "stop"),
                             Ev("u2", day + timedelta(days=1), "play")])
    params = {"start_date": f"{BASE:%Y}-01-01", "end_date": f"{BASE:%Y}-01-02"}
    response = await client.get("/analytics/metrics", headers=auth["secret"], params=params)
    expected = [{"date": f"{BASE:%Y}-01-01", "counts": {"play": 2, "stop": 1}},
                {"date": f"{BASE:%Y}-01-02", "counts": {"play": 1, "stop": 0}}]
    assert (await response.json())["data"] == expected
    by_user = await client.get("/analytics/metrics", headers=auth["secret"], params={**params, "user_id": "u2"})
    assert (await by_user.json())["data"] == [{"date": f"{BASE:%Y}-01-01", "counts": {"play": 0, "stop": 1}},
                                              {"date": f"{BASE:%Y}-01-02", "counts": {"play": 1, "stop": 0}}]
    await materialize_all(pool_conn)
    # the raw events go (as pruning would drop them): the counts come from the aggregates
    async with pool_conn.cursor() as cur:
        await cur.execute("DELETE FROM np_analytics_events")
    response = await client.get("/analytics/metrics", headers=auth["secret"], params=params)
    assert (await response.json())["data"] == expected


async def test_sessions_match_reference(client: Any, auth: Any, pool_conn: Any) -> None:
    async def example(raw: list[Any], group_by: str, first_offset: int, days: int, user: str | None,
                      links: list[Link], tz: str) -> None:
        await reset(pool_conn)
        events = to_events(raw, SESSION_ORIGIN)
        await insert(pool_conn, events, links=links)
        first = SESSION_ORIGIN.date() + timedelta(days=first_offset)
        last = first + timedelta(days=days - 1)
        query = {"start_date": first.isoformat(), "end_date": last.isoformat(), "group_by": group_by, "tz": tz}
        if user:
            query["user_id"] = user
        response = await client.get("/analytics/sessions", headers=auth["secret"], params=query)
        assert response.status == 200, await response.text()
        data = (await response.json())["data"]
        expected = ref_sessions(events, first, last, group_by, user=user, links=links, tz=tz)
        assert [row["date"] for row in data] == [p.isoformat() for p in periods_between(first, last, group_by)]
        for row in data:
            count, total = expected.get(date.fromisoformat(row["date"]), (0, 0.0))
            assert row["sessionCount"] == count
            assert row["totalDuration"] == pytest.approx(total, abs=1e-3)
            assert row["averageDuration"] == pytest.approx(total / count if count else 0, abs=1e-3)

    def check(run: Any) -> None:
        @settings(max_examples=40, deadline=None)
        @given(raw=session_events, group_by=st.sampled_from(["day", "week", "month"]),
               first_offset=st.integers(0, 4), days=st.integers(1, 5), user=st.sampled_from([None, "u1"]),
               links=links_of(["u0", "u1", "u2"]), tz=ZONES)
        def examples(raw: list[Any], group_by: str, first_offset: int, days: int, user: str | None,
                     links: list[Link], tz: str) -> None:
            run(example(raw, group_by, first_offset, days, user, links, tz))

        examples()

    await run_examples(check)


async def test_sessions_example(client: Any, auth: Any, pool_conn: Any) -> None:
    t = BASE + timedelta(hours=10)
    events = [
        Ev("u1", t - timedelta(hours=1), "stop"),  # a stop with no start: nothing
        Ev("u1", t, "play"), Ev("u1", t + timedelta(minutes=10), "play"),  # nested: the inner one closes first
        Ev("u1", t + timedelta(minutes=15), "stop"), Ev("u1", t + timedelta(minutes=30), "stop"),
        Ev("u2", t, "play"),  # never stopped: nothing
        Ev("u3", t + timedelta(days=1), "play"), Ev("u3", t + timedelta(days=1, minutes=2), "stop"),
        Ev("u4", t + timedelta(hours=13), "begin"), Ev("u4", t + timedelta(days=3), "end"),
    ]
    await insert(pool_conn, events)
    params = {"start_date": f"{BASE:%Y}-01-01", "end_date": f"{BASE:%Y}-01-02"}
    response = await client.get("/analytics/sessions", headers=auth["secret"], params=params)
    assert (await response.json())["data"] == [
        {"date": f"{BASE:%Y}-01-01", "totalDuration": 2100.0, "sessionCount": 2, "averageDuration": 1050.0},
        {"date": f"{BASE:%Y}-01-02", "totalDuration": 120.0, "sessionCount": 1, "averageDuration": 120.0},
    ]
    # another pair of events; a session is dated by its start, even when it ends after the range
    other = await client.get("/analytics/sessions", headers=auth["secret"],
                             params={**params, "start_event": "begin", "stop_event": "end", "group_by": "month"})
    assert (await other.json())["data"] == [
        {"date": f"{BASE:%Y}-01-01", "totalDuration": 212400.0, "sessionCount": 1, "averageDuration": 212400.0}]


@pytest.mark.parametrize("path", ["/analytics/metrics", "/analytics/sessions"])
@pytest.mark.parametrize(("params", "message"), [
    ({"start_date": "2025-01-01"}, "start_date and end_date go together: give both, or neither for the last 30 days"),
    ({"start_date": "2025-01-01", "end_date": "2025-13-01"}, "Invalid date format. Use YYYY-MM-DD"),
    ({"start_date": "20250101", "end_date": "2025-01-02"}, "Invalid date format. Use YYYY-MM-DD"),
    ({"start_date": f"{BASE:%Y}-01-01", "end_date": f"{BASE:%Y}-01-31", "group_by": "hour"},
     "Invalid group_by 'hour': use one of day, week, month"),
    ({"start_date": f"{BASE:%Y}-01-02", "end_date": f"{BASE:%Y}-01-01"}, "end_date must not be before start_date"),
])
async def test_metrics_and_sessions_validation(client: Any, auth: Any, path: str, params: dict[str, str],
                                               message: str) -> None:
    response = await client.get(path, headers=auth["secret"], params=params)
    assert response.status == 400
    assert await response.json() == {"status": "error", "message": message}


async def test_sessions_pair_must_differ(client: Any, auth: Any) -> None:
    response = await client.get("/analytics/sessions", headers=auth["secret"], params={
        "start_date": f"{BASE:%Y}-01-01", "end_date": f"{BASE:%Y}-01-02", "start_event": "stop"})
    assert response.status == 400 and (await response.json())["message"] == "start_event and stop_event must differ"


@pytest.mark.parametrize("path", ["/analytics/metrics", "/analytics/sessions"])
async def test_metrics_and_sessions_need_the_secret(client: Any, auth: Any, path: str) -> None:
    params = {"start_date": f"{BASE:%Y}-01-01", "end_date": f"{BASE:%Y}-01-02"}
    for headers in ({}, auth["write"]):
        assert (await client.get(path, headers=headers, params=params)).status == 401


async def test_queries_are_per_source_account(client: Any, auth: Any, pool_conn: Any) -> None:
    t = BASE + timedelta(hours=1)
    await insert(pool_conn, [Ev("u1", t, "play"), Ev("u1", t + MINUTE, "stop"),
                             Ev("u2", t, "play", account="app-b"), Ev("u2", t + 2 * MINUTE, "stop", account="app-b"),
                             Ev("u3", t, "pause", account="app-b")])
    params = {"start_date": f"{BASE:%Y}-01-01", "end_date": f"{BASE:%Y}-01-01"}
    other = {**auth["secret"], "X-Source-Account-Id": "app-b"}
    metrics = {name: (await (await client.get("/analytics/metrics", headers=headers, params=params)).json())["data"]
               for name, headers in (("primary", auth["secret"]), ("app-b", other))}
    assert metrics == {"primary": [{"date": f"{BASE:%Y}-01-01", "counts": {"play": 1, "stop": 1}}],
                       "app-b": [{"date": f"{BASE:%Y}-01-01", "counts": {"pause": 1, "play": 1, "stop": 1}}]}
    sessions = await (await client.get("/analytics/sessions", headers=other, params=params)).json()
    assert sessions["data"][0]["totalDuration"] == 120.0
    retention = await (await client.get("/analytics/retention", headers=other,
                                        params={**params, "period": "day"})).json()
    assert retention["data"][0]["size"] == 2
    bad = await client.get("/analytics/metrics", headers={**auth["secret"], "X-Source-Account-Id": "a b"},
                           params=params)
    assert bad.status == 400 and "X-Source-Account-Id" in (await bad.json())["message"]
