"""GET /retention: compared with the plain-Python reference at day, ISO-week and month edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nself_analytics.store.partitions import partition_name, prune_partitions
from nself_analytics.store.rollups.aggregates import materialize

from .queries_support import BASE, Ev, Link, insert, links_of, periods_between, ref_retention, reset, run_examples

HOUR = timedelta(hours=1)
NAMES = st.sampled_from(["signup", "use", "other"])
# per user: activity starting on some day, then events at gaps of up to 3 days (UTC hours, so edges vary)
journeys = st.lists(
    st.tuples(st.integers(0, 7), st.integers(-10 * 24, 50 * 24),
              st.lists(st.tuples(st.integers(0, 72), NAMES), min_size=1, max_size=6)),
    min_size=3, max_size=12,
)


def to_events(raw: list[tuple[int, int, list[tuple[int, str]]]]) -> list[Ev]:
    events = []
    for user, hours, steps in raw:
        for gap, name in steps:
            hours += gap
            events.append(Ev(f"u{user}", BASE + hours * HOUR, name))
    return events


async def execute(conn: Any, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        return list(await cur.fetchall()) if cur.description else []


async def materialize_all(conn: Any, retention_days: int = 36500, now: datetime | None = None) -> None:
    """The aggregator over every dirty hour (which also keeps the activity rollup retention reads)."""
    while await materialize(conn, retention_days, now=now):
        pass
    assert await execute(conn, "SELECT count(*) FROM np_analytics_aggregate_dirty") == [(0,)]


@pytest.mark.parametrize("mode", ["raw", "rollup", "mixed"])
async def test_retention_matches_reference(client: Any, auth: Any, pool_conn: Any, mode: str) -> None:
    """From raw events (every hour still dirty), from the activity rollup (everything aggregated), and
    mixed (the events of the last 3 days inserted after the aggregator ran: their days read raw). Identity
    links arrive last, after the rollup was built: they apply to its rows too."""
    async def example(raw: list[Any], period: str, periods: int, anchor: int, shift: int, days: int,
                      start_event: str | None, return_event: str | None, links: list[Link], tz: str) -> None:
        await reset(pool_conn)
        await execute(pool_conn, "TRUNCATE np_analytics_activity")
        events = to_events(raw)
        latest = max(e.ts for e in events)
        late = [e for e in events if mode == "mixed" and e.ts > latest - timedelta(days=3)]
        await insert(pool_conn, [e for e in events if e not in late])
        if mode != "raw":
            await materialize_all(pool_conn)
        if late:
            await insert(pool_conn, late)
        await insert(pool_conn, [], links=links)
        # the range starts near one of the events, so first events fall just inside and outside it
        first = events[anchor % len(events)].ts.date() + timedelta(days=shift)
        last = first + timedelta(days=days - 1)
        query = {"start_date": first.isoformat(), "end_date": last.isoformat(), "period": period,
                 "periods": str(periods), "tz": tz}
        if start_event:
            query["start_event"] = start_event
        if return_event:
            query["return_event"] = return_event
        response = await client.get("/analytics/retention", headers=auth["secret"], params=query)
        assert response.status == 200, await response.text()
        body = await response.json()
        expected = ref_retention(events, first, last, period, periods, start_event, return_event, links, tz)
        cohorts = periods_between(first, last, period)
        # from the first cohort with users (no leading empty cohorts); later empty ones stay
        while cohorts and not expected.get(cohorts[0], [0])[0]:
            cohorts.pop(0)
        assert [row["cohort"] for row in body["data"]] == [c.isoformat() for c in cohorts]
        for row, cohort in zip(body["data"], cohorts, strict=True):
            want = expected.get(cohort, [0] * periods)
            assert row["size"] == want[0]
            assert row["retained"] == want  # all these periods are in the past: every column is there

    def check(run: Any) -> None:
        @settings(max_examples=40, deadline=None)
        @given(raw=journeys, period=st.sampled_from(["day", "week", "month"]), periods=st.integers(1, 6),
               anchor=st.integers(0, 100), shift=st.integers(-1, 1), days=st.integers(1, 35),
               start_event=st.sampled_from([None, "signup"]), return_event=st.sampled_from([None, "use"]),
               links=links_of([f"u{n}" for n in range(8)]),
               tz=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu"]))
        def examples(raw: list[Any], period: str, periods: int, anchor: int, shift: int, days: int,
                     start_event: str | None, return_event: str | None, links: list[Link], tz: str) -> None:
            run(example(raw, period, periods, anchor, shift, days, start_event, return_event, links, tz))

        examples()

    await run_examples(check)


async def test_retention_weekly_example(client: Any, auth: Any, pool_conn: Any) -> None:
    """ISO weeks start on Monday (Jan 6); a user whose first event precedes the range is no cohort member."""
    monday = BASE + timedelta(days=5)  # Jan 6, a Monday
    events = [
        Ev("a", monday + timedelta(hours=1), "signup"), Ev("a", monday + timedelta(days=7), "use"),
        Ev("a", monday + timedelta(days=8), "use"), Ev("a", monday + timedelta(days=21), "use"),
        Ev("b", monday + timedelta(days=6, hours=23), "signup"),  # Sunday 23:00: still week of Jan 6
        Ev("b", monday + timedelta(days=7), "use"),  # the next Monday: week 1
        Ev("c", monday + timedelta(days=7), "signup"),  # cohort of Jan 13
        Ev("old", monday - timedelta(days=30), "signup"), Ev("old", monday + timedelta(days=1), "signup"),
    ]
    await insert(pool_conn, events)
    response = await client.get("/analytics/retention", headers=auth["secret"], params={
        "start_date": f"{BASE:%Y}-01-06", "end_date": f"{BASE:%Y}-01-19", "period": "week", "periods": "4",
        "start_event": "signup"})
    body = await response.json()
    assert body["status"] == "success"
    assert body["data"] == [
        {"cohort": f"{BASE:%Y}-01-06", "size": 2, "retained": [2, 2, 0, 1]},
        {"cohort": f"{BASE:%Y}-01-13", "size": 1, "retained": [1, 0, 0, 0]},
    ]


async def retention(client: Any, auth: Any, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/analytics/retention", headers=auth["secret"], params=params)
    assert response.status == 200, await response.text()
    return list((await response.json())["data"])


async def test_retention_reads_the_rollup_and_dirty_days_raw(client: Any, auth: Any, pool_conn: Any) -> None:
    """Once aggregated, retention reads the activity rollup (it survives the raw events, as after a
    prune); a late event makes its day dirty, read from raw events until the aggregator has folded
    it in; bots and events without a user are not activity."""
    await execute(pool_conn, "TRUNCATE np_analytics_activity")
    monday = BASE + timedelta(days=5)  # Jan 6
    await insert(pool_conn, [
        Ev("a", monday + timedelta(hours=1), "signup"), Ev("a", monday + timedelta(days=7), "use"),
        Ev("b", monday + timedelta(days=2), "signup"), Ev("b", monday + timedelta(days=2, hours=1), "use"),
        Ev("bot", monday, "signup", bot=True), Ev(None, monday, "signup", anon="anon"),
    ])
    await materialize_all(pool_conn)
    assert await execute(pool_conn, "SELECT day, u, events FROM np_analytics_activity ORDER BY day, u") == [
        (monday.date(), "a", ["signup"]), (monday.date(), "anon", ["signup"]),
        (monday.date() + timedelta(days=2), "b", ["signup", "use"]), (monday.date() + timedelta(days=7), "a", ["use"]),
    ]
    params = {"start_date": f"{BASE:%Y}-01-06", "end_date": f"{BASE:%Y}-01-19", "period": "week", "periods": "3",
              "start_event": "signup", "return_event": "use"}
    expected = [{"cohort": f"{BASE:%Y}-01-06", "size": 3, "retained": [3, 1, 0]},
                {"cohort": f"{BASE:%Y}-01-13", "size": 0, "retained": [0, 0, 0]}]
    assert await retention(client, auth, **params) == expected
    await execute(pool_conn, "TRUNCATE np_analytics_events")  # raw events gone: the rollup answers alone
    assert await retention(client, auth, **params) == expected

    # a late event: its day is dirty, so that day is read from raw events, the others from the rollup
    await insert(pool_conn, [Ev("b", monday + timedelta(days=8), "use")])
    late = [{"cohort": f"{BASE:%Y}-01-06", "size": 3, "retained": [3, 2, 0]}, expected[1]]
    assert await retention(client, auth, **params) == late
    await materialize_all(pool_conn)  # folded in: the rollup alone again
    assert await retention(client, auth, **params) == late
    # a backlog (dirty days spanning a week or more): raw events only (the late event alone is left)
    await execute(pool_conn, "INSERT INTO np_analytics_aggregate_dirty (hour) VALUES (%s), (%s)",
                  (monday, monday + timedelta(days=8)))
    assert await retention(client, auth, **params) == []  # no cohort with users: no rows
    await execute(pool_conn, "TRUNCATE np_analytics_activity")


async def test_the_rollup_keeps_pruned_days(client: Any, auth: Any, pool_conn: Any) -> None:
    """Pruning raw partitions keeps their activity (as it keeps aggregates), also when an hour of a
    pruned day is marked dirty again; retention then still sees the users' first events."""
    await execute(pool_conn, "TRUNCATE np_analytics_activity")
    now = datetime(BASE.year, 6, 15, 12, tzinfo=UTC)
    old = datetime(BASE.year, 6, 4, 20, tzinfo=UTC)  # past a 10-day retention
    kept = datetime(BASE.year, 6, 13, 8, tzinfo=UTC)
    await insert(pool_conn, [Ev("u1", old, "play"), Ev("u2", old, "play"), Ev("u1", kept, "play")])
    await materialize_all(pool_conn, 10, now)
    assert partition_name(old.date()) in await prune_partitions(pool_conn, retention_days=10, now=now)
    await execute(pool_conn, "INSERT INTO np_analytics_aggregate_dirty (hour) VALUES (%s)", (old,))
    await materialize_all(pool_conn, 10, now)
    activity = [(old.date(), "u1", ["play"]), (old.date(), "u2", ["play"]), (kept.date(), "u1", ["play"])]
    assert await execute(pool_conn, "SELECT day, u, events FROM np_analytics_activity ORDER BY day, u") == activity
    assert await retention(client, auth, start_date=f"{BASE:%Y}-06-04", end_date=f"{BASE:%Y}-06-13", period="week",
                           periods="2") == [{"cohort": f"{BASE:%Y}-06-02", "size": 2, "retained": [2, 1]},
                                            {"cohort": f"{BASE:%Y}-06-09", "size": 0, "retained": [0, 0]}]
    # a late event of a day past the retention (still stored raw): merged into that day's activity
    await insert(pool_conn, [Ev("u3", old, "stop")])
    await materialize_all(pool_conn, 10, now)
    assert await execute(pool_conn, "SELECT day, u, events FROM np_analytics_activity ORDER BY day, u") == [
        *activity[:2], (old.date(), "u3", ["stop"]), activity[2]]
    assert (await retention(client, auth, start_date=f"{BASE:%Y}-06-04", end_date=f"{BASE:%Y}-06-13", period="week",
                            periods="2"))[0] == {"cohort": f"{BASE:%Y}-06-02", "size": 3, "retained": [3, 1]}
    await execute(pool_conn, "TRUNCATE np_analytics_activity")


async def test_retention_monthly_columns_stop_at_the_current_period(client: Any, auth: Any, pool_conn: Any) -> None:
    """Columns of periods that have not started yet are left out."""
    today = datetime.now(UTC).date()
    this_month = today.replace(day=1)
    start = BASE.replace(year=this_month.year, month=this_month.month)
    await insert(pool_conn, [Ev("a", start + timedelta(hours=1), "signup")])
    response = await client.get("/analytics/retention", headers=auth["secret"], params={
        "start_date": this_month.isoformat(), "end_date": this_month.isoformat(), "period": "month"})
    assert (await response.json())["data"] == [{"cohort": this_month.isoformat(), "size": 1, "retained": [1]}]


@pytest.mark.parametrize(("params", "message"), [
    ({"end_date": "2025-01-02"}, "start_date and end_date go together: give both, or neither for the last 30 days"),
    ({"start_date": "2025-01-01", "end_date": "01/02/2025"}, "Invalid date format. Use YYYY-MM-DD"),
    ({"start_date": "2025-01-01", "end_date": "2025-01-31", "period": "year"},
     "Invalid period 'year': use one of day, week, month"),
    ({"start_date": "2025-01-01", "end_date": "2025-01-31", "periods": "0"}, "periods must be between 1 and 60"),
    ({"start_date": "2025-01-01", "end_date": "2025-01-31", "periods": "many"}, "periods must be an integer"),
    ({"start_date": "2025-01-01", "end_date": "2026-01-31"}, "The date range is limited to 366 days"),
])
async def test_retention_validation(client: Any, auth: Any, params: dict[str, str], message: str) -> None:
    response = await client.get("/analytics/retention", headers=auth["secret"], params=params)
    assert response.status == 400
    assert await response.json() == {"status": "error", "message": message}


async def test_retention_needs_the_secret(client: Any, auth: Any) -> None:
    params = {"start_date": f"{BASE:%Y}-01-01", "end_date": f"{BASE:%Y}-01-31"}
    for headers in ({}, auth["write"]):
        response = await client.get("/analytics/retention", headers=headers, params=params)
        assert response.status == 401
