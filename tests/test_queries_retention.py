"""GET /retention: compared with the plain-Python reference at day, ISO-week and month edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .queries_support import BASE, Ev, insert, periods_between, ref_retention, reset, run_examples

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


async def test_retention_matches_reference(client: Any, auth: Any, pool_conn: Any) -> None:
    async def example(raw: list[Any], period: str, periods: int, anchor: int, shift: int, days: int,
                      start_event: str | None, return_event: str | None) -> None:
        await reset(pool_conn)
        events = to_events(raw)
        await insert(pool_conn, events)
        # the range starts near one of the events, so first events fall just inside and outside it
        first = events[anchor % len(events)].ts.date() + timedelta(days=shift)
        last = first + timedelta(days=days - 1)
        query = {"start_date": first.isoformat(), "end_date": last.isoformat(), "period": period,
                 "periods": str(periods)}
        if start_event:
            query["start_event"] = start_event
        if return_event:
            query["return_event"] = return_event
        response = await client.get("/analytics/retention", headers=auth["secret"], params=query)
        assert response.status == 200, await response.text()
        body = await response.json()
        expected = ref_retention(events, first, last, period, periods, start_event, return_event)
        cohorts = periods_between(first, last, period)
        assert [row["cohort"] for row in body["data"]] == [c.isoformat() for c in cohorts]
        for row, cohort in zip(body["data"], cohorts, strict=True):
            want = expected.get(cohort, [0] * periods)
            assert row["size"] == want[0]
            assert row["retained"] == want  # all these periods are in the past: every column is there

    def check(run: Any) -> None:
        @settings(max_examples=40, deadline=None)
        @given(raw=journeys, period=st.sampled_from(["day", "week", "month"]), periods=st.integers(1, 6),
               anchor=st.integers(0, 100), shift=st.integers(-1, 1), days=st.integers(1, 35),
               start_event=st.sampled_from([None, "signup"]), return_event=st.sampled_from([None, "use"]))
        def examples(raw: list[Any], period: str, periods: int, anchor: int, shift: int, days: int,
                     start_event: str | None, return_event: str | None) -> None:
            run(example(raw, period, periods, anchor, shift, days, start_event, return_event))

        examples()

    await run_examples(check)


async def test_retention_weekly_example(client: Any, auth: Any, pool_conn: Any) -> None:
    """ISO weeks start on Monday (2025-01-06); a user whose first event precedes the range is no cohort member."""
    monday = BASE + timedelta(days=5)  # 2025-01-06, a Monday
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
        "start_date": "2025-01-06", "end_date": "2025-01-19", "period": "week", "periods": "4",
        "start_event": "signup"})
    body = await response.json()
    assert body["status"] == "success"
    assert body["data"] == [
        {"cohort": "2025-01-06", "size": 2, "retained": [2, 2, 0, 1]},
        {"cohort": "2025-01-13", "size": 1, "retained": [1, 0, 0, 0]},
    ]


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
    ({}, "start_date and end_date are required"),
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
    params = {"start_date": "2025-01-01", "end_date": "2025-01-31"}
    for headers in ({}, auth["write"]):
        response = await client.get("/analytics/retention", headers=headers, params=params)
        assert response.status == 401
