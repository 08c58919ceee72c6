"""The web-analytics read API against a plain-Python reference over generated page views.

Hits are written through the drain's own write path (store.events.write_payload, tests/store_writes.py) with chosen
timestamps; every endpoint is then compared with a straightforward computation over the same list.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nself_analytics.store.partitions import ensure_partitions
from nself_analytics.store.rollups import hll
from nself_analytics.store.rollups.aggregates import materialize
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL

from . import web_reference
from .clock_support import days_ago
from .conftest import SECRET, WRITE_KEY
from .queries_support import Link, resolver
from .store_writes import write_events

SITE = "shop.example.com"
DAY0 = days_ago(60, hour=0)  # the data span 61 to 49 days ago: inside the retention, outside the default 30 days
START, END = int(DAY0.timestamp()), int((DAY0 + timedelta(days=10)).timestamp())
PATHS = ["/", "/pricing", "/docs", "/docs/start", "/blog/a", "/blog/b", "/about", "/Zed", "/é"]
REFERRERS = [None, None, None, "https://www.google.com/search", "https://google.com/", "https://news.ycombinator.com/x",
             "https://shop.example.com/pricing", "https://www.shop.example.com/", "http://user@Bing.com:8080/q",
             "android-app://com.slack/", "not a url", ""]
LANGS = ["en-US", "de-DE", "fr", None]
COUNTRIES = ["US", "DE", "FR", "JP", None]
DEVICES = ["desktop", "mobile", "tablet", None]
WIDTHS = [None, 320, 575, 576, 767, 768, 991, 992, 1199, 1200, 2560]
HEADERS = {"Authorization": f"Bearer {SECRET}"}


# Identity: some sessions carry an anonymous id (as the beacon and the browser SDK send one) or a user id; some
# anonymous ids are linked to users, so two sessions of one person are one visitor.
LINKS = [Link("identify", f"user{n}", f"anon{n}") for n in range(0, 30, 3)]


def make_hits(seed: int = 7, sessions: int = 260) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    who = random.Random(seed + 1)  # its own generator: the other fields stay as they were
    hits: list[dict[str, Any]] = []
    for s in range(sessions):
        n = who.randrange(30)
        user_id, anonymous_id = [(None, None), (None, f"anon{n}"), (f"user{n}", None)][who.randrange(3)]
        site = SITE if rng.random() < 0.85 else "other.example.org"
        session = f"s{s}" if rng.random() > 0.03 else None
        bot = rng.random() < 0.08
        device, country, lang, width = rng.choice(DEVICES), rng.choice(COUNTRIES), rng.choice(LANGS), rng.choice(WIDTHS)
        ip_hash = f"ip{rng.randrange(120)}" if rng.random() < 0.9 else None
        # sessions also start before and after the queried range, and some straddle its edges
        ts = DAY0 + timedelta(seconds=rng.randrange(-86_400, 11 * 86_400))
        for k in range(rng.choice([1, 1, 1, 2, 3, 4, 6])):
            ts += timedelta(seconds=rng.randrange(1, 900), microseconds=rng.randrange(1_000_000))
            if k == 2 and rng.random() < 0.4:  # the network changed mid-session: still one session, one visitor
                ip_hash = f"ip{rng.randrange(120)}"
            hits.append({
                "ts": ts.isoformat(), "message_id": str(uuid.uuid4()), "type": "page", "event": "$pageview",
                "site": site, "session_id": session, "path": rng.choice(PATHS), "user_id": user_id,
                "anonymous_id": anonymous_id,
                "referrer": rng.choice(REFERRERS) if k == 0 else None, "device": device, "country": country,
                "language": lang, "screen_width": width, "is_bot": bot, "ip_hash": ip_hash,
                "browser": rng.choice(["Chrome", "Firefox", "Safari"]), "os": rng.choice(["Windows", "iOS", None]),
                "properties": {"hostname": "blog." + site} if rng.random() < 0.2 else None,
            })
    # noise the queries must ignore: another event type on the same site
    hits.append({"ts": (DAY0 + timedelta(hours=5)).isoformat(), "message_id": str(uuid.uuid4()), "type": "track",
                 "event": "signup", "site": SITE, "session_id": "s1", "path": "/", "is_bot": False})
    return hits


async def store(client: Any, hits: list[dict[str, Any]], links: Sequence[Link] = ()) -> None:
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn:
        await ensure_partitions(conn, {datetime.fromisoformat(h["ts"]).date() for h in hits})
        users = [row for link in links if (row := link.identify()) is not None]
        assert await write_events(conn, hits, users, [link.op() for link in links]) == len(hits)


# --- the reference -----------------------------------------------------------------------------

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def domain(referrer: str | None) -> str | None:
    if not referrer or not _SCHEME.match(referrer):
        return None
    host = re.split(r"[/?#]", referrer.split("://", 1)[1])[0].rsplit("@", 1)[-1].split(":")[0]
    return re.sub(r"^www\.", "", host.lower())


def select(hits: Iterable[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    start = datetime.fromtimestamp(int(params.get("start", START)), UTC)
    end = datetime.fromtimestamp(int(params.get("end", END)), UTC)
    out = []
    for h in hits:
        ts = datetime.fromisoformat(h["ts"])
        if h["site"] != params["site"] or h["event"] != "$pageview" or not start <= ts < end:
            continue
        if h["is_bot"] and params.get("include_bots") != "true":
            continue
        if "path" in params and h["path"] != params["path"]:
            continue
        if "country" in params and h.get("country") != params["country"].upper():
            continue
        if "device" in params and h.get("device") != params["device"]:
            continue
        if "referrer" in params and domain(h.get("referrer")) != params["referrer"].lower().removeprefix("www."):
            continue
        out.append(h)
    return out


def reference(name: str, hits: list[dict[str, Any]], params: dict[str, str], links: Sequence[Link] = ()) -> Any:
    """The definition of tests/web_reference.py over the test's range by default."""
    return web_reference.reference(name, hits, {"start": str(START), "end": str(END), **params}, resolver(links))


ENDPOINTS = ["pageviews", "pages", "referrers", "timeseries", "devices", "languages", "browsers", "os", "countries",
             "hostnames", "entry-pages", "exit-pages", "bounce-rates", "peak-hours", "screen-widths",
             "session-duration"]
PARAMS: list[dict[str, str]] = [
    {},
    {"limit": "1000"},
    {"limit": "3"},
    {"include_bots": "true", "limit": "50"},
    {"path": "/pricing"},
    {"country": "de"},
    {"device": "mobile", "limit": "100"},
    {"referrer": "google.com"},
    {"referrer": "www.google.com"},
    {"start": str(START + 3 * 86_400 + 7_200), "end": str(START + 5 * 86_400 + 100)},
    {"start": str(START + 86_400), "end": str(START + 86_400 + 1)},
]


@pytest.fixture
async def hits(client: Any) -> list[dict[str, Any]]:
    generated = make_hits()
    await store(client, generated, LINKS)
    return generated


def approx_equal(got: Any, want: Any) -> bool:
    if isinstance(want, float):
        return abs(got - want) < 0.002
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(approx_equal(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(approx_equal, got, want))
    return bool(got == want)


async def compare_every_endpoint(client: Any, hits: list[dict[str, Any]], links: Sequence[Link] = LINKS) -> None:
    checked = 0
    for name in ENDPOINTS:
        for extra in PARAMS:
            params = {"site": SITE, "start": str(START), "end": str(END), **extra}
            response = await client.get(f"/analytics/api/{name}", params=params, headers=HEADERS)
            assert response.status == 200, (name, extra, await response.text())
            body = await response.json()
            assert body["status"] == "success"
            assert body["meta"] == {"site": SITE, "start": int(params["start"]), "end": int(params["end"]), "tz": "UTC"}
            want = reference(name, hits, params, links)
            got = body["data"]
            if name == "pageviews" and not links:
                # no identity link: whole days' visitors may come from their sketches, within 2% (OpenAPI)
                assert abs(got["visitors"] - want["visitors"]) <= 0.02 * want["visitors"], (extra, got, want)
                got = {**got, "visitors": want["visitors"]}
            assert approx_equal(got, want), (name, extra, got, want)
            checked += 1
    assert checked == len(ENDPOINTS) * len(PARAMS)


async def test_every_endpoint_matches_the_reference(client: Any, hits: list[dict[str, Any]]) -> None:
    # nothing aggregated yet: every hour is dirty, so every read builds its fragments from raw page views
    await compare_every_endpoint(client, hits)


async def fragments(client: Any) -> int:
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT count(*) FROM np_analytics_web_sessions")
        (count,) = await cur.fetchone()
        await cur.execute("SELECT count(*) FROM np_analytics_aggregate_dirty")
        (dirty,) = await cur.fetchone()
    return int(count) if not dirty else -1


async def test_every_endpoint_matches_the_reference_from_the_rollup(client: Any, hits: list[dict[str, Any]]) -> None:
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn:
        while await materialize(conn, retention_days=36500):
            pass
    # one fragment per (site, session, hour, bot flag): fewer rows than page views, none left dirty
    assert 0 < await fragments(client) < len(hits)
    await compare_every_endpoint(client, hits)
    # late page views re-dirty their hours: those hours are read raw, the others from the rollup
    rng = random.Random(11)
    late = [{**h, "message_id": str(uuid.uuid4()), "ts": (datetime.fromisoformat(h["ts"]) + timedelta(
        seconds=rng.randrange(1, 600))).isoformat()} for h in rng.sample(hits, 40)]
    await store(client, late)
    assert await fragments(client) == -1
    await compare_every_endpoint(client, hits + late)
    # once aggregated again, whole hours are read from the rollup alone: the raw page views can go
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn:
        while await materialize(conn, retention_days=36500):
            pass
        async with conn.cursor() as cur:
            await cur.execute("DELETE FROM np_analytics_events")
    for name in ENDPOINTS:
        params = {"site": SITE, "start": str(START), "end": str(END), "limit": "1000"}
        body = await (await client.get(f"/analytics/api/{name}", params=params, headers=HEADERS)).json()
        assert approx_equal(body["data"], reference(name, hits + late, params, LINKS)), name


async def test_reference_data_is_not_trivial(hits: list[dict[str, Any]]) -> None:
    # the comparisons above mean something only if the generated data exercises each rule
    sel = select(hits, {"site": SITE})
    assert len(sel) > 300 and any(h["is_bot"] for h in hits if h["site"] == SITE)
    assert len(select(hits, {"site": SITE, "include_bots": "true"})) > len(sel)
    # a session without a referrer (or with the site's own) is the row "Direct / None"
    assert [r["referrer"] for r in reference("referrers", hits, {"site": SITE, "limit": "100"})][:2] == [
        "Direct / None", "google.com"]
    assert {r["referrer"] for r in reference("referrers", hits, {"site": SITE, "limit": "100"})} >= {
        "bing.com", "news.ycombinator.com", "com.slack"}
    assert 0 < reference("session-duration", hits, {"site": SITE})["bounce_rate"] < 1
    assert reference("pageviews", hits, {"site": SITE, "referrer": "google.com"})["pageviews"] > 5
    # linked anonymous ids make fewer visitors than raw ids do
    assert reference("pageviews", hits, {"site": SITE}, LINKS)["visitors"] < reference("pageviews", hits,
                                                                                       {"site": SITE})["visitors"]


async def test_bots_excluded_by_default(client: Any) -> None:
    base = {"ts": (DAY0 + timedelta(hours=1)).isoformat(), "type": "page", "event": "$pageview", "site": SITE,
            "path": "/", "device": "desktop"}
    await store(client, [{**base, "message_id": str(uuid.uuid4()), "session_id": "human", "is_bot": False},
                         {**base, "message_id": str(uuid.uuid4()), "session_id": "bot1", "is_bot": True},
                         {**base, "message_id": str(uuid.uuid4()), "session_id": "bot2", "is_bot": True}])
    params = {"site": SITE, "start": str(START), "end": str(END)}
    body = await (await client.get("/analytics/api/pageviews", params=params, headers=HEADERS)).json()
    assert body["data"]["pageviews"] == 1 and body["data"]["sessions"] == 1
    body = await (await client.get("/analytics/api/devices", params={**params, "include_bots": "true"},
                                   headers=HEADERS)).json()
    assert body["data"] == [{"device": "desktop", "pageviews": 3, "sessions": 3}]


async def test_default_range_is_last_30_days_and_active_is_5_minutes(client: Any) -> None:
    now = datetime.now(UTC)
    base = {"type": "page", "event": "$pageview", "site": SITE, "path": "/", "is_bot": False}
    ages = {"a": timedelta(minutes=1), "b": timedelta(minutes=4), "c": timedelta(minutes=7),
            "d": timedelta(days=29), "e": timedelta(days=31)}
    await store(client, [{**base, "message_id": str(uuid.uuid4()), "session_id": s, "ts": (now - age).isoformat()}
                         for s, age in ages.items()])
    body = await (await client.get("/analytics/api/pageviews", params={"site": SITE}, headers=HEADERS)).json()
    assert body["data"]["sessions"] == 4
    # the product queries' default window: the last 30 whole days (UTC), today included
    assert body["meta"]["end"] - body["meta"]["start"] == 30 * 86_400 and body["meta"]["start"] % 86_400 == 0
    body = await (await client.get("/analytics/api/active", params={"site": SITE}, headers=HEADERS)).json()
    assert body["data"] == {"active": 2, "pageviews": 2}
    body = await (await client.get("/analytics/api/timeseries", params={"site": SITE}, headers=HEADERS)).json()
    assert len(body["data"]) == 30 and sum(d["pageviews"] for d in body["data"]) == 4
    events = await (await client.get("/analytics/events", headers=HEADERS)).json()
    assert (body["data"][0]["date"], body["data"][-1]["date"]) == (events["start_date"], events["end_date"])
    # in another zone, its days
    body = await (await client.get("/analytics/api/timeseries", params={"site": SITE, "tz": "Pacific/Auckland"},
                                   headers=HEADERS)).json()
    assert len(body["data"]) == 30 and body["meta"]["tz"] == "Pacific/Auckland"


@pytest.mark.parametrize("path", ["/analytics/api/" + name for name in [*ENDPOINTS, "active"]])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {WRITE_KEY}"}])
async def test_secret_token_required(client: Any, path: str, headers: dict[str, str]) -> None:
    response = await client.get(path, params={"site": SITE}, headers=headers)
    assert response.status == 401
    body = await response.json()
    assert body["status"] == "error" and "secret token" in body["message"]


@pytest.mark.parametrize(("params", "message"), [
    ({}, "site is required"),
    ({"site": "a b"}, "site must be a hostname"),
    ({"site": SITE, "start": "yesterday"}, "start must be Unix seconds"),
    ({"site": SITE, "end": "-5"}, "end must be Unix seconds"),
    ({"site": SITE, "start": "99999999999999"}, "start must be Unix seconds"),
    ({"site": SITE, "start": "200", "end": "100"}, "start must be before end"),
    ({"site": SITE, "start": "253402300000"}, "start must be before end"),  # after the default end (now)
    ({"site": SITE, "limit": "0"}, "limit must be an integer from 1 to 1000"),
    ({"site": SITE, "limit": "1001"}, "limit must be an integer from 1 to 1000"),
    ({"site": SITE, "include_bots": "maybe"}, "include_bots must be true or false"),
    ({"site": SITE, "country": "USA"}, "country is longer than 2 characters"),
    ({"site": SITE, "country": "1x"}, "country must be an ISO 3166 alpha-2 code"),
    ({"site": SITE, "device": "watch"}, "device must be one of mobile, tablet, desktop"),
    ({"site": SITE, "path": "/a\x00"}, "path must not contain a NUL character"),  # found by schemathesis
])
async def test_bad_parameters_are_400(client: Any, params: dict[str, str], message: str) -> None:
    response = await client.get("/analytics/api/pages", params=params, headers=HEADERS)
    assert response.status == 400
    body = await response.json()
    assert body["status"] == "error" and body["message"].startswith(message)


async def test_timeseries_range_is_bounded(client: Any) -> None:
    response = await client.get("/analytics/api/timeseries", headers=HEADERS,
                                params={"site": SITE, "start": "0", "end": str(END)})
    assert response.status == 400 and (await response.json())["message"] == "The range is limited to 3660 days"


async def test_without_identity_links_visitors_come_from_the_day_sketches(client: Any) -> None:
    hits = make_hits(seed=21, sessions=400)
    await store(client, hits)
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn:
        while await materialize(conn, retention_days=36500):
            pass
    await compare_every_endpoint(client, hits, links=())


async def test_visitor_sketch_matches_postgres_hashes_and_is_within_its_error(client: Any) -> None:
    # the registers the aggregator computes in SQL are those the reads compute in Python from the same hashes
    hashed = hll.HASH_SQL.format(v="'visitor-' || g")
    index_sql, rank_sql = (sql.format(h=hashed) for sql in hll.REGISTER_SQL)
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(f"SELECT {hashed}, {index_sql}, {rank_sql} "
                          "FROM generate_series(1, 60000) AS g")
        rows = await cur.fetchall()
    from_sql = hll.registers((index, rank) for _h, index, rank in rows)
    from_python = hll.registers([])
    hll.add(from_python, [h for h, _i, _r in rows])
    assert from_sql == from_python
    assert hll.merge([from_sql[:8000] + bytes(hll.M - 8000), bytes(8000) + from_sql[8000:]]) == from_sql
    for n in (10, 1000, 60000):  # small counts (linear counting) and large ones
        regs = hll.registers([])
        hll.add(regs, [h for h, _i, _r in rows[:n]])
        assert abs(hll.estimate(regs) - n) <= 0.02 * n, n
