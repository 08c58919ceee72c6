"""GET /funnel and the saved funnels: compared with the plain-Python reference on generated events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import pg_execute
from .queries_support import BASE, Ev, Link, insert, links_of, ref_funnel, reset, run_examples

NAMES = ("a", "b", "c", "x")
UNIT = timedelta(hours=2)  # coarse, so ties and exact window edges are common
START, END = BASE + timedelta(days=1), BASE + timedelta(days=3)  # the query's range: Jan 2 and Jan 3
QUERY = {"start_date": f"{BASE:%Y}-01-02", "end_date": f"{BASE:%Y}-01-03"}

PLANS = st.sampled_from([None, "free", "pro"])
# journeys: a user's events at small gaps (0 = a tie), so funnels progress, repeat and hit window edges
journeys = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 30),
              st.lists(st.tuples(st.integers(0, 3), st.sampled_from(NAMES), PLANS), min_size=1, max_size=6)),
    min_size=1, max_size=8,
)


def to_events(raw: list[tuple[int, int, list[tuple[int, str, str | None]]]]) -> list[Ev]:
    events = []
    for user, offset, steps in raw:
        for gap, name, plan in steps:
            offset += gap
            events.append(Ev(f"u{user}", BASE + offset * UNIT, name, None if plan is None else {"plan": plan}))
    return events


def assert_matches(steps_body: list[dict[str, Any]], expected: list[tuple[int, float | None]]) -> None:
    assert [s["users"] for s in steps_body] == [users for users, _ in expected]
    for step, (_users, median) in zip(steps_body, expected, strict=True):
        if median is None:
            assert step["median_seconds_from_previous"] is None
        else:
            assert step["median_seconds_from_previous"] == pytest.approx(median, abs=1e-3)


async def test_funnel_matches_reference(client: Any, auth: Any, pool_conn: Any) -> None:
    """Repeated and out-of-order steps, ties, attempts before/after the range, exact window edges; users
    merged into persons by identify and alias."""

    async def example(raw: list[Any], steps: list[str], window_units: int, breakdown: bool,
                      links: list[Link]) -> None:
        await reset(pool_conn)
        events = to_events(raw)
        await insert(pool_conn, events, links=links)
        query = {**QUERY, "steps": ",".join(steps), "window": f"{window_units * 2}h"}
        if breakdown:
            query["breakdown"] = "plan"
        response = await client.get("/analytics/funnel", params=query, headers=auth["secret"])
        assert response.status == 200, await response.text()
        body = await response.json()
        expected = ref_funnel(events, steps, START, END, window_units * UNIT, "plan" if breakdown else None, links)
        assert [s["event"] for s in body["steps"]] == steps
        assert_matches(body["steps"], expected[None])
        if breakdown:
            got = {("value", g["value"]): g["steps"] for g in body["breakdown_values"]}
            assert set(got) == {g for g in expected if g is not None}
            for group, rows in got.items():
                assert_matches(rows, expected[group])

    def check(run: Any) -> None:
        @settings(max_examples=50, deadline=None)
        @given(raw=journeys, steps=st.lists(st.sampled_from(NAMES[:3]), min_size=2, max_size=4),
               window_units=st.integers(1, 8), breakdown=st.booleans(), links=links_of(["u0", "u1", "u2"]))
        def examples(raw: list[Any], steps: list[str], window_units: int, breakdown: bool, links: list[Link]) -> None:
            run(example(raw, steps, window_units, breakdown, links))

        examples()

    await run_examples(check)


async def test_funnel_example(client: Any, auth: Any, pool_conn: Any) -> None:
    """A worked example: conversions, drop-off and medians by hand."""
    t = BASE + timedelta(days=1)
    events = [
        # u1: signup, activate 1 h later, purchase 2 h after that
        Ev("u1", t, "signup"), Ev("u1", t + timedelta(hours=1), "activate"),
        Ev("u1", t + timedelta(hours=3), "purchase"),
        # u2: activates 3 h after signup, never purchases
        Ev("u2", t, "signup"), Ev("u2", t + timedelta(hours=3), "activate"),
        # u3: purchase before activate: only reaches step 2
        Ev("u3", t, "signup"), Ev("u3", t + timedelta(minutes=5), "purchase"),
        Ev("u3", t + timedelta(minutes=10), "activate"),
        # u4: activate 8 days later: outside the 7-day window
        Ev("u4", t, "signup"), Ev("u4", t + timedelta(days=8), "activate"),
        # anonymous visitor (no user id): counted by anonymous id; a bot is not counted
        Ev(None, t, "signup", anon="anon-1"), Ev("bot", t, "signup", bot=True),
    ]
    await insert(pool_conn, events)
    response = await client.get("/analytics/funnel", headers=auth["secret"], params={
        "steps": "signup,activate,purchase", "start_date": f"{BASE:%Y}-01-02", "end_date": f"{BASE:%Y}-01-02"})
    body = await response.json()
    assert response.status == 200 and body["status"] == "success"
    assert body["window_seconds"] == 7 * 86400
    s1, s2, s3 = body["steps"]
    assert (s1["users"], s2["users"], s3["users"]) == (5, 3, 1)
    assert s2["conversion_from_start"] == 0.6 and s3["conversion_from_previous"] == pytest.approx(0.3333, abs=1e-4)
    assert (s2["drop_off"], s3["drop_off"]) == (2, 2)
    assert s1["median_seconds_from_previous"] is None
    assert s2["median_seconds_from_previous"] == 3600.0  # median of 1 h, 3 h, 10 min
    assert s3["median_seconds_from_previous"] == 2 * 3600.0


async def test_funnel_furthest_attempt_wins(client: Any, auth: Any, pool_conn: Any) -> None:
    """A later attempt can reach further than an earlier one; the earliest furthest attempt gives the times."""
    t = BASE + timedelta(days=1)
    events = [
        Ev("u1", t, "a"), Ev("u1", t + timedelta(hours=2), "a"), Ev("u1", t + timedelta(hours=3), "b"),
        Ev("u1", t + timedelta(hours=4), "c"),
    ]
    await insert(pool_conn, events)
    response = await client.get("/analytics/funnel", headers=auth["secret"], params={
        "steps": "a,b,c", "start_date": f"{BASE:%Y}-01-02", "end_date": f"{BASE:%Y}-01-02", "window": "150m"})
    steps = (await response.json())["steps"]
    # the attempt at t stops at step 1 (b is 3 h after it); the one at t+2h reaches c
    assert [s["users"] for s in steps] == [1, 1, 1]
    assert [s["median_seconds_from_previous"] for s in steps] == [None, 3600.0, 3600.0]


async def test_funnel_window_edge_is_inclusive(client: Any, auth: Any, pool_conn: Any) -> None:
    t = BASE + timedelta(days=1)
    await insert(pool_conn, [Ev("u1", t, "a"), Ev("u1", t + timedelta(hours=1), "b"),
                             Ev("u2", t, "a"), Ev("u2", t + timedelta(hours=1, seconds=1), "b")])
    response = await client.get("/analytics/funnel", headers=auth["secret"], params={
        "steps": "a,b", "window": "1h", **QUERY})
    assert [s["users"] for s in (await response.json())["steps"]] == [2, 1]


async def test_saved_funnels_crud_and_use(client: Any, auth: Any, pool_conn: Any) -> None:
    t = BASE + timedelta(days=1)
    await insert(pool_conn, [Ev("u1", t, "a", {"plan": "pro"}), Ev("u1", t + timedelta(hours=1), "b"),
                             Ev("u2", t, "a", {"plan": "free"})])
    secret = auth["secret"]
    created = await client.post("/analytics/funnels", headers=secret,
                                json={"name": "Activation", "steps": ["a", "b"], "window": "2h", "breakdown": "plan"})
    assert created.status == 201
    funnel = (await created.json())["funnel"]
    assert funnel["steps"] == ["a", "b"] and funnel["window_seconds"] == 7200 and funnel["breakdown"] == "plan"
    listed = (await (await client.get("/analytics/funnels", headers=secret)).json())["funnels"]
    assert [f["id"] for f in listed] == [funnel["id"]]
    got = await client.get(f"/analytics/funnels/{funnel['id']}", headers=secret)
    assert (await got.json())["funnel"]["name"] == "Activation"

    run = await client.get("/analytics/funnel", headers=secret,
                           params={"funnel_id": funnel["id"], **QUERY})
    body = await run.json()
    assert [s["users"] for s in body["steps"]] == [2, 1] and body["funnel_id"] == funnel["id"]
    assert {g["value"]: [s["users"] for s in g["steps"]] for g in body["breakdown_values"]} == \
        {"pro": [1, 1], "free": [1, 0]}
    # a shorter window given with funnel_id overrides the saved one
    short = await client.get("/analytics/funnel", headers=secret,
                             params={"funnel_id": funnel["id"], "window": "30m", **QUERY})
    assert [s["users"] for s in (await short.json())["steps"]] == [2, 0]

    other = await client.get("/analytics/funnels", headers={**secret, "X-Source-Account-Id": "other-app"})
    assert (await other.json())["funnels"] == []
    assert (await client.delete(f"/analytics/funnels/{funnel['id']}", headers=secret)).status == 200
    assert (await client.delete(f"/analytics/funnels/{funnel['id']}", headers=secret)).status == 404
    missing = await client.get("/analytics/funnel", headers=secret, params={"funnel_id": funnel["id"], **QUERY})
    assert missing.status == 404 and (await missing.json())["message"] == "Funnel not found"


async def test_funnel_source_account_isolation(client: Any, auth: Any, pool_conn: Any) -> None:
    t = BASE + timedelta(days=1)
    await insert(pool_conn, [Ev("u1", t, "a"), Ev("u1", t + timedelta(minutes=1), "b"),
                             Ev("u2", t, "a", account="other-app")])
    params = {"steps": "a,b", **QUERY}
    primary = await (await client.get("/analytics/funnel", headers=auth["secret"], params=params)).json()
    other = await (await client.get("/analytics/funnel", params=params,
                                    headers={**auth["secret"], "X-Source-Account-Id": "other-app"})).json()
    assert [s["users"] for s in primary["steps"]] == [1, 1]
    assert [s["users"] for s in other["steps"]] == [1, 0]


@pytest.mark.parametrize(("params", "message"), [
    ({"steps": "a,b", "start_date": "2025-01-02"},
     "start_date and end_date go together: give both, or neither for the last 30 days"),
    ({"steps": "a,b", "start_date": "2025-1-2", "end_date": "2025-01-03"}, "Invalid date format. Use YYYY-MM-DD"),
    ({"steps": "a,b", "start_date": "2025-02-30", "end_date": "2025-03-03"}, "Invalid date format. Use YYYY-MM-DD"),
    ({"steps": "a,b", "start_date": "2025-01-03", "end_date": "2025-01-02"}, "end_date must not be before start_date"),
    ({"steps": "a,b", "start_date": "2024-01-01", "end_date": "2025-01-02"}, "The date range is limited to 366 days"),
    ({"steps": "a", **QUERY}, "steps must name between 2 and 20 events"),
    ({"steps": ",".join(["a"] * 21), **QUERY}, "steps must name between 2 and 20 events"),
    ({"steps": "a,,b", **QUERY}, "each step is required"),
    ({"steps": "a,b", "window": "soon", **QUERY}, "Invalid window 'soon': use a duration such as 30s, 15m, 2h or 7d"),
    ({"steps": "a,b", "window": "91d", **QUERY}, "window must be between 1s and 90d"),
    ({"steps": "a,b", "funnel_id": "1", **QUERY}, "Give either steps or funnel_id, not both"),
    ({"funnel_id": "x", **QUERY}, "funnel_id must be an integer"),
])
async def test_funnel_validation(client: Any, auth: Any, params: dict[str, str], message: str) -> None:
    response = await client.get("/analytics/funnel", headers=auth["secret"], params=params)
    assert response.status == 400
    assert await response.json() == {"status": "error", "message": message}


@pytest.mark.parametrize(("method", "path"), [("GET", "/analytics/funnel?steps=a,b"), ("GET", "/analytics/funnels"),
                                              ("POST", "/analytics/funnels"), ("DELETE", "/analytics/funnels/1")])
async def test_funnel_endpoints_refuse_write_key(client: Any, auth: Any, method: str, path: str) -> None:
    for headers in ({}, auth["write"]):
        response = await client.request(method, path, headers=headers)
        assert response.status == 401 and (await response.json())["status"] == "error"


async def test_saved_funnel_validation(client: Any, auth: Any, settings: Any) -> None:
    secret = auth["secret"]
    for body, message in [({"steps": ["a", "b"]}, "name is required"),
                          ({"name": "n", "steps": "a"}, "steps must name between 2 and 20 events"),
                          ({"name": "n", "steps": 5}, "steps is required: a comma-separated list of event names"),
                          ({"name": "n", "steps": ["a", "b"], "window": []},
                           "window must be a duration such as 7d (or a number of seconds)")]:
        response = await client.post("/analytics/funnels", headers=secret, json=body)
        assert response.status == 400 and (await response.json())["message"] == message
    bad_json = await client.post("/analytics/funnels", headers=secret, data=b"{nope")
    assert bad_json.status == 400 and (await bad_json.json())["message"] == "Invalid JSON body"
    assert pg_execute(settings.database_url, "SELECT count(*) FROM np_analytics_funnels") == [(0,)]
