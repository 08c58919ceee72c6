"""Every web read under random combinations of filters, time zones and ranges agrees with the definition of
tests/web_reference.py (docs/web-metrics.md): on raw page views, on the rollup, after late page views, and
from the rollup alone once the raw rows are deleted."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nself_analytics.store.rollups.aggregates import materialize
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL

from . import web_reference as ref
from .conftest import SECRET
from .queries_support import Link, resolver, run_examples
from .test_web_stats import approx_equal, store

SITE = "filters.example.com"
HEADERS = {"Authorization": f"Bearer {SECRET}"}
# ten days that ended before today began (UTC), so the rollup can hold every hour
DAY0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=11)
START, END = int(DAY0.timestamp()), int((DAY0 + timedelta(days=10)).timestamp())
PATHS = ["/", "/pricing", "/docs", "/blog/a", "/about", "/é"]
REFERRERS = [None, None, "https://www.google.com/search", "https://news.ycombinator.com/x",
             f"https://{SITE}/pricing", "http://user@Bing.com:8080/q", "not a url"]
VALUES = {
    "device": ["desktop", "mobile", "tablet", None], "browser": ["Chrome", "Firefox", "Safari"],
    "os": ["Windows", "iOS", None], "country": ["US", "DE", "FR", None], "language": ["en-US", "de-DE", None],
}
WIDTHS = [None, 320, 700, 1000, 1100, 1440]
UTMS = {"utm_source": ["news", "mail"], "utm_medium": ["email", "cpc"], "utm_campaign": ["spring", "fall"]}
LINKS = [Link("identify", f"user{n}", f"anon{n}") for n in range(0, 20, 3)]
ENDPOINTS = ["pageviews", "pages", "referrers", "timeseries", "devices", "languages", "browsers", "os", "countries",
             "hostnames", "entry-pages", "exit-pages", "bounce-rates", "peak-hours", "screen-widths",
             "session-duration", "utm-sources", "utm-mediums", "utm-campaigns", "peak-hours/week"]


def make_hits(seed: int, sessions: int = 150) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    hits: list[dict[str, Any]] = []
    for s in range(sessions):
        n = rng.randrange(20)
        user_id, anonymous_id = [(None, None), (None, f"anon{n}"), (f"user{n}", None)][rng.randrange(3)]
        session = f"s{s}" if rng.random() > 0.1 else None  # sent without one: the visitor's day is the session
        fixed = {k: rng.choice(v) for k, v in VALUES.items()}
        utm = {k: rng.choice(v) for k, v in UTMS.items()} if rng.random() < 0.3 else {}
        bot = rng.random() < 0.06
        width, ip_hash = rng.choice(WIDTHS), f"ip{rng.randrange(60)}"
        ts = DAY0 + timedelta(seconds=rng.randrange(-86_400, 11 * 86_400))
        for k in range(rng.choice([1, 1, 2, 3, 5])):
            ts += timedelta(seconds=rng.randrange(1, 1800), microseconds=rng.randrange(1_000_000))
            props = {**(utm if k == 0 else {}), **({"hostname": "blog." + SITE} if rng.random() < 0.2 else {})}
            hits.append({
                "ts": ts.isoformat(), "message_id": str(uuid.uuid4()), "type": "page", "event": "$pageview",
                "site": SITE, "session_id": session, "path": rng.choice(PATHS), "user_id": user_id,
                "anonymous_id": anonymous_id, "ip_hash": ip_hash, "is_bot": bot, "screen_width": width,
                # a later page view's referrer is mostly the site itself, sometimes another (a new tab)
                "referrer": rng.choice(REFERRERS) if k == 0 or rng.random() < 0.1 else f"https://{SITE}/",
                **fixed, "browser": fixed["browser"] if rng.random() < 0.9 else "Edge",
                "properties": props or None,
            })
        # custom events (goals) of the session: before, between or after its page views, in other hours or days
        for name, chance in (("signup", 0.25), ("download", 0.15)):
            if rng.random() < chance:
                when = ts + timedelta(seconds=rng.randrange(-7_200, 3_600))
                hits.append({
                    "ts": when.isoformat(), "message_id": str(uuid.uuid4()), "type": "track", "event": name,
                    "site": SITE if rng.random() < 0.9 else "other.example", "session_id": session, "path": None,
                    "user_id": user_id, "anonymous_id": anonymous_id, "ip_hash": ip_hash,
                    "is_bot": bot if rng.random() < 0.9 else not bot, "properties": None,
                })
    return hits


FILTERS = {
    "path": st.sampled_from(PATHS), "entry_page": st.sampled_from(PATHS), "exit_page": st.sampled_from(PATHS),
    "referrer": st.sampled_from(["google.com", "www.google.com", "Direct / None", "bing.com", "news.ycombinator.com"]),
    "device": st.sampled_from(["desktop", "mobile", "tablet"]), "browser": st.sampled_from(["Chrome", "Edge"]),
    "os": st.sampled_from(["Windows", "iOS"]), "country": st.sampled_from(["us", "DE"]),
    "language": st.sampled_from(["en-US", "de-DE"]), "screen": st.sampled_from(["<576", "992-1199", ">=1200"]),
    "hostname": st.sampled_from([SITE, "blog." + SITE]), "utm_source": st.sampled_from(["news", "mail"]),
    "utm_medium": st.sampled_from(["email"]), "utm_campaign": st.sampled_from(["spring"]),
    "event": st.sampled_from(["signup", "download", "never"]),
    "goal": st.sampled_from(["event:signup", "event:download", "path:/pricing"]),
}


def params_strategy(ranges: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "filters": st.dictionaries(st.sampled_from(sorted(FILTERS)), st.just(None), min_size=0, max_size=3),
        "tz": st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York"]),
        "range": st.sampled_from(ranges),
        "bots": st.booleans(),
    })


def realize(drawn: dict[str, Any], data: st.DataObject | None) -> dict[str, str]:
    params = {"site": SITE, "limit": "1000", "tz": drawn["tz"]}
    for name in drawn["filters"]:
        assert data is not None
        params[name] = data.draw(FILTERS[name], label=name)
    if params.get("goal", "").startswith("path:") and "path" in params:  # two page filters: a 400 (hostile test)
        params["goal"] = "path:" + params["path"]
    start, end = {"all": (START, END), "days": (START + 2 * 86_400, START + 6 * 86_400),
                  "partial": (START + 86_400 + 5_432, START + 8 * 86_400 - 777)}[drawn["range"]]
    params.update(start=str(start), end=str(end))
    if drawn["bots"]:
        params["include_bots"] = "true"
    return params


async def check(client: Any, hits: list[dict[str, Any]], params: dict[str, str]) -> None:
    person = resolver(LINKS)
    for name in ENDPOINTS:
        response = await client.get(f"/analytics/api/{name}", params=params, headers=HEADERS)
        assert response.status == 200, (name, params, await response.text())
        got = (await response.json())["data"]
        want = ref.reference(name, hits, params, person)
        assert approx_equal(got, want), (name, params, got, want)
    # /api/goals: its own `goal` names the goals reported, so a goal filter is given as path= or event=
    kind, _, value = params.get("goal", "").partition(":")
    if kind == "event" and params.get("event", value) != value:
        return
    filters = {k: v for k, v in params.items() if k != "goal"} | ({kind: value} if kind else {})
    goals = ["path:/pricing", "path:/docs"]
    if any(name in filters for name in FILTERS):  # unfiltered, an event goal counts every event of its name
        goals += ["event:signup", "event:download"]
    response = await client.get("/analytics/api/goals", params=[*filters.items(), *(("goal", g) for g in goals)],
                                headers=HEADERS)
    assert response.status == 200, await response.text()
    for row, goal in zip((await response.json())["data"], goals, strict=True):
        kind, _, value = goal.partition(":")
        want = (ref.goal_path if kind == "path" else ref.goal_event)(hits, filters, value, person)
        assert (row["conversions"], row["visitors"]) == want, (goal, params)


async def examples(client: Any, hits: list[dict[str, Any]], count: int,
                   ranges: tuple[str, ...] = ("all", "days", "partial")) -> None:
    # every phase checks the goal and event filters at least once, whatever hypothesis draws
    for fixed in ({"event": "signup"}, {"goal": "event:download", "device": "desktop", "tz": "Asia/Kolkata"},
                  {"goal": "path:/pricing", "event": "signup", "referrer": "Direct / None"}):
        for r in ranges:
            await check(client, hits, realize({"filters": {}, "tz": fixed.get("tz", "UTC"), "range": r, "bots": False},
                                              None) | fixed)
    def body(run: Any) -> None:
        @settings(max_examples=count, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(drawn=params_strategy(list(ranges)), data=st.data())
        def example(drawn: dict[str, Any], data: st.DataObject) -> None:
            run(check(client, hits, realize(drawn, data)))

        example()

    await run_examples(body)


async def aggregate(client: Any) -> None:
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn:
        while await materialize(conn, retention_days=36500):
            pass


async def test_filters_select_whole_sessions_on_raw_rollup_late_and_deleted(client: Any) -> None:
    hits = make_hits(5)
    await store(client, hits, LINKS)
    # the data exercises each rule: a page filter keeps whole sessions, some sessions are direct
    params = {"site": SITE, "start": str(START), "end": str(END)}
    person = resolver(LINKS)
    pricing = ref.reference("session-duration", hits, {**params, "path": "/pricing"}, person)
    assert 0 < pricing["bounce_rate"] < 1 and pricing["pageviews_per_session"] > 1.5
    assert ref.reference("pageviews", hits, {**params, "path": "/pricing"}, person)["pageviews"] < sum(
        1 for s in ref.selected(hits, {**params, "path": "/pricing"}) for _ in s.views)
    assert {r["referrer"] for r in ref.reference("referrers", hits, params, person)} >= {"Direct / None", "google.com"}
    assert any(h["session_id"] is None for h in hits)
    # an event filter keeps whole sessions too: some with one page view, some with more
    signup = ref.reference("session-duration", hits, {**params, "event": "signup"}, person)
    assert 0 < signup["bounce_rate"] < 1 and 0 < signup["sessions"] < ref.reference(
        "session-duration", hits, params, person)["sessions"]
    assert 0 < ref.goal_event(hits, {**params, "device": "desktop"}, "signup", person)[0]
    await examples(client, hits, 12)  # raw page views only: nothing aggregated
    await aggregate(client)
    await examples(client, hits, 12)  # the rollup for whole hours, raw only at the partial edges
    rng = random.Random(3)
    late = [{**h, "message_id": str(uuid.uuid4()), "ts": (datetime.fromisoformat(h["ts"]) + timedelta(
        seconds=rng.randrange(1, 900))).isoformat()} for h in rng.sample(hits, 30)]
    await store(client, late)
    hits += late
    await examples(client, hits, 8)  # late page views: their hours raw again, the rest from the rollup
    await aggregate(client)
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("DELETE FROM np_analytics_events WHERE ts >= %s AND ts < %s",
                          (DAY0 + timedelta(hours=1), DAY0 + timedelta(days=10)))
    # whole hours from the rollup alone: ranges on whole hours only (the edges of "partial" would read raw rows)
    kept = [h for h in hits if not DAY0 + timedelta(hours=1) <= datetime.fromisoformat(h["ts"]) < DAY0 + timedelta(
        days=10)]
    assert len(kept) < len(hits) / 4
    await examples(client, hits, 10, ranges=("all", "days"))


async def test_new_filters_are_validated(client: Any) -> None:
    for params, message in [
        ({"screen": "huge"}, "screen must be one of"), ({"tz": "Mars/Olympus"}, "Unknown time zone"),
        ({"tz": "../etc"}, "tz must be an IANA"), ({"tz": "localtime"}, "Unknown time zone"),
        ({"tz": "posixrules"}, "Unknown time zone"), ({"entry_page": "x" * 1025}, "entry_page is longer"),
        ({"language": "\x00"}, "language must not contain a NUL"),
        ({"start_date": "2026-01-01"}, "start_date and end_date go together"),
        ({"goal": "signup"}, "goal must be path:/some/page or event:name"), ({"goal": "path:pricing"}, "goal must be"),
        ({"goal": "event:"}, "goal event is required"), ({"goal": "x" * 1031}, "goal is longer"),
        ({"goal": "path:/a", "path": "/b"}, "path and goal=path:... name two different pages"),
        ({"event": "e" * 201}, "event is longer"),
        ({"event": "\x00"}, "event must not contain a NUL"),
    ]:
        response = await client.get("/analytics/api/pageviews", params={"site": SITE, **params}, headers=HEADERS)
        assert response.status == 400, params
        assert (await response.json())["message"].startswith(message), params


async def test_every_accepted_zone_is_one_postgresql_knows(client: Any) -> None:
    # a name zoneinfo accepts but PostgreSQL does not would be a 500 from the first read that uses it
    from nself_analytics.web.params import _zones

    for name in sorted(_zones()):
        response = await client.get("/analytics/api/timeseries", headers=HEADERS,
                                    params={"site": SITE, "tz": name, "start": str(START), "end": str(START + 86_400)})
        assert response.status == 200, (name, await response.text())


async def test_extreme_dates_and_zones_answer(client: Any) -> None:
    # the first and last days the date parser takes, in the zones furthest from UTC: an answer, never a 500
    for start_date, end_date in (("1970-01-01", "1970-01-02"), ("2999-12-30", "2999-12-31")):
        for tz in ("Pacific/Kiritimati", "Etc/GMT+12"):
            for name in ("timeseries", "peak-hours", "pageviews"):
                params = {"site": SITE, "start_date": start_date, "end_date": end_date, "tz": tz,
                          "referrer": "Direct / None"}
                response = await client.get(f"/analytics/api/{name}", headers=HEADERS, params=params)
                assert response.status == 200, (start_date, tz, name, await response.text())
                body = await response.json()
                assert body["meta"]["tz"] == tz
    # start/end win over start_date/end_date when both are given (one window for a product and a web read)
    response = await client.get("/analytics/api/pageviews", headers=HEADERS, params={
        "site": SITE, "start": str(START), "end": str(END), "start_date": "2000-01-01", "end_date": "2000-01-02"})
    assert (await response.json())["meta"]["start"] == START
