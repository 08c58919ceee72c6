"""GET /api/peak-hours/week and /api/realtime/minutes (api/peaks.py): the series of the dashboard's heat map and
realtime chart, each checked against a computation over the page views written, and refused or bounded under
bad parameters, another site's token, another account's page views and huge ranges. The weekly series under
random filters, on raw page views and the rollups, is in tests/test_web_filters.py (the reference model)."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from nself_analytics.config import Settings

from . import web_reference as ref
from .conftest import SECRET
from .queries_support import resolver
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
    assert max(c["visitors"] for c in utc) == 2 and len(utc) == 168
    # a page filter: its page views, in the sessions that include one
    response = await client.get("/analytics/api/peak-hours/week", params={**params, "path": "/pricing"},
                                headers=HEADERS)
    pricing = ref.reference("peak-hours/week", mine, {**params, "path": "/pricing"}, person)
    assert (await response.json())["data"] == pricing and 0 < sum(c["pageviews"] for c in pricing) < len(mine)


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
