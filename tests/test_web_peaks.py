"""GET /api/peak-hours/week and /api/realtime/minutes (api/peaks.py): the series of the dashboard's heat map and
realtime chart, each checked against a computation over the page views written, and refused or bounded under
bad parameters, another site's token, another account's page views and huge ranges. The weekly series under
random filters, on raw page views and the rollups, is in tests/test_web_filters.py (the reference model)."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nself_analytics.config import Settings
from nself_analytics.web.appkeys import ANALYTICS_APP, PG_POOL

from . import web_reference as ref
from .conftest import SECRET
from .queries_support import Link, resolver
from .test_web_filters import aggregate
from .test_web_stats import store

SITE, SITE_TOKEN, OTHER_TOKEN = "peaks.example", "tok_site_peaks_example_01", "tok_site_other_example_01"
HEADERS = {"Authorization": f"Bearer {SECRET}"}
NOW = datetime.now(UTC)
DAY0 = NOW.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=9)


def hit(ts: datetime, session: str, path: str = "/", account: str = "primary", **more: Any) -> dict[str, Any]:
    return {"ts": ts.isoformat(), "message_id": str(uuid.uuid4()), "type": "page", "event": "$pageview",
            "site": SITE, "session_id": session, "path": path, "is_bot": False, "ip_hash": f"ip-{session}",
            "source_account_id": account, **more}


async def site_client(make_client: Any, settings: Settings) -> Any:
    return await make_client(settings.with_(
        secret_token=f"{SECRET},site:{SITE}={SITE_TOKEN},site:other.example={OTHER_TOKEN}"))


async def test_peak_week_counts_each_weekday_and_hour(make_client: Any, settings: Settings) -> None:
    client = await site_client(make_client, settings)
    hits = [hit(DAY0 + timedelta(days=d, hours=h, minutes=m), f"s{d}-{h}-{k}", path, anonymous_id=f"a{k}")
            for d in range(8) for h in (3, 14, 23)
            for k, (m, path) in enumerate([(5, "/"), (20, "/pricing")][:1 + d % 2])]
    hits += [hit(DAY0 + timedelta(days=2, hours=14, minutes=40), "s2-14-0", "/docs", anonymous_id="a0"),  # same session
             hit(DAY0 + timedelta(days=3, hours=3), "x", account="other")]  # another account's: never counted
    await store(client, hits)
    end = DAY0 + timedelta(days=8)
    params = {"site": SITE, "start": str(int(DAY0.timestamp())), "end": str(int(end.timestamp()))}
    person = resolver([])
    mine = [h for h in hits if h["source_account_id"] == "primary"]
    for tz in ("UTC", "America/New_York"):
        want = ref.reference("peak-hours/week", mine, {**params, "tz": tz}, person)
        for phase in ("raw", "rollup"):
            response = await client.get("/analytics/api/peak-hours/week", params={**params, "tz": tz},
                                        headers={"Authorization": f"Bearer {SITE_TOKEN}"})
            assert response.status == 200, await response.text()
            body = await response.json()
            assert body["data"] == want, (tz, phase)
            assert body["meta"]["tz"] == tz
            await aggregate(client)
    # the numbers are not trivial: each (weekday, hour) of a page view in UTC, two visitors in some
    utc = ref.reference("peak-hours/week", mine, {**params, "tz": "UTC"}, person)
    cells: Counter[tuple[int, int]] = Counter()
    for h in mine:
        ts = datetime.fromisoformat(h["ts"])
        cells[(ts.isoweekday(), ts.hour)] += 1
    assert {(c["weekday"], c["hour"]): c["pageviews"] for c in utc if c["pageviews"]} == dict(cells)
    assert len(utc) == 168
    # unfiltered, a cell sums its UTC hours' visitors ("hourly visitors"): days 0 and 7 share a weekday, so a0 of
    # both weeks counts twice beside a1 (3), where the distinct persons of the cell's sessions are 2
    cell = next(c for c in utc if (c["weekday"], c["hour"]) == (DAY0.isoweekday(), 14))
    assert cell["visitors"] == 3 and cell["sessions"] == 3
    everyone = {**params, "referrer": "Direct / None"}  # a filter selecting every session: the session path
    response = await client.get("/analytics/api/peak-hours/week", params=everyone, headers=HEADERS)
    chosen = next(c for c in (await response.json())["data"] if (c["weekday"], c["hour"]) == (DAY0.isoweekday(), 14))
    assert chosen == {**cell, "visitors": 2}
    # a page filter: its page views, in the sessions that include one
    response = await client.get("/analytics/api/peak-hours/week", params={**params, "path": "/pricing"},
                                headers=HEADERS)
    pricing = ref.reference("peak-hours/week", mine, {**params, "path": "/pricing"}, person)
    assert (await response.json())["data"] == pricing and 0 < sum(c["pageviews"] for c in pricing) < len(mine)


def traffic(rng: random.Random, days: range, count: int) -> list[dict[str, Any]]:
    """Page views over ``days`` after DAY0: sessions of one to four page views (some crossing an hour), anonymous or
    identified visitors (a person may have two sessions in one hour under two ids), bots, sessionless page views."""
    hits = []
    for n in range(count):
        start = DAY0 + timedelta(days=rng.choice(days), hours=rng.randrange(24), minutes=rng.randrange(60))
        who = rng.randrange(8)
        ids = {"anonymous_id": f"anon{who}"} | ({"user_id": f"user{who}"} if who < 4 and rng.random() < 0.5 else {})
        session, bot = (None if rng.random() < 0.1 else f"h{n}"), rng.random() < 0.15
        for k in range(rng.randrange(1, 5)):
            hits.append(hit(start + timedelta(minutes=12 * k), session, rng.choice(["/", "/pricing", "/docs"]),
                            is_bot=bot or (k == 2 and rng.random() < 0.3), **ids))
    return hits


async def test_unfiltered_week_sums_hourly_rows_raw_rollup_late_and_deleted(make_client: Any,
                                                                          settings: Settings) -> None:
    """Unfiltered, the heat map reads the per-hour rows (migration 0124) of the whole clean hours and raw page views
    elsewhere: exact against the reference (hourly visitors and sessions) on raw page views, on the rollup, with
    late page views in aggregated hours, after the raw rows are deleted, in whole-hour and 30/45-minute zones."""
    client = await site_client(make_client, settings)
    rng = random.Random(11)
    links = [Link("identify", f"user{n}", f"anon{n}") for n in range(3)]  # user3 stays apart from anon3
    hits = traffic(rng, range(9), 160)
    await store(client, hits, links)
    person = resolver(links)
    end = DAY0 + timedelta(days=9)
    whole = {"site": SITE, "start": str(int(DAY0.timestamp())), "end": str(int(end.timestamp()))}
    partial = {"site": SITE, "start": str(int(DAY0.timestamp()) + 1_234), "end": str(int(end.timestamp()) - 777)}

    async def check(ranges: tuple[dict[str, str], ...] = (whole, partial)) -> None:
        for base in ranges:
            for tz in ("UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York"):
                for bots in ({}, {"include_bots": "true"}):
                    params = {**base, "tz": tz, **bots}
                    response = await client.get("/analytics/api/peak-hours/week", params=params, headers=HEADERS)
                    assert response.status == 200, await response.text()
                    assert (await response.json())["data"] == ref.reference("peak-hours/week", hits, params, person), \
                        params

    await check()  # raw page views only
    await aggregate(client)
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT count(*), sum(views), sum(all_views) FROM np_analytics_web_hour_stats")
        rows, views, all_views = await cur.fetchone()
    assert 0 < rows <= 9 * 24 and 0 < views < all_views == len(hits)
    await check()  # the rollup for whole hours, raw at the partial edges
    late = [{**h, "message_id": str(uuid.uuid4()), "ts": (datetime.fromisoformat(h["ts"]) + timedelta(
        seconds=rng.randrange(1, 600))).isoformat()} for h in rng.sample(hits, 25)]
    await store(client, late)
    hits += late
    await check()  # late page views: their hours raw again
    await aggregate(client)
    await check()
    # the migration fills the rows from the stored fragments as the aggregator does
    sql = (Path(__file__).parents[1] / "migrations" / "0124_web_hour_stats.sql").read_text()
    fill = sql[sql.index("INSERT INTO np_analytics_web_hour_stats"):]
    async with client.app[ANALYTICS_APP][PG_POOL].acquire() as conn, conn.cursor() as cur:
        table = "SELECT * FROM np_analytics_web_hour_stats ORDER BY source_account_id, site, hour"
        await cur.execute(table)
        kept = await cur.fetchall()
        await cur.execute("DELETE FROM np_analytics_web_hour_stats")
        await cur.execute(fill)
        await cur.execute(table)
        assert await cur.fetchall() == kept and len(kept) == rows
        await cur.execute("DELETE FROM np_analytics_events WHERE ts >= %s AND ts < %s",
                          (DAY0 + timedelta(hours=1), end))
    await check((whole,))  # whole hours from the rollup alone


async def test_realtime_minutes_count_each_minute(make_client: Any, settings: Settings) -> None:
    client = await site_client(make_client, settings)
    now = datetime.now(UTC)
    hits = [hit(now - timedelta(minutes=k, seconds=s), f"r{k}-{s}", anonymous_id=f"v{s}")
            for k in (0, 1, 1, 7, 29, 31, 45) for s in (0, 10)]
    hits += [hit(now - timedelta(minutes=2), "bot", is_bot=True), hit(now - timedelta(minutes=2), "o", account="other"),
             hit(now - timedelta(minutes=3), "elsewhere", site="other.example")]
    await store(client, hits)
    response = await client.get("/analytics/api/realtime/minutes", params={"site": SITE},
                                headers={"Authorization": f"Bearer {SITE_TOKEN}"})
    assert response.status == 200, await response.text()
    body = await response.json()
    since, until = body["meta"]["start"], body["meta"]["end"]
    assert until - since == 30 * 60 and since % 60 == 0 and since <= now.timestamp() < until
    views: Counter[int] = Counter()
    visitors: dict[int, set[str]] = defaultdict(set)
    for h in hits:
        ts = datetime.fromisoformat(h["ts"]).timestamp()
        if h["site"] == SITE and h["source_account_id"] == "primary" and not h["is_bot"] and since <= ts < until:
            minute = int(ts // 60 * 60)
            views[minute] += 1
            visitors[minute].add(h["anonymous_id"])
    want = [{"start": m, "visitors": len(visitors[m]), "pageviews": views[m]} for m in range(since, until, 60)]
    assert body["data"] == want
    assert sum(views.values()) >= 8 and max(len(v) for v in visitors.values()) >= 2
    # bots on request
    response = await client.get("/analytics/api/realtime/minutes", params={"site": SITE, "include_bots": "true"},
                                headers=HEADERS)
    assert sum(m["pageviews"] for m in (await response.json())["data"]) == sum(views.values()) + 1


async def test_peak_series_refuse_bad_parameters_other_sites_and_huge_ranges(make_client: Any,
                                                                            settings: Settings) -> None:
    client = await site_client(make_client, settings)
    await store(client, [hit(NOW - timedelta(minutes=1), "s")])
    site_headers = {"Authorization": f"Bearer {SITE_TOKEN}"}
    for path in ("peak-hours/week", "realtime/minutes"):
        url = f"/analytics/api/{path}"
        for params, status, message in [
            ({}, 400, "site is required"), ({"site": "bad site!"}, 400, "site must be a hostname"),
            ({"site": SITE, "tz": "Mars/Olympus"}, 400, "Unknown time zone"),
            ({"site": SITE, "start": "-1"}, 400, "start must be Unix seconds"),
            ({"site": SITE, "start": "10", "end": "5"}, 400, "start must be before end"),
            ({"site": SITE, "goal": "nope"}, 400, "goal must be"),
            ({"site": SITE, "include_bots": "maybe"}, 400, "include_bots must be true or false"),
        ]:
            response = await client.get(url, params=params, headers=HEADERS)
            assert response.status == status, (path, params)
            assert (await response.json()) == {"status": "error", "message": (await response.json())["message"]}
            assert (await response.json())["message"].startswith(message), (path, params)
        # another site's token, no token, a token of this site reading another site
        for headers, params in (({"Authorization": f"Bearer {OTHER_TOKEN}"}, {"site": SITE}), ({}, {"site": SITE}),
                                (site_headers, {"site": "other.example"})):
            response = await client.get(url, params=params, headers=headers)
            assert response.status in (401, 403), (path, headers, params)
    # a range of 9999 years: the weekly series refuses it; realtime ignores the range (always its 30 minutes)
    huge = {"site": SITE, "start": "0", "end": "253402300799"}
    response = await client.get("/analytics/api/peak-hours/week", params=huge, headers=HEADERS)
    assert response.status == 400 and "limited to 3660 days" in (await response.json())["message"]
    response = await client.get("/analytics/api/realtime/minutes", params=huge, headers=HEADERS)
    assert response.status == 200 and len((await response.json())["data"]) == 30
    # another account's page views on the same site are not this account's
    await store(client, [hit(NOW - timedelta(minutes=1), "t", account="other")])
    response = await client.get("/analytics/api/realtime/minutes", params={"site": SITE}, headers=HEADERS)
    assert sum(m["pageviews"] for m in (await response.json())["data"]) == 1
