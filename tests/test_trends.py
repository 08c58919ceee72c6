"""GET /trends compared with a plain-Python reference on generated events (every interval and measure,
breakdowns past the top 10, the previous period), and its hostile inputs."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nself_analytics.store.rollups.aggregates import materialize

from .queries_support import BASE, Ev, insert, reset, run_examples

START, END = BASE + timedelta(days=7), BASE + timedelta(days=14)  # Jan 8 (a Wednesday) to Jan 14
PREVIOUS_START = START - timedelta(days=7)
QUERY = {"start_date": f"{BASE:%Y}-01-08", "end_date": f"{BASE:%Y}-01-14"}
TOP = 10
Key = tuple[str, str | None, bool]

PLANS = [f"p{i:02d}" for i in range(13)]
# UTC, a whole-hour zone, zones of a 30- and a 45-minute offset (store/rollups/zones.py)
ZONES = st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu"])
AMOUNTS = st.one_of(st.none(), st.integers(-5, 50), st.floats(0, 100, allow_nan=False).map(lambda x: round(x, 2)),
                    st.just("12"), st.just(True))
raw_events = st.lists(
    st.tuples(st.integers(0, 5), st.booleans(), st.integers(0, 15 * 24 - 1), st.sampled_from(["a", "b", "c"]),
              st.one_of(st.none(), st.sampled_from(PLANS[:3]), st.sampled_from(PLANS)), AMOUNTS, st.booleans()),
    min_size=0, max_size=40,
)


def to_events(raw: list[Any]) -> list[Ev]:
    events = []
    for user, anonymous, hour, name, plan, amount, bot in raw:
        props: dict[str, Any] = {}
        if plan is not None:
            props["plan"] = plan
        if amount is not None:
            props["amount"] = amount
        who = f"u{user}"
        events.append(Ev(None if anonymous else who, BASE + timedelta(hours=hour, minutes=user), name, props or None,
                         anon=f"anon-{who}" if anonymous else None, bot=bot and user == 5))
    return events


def floor(ts: datetime, interval: str, tz: str = "UTC") -> datetime:
    """The bucket of ``ts`` in zone ``tz``: a local hour as the aware instant it starts, else the naive local start
    of its day, ISO week or month."""
    local = ts.astimezone(ZoneInfo(tz))
    if interval == "hour":
        return ts - timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
    day = local.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def label(ts: datetime, interval: str, tz: str = "UTC") -> str:
    if interval != "hour":
        return ts.strftime("%Y-%m-%d")
    if tz == "UTC":
        return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:00:00Z")
    return ts.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def local_range(tz: str, compare: bool = True) -> tuple[datetime, datetime, datetime]:
    """(previous start, start, end) of QUERY's days in zone ``tz``."""
    zone = ZoneInfo(tz)
    start = datetime.combine((BASE + timedelta(days=7)).date(), time.min, zone)
    return datetime.combine(BASE.date(), time.min, zone), start, start + timedelta(days=7)


def measure_of(events: list[Ev], measure: str) -> float | int | None:
    numbers = [float(e.props["amount"]) for e in events if e.props and isinstance(e.props.get("amount"), int | float)
               and not isinstance(e.props.get("amount"), bool)]
    if measure == "count":
        return len(events)
    if measure == "users":
        return len({e.who for e in events if e.who is not None})
    if measure == "sum:amount":
        return sum(numbers)
    return sum(numbers) / len(numbers) if numbers else None


def ref_trends(events: list[Ev], names: list[str], interval: str, measure: str, breakdown: bool,
               compare: bool, tz: str = "UTC") -> dict[str, dict[Key, dict[str, Any]]]:
    """{"current"/"previous": {(event, value, other): {"data": {label: measure}, "total": measure}}}; buckets and
    the range's days are those of ``tz``."""
    previous_start, start, end = local_range(tz)
    def value(e: Ev) -> str | None:
        return None if not e.props or "plan" not in e.props else str(e.props["plan"])

    kept = [e for e in events if e.event in names and not e.bot and e.account == "primary"]
    current = [e for e in kept if start <= e.ts < end]
    previous = [e for e in kept if previous_start <= e.ts < start] if compare else []
    top: dict[str, set[str | None]] = {}
    for name in names:
        counts = Counter(value(e) for e in current if e.event == name)
        ranked = sorted(counts, key=lambda v: (-counts[v], v is None, v or ""))
        top[name] = set(ranked[:TOP])

    def key(e: Ev) -> Key:
        if not breakdown:
            return (e.event, None, False)
        v = value(e)
        return (e.event, v, False) if v in top[e.event] else (e.event, None, True)

    out: dict[str, dict[Key, dict[str, Any]]] = {}
    for period, chosen in (("current", current), ("previous", previous)):
        groups: dict[Key, list[Ev]] = defaultdict(list)
        for e in chosen:
            groups[key(e)].append(e)
        series = {}
        for k, group in groups.items():
            per_bucket: dict[datetime, list[Ev]] = defaultdict(list)
            for e in group:
                per_bucket[floor(e.ts, interval, tz)].append(e)
            series[k] = {"data": {label(b, interval, tz): measure_of(evs, measure) for b, evs in per_bucket.items()},
                         "total": measure_of(group, measure)}
        out[period] = series
    return out


def check_series(got: list[dict[str, Any]], buckets: list[str], expected: dict[Key, dict[str, Any]],
                 measure: str) -> None:
    empty = None if measure.startswith("avg") else 0
    by_key = {(s["event"], s["breakdown_value"], s["other"]): s for s in got}
    assert len(by_key) == len(got)
    assert set(expected) <= set(by_key)
    for k, series in by_key.items():
        want = expected.get(k, {"data": {}, "total": empty})
        assert series["total"] == pytest.approx(want["total"]), k
        assert dict(zip(buckets, series["data"], strict=True)) == pytest.approx(
            {b: want["data"].get(b, empty) for b in buckets}), k
    assert set(want_bucket for s in expected.values() for want_bucket in s["data"]) <= set(buckets)


async def test_trends_match_reference(client: Any, auth: Any, pool_conn: Any) -> None:
    async def example(raw: list[Any], names: list[str], interval: str, measure: str, breakdown: bool,
                      compare: bool, aggregated: bool, tz: str) -> None:
        await reset(pool_conn)
        events = to_events(raw)
        if aggregated:  # the aggregator has run over most events; the rest arrive later (their hours dirty again)
            early = events[: len(events) * 2 // 3]
            if early:
                await insert(pool_conn, early)
            while await materialize(pool_conn, retention_days=36500):
                pass
            events = early + events[len(early):]
            if events[len(early):]:
                await insert(pool_conn, events[len(early):])
        elif events:
            await insert(pool_conn, events)
        query = {**QUERY, "events": ",".join(names), "interval": interval, "measure": measure, "tz": tz}
        if breakdown:
            query["breakdown"] = "plan"
        if compare:
            query["compare"] = "previous"
        response = await client.get("/analytics/trends", params=query, headers=auth["secret"])
        assert response.status == 200, await response.text()
        body = await response.json()
        expected = ref_trends(events, names, interval, measure, breakdown, compare, tz)
        assert body["events"] == names and body["interval"] == interval
        assert [s["event"] for s in body["series"]] == sorted((s["event"] for s in body["series"]), key=names.index)
        check_series(body["series"], body["buckets"], expected["current"], measure)
        if compare:
            assert (body["previous"]["start_date"], body["previous"]["end_date"]) == (f"{BASE:%Y}-01-01",
                                                                                      f"{BASE:%Y}-01-07")
            previous_keys = [(s["event"], s["breakdown_value"], s["other"]) for s in body["previous"]["series"]]
            assert previous_keys == [(s["event"], s["breakdown_value"], s["other"]) for s in body["series"]]
            check_series(body["previous"]["series"], body["previous"]["buckets"], expected["previous"], measure)
        else:
            assert "previous" not in body

    def check(run: Any) -> None:
        @settings(max_examples=40, deadline=None)
        @given(raw=raw_events, names=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2, unique=True),
               interval=st.sampled_from(["hour", "day", "week", "month"]),
               measure=st.sampled_from(["count", "users", "sum:amount", "avg:amount"]),
               breakdown=st.booleans(), compare=st.booleans(), aggregated=st.booleans(), tz=ZONES)
        def examples(raw: list[Any], names: list[str], interval: str, measure: str, breakdown: bool,
                     compare: bool, aggregated: bool, tz: str) -> None:
            run(example(raw, names, interval, measure, breakdown, compare, aggregated, tz))

        examples()

    await run_examples(check)


async def test_trends_buckets_breakdown_order_and_other(client: Any, auth: Any, pool_conn: Any) -> None:
    t = START + timedelta(hours=3)
    events = [Ev(f"u{i}", t, "buy", {"plan": PLANS[i % 12]}) for i in range(24)]  # 12 values, 2 events each
    events += [Ev("u1", t, "buy", {"plan": "p05"}), Ev("u2", t, "buy", None), Ev("u3", t, "buy", {"plan": "p11"})]
    await insert(pool_conn, events)
    body = await (await client.get("/analytics/trends", headers=auth["secret"], params={
        **QUERY, "events": "buy", "breakdown": "plan", "interval": "week"})).json()
    assert body["buckets"] == [f"{BASE:%Y}-01-06", f"{BASE:%Y}-01-13"]  # ISO weeks meeting Jan 8-14
    got = [(s["breakdown_value"], s["other"], s["total"]) for s in body["series"]]
    # p05 and p11 have 3 events; then p00..p10 by value; p09 and p10 and the missing value go to other
    assert got == [("p05", False, 3), ("p11", False, 3), ("p00", False, 2), ("p01", False, 2), ("p02", False, 2),
                   ("p03", False, 2), ("p04", False, 2), ("p06", False, 2), ("p07", False, 2), ("p08", False, 2),
                   (None, True, 5)]
    assert body["series"][0]["data"] == [3, 0]
    check_series(body["series"], body["buckets"], ref_trends(events, ["buy"], "week", "count", True, False)["current"],
                 "count")


async def test_trends_defaults_and_accounts(client: Any, auth: Any, pool_conn: Any) -> None:
    now = datetime.now(BASE.tzinfo).replace(microsecond=0)
    await insert(pool_conn, [Ev("u1", now, "a"), Ev("u2", now - timedelta(days=40), "a"),
                             Ev("u3", now, "a", account="app-b")])
    body = await (await client.get("/analytics/trends", headers=auth["secret"], params={"events": "a"})).json()
    assert (body["interval"], body["measure"], len(body["buckets"])) == ("day", "count", 30)
    assert body["end_date"] == now.date().isoformat() and body["series"][0]["total"] == 1
    other = await (await client.get("/analytics/trends", headers={**auth["secret"], "X-Source-Account-Id": "app-b"},
                                    params={"events": "a,never"})).json()
    assert [(s["event"], s["total"]) for s in other["series"]] == [("a", 1), ("never", 0)]


async def test_trends_property_names_are_parameters(client: Any, auth: Any, pool_conn: Any) -> None:
    hostile = "x') OR 1=1; DROP TABLE np_analytics_events; --"
    await insert(pool_conn, [Ev("u1", START, "a", {hostile: 4, "plan": "p"}), Ev("u2", START, "a", {hostile: "v"})])
    body = await (await client.get("/analytics/trends", headers=auth["secret"], params={
        **QUERY, "events": "a", "measure": f"sum:{hostile}", "breakdown": hostile})).json()
    assert {(s["breakdown_value"], s["total"]) for s in body["series"]} == {("4", 4.0), ("v", 0.0)}


@pytest.mark.parametrize(("params", "message"), [
    ({}, "events is required: a comma-separated list of event names"),
    ({"events": "a,,b"}, "each event is required"),
    ({"events": ",".join(f"e{i}" for i in range(11))}, "events must name at most 10 events"),
    ({"events": "e" * 201}, "each event is longer than 200 characters"),
    ({"events": "a", "interval": "minute"}, "Invalid interval 'minute': use one of hour, day, week, month"),
    ({"events": "a", "measure": "median:x"}, "Invalid measure: use count, users, sum:<property> or avg:<property>"),
    ({"events": "a", "measure": "sum"}, "Invalid measure: use count, users, sum:<property> or avg:<property>"),
    ({"events": "a", "measure": "count:x"}, "Invalid measure: use count, users, sum:<property> or avg:<property>"),
    ({"events": "a", "measure": "sum:"}, "measure property is required"),
    ({"events": "a", "breakdown": "b" * 201}, "breakdown is longer than 200 characters"),
    ({"events": "a", "compare": "yesterday"}, "Invalid compare 'yesterday': use one of previous, none"),
    ({"events": "a", "interval": "hour", "start_date": f"{BASE:%Y}-01-01", "end_date": f"{BASE:%Y}-02-01"},
     "interval=hour is limited to 31 days"),
    ({"events": "a", "start_date": "2025-01-01"},
     "start_date and end_date go together: give both, or neither for the last 30 days"),
    ({"events": "a", "start_date": "2025-01-01", "end_date": "2025/01/02"}, "Invalid date format. Use YYYY-MM-DD"),
    ({"events": "a", "start_date": "2024-01-01", "end_date": "2025-01-02"}, "The date range is limited to 366 days"),
])
async def test_trends_validation(client: Any, auth: Any, params: dict[str, str], message: str) -> None:
    response = await client.get("/analytics/trends", headers=auth["secret"], params=params)
    assert response.status == 400
    assert await response.json() == {"status": "error", "message": message}


async def test_trends_need_the_secret(client: Any, auth: Any) -> None:
    for headers in ({}, auth["write"], {"Authorization": "Bearer nope"}):
        response = await client.get("/analytics/trends", headers=headers, params={"events": "a"})
        assert response.status == 401


async def test_trend_counts_come_from_the_hour_aggregates(client: Any, auth: Any, pool_conn: Any) -> None:
    """measure=count without a breakdown reads the aggregates for the hours the aggregator is done with (they
    keep their counts when the raw rows are gone) and raw events for the hours still dirty."""
    t = START + timedelta(hours=5)
    await insert(pool_conn, [Ev("u1", t, "a"), Ev("u2", t, "a"), Ev("u2", t + timedelta(days=1), "a"),
                             Ev("u5", t, "a", bot=True)])
    while await materialize(pool_conn, retention_days=36500):
        pass
    async with pool_conn.cursor() as cur:
        await cur.execute("DELETE FROM np_analytics_events")  # as if pruned: only the aggregates know them now
    late = Ev("u3", t + timedelta(days=2), "a")
    await insert(pool_conn, [late])  # its hour is dirty: read raw

    async def series(measure: str) -> dict[str, Any]:
        body = await (await client.get("/analytics/trends", headers=auth["secret"], params={
            **QUERY, "events": "a", "measure": measure})).json()
        return dict(body["series"][0])

    counts = await series("count")
    assert counts["total"] == 4 and counts["data"][:3] == [2, 1, 1]
    users = await series("users")  # users read raw events: only the late one is left
    assert users["total"] == 1 and users["data"][:3] == [0, 0, 1]
