"""Funnels and sessions read from np_analytics_event_times (store/rollups/event_times.py): the same answers as the
plain-Python references after the aggregator ran, with late events in hours it had already folded (read
raw until folded again), with identity links arriving after the rows were built, and for a flood of one
event from one id in one hour (its rows stay bounded)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nself_analytics.store.partitions import prune_partitions
from nself_analytics.store.rollups.aggregates import expire_activity
from nself_analytics.store.rollups.event_times import MAX_TIMES

from .queries_support import (
    BASE,
    Ev,
    Link,
    insert,
    links_of,
    periods_between,
    ref_funnel,
    ref_sessions,
    reset,
    run_examples,
)
from .test_queries_funnel import END, QUERY, START, UNIT, assert_matches, journeys, to_events
from .test_queries_metrics import SESSION_ORIGIN, session_events
from .test_queries_metrics import to_events as session_to_events
from .test_queries_retention import execute, materialize_all


async def load(conn: Any, events: list[Ev], mode: str, links: list[Link]) -> None:
    """rollup: every hour aggregated; mixed: the events of a third of the hours (some already folded)
    arrive after the aggregator ran, so those hours are read raw. Links arrive last in both."""
    late = [e for e in events if mode == "mixed" and e.ts.hour % 3 == 0]
    await insert(conn, [e for e in events if e not in late])
    await materialize_all(conn)
    if late:
        await insert(conn, late)
    await insert(conn, [], links=links)


async def funnel_body(client: Any, auth: Any, params: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/analytics/funnel", params=params, headers=auth["secret"])
    assert response.status == 200, await response.text()
    return dict(await response.json())


@pytest.mark.parametrize("mode", ["rollup", "mixed"])
async def test_funnel_from_event_times_matches_reference(client: Any, auth: Any, pool_conn: Any, mode: str) -> None:
    async def example(raw: list[Any], steps: list[str], window_units: int, links: list[Link]) -> None:
        await reset(pool_conn)
        events = to_events(raw)
        await load(pool_conn, events, mode, links)
        body = await funnel_body(client, auth, {**QUERY, "steps": ",".join(steps), "window": f"{window_units * 2}h"})
        assert_matches(body["steps"], ref_funnel(events, steps, START, END, window_units * UNIT, None, links)[None])

    def check(run: Any) -> None:
        @settings(max_examples=30, deadline=None)
        @given(raw=journeys, steps=st.lists(st.sampled_from(["a", "b", "c"]), min_size=2, max_size=4),
               window_units=st.integers(1, 8), links=links_of(["u0", "u1", "u2"]))
        def examples(raw: list[Any], steps: list[str], window_units: int, links: list[Link]) -> None:
            run(example(raw, steps, window_units, links))

        examples()

    await run_examples(check)


async def sessions_data(client: Any, auth: Any, params: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/analytics/sessions", headers=auth["secret"], params=params)
    assert response.status == 200, await response.text()
    return list((await response.json())["data"])


def assert_sessions(data: list[dict[str, Any]], expected: dict[date, tuple[int, float]]) -> None:
    for row in data:
        count, total = expected.get(date.fromisoformat(row["date"]), (0, 0.0))
        assert (row["sessionCount"], row["totalDuration"]) == (count, pytest.approx(total, abs=1e-3)), row


@pytest.mark.parametrize("mode", ["rollup", "mixed"])
async def test_sessions_from_event_times_match_reference(client: Any, auth: Any, pool_conn: Any, mode: str) -> None:
    async def example(raw: list[Any], group_by: str, first_offset: int, days: int, user: str | None,
                      links: list[Link]) -> None:
        await reset(pool_conn)
        events = session_to_events(raw, SESSION_ORIGIN)
        await load(pool_conn, events, mode, links)
        first = SESSION_ORIGIN.date() + timedelta(days=first_offset)
        last = first + timedelta(days=days - 1)
        query = {"start_date": first.isoformat(), "end_date": last.isoformat(), "group_by": group_by}
        if user:
            query["user_id"] = user
        data = await sessions_data(client, auth, query)
        assert [row["date"] for row in data] == [p.isoformat() for p in periods_between(first, last, group_by)]
        assert_sessions(data, ref_sessions(events, first, last, group_by, user=user, links=links))

    def check(run: Any) -> None:
        @settings(max_examples=30, deadline=None)
        @given(raw=session_events, group_by=st.sampled_from(["day", "week"]), first_offset=st.integers(0, 4),
               days=st.integers(1, 5), user=st.sampled_from([None, "u1"]), links=links_of(["u0", "u1", "u2"]))
        def examples(raw: list[Any], group_by: str, first_offset: int, days: int, user: str | None,
                     links: list[Link]) -> None:
            run(example(raw, group_by, first_offset, days, user, links))

        examples()

    await run_examples(check)


async def test_event_times_rows_late_events_and_backlog(client: Any, auth: Any, pool_conn: Any) -> None:
    """The rows the aggregator keeps; the rollup answers alone once raw events are gone; a late event makes
    its hour dirty (read raw until folded in); a backlog of dirty hours reads raw events only."""
    t = BASE + timedelta(days=1, hours=5)
    await insert(pool_conn, [
        Ev("u1", t, "play"), Ev("u1", t + timedelta(minutes=10), "stop"), Ev("u1", t + timedelta(minutes=20), "play"),
        Ev(None, t, "play", anon="anon-1"), Ev("bot", t, "play", bot=True),
    ])
    await materialize_all(pool_conn)
    assert await execute(pool_conn, "SELECT event, hour, u, chunk, cardinality(ts) FROM np_analytics_event_times "
                                    "ORDER BY event, u") == [
        ("play", t, "anon-1", 0, 1), ("play", t, "u1", 0, 2), ("stop", t, "u1", 0, 1)]
    params = {"start_date": f"{BASE:%Y}-01-02", "end_date": f"{BASE:%Y}-01-02"}
    one = [{"date": f"{BASE:%Y}-01-02", "totalDuration": 600.0, "sessionCount": 1, "averageDuration": 600.0}]
    assert await sessions_data(client, auth, params) == one
    await execute(pool_conn, "TRUNCATE np_analytics_events")  # raw events gone: the rows answer alone
    assert await sessions_data(client, auth, params) == one

    # a late stop in the folded hour: that hour is read raw (its raw events: the late one alone now)
    await insert(pool_conn, [Ev("u1", t + timedelta(minutes=50), "stop")])
    assert await sessions_data(client, auth, params) == [
        {"date": f"{BASE:%Y}-01-02", "totalDuration": 0.0, "sessionCount": 0, "averageDuration": 0}]
    await materialize_all(pool_conn)  # folded: replaces the hour's rows present in raw (the stop), keeps the rest
    rows = await execute(pool_conn, "SELECT event, u, cardinality(ts) FROM np_analytics_event_times ORDER BY event, u")
    assert rows == [("play", "anon-1", 1), ("play", "u1", 2), ("stop", "u1", 1)]

    # a backlog: dirty hours spanning a week or more are read from raw events only
    await reset(pool_conn)
    await insert(pool_conn, [Ev("u1", t, "play"), Ev("u1", t + timedelta(minutes=10), "stop")])
    await materialize_all(pool_conn)
    await execute(pool_conn, "INSERT INTO np_analytics_event_times VALUES ('primary', 'play', %s, 'ghost', 0, "
                             "ARRAY[%s::timestamptz]), ('primary', 'stop', %s, 'ghost', 0, ARRAY[%s::timestamptz])",
                  (t, t, t, t + timedelta(minutes=1)))
    two = [{"date": f"{BASE:%Y}-01-02", "totalDuration": 660.0, "sessionCount": 2, "averageDuration": 330.0}]
    assert await sessions_data(client, auth, params) == two  # the rows (with a row no raw event backs)
    await execute(pool_conn, "INSERT INTO np_analytics_aggregate_dirty (hour) VALUES (%s), (%s)",
                  (t, t + timedelta(days=8)))
    assert await sessions_data(client, auth, params) == [{**two[0], "totalDuration": 600.0, "sessionCount": 1,
                                                         "averageDuration": 600.0}]


async def test_event_times_keep_pruned_hours_and_expire(pool_conn: Any) -> None:
    """Pruned raw partitions keep their rows (also when an hour of theirs is marked dirty again); rows past
    the retention window are expired with the activity."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    old, kept = now - timedelta(days=11), now - timedelta(days=2)
    await insert(pool_conn, [Ev("u1", old, "play"), Ev("u1", kept, "play")])
    await materialize_all(pool_conn, 10, now)
    await prune_partitions(pool_conn, retention_days=10, now=now)
    await execute(pool_conn, "INSERT INTO np_analytics_aggregate_dirty (hour) VALUES (%s)", (old,))
    await materialize_all(pool_conn, 10, now)
    assert await execute(pool_conn, "SELECT hour FROM np_analytics_event_times ORDER BY hour") == [(old,), (kept,)]
    await expire_activity(pool_conn, 10)
    assert await execute(pool_conn, "SELECT hour FROM np_analytics_event_times ORDER BY hour") == [(kept,)]


async def test_a_flood_from_one_id_stays_bounded(client: Any, auth: Any, pool_conn: Any) -> None:
    """10,000 plays of one id in one hour (and a late one in its middle): rows of at most MAX_TIMES times,
    and the answers stay those of the reference."""
    t = BASE + timedelta(days=1, hours=3)
    flood = [Ev("u1", t + timedelta(milliseconds=300 * n), "play") for n in range(10_000)]
    stops = [Ev("u1", t + timedelta(minutes=59), "stop"), Ev("u2", t, "play"), Ev("u2", t + timedelta(hours=2), "stop")]
    await insert(pool_conn, flood + stops)
    await materialize_all(pool_conn)
    late = Ev("u1", t + timedelta(seconds=1, microseconds=5), "play")
    await insert(pool_conn, [late])
    await materialize_all(pool_conn)
    sizes = await execute(pool_conn, "SELECT chunk, cardinality(ts) FROM np_analytics_event_times "
                                     "WHERE u = 'u1' AND event = 'play' ORDER BY chunk")
    assert sizes == [(0, MAX_TIMES), (1, MAX_TIMES), (2, 10_001 - 2 * MAX_TIMES)]
    events = [*flood, *stops, late]
    params = {"start_date": f"{BASE:%Y}-01-02", "end_date": f"{BASE:%Y}-01-02"}
    assert_sessions(await sessions_data(client, auth, params), ref_sessions(events, t.date(), t.date(), "day"))
    # u1's first play reaches its stop 59 minutes later; u2's stop is past the 1-hour window
    body = await funnel_body(client, auth, {**params, "steps": "play,stop", "window": "1h"})
    assert_matches(body["steps"], [(2, None), (1, 59 * 60.0)])
